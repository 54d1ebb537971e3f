"""Quiet tensorflow-datasets probes: looking for a data set that is not prepared makes tfds
log a warning through absl; the loaders turn that case into their own one-line error."""

from __future__ import annotations

import contextlib
import logging

__all__ = ["quiet_absl"]


@contextlib.contextmanager
def quiet_absl():
    """Within this context, absl's warnings (tfds's "has no dataset_info.json") are dropped."""
    log = logging.getLogger("absl")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
