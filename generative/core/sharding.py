"""Data parallelism over all devices with `jax.sharding` (a 1-D `data` mesh, no pmap).

Single host: every local device is on the mesh. Multi-host (several processes, e.g. a TPU
pod slice or several GPU nodes): call `initialize_distributed()` first in every process
(it reads JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID, or lets JAX
auto-detect on TPU/SLURM); the mesh then spans `jax.devices()` of all processes, and each
process feeds its local share of the batch through `shard_batch` (which uses
`jax.make_array_from_process_local_data`).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "DATA_AXIS",
    "data_mesh",
    "replicated",
    "batch_sharded",
    "shard_batch",
    "initialize_distributed",
]

DATA_AXIS = "data"


def initialize_distributed() -> None:
    """Join a multi-process run when the environment describes one; no-op otherwise."""
    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        jax.distributed.initialize(
            coordinator_address=os.environ["JAX_COORDINATOR_ADDRESS"],
            num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
            process_id=int(os.environ["JAX_PROCESS_ID"]),
        )


def data_mesh(devices: Any = None) -> Mesh:
    """A 1-D mesh over `devices` (default: all devices of all processes)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Leading axis split over the `data` axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def shard_batch(batch: Any, mesh: Mesh) -> Any:
    """Place a host batch (leading axis = this process's share) on the mesh, split on axis 0."""
    sharding = batch_sharded(mesh)
    n_local = len(mesh.local_devices)

    def put(x):
        x = np.asarray(x)
        if x.ndim == 0 or x.shape[0] % n_local:
            raise ValueError(
                f"batch leading axis {x.shape[:1]} must be divisible by the {n_local} local devices"
            )
        if jax.process_count() == 1:
            return jax.device_put(x, sharding)
        return jax.make_array_from_process_local_data(sharding, x)

    return jax.tree_util.tree_map(put, batch)
