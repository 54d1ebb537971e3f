"""Datasets shared by the packages."""

from generative.data.toy import TOY_DATASETS, sample_mixture, sample_toy

__all__ = ["TOY_DATASETS", "sample_mixture", "sample_toy"]
