"""Per-generator-step cost of the infinite-width particle flow, against the reference algorithm.

Reference setting: 8 Gaussians, n = N + M = 1000, 3-layer ReLU NTK, LSGAN ∞, T = 1.
The reference toolkit rebuilds K and eigendecomposes it at every generator step (O(n³));
ours (`ParticleFlow.step`) evaluates the closed-form ReLU kernel k(x, X) once with its VJP,
reuses the cached k(y, y), and runs a few dozen Lanczos products (O(n²)). Both are implemented here and
timed in the same run (jitted, warmed up, in turn, median of repeats), with the relative agreement of
u(t). Also: IPM and vanilla step times, IPM time and peak memory as n grows (kernel blocks,
one subprocess per size so peak RSS is per size), and optionally a full 50 000-step run.

    python benchmarks/gantk_step.py                 # everything but the full run
    python benchmarks/gantk_step.py --full-run      # + the 50 000-step LSGAN-∞ wall time
    python benchmarks/gantk_step.py --sizes 1000 2000 --repeats 5

Results: a readable table on stdout and JSON in benchmarks/results/gantk_step.json.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from _common import alternating, configure_host  # noqa: E402

RESULTS = pathlib.Path(__file__).parent / "results"


def _flow(loss: str, n: int, extra=()):
    from gantk.flow import make_flow
    from generative.core import config as config_lib

    cfg = config_lib.resolve(
        "gantk.configs",
        "demo",
        [
            "progress=false",
            f"loss.name={loss}",
            f"data.n_particles={n // 2}",
            f"data.n_targets={n - n // 2}",
            *extra,
        ],
    )
    return make_flow(cfg)


def _first_call(fn, *args):
    """(output, seconds) of the first call: compilation included."""
    import jax

    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - t0


def _time(fn, *args, repeats: int):
    import jax

    out, compile_s = _first_call(fn, *args)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return out, compile_s, statistics.median(times), (min(times), max(times))


def reference_vs_ours(n: int, repeats: int) -> dict:
    """LSGAN-∞ generator step: the reference toolkit's algorithm vs ours.

    Reference: neural-tangents' kernel_fn builds K = k(X, X), `eigh` gives u(t), and the
    particle gradient is autodiff of mean c(k(x, X) u) through kernel_fn again.
    Ours: `ParticleFlow.step` as trained — the closed-form ReLU kernel, one k(x, X) pass with
    its VJP, cached k(y, y), u(t) by Lanczos.
    """
    import jax
    import jax.numpy as jnp

    from gantk import dynamics, kernels
    from gantk.flow import FlowState

    flow = _flow("lsgan", n)
    state = flow.init(None)
    N, M, t = flow.n_fake, flow.n_real, flow.t
    kcfg = flow.config.kernel.copy_and_resolve_references()
    kcfg.implementation = "neural_tangents"
    k_nt = kernels.make_kernel(kcfg)

    def reference_step(state):
        x = state.particles
        X = jnp.concatenate([x, flow.targets])
        u = dynamics.lsgan_eigen(k_nt(X, X), N, M, t)

        def loss(z):
            f = k_nt(z, jax.lax.stop_gradient(X)) @ u
            return jnp.mean(jax.vmap(flow.loss.c)(f))

        g = jax.grad(loss)(x)
        return FlowState(state.step + 1, x - flow.eta * g), u

    ref_step, our_train_step = (
        jax.jit(reference_step),
        jax.jit(lambda s: flow.step(s, None, jax.random.PRNGKey(0))),
    )
    # compile both, then time them in turn (ref, ours, ref, ...): a slow phase of the host
    # falls on both sides alike
    (_, u_ref), c_ref = _first_call(ref_step, state)
    _, c_our = _first_call(our_train_step, state)
    ref_times, our_times = alternating(
        [lambda: jax.block_until_ready(ref_step(state)),
         lambda: jax.block_until_ready(our_train_step(state))],
        repeats,
    )  # fmt: skip
    t_ref, s_ref = statistics.median(ref_times), (min(ref_times), max(ref_times))
    t_our, s_our = statistics.median(our_times), (min(our_times), max(our_times))
    u_our = jax.jit(flow.coefficients)(state.particles)
    # accuracy of u(t): against float64 eigendecomposition of neural-tangents' kernel
    with jax.enable_x64(True):
        x64 = jnp.asarray(state.particles, jnp.float64)
        X64 = jnp.concatenate([x64, jnp.asarray(flow.targets, jnp.float64)])
        u_exact = dynamics.lsgan_eigen(k_nt(X64, X64), N, M, t)
        import numpy as np

        u_exact = np.asarray(u_exact)
    import numpy as np

    rel = lambda u: float(np.abs(np.asarray(u) - u_exact).max() / np.abs(u_exact).max())
    return {
        "n": n,
        "reference_s": t_ref,
        "reference_spread": s_ref,
        "reference_compile_s": c_ref,
        "ours_s": t_our,
        "ours_spread": s_our,
        "ours_compile_s": c_our,
        "speedup": t_ref / t_our,
        "u_rel_err_reference_f32": rel(u_ref),
        "u_rel_err_ours_f32": rel(u_our),
        "u_rel_agreement": float(
            np.abs(np.asarray(u_our) - np.asarray(u_ref)).max() / np.abs(np.asarray(u_ref)).max()
        ),
    }


def loss_step_time(loss: str, n: int, repeats: int) -> dict:
    import jax

    flow = _flow(loss, n)
    state = flow.init(None)
    step = jax.jit(lambda s: flow.step(s, None, jax.random.PRNGKey(0)))
    _, compile_s, med, spread = _time(step, state, repeats=repeats)
    return {"loss": loss, "n": n, "step_s": med, "spread": spread, "compile_s": compile_s}


def _scaling_child(n: int, repeats: int, block: int) -> None:
    """One size, in its own process: IPM step time and peak RSS."""
    import jax

    flow = _flow("ipm", n, [f"kernel.block_size={block}"])
    state = flow.init(None)
    step = jax.jit(lambda s: flow.step(s, None, jax.random.PRNGKey(0)))
    _, compile_s, med, spread = _time(step, state, repeats=repeats)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n": n, "block": block, "step_s": med, "compile_s": compile_s,
                      "peak_rss_mib": peak_mib}))  # fmt: skip


def scaling(sizes, repeats: int, block: int) -> list[dict]:
    rows = []
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n), "--repeats", str(repeats),
             "--block", str(block)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  n={n:6d}  IPM step {rows[-1]['step_s'] * 1e3:9.1f} ms   peak RSS "
              f"{rows[-1]['peak_rss_mib']:8.0f} MiB", flush=True)  # fmt: skip
    return rows


def full_run(steps: int) -> dict:
    import tempfile

    from gantk.flow import make_flow
    from generative.core import config as config_lib
    from generative.core.train import run

    cfg = config_lib.resolve(
        "gantk.configs",
        "demo",
        ["progress=false", "loss.name=lsgan", f"num_steps={steps}", "log_every=1000",
         "checkpoint_every=10000", "eval.figures=false", "data.n_particles=500",
         "data.n_targets=500"],
    )  # fmt: skip
    flow = make_flow(cfg)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        run(flow.experiment(), cfg, d)
    return {"steps": steps, "wall_s": time.perf_counter() - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--sizes", type=int, nargs="*", default=[1000, 2000, 4000, 8000, 16000])
    p.add_argument("--block", type=int, default=1024)
    p.add_argument("--full-run", action="store_true", help="also time 50 000 LSGAN-∞ steps")
    p.add_argument("--full-steps", type=int, default=50_000)
    p.add_argument("--out", default=str(RESULTS / "gantk_step.json"), help="JSON results file")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    configure_host()  # before the first computation
    if args.child:
        _scaling_child(args.child, args.repeats, args.block)
        return
    import jax

    results = {"device": str(jax.devices()[0]), "n_devices": jax.device_count()}
    print(f"device: {results['device']}")
    r = reference_vs_ours(args.n, args.repeats)
    results["lsgan_reference_vs_ours"] = r
    print(f"\nLSGAN-∞ generator step, n = {args.n} (median of {args.repeats}):")
    print(f"  reference (neural-tangents K + eigh + autodiff): {r['reference_s'] * 1e3:9.1f} ms")
    print(f"  ours (closed-form k(x,X) + VJP, Lanczos)       : {r['ours_s'] * 1e3:9.1f} ms")
    print(f"  speedup: {r['speedup']:.1f}x   u(t) agreement: {r['u_rel_agreement']:.2e} "
          f"(vs float64 exact: ref {r['u_rel_err_reference_f32']:.1e}, ours "
          f"{r['u_rel_err_ours_f32']:.1e})")  # fmt: skip
    results["per_loss"] = [
        loss_step_time(loss, args.n, args.repeats) for loss in ("ipm", "vanilla")
    ]
    for row in results["per_loss"]:
        print(f"  {row['loss']:8s} step: {row['step_s'] * 1e3:9.1f} ms")
    print(f"\nIPM step and peak memory as n grows (block {args.block}):")
    results["scaling"] = scaling(args.sizes, max(3, args.repeats // 3), args.block)
    if args.full_run:
        results["full_run"] = full_run(args.full_steps)
        minutes = results["full_run"]["wall_s"] / 60
        print(f"\nfull {args.full_steps}-step LSGAN-∞ run: {minutes:.1f} min")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
