"""Checks shared by the training tests (importable: `pythonpath` in pyproject.toml)."""

import jax
import numpy as np
import optax
import pytest


def flat(tree) -> np.ndarray:
    """All leaves of a tree, float64, in one vector."""
    return np.concatenate([np.asarray(x, np.float64).ravel() for x in jax.tree.leaves(tree)])


def adam_first_step(state, opt, row) -> None:
    """After one step Adam holds μ = (1 − β1) g and ν = (1 − β2) g², and its update is
    −lr·m̂/(√v̂ + ε) = −lr·g/(|g| + ε) elementwise (m̂ = g, v̂ = g², ε = 1e-8; schedules start
    at lr): the logged gradient and update norms (`row`) recomputed from the checkpointed
    moments of `state`, `opt` the run's optimizer config."""
    is_adam = lambda s: isinstance(s, optax.ScaleByAdamState)
    adam = [s for s in jax.tree.leaves(state.opt_state, is_leaf=is_adam) if is_adam(s)]
    assert len(adam) == 1 and int(adam[0].count) == 1
    g = flat(adam[0].mu) / (1 - opt.b1)
    np.testing.assert_allclose(flat(adam[0].nu), (1 - opt.b2) * g**2, rtol=1e-5, atol=1e-35)
    assert row["grad_norm"] == pytest.approx(np.sqrt((g**2).sum()), rel=1e-5)
    update = opt.lr * g / (np.abs(g) + 1e-8)
    assert row["update_norm"] == pytest.approx(np.sqrt((update**2).sum()), rel=1e-5)
    assert row["param_norm"] == pytest.approx(np.sqrt((flat(state.params) ** 2).sum()), rel=1e-6)
