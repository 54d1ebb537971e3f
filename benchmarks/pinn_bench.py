"""PINN benchmark (Burgers, Raissi et al. 2019 sizes): our Adam step against DeepXDE's on the same
problem in the same run, and forward-mode against Taylor-mode derivatives.

    DDE_BACKEND=pytorch python benchmarks/pinn_bench.py                  # defaults below
    python benchmarks/pinn_bench.py --train-steps 400 --chunk 20 --threads 1
    python benchmarks/pinn_bench.py --no-deepxde                         # ours only

Parts:
1. derivatives: ``physics.pinn.derivatives_forward`` (nested ``jax.jvp``) and
   ``derivatives_taylor`` (``jax.experimental.jet``) on the 10 100 residual points, and the whole
   Adam step (loss, gradient, update) with each, jitted, timed alternately (one call of each in
   turn, `_common.alternating`), median and min over ``--repeats``.
2. Adam against DeepXDE (``dde.data.TimePDE`` with our 10 000 Latin-hypercube points and our
   100 initial/boundary points as anchors, ``dde.nn.FNN([2] + [20] * 8 + [1], "tanh",
   "Glorot normal")``, Adam lr 1e-3, PyTorch backend): both train ``--train-steps`` full-batch
   Adam steps, in alternating chunks of ``--chunk`` steps (the first chunk of each, a warm-up,
   trains but is not timed); the time per step is chunk time / chunk size (median over chunks),
   and both models' relative L2 errors on the 256 × 100 Cole–Hopf grid are reported after the
   same number of steps. DeepXDE's loss is the sum of three means (residual, boundary, initial)
   where ours has two (residual, initial and boundary together); its inputs are not rescaled.
   DeepXDE computes the test loss once per chunk (its ``display_every``), about 1/chunk of a
   step's forward work.

Threads: ``--threads N`` sets PyTorch's thread count and XLA's CPU intra-op threads (through
``XLA_FLAGS``, before JAX starts) to N (default 1: on a shared host, PyTorch's spinning OpenMP
threads slow it down 15-fold when the cores are busy). Writes ``--out`` (default
benchmarks/results/pinn.json).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time


def _args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--train-steps", type=int, default=400)
    p.add_argument("--chunk", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-deepxde", action="store_true")
    here = pathlib.Path(__file__).resolve().parent
    p.add_argument("--out", default=str(here / "results" / "pinn.json"))
    return p.parse_args()


ARGS = _args()
if ARGS.threads > 0:
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + f" --xla_cpu_multi_thread_eigen={'true' if ARGS.threads > 1 else 'false'}"
        + f" intra_op_parallelism_threads={ARGS.threads}"
    ).strip()
os.environ.setdefault("DDE_BACKEND", "pytorch")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from _common import SETTLE_S, alternating, configure_host, cpu_model  # noqa: E402

from physics import pinn  # noqa: E402


def _stats(times):
    return {"median_s": statistics.median(times), "min_s": min(times), "n": len(times)}


def _our_step(problem, mode, lr=1e-3):
    model = pinn.make_net()
    tx = optax.adam(lr)

    def loss(params):
        return pinn.pinn_loss(pinn.network_fn(model, params, problem.t_max), problem, mode)[0]

    @jax.jit
    def step(params, opt_state):
        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    params = pinn.init_params(model, jax.random.PRNGKey(ARGS.seed), jnp.float32)
    return model, step, params, tx.init(params)


def bench_derivatives(problem) -> dict:
    model = pinn.make_net()
    params = pinn.init_params(model, jax.random.PRNGKey(ARGS.seed), jnp.float32)
    fns, names = [], []
    for mode in pinn.DERIVATIVES:
        d = jax.jit(
            lambda p, mode=mode: pinn.derivatives(
                pinn.network_fn(model, p, problem.t_max), problem.t_f, problem.x_f, mode
            )
        )
        _, step, p0, o0 = _our_step(problem, mode)
        fns += [
            lambda d=d: jax.block_until_ready(d(params)),
            lambda s=step, p=p0, o=o0: jax.block_until_ready(s(p, o)),
        ]
        names += [f"{mode}_derivatives", f"{mode}_adam_step"]
    times = alternating(fns, ARGS.repeats, warmup=1)
    out = {n: _stats(t) for n, t in zip(names, times)}
    for what in ("derivatives", "adam_step"):
        f, t = out[f"forward_{what}"]["median_s"], out[f"taylor_{what}"]["median_s"]
        print(
            f"{what:12s} forward {f * 1e3:7.2f} ms   taylor {t * 1e3:7.2f} ms   "
            f"taylor/forward {t / f:.2f}"
        )
    return out


def _deepxde_model(problem):
    import deepxde as dde
    import torch

    torch.set_num_threads(max(ARGS.threads, 1))
    torch.manual_seed(ARGS.seed)
    nu = problem.nu
    geom = dde.geometry.GeometryXTime(
        dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, problem.t_max)
    )

    def pde(x, y):
        dy_x = dde.grad.jacobian(y, x, i=0, j=0)
        dy_t = dde.grad.jacobian(y, x, i=0, j=1)
        dy_xx = dde.grad.hessian(y, x, i=0, j=0)
        return dy_t + y * dy_x - nu * dy_xx

    bc = dde.icbc.DirichletBC(geom, lambda x: 0, lambda _, on_boundary: on_boundary)
    ic = dde.icbc.IC(geom, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on_initial: on_initial)
    # the same points as ours: (x, t) columns
    n_b = problem.t_b.shape[0]
    anchors = np.stack([np.asarray(problem.x_f), np.asarray(problem.t_f)], axis=1)[:-n_b]
    anchors = np.concatenate(
        [anchors, np.stack([np.asarray(problem.x_b), np.asarray(problem.t_b)], 1)]
    ).astype(np.float32)
    data = dde.data.TimePDE(
        geom, pde, [bc, ic], num_domain=0, num_boundary=0, num_initial=0, anchors=anchors
    )
    net = dde.nn.FNN([2] + [20] * 8 + [1], "tanh", "Glorot normal")
    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3)
    return model, dde.__version__, torch.__version__


def bench_vs_deepxde(problem) -> dict:
    model, step, params, opt_state = _our_step(problem, "forward")
    state = {"p": params, "o": opt_state}

    def ours(n):
        p, o = state["p"], state["o"]
        for _ in range(n):
            p, o, _ = step(p, o)
        jax.block_until_ready(p)
        state["p"], state["o"] = p, o

    have_dde = not ARGS.no_deepxde
    if have_dde:
        try:
            dmodel, dde_version, torch_version = _deepxde_model(problem)
        except ImportError as e:
            print(f"DeepXDE not available ({e}); ours only")
            have_dde = False

    def theirs(n):
        dmodel.train(iterations=n, display_every=n, verbose=0)

    k = ARGS.chunk
    fns = [lambda: ours(k)] + ([lambda: theirs(k)] if have_dde else [])
    # one warm-up chunk each (compilation, first allocations), trained but not timed
    n_chunks = max(1, ARGS.train_steps // k - 1)
    times = alternating(fns, n_chunks, warmup=1, settle=SETTLE_S)
    per_step = [[t / k for t in ts] for ts in times]

    grid_t, grid_x = np.meshgrid(problem.grid_t, problem.grid_x, indexing="ij")
    u_ours = pinn.predict_grid(pinn.network_fn(model, state["p"], problem.t_max), problem)
    out = {
        "steps": (n_chunks + 1) * k,
        "chunk": k,
        "ours_step": _stats(per_step[0]),
        "ours_rel_l2": pinn.relative_l2(u_ours, problem.grid_u),
    }
    line = (
        f"Adam step   ours {out['ours_step']['median_s'] * 1e3:7.2f} ms"
        f"  (rel. L2 {out['ours_rel_l2']:.3e} after {out['steps']} steps)"
    )
    if have_dde:
        xt = np.stack([grid_x.ravel(), grid_t.ravel()], 1).astype(np.float32)
        u_dde = dmodel.predict(xt).reshape(grid_t.shape)
        out.update(
            deepxde_step=_stats(per_step[1]),
            deepxde_rel_l2=pinn.relative_l2(u_dde, problem.grid_u),
            deepxde_version=dde_version,
            torch_version=torch_version,
        )
        out["speedup"] = out["deepxde_step"]["median_s"] / out["ours_step"]["median_s"]
        line += (
            f"   DeepXDE {out['deepxde_step']['median_s'] * 1e3:7.2f} ms"
            f"  (rel. L2 {out['deepxde_rel_l2']:.3e})   DeepXDE/ours {out['speedup']:.2f}"
        )
    print(line)
    return out


def main():
    configure_host()
    t0 = time.perf_counter()
    problem = pinn.make_problem(jax.random.PRNGKey(ARGS.seed))
    result = {
        "cpu": cpu_model(),
        "threads": ARGS.threads,
        "load_average_start": os.getloadavg(),
        "jax": jax.__version__,
        "points": {"collocation": int(problem.t_f.shape[0]), "boundary": 100},
        "derivatives": bench_derivatives(problem),
        "adam_vs_deepxde": bench_vs_deepxde(problem),
        "load_average_end": os.getloadavg(),
        "wall_s": time.perf_counter() - t0,
    }
    out = pathlib.Path(ARGS.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
