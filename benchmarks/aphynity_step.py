"""APHYNITY training step with the convolutional augmentation in each CPU form of
`generative.layers.Conv`, timed in the same run.

    .venv/bin/python benchmarks/aphynity_step.py                     # fhn and wave
    .venv/bin/python benchmarks/aphynity_step.py --datasets fhn --repeats 20

For each data set with a field state (FitzHugh–Nagumo 32×32, the damped wave 16×16): the
`physics aphynity` step of `--method` (its defaults: every training trajectory, whole
windows, RK4 through the hybrid field) compiled twice, with `ConvAugmentation(im2col=True)`
(the default: one product on the patches) and `im2col=False` (the module's general CPU form);
`--repeats` calls of each in turn after a warm-up (`_common.alternating`), medians and ratio.
Both compute the same function (`tests/core/test_layers.py`). Writes
``benchmarks/results/aphynity_step.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import jax  # noqa: E402
from _common import alternating, cpu_model  # noqa: E402

from physics import aphynity as A  # noqa: E402

FIELD_DATASETS = ("fhn", "wave")


def _step(problem, config, im2col: bool):
    """A call running one compiled training step (state carried between calls)."""
    problem = dataclasses.replace(problem, augmentation=problem.augmentation.clone(im2col=im2col))
    exp, _ = A.make_experiment(problem, config)
    state = [jax.jit(exp.init)(jax.random.PRNGKey(0))]
    key = jax.random.PRNGKey(1)
    compiled = exp.step.lower(state[0], None, key).compile()

    def call():
        state[0], metrics = compiled(state[0], None, key)
        jax.block_until_ready(metrics)

    return call


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(FIELD_DATASETS))
    p.add_argument("--method", default="aphynity", choices=["aphynity", "data", "physics"])
    p.add_argument("--num-train", type=int, default=16)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument(
        "--out", default=str(pathlib.Path(__file__).parent / "results" / "aphynity_step.json")
    )
    args = p.parse_args(argv)
    names = args.datasets.split(",")
    if bad := [n for n in names if n not in FIELD_DATASETS]:
        p.error(f"unknown data set(s) {bad}; valid choices: {', '.join(FIELD_DATASETS)}")
    out = {"cpu": cpu_model(), "jax": jax.__version__, "method": args.method, "rows": []}
    print(f"{out['cpu']}, jax {out['jax']}, median of {args.repeats}")
    print("| data set | im2col (ms) | general form (ms) | ratio |\n| --- | --- | --- | --- |")
    for name in names:
        problem = A.make_problem(name, num_train=args.num_train, num_test=2)
        config = A.fit_config()
        config.aphynity.update(dict(method=args.method, dataset=name))
        fns = [_step(problem, config, True), _step(problem, config, False)]
        t_im2col, t_general = (statistics.median(t) for t in alternating(fns, args.repeats))
        row = {
            "dataset": name,
            "state": list(problem.train.shape[2:]),
            "im2col_s": t_im2col,
            "general_s": t_general,
            "ratio": t_general / t_im2col,
        }
        out["rows"].append(row)
        print(
            f"| {name} {tuple(row['state'])} | {1e3 * t_im2col:.1f} | {1e3 * t_general:.1f} | "
            f"{row['ratio']:.2f}× |",
            flush=True,
        )
    pathlib.Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
