"""Orbax `CheckpointManager` with keep-N, resume-from-workdir and clear errors."""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

__all__ = ["CheckpointError", "Checkpointer"]


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be restored into this run (corrupt or incompatible)."""


class Checkpointer:
    """Saves the whole train-state pytree at given steps; restores the latest one.

    Saves are asynchronous (orbax writes to a temporary folder, then renames it), so a
    process killed mid-save leaves the previous checkpoints intact and the partial one is
    ignored on restart.
    """

    def __init__(self, directory: pathlib.Path, keep: int = 3):
        self.directory = pathlib.Path(directory).absolute()
        options = ocp.CheckpointManagerOptions(max_to_keep=max(1, int(keep)), create=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, state: Any) -> None:
        self.manager.save(int(step), args=ocp.args.StandardSave(state))

    def restore(self, abstract_state: Any, step: int | None = None) -> Any:
        """Restore into the structure, shapes, dtypes and shardings of `abstract_state`
        (leaves without a sharding, e.g. from `jax.eval_shape`, go to the default device)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        abstract_state = _with_default_sharding(abstract_state)
        try:
            restored = self.manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
        except Exception as e:  # orbax raises many types; report them as one line
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} cannot be restored into this run "
                f"({type(e).__name__}: {msg[:200]}); delete it or use another --workdir"
            ) from None
        _check_same_structure(abstract_state, restored, self.directory / str(step))
        return restored

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def _with_default_sharding(tree: Any) -> Any:
    """ShapeDtypeStructs (or arrays) with their sharding, the default device where none is set:
    orbax then restores each array where it belongs without warning that none was given."""
    default = jax.sharding.SingleDeviceSharding(jax.devices()[0])

    def leaf(a):
        if not hasattr(a, "shape") or not hasattr(a, "dtype"):
            return a
        sharding = getattr(a, "sharding", None)
        return jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding or default)

    return jax.tree_util.tree_map(leaf, tree)


def _check_same_structure(expected: Any, got: Any, where: pathlib.Path) -> None:
    exp_leaves = jax.tree_util.tree_leaves_with_path(expected)
    got_leaves = jax.tree_util.tree_leaves(got)
    if len(exp_leaves) != len(got_leaves):
        raise CheckpointError(
            f"checkpoint {where} has {len(got_leaves)} arrays, this run expects "
            f"{len(exp_leaves)}; delete it or use another --workdir"
        )
    for (path, e), g in zip(exp_leaves, got_leaves):
        if tuple(e.shape) != tuple(g.shape):
            raise CheckpointError(
                f"checkpoint {where}: {jax.tree_util.keystr(path)} has shape {tuple(g.shape)}, "
                f"this run expects {tuple(e.shape)}; delete it or use another --workdir"
            )
