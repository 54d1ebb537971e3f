"""Shared by the benchmark scripts."""

from __future__ import annotations


def torch_reference(threads: int = 2):
    """`benchmarks/torch_reference.py` with torch set to `threads` threads, or None when torch
    is not installed (it is an optional benchmark-only dependency)."""
    try:
        import torch
    except ImportError:
        return None
    import torch_reference

    torch.set_num_threads(threads)
    return torch_reference
