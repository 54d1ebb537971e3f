"""Training speed of the flows against PyTorch peers, timed in the same run (calls alternating).

    /tmp/v12/bin/python benchmarks/flows_step.py                      # MAF, RealNVP, FFJORD
    /tmp/v12/bin/python benchmarks/flows_step.py --only cnf --repeats 5

- MAF and RealNVP on the 2-D checkerboard at equal architecture against zuko's `MAF` and
  `RealNVP`: `--layers` transforms, each with a (`--hidden`)-ReLU MLP (a MADE for MAF), orders
  / masks alternating, affine transforms with a soft-bounded log-scale, Adam, batch
  `--batch`, the same pre-drawn batches on both sides. One timed call = `--steps` steps: ours
  as one compiled `lax.scan` (how `generative train` runs them) and as a Python loop of jitted
  single steps (dispatch included, like PyTorch's loop); zuko as its Python loop.
- One FFJORD training step on a fixed checkerboard batch (`--cnf-batch`): ours
  (`generative.flows.cnf_flow`: MLP field of (x, t) 64-64-64 tanh, Hutchinson trace,
  dopri5 at rtol = atol = 1e-5, `diffrax.BacksolveAdjoint`) against the same model written on
  torchdiffeq's `odeint_adjoint` (`benchmarks/torch_flows.py`), both starting every call from
  the same weights (ours copied into torch) so both solve the same ODE; the function
  evaluations of the forward solve and of the adjoint pass are counted on both sides (ours
  with a host callback in a separate, instrumented step).

PyTorch runs at each of `--threads` intra-op thread counts; its fastest is the baseline.
Medians of `--repeats` alternating calls after a warm-up. Writes `--out` (JSON).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from _common import SETTLE_S, alternating, cpu_model  # noqa: E402

from generative import flows  # noqa: E402
from generative.data.toy import checkerboard  # noqa: E402


def _batches(steps: int, batch: int, seed: int = 0) -> np.ndarray:
    key = jax.random.PRNGKey(seed)
    return np.array(checkerboard(key, steps * batch)).reshape(steps, batch, 2)  # writable


def _ours_discrete(kind: str, layers: int, hidden: tuple[int, ...], xs: np.ndarray):
    """(scan call, loop call, parameter count) of our MAF / RealNVP training on xs [K, B, 2]."""
    if kind == "maf":
        module = flows.MAF(2, layers, hidden, "relu", log_scale="softclamp", clamp=3.0)
    else:
        module = flows.CouplingFlow(2, layers, hidden, "relu", log_scale="softclamp", clamp=3.0)
    flow = flows.module_flow(kind, module)
    tx = optax.adam(1e-3)
    params = flow.init(jax.random.PRNGKey(0))["params"]

    def step(state, x):
        params, opt = state
        loss, grads = jax.value_and_grad(lambda p: -flow.log_prob({"params": p}, x).mean())(params)
        updates, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, updates), opt), loss

    state = [(params, tx.init(params))]
    xs_dev = jnp.asarray(xs)
    scan = jax.jit(lambda s, xs: jax.lax.scan(step, s, xs), donate_argnums=0)
    one = jax.jit(step, donate_argnums=0)
    batches = [jnp.asarray(x) for x in xs]

    def scan_call():
        state[0], losses = scan(state[0], xs_dev)
        jax.block_until_ready(losses)

    def loop_call():
        s = state[0]
        for x in batches:
            s, loss = one(s, x)
        state[0] = s
        jax.block_until_ready(loss)

    count = sum(int(np.size(a)) for a in jax.tree.leaves(params))
    return scan_call, loop_call, count


def _torch_discrete(kind: str, layers: int, hidden: tuple[int, ...], xs: np.ndarray):
    import torch
    import torch_flows

    torch.manual_seed(0)
    flow = torch_flows.zuko_flow(kind, layers, hidden)
    step = torch_flows.zuko_step(flow)
    batches = [torch.as_tensor(x) for x in xs]

    def call():
        for x in batches:
            step(x)

    return call, sum(p.numel() for p in flow.parameters())


def _trained_cnf_params(workdir: str):
    """The field parameters of a trained `flow_cnf_*` run (its newest checkpoint)."""
    import ml_collections

    from generative.families import restore_state

    config = ml_collections.ConfigDict(
        json.loads((pathlib.Path(workdir) / "config.json").read_text())
    )
    _, state = restore_state(config, workdir)
    return state.params, [int(h) for h in config.model.hidden]


def _ours_cnf(x: np.ndarray, hidden: tuple[int, ...], tol: float, params=None):
    """(step call, params of the field, (forward, backward) evaluations of one step)."""
    field = flows.VectorField(2, hidden, "tanh")
    settings = dict(trace="hutchinson", solver="dopri5", rtol=tol, atol=tol, adjoint="backsolve")
    flow = flows.cnf_flow(field, **settings)
    tx = optax.adam(1e-3)
    if params is None:
        params = flow.init(jax.random.PRNGKey(0))["params"]
    state = (params, tx.init(params))
    xd = jnp.asarray(x)

    def make_step(flow):
        def step(state, key):
            params, opt = state
            loss, grads = jax.value_and_grad(
                lambda p: -flow.log_prob({"params": p}, xd, key).mean()
            )(params)
            updates, opt = tx.update(grads, opt, params)
            return (optax.apply_updates(params, updates), opt), loss

        return jax.jit(step)

    step = make_step(flow)
    counter = [0]

    class Counting:  # the field, counting its evaluations on the host
        dim = field.dim

        def init(self, *a):
            return field.init(*a)

        def apply(self, variables, t, z):
            jax.debug.callback(lambda: counter.__setitem__(0, counter[0] + 1))
            return field.apply(variables, t, z)

    counted = flows.cnf_flow(Counting(), **settings)
    key = jax.random.PRNGKey(1)
    fwd = jax.jit(lambda p: counted.log_prob({"params": p}, xd, key))
    jax.block_until_ready(fwd(params))
    counter[0] = 0
    jax.block_until_ready(fwd(params))
    forward_nfe = counter[0]
    counted_step = make_step(counted)
    jax.block_until_ready(counted_step(state, key))
    counter[0] = 0
    jax.block_until_ready(counted_step(state, key))
    backward_nfe = counter[0] - forward_nfe
    calls = [0]

    def call():
        calls[0] += 1
        _, loss = step(state, jax.random.fold_in(key, calls[0]))
        jax.block_until_ready(loss)

    return call, params, (forward_nfe, backward_nfe)


def _torch_cnf(x: np.ndarray, hidden: tuple[int, ...], tol: float, params):
    import torch
    import torch_flows

    torch.manual_seed(0)
    field = torch_flows.Field(hidden)
    torch_flows.load_flax_mlp(field, jax.tree.map(np.asarray, params["MLP_0"]))
    initial = {k: v.clone() for k, v in field.state_dict().items()}
    step = torch_flows.ffjord_step(field, tol, tol)
    xt = torch.as_tensor(x)
    nfe = []

    def call():
        field.load_state_dict(initial)  # every call from the same weights
        _, f, b = step(xt)
        nfe.append((f, b))

    return call, nfe


def _median(ts):
    return statistics.median(ts)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="maf,realnvp,cnf")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", default="64,64")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--cnf-batch", type=int, default=256)
    ap.add_argument("--cnf-hidden", default="64,64,64")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument(
        "--cnf-workdir",
        default="",
        help="a trained flow_cnf_* run: time the step at its weights (default: initial weights)",
    )
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--out", default=str(pathlib.Path(__file__).parent / "results/flows.json"))
    args = ap.parse_args(argv)
    only = args.only.split(",")
    hidden = tuple(int(h) for h in args.hidden.split(","))
    threads = [int(t) for t in args.threads.split(",")]
    try:
        import torch
    except ImportError:
        torch = None
        print("torch is not installed: our figures only")

    results: dict = {
        "cpu": cpu_model(),
        "jax": jax.__version__,
        "torch": getattr(torch, "__version__", None),
        "repeats": args.repeats,
        "threads": threads,
    }
    for kind in [k for k in ("maf", "realnvp") if k in only]:
        xs = _batches(args.steps, args.batch)
        scan_call, loop_call, n_ours = _ours_discrete(kind, args.layers, hidden, xs)
        fns, names = [scan_call, loop_call], ["ours_scan", "ours_loop"]
        n_torch = None
        if torch is not None:
            for t in threads:
                torch.set_num_threads(t)
                call, n_torch = _torch_discrete(kind, args.layers, hidden, xs)

                def with_threads(call=call, t=t):
                    torch.set_num_threads(t)
                    call()

                fns.append(with_threads)
                names.append(f"zuko_{t}threads")
        times = alternating(fns, args.repeats, settle=SETTLE_S)
        sps = {n: args.steps / _median(ts) for n, ts in zip(names, times)}
        row = {
            "layers": args.layers,
            "hidden": list(hidden),
            "batch": args.batch,
            "steps_per_call": args.steps,
            "params_ours": n_ours,
            "params_zuko": n_torch,
            "steps_per_sec": sps,
        }
        if torch is not None:
            best = max(v for k, v in sps.items() if k.startswith("zuko"))
            row["zuko_best_steps_per_sec"] = best
            row["ratio_scan_vs_zuko"] = sps["ours_scan"] / best
            row["ratio_loop_vs_zuko"] = sps["ours_loop"] / best
        results[kind] = row
        print(f"{kind}: " + ", ".join(f"{k} {v:.1f} steps/s" for k, v in sps.items()))
        if torch is not None:
            print(f"  ours/zuko: scan {row['ratio_scan_vs_zuko']:.2f}x, "
                  f"loop {row['ratio_loop_vs_zuko']:.2f}x (params {n_ours} vs {n_torch})")  # fmt: skip

    if "cnf" in only:
        cnf_hidden = tuple(int(h) for h in args.cnf_hidden.split(","))
        trained = None
        if args.cnf_workdir:
            trained, widths = _trained_cnf_params(args.cnf_workdir)
            cnf_hidden = tuple(widths)
        x = _batches(1, args.cnf_batch, seed=3)[0]
        ours, params, (fwd, bwd) = _ours_cnf(x, cnf_hidden, args.tol, trained)
        fns, names = [ours], ["ours"]
        nfe_torch = {}
        if torch is not None:
            for t in threads:
                torch.set_num_threads(t)
                call, nfe = _torch_cnf(x, cnf_hidden, args.tol, params)

                def with_threads(call=call, t=t):
                    torch.set_num_threads(t)
                    call()

                fns.append(with_threads)
                names.append(f"torchdiffeq_{t}threads")
                nfe_torch[f"torchdiffeq_{t}threads"] = nfe
        times = alternating(fns, args.repeats, settle=SETTLE_S)
        sec = {n: _median(ts) for n, ts in zip(names, times)}
        row = {
            "batch": args.cnf_batch,
            "hidden": list(cnf_hidden),
            "rtol": args.tol,
            "atol": args.tol,
            "solver": "dopri5",
            "trace": "hutchinson",
            "adjoint": "diffrax.BacksolveAdjoint vs torchdiffeq.odeint_adjoint",
            "weights": f"trained ({args.cnf_workdir})" if trained is not None else "initial",
            "seconds_per_step": sec,
            "nfe_ours": {"forward": fwd, "backward": bwd},
        }
        line = f"cnf: ours {sec['ours']:.3f} s/step (nfe forward {fwd}, backward {bwd})"
        if torch is not None:
            best_name = min((k for k in sec if k != "ours"), key=sec.get)
            f_t, b_t = nfe_torch[best_name][-1]
            row["nfe_torch"] = {"forward": f_t, "backward": b_t}
            row["torch_best_seconds_per_step"] = sec[best_name]
            row["ratio_steps_per_sec_ours_vs_torch"] = sec[best_name] / sec["ours"]
            row["seconds_per_evaluation"] = {
                "ours": sec["ours"] / (fwd + bwd),
                "torch": sec[best_name] / (f_t + b_t),
            }
            line += (
                f"; torchdiffeq {sec[best_name]:.3f} s/step (nfe forward {f_t}, backward {b_t});"
                f" ours/torch {row['ratio_steps_per_sec_ours_vs_torch']:.2f}x steps/s"
            )
        results["cnf"] = row
        print(line)

    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
