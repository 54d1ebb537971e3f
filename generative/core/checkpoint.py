"""Orbax `CheckpointManager` with keep-N, resume from the newest checkpoint that restores,
and one-line errors."""

from __future__ import annotations

import logging
import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

__all__ = ["CheckpointError", "Checkpointer", "UNRESTORABLE_PREFIX"]

logger = logging.getLogger(__name__)

# A checkpoint that cannot be restored is moved to `<directory>/unrestorable-<step>` (kept,
# outside orbax's step numbering) when a run resumes from an older one.
UNRESTORABLE_PREFIX = "unrestorable-"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be restored into this run (corrupt or incompatible); the
    message is one line."""


def _one_line(e: BaseException, limit: int = 200) -> str:
    lines = str(e).strip().splitlines()
    text = lines[0] if lines else ""
    text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Checkpointer:
    """Saves the whole train-state pytree at given steps; restores the newest that restores.

    Saves are asynchronous (orbax writes to a temporary folder, then renames it), so a
    process killed mid-save leaves the previous checkpoints intact and the partial one is
    ignored on restart. The directory is created by the first save, not before.
    """

    def __init__(self, directory: pathlib.Path, keep: int = 3):
        self.directory = pathlib.Path(directory).absolute()
        self.keep = max(1, int(keep))
        self.manager = self._open()

    def _open(self) -> ocp.CheckpointManager:
        options = ocp.CheckpointManagerOptions(max_to_keep=self.keep, create=False)
        return ocp.CheckpointManager(
            self.directory, item_handlers=ocp.StandardCheckpointHandler(), options=options
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state: Any) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.manager.save(int(step), args=ocp.args.StandardSave(state))

    def restore(
        self, abstract_state: Any, step: int | None = None, *, set_aside: bool = False
    ) -> Any:
        """Restore into the structure, shapes, dtypes and shardings of `abstract_state`
        (leaves without a sharding, e.g. from `jax.eval_shape`, go to the default device).

        `step` given: that checkpoint, or CheckpointError. `step=None`: the newest checkpoint
        that restores; each newer one that does not (corrupt files) is reported by a one-line
        warning, and with `set_aside=True` moved to `<directory>/unrestorable-<step>` (kept,
        never deleted), so that the run can save that step again. CheckpointError when none
        restores, and at once for a checkpoint of other arrays or shapes than
        `abstract_state` (an older one of the same run would not fit either).
        """
        steps = [int(step)] if step is not None else sorted(self.all_steps(), reverse=True)
        if not steps:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        abstract_state = _with_default_sharding(abstract_state)
        failed: list[tuple[int, str]] = []
        for s in steps:
            try:
                restored = self.manager.restore(s, args=ocp.args.StandardRestore(abstract_state))
            except Exception as e:  # orbax and TensorStore raise many types
                reason = _one_line(e)
                mismatch = self._mismatch(abstract_state, s)
                if mismatch:
                    raise CheckpointError(
                        f"checkpoint {self.directory / str(s)} does not fit this run: "
                        f"{mismatch}; use another --workdir, or the settings it was saved with"
                    ) from None
                if step is not None:
                    raise CheckpointError(
                        f"checkpoint {self.directory / str(s)} cannot be restored ({reason})"
                    ) from None
                failed.append((s, reason))
                continue
            _check_same_structure(abstract_state, restored, self.directory / str(s))
            break
        else:
            raise CheckpointError(
                f"none of the {len(steps)} checkpoints in {self.directory} can be restored "
                f"(newest, step {steps[0]}: {failed[0][1]}); they are left as they are"
            )
        for bad, reason in failed:
            moved = f", moved to {self._set_aside(bad)}" if set_aside else ""
            logger.warning(
                "checkpoint %s cannot be restored (%s)%s; restored step %d instead",
                self.directory / str(bad),
                reason,
                moved,
                s,
            )
        return restored

    def _mismatch(self, abstract_state: Any, step: int) -> str | None:
        """What differs between the arrays saved at `step` and `abstract_state` (None if
        nothing does or the saved metadata cannot be read)."""
        try:
            meta = self.manager.item_metadata(step)
        except Exception:  # unreadable metadata: a corrupt checkpoint, not an incompatible one
            return None
        tree = getattr(meta, "tree", meta)
        if tree is None:
            return None
        saved = {
            _dotted(p): tuple(m.shape)
            for p, m in jax.tree_util.tree_leaves_with_path(tree)
            if hasattr(m, "shape")
        }
        expected = {
            _dotted(p): tuple(a.shape)
            for p, a in jax.tree_util.tree_leaves_with_path(abstract_state)
            if hasattr(a, "shape")
        }
        if not saved:
            return None
        for name, shape in expected.items():
            if name not in saved:
                return f"it has no array '{name}' (shape {shape})"
            if saved[name] != shape:
                return f"'{name}' has shape {saved[name]}, this run expects {shape}"
        extra = sorted(set(saved) - set(expected))
        if extra:
            return f"it has {len(extra)} arrays this run lacks, e.g. '{extra[0]}'"
        return None

    def _set_aside(self, step: int) -> pathlib.Path:
        """Move the checkpoint of `step` out of orbax's step numbering (kept on disk)."""
        src = self.directory / str(step)
        dest = self.directory / f"{UNRESTORABLE_PREFIX}{step}"
        n = 1
        while dest.exists():
            dest = self.directory / f"{UNRESTORABLE_PREFIX}{step}.{n}"
            n += 1
        self.manager.wait_until_finished()
        self.manager.close()
        src.rename(dest)
        self.manager = self._open()
        return dest

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def _dotted(path: tuple) -> str:
    """The name orbax gives the array at a pytree path ("opt_state.1.0.mu.w")."""
    parts = []
    for k in path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return ".".join(parts)


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
            f"{len(exp_leaves)}; use another --workdir, or the settings it was saved with"
        )
    for (path, e), g in zip(exp_leaves, got_leaves):
        if tuple(e.shape) != tuple(g.shape):
            raise CheckpointError(
                f"checkpoint {where}: {jax.tree_util.keystr(path)} has shape {tuple(g.shape)}, "
                f"this run expects {tuple(e.shape)}; use another --workdir, or the settings "
                "it was saved with"
            )
