"""PDE-FIND on noisy data with its derivative windows and ε₀ selected without the true
equation (physics.discovery.select_pde), over several noise draws.

    .venv/bin/python benchmarks/discovery_select.py                       # KdV and Burgers, 5 seeds
    .venv/bin/python benchmarks/discovery_select.py --equations kdv --seeds 0,1 --width-x 10,14,18
    .venv/bin/python benchmarks/discovery_select.py --fixed                # the preset's fixed windows

For each equation and noise seed: the data of the ``discover`` preset (spectral solver, float64)
plus 1 % noise (``--noise``), then exactly what ``physics discover`` does for a noisy row
(``discover_equation``): the selection over the preset's grid (``--width-x`` etc. replace one
axis of it), or with ``--fixed`` the preset's fixed windows. Per seed: the terms found, the
coefficient error (mean ± std over the true terms, a missing term counts 100 %) and the selected
settings; then the mean ± std over seeds of the per-seed mean errors and the wall time per
selection. Writes benchmarks/results/discovery_select.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from _common import cpu_model  # noqa: E402

from physics import discovery as D  # noqa: E402
from physics.configs import discover as preset  # noqa: E402

AXES = ("deg_x", "width_x", "deg_t", "width_t", "l0_penalty")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--equations", default="kdv,burgers")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--fixed", action="store_true", help="the preset's fixed windows instead")
    for axis in AXES:
        p.add_argument(f"--{axis.replace('_', '-')}", default=None, help=f"grid of {axis}")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    cfg = preset.get_config().discover
    grid = {}
    for axis in AXES:
        value = getattr(args, axis)
        if value is not None:
            kind = float if axis == "l0_penalty" else int
            grid[axis] = tuple(kind(v) for v in value.split(",") if v.strip())
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    results = {
        "cpu": cpu_model(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "noise": args.noise,
        "fixed": args.fixed,
        "grid_overrides": {k: list(v) for k, v in grid.items()},
        "equations": {},
    }
    for eq in [e.strip() for e in args.equations.split(",") if e.strip()]:
        c = cfg[eq]
        c.select = not args.fixed
        for axis, value in grid.items():
            c[f"select_{axis}"] = value
        clean = D.pde_dataset(eq, n=c.n, nt=c.nt)
        rows = []
        for seed in seeds:
            data = {**clean, "u": D.add_noise(clean["u"], args.noise, seed=seed)}
            t = time.perf_counter()
            fit = D.discover_equation(eq, data, True, cfg)
            seconds = time.perf_counter() - t
            mean, std, exact, term_errs = D.coefficient_errors(
                fit.equations(), D.TRUE_COEFFICIENTS[eq]
            )
            row = {
                "seed": seed,
                "terms": sorted(fit.equations()["u_t"]),
                "exact_terms": exact,
                "error_mean_pct": mean,
                "error_std_pct": std,
                "term_errors_pct": [float(e) for e in term_errs],
                "model": str(fit),
                "settings": D._settings_text(eq, True, "ours", fit, cfg),
                "seconds": seconds,
            }
            rows.append(row)
            print(
                f"{eq:8s} seed {seed}: {row['model']:40s} error {mean:6.2f} ± {std:5.2f} % "
                f"{seconds:6.1f} s | {row['settings']}",
                flush=True,
            )
        errs = [r["error_mean_pct"] for r in rows]
        pooled = [e for r in rows for e in r["term_errors_pct"]]
        summary = {
            "pooled_error_mean_pct": statistics.mean(pooled),
            "pooled_error_std_pct": statistics.pstdev(pooled),
            "exact_terms": sum(r["exact_terms"] for r in rows),
            "seeds": len(rows),
            "error_mean_pct": statistics.mean(errs),
            "error_std_pct": statistics.pstdev(errs),
            "seconds_median": statistics.median(r["seconds"] for r in rows),
        }
        print(
            f"{eq:8s} exact terms on {summary['exact_terms']}/{summary['seeds']} seeds, error "
            f"{summary['error_mean_pct']:.2f} ± {summary['error_std_pct']:.2f} % over seeds "
            f"({summary['pooled_error_mean_pct']:.2f} ± {summary['pooled_error_std_pct']:.2f} % "
            "over seeds and terms), "
            f"median {summary['seconds_median']:.1f} s per fit",
            flush=True,
        )
        results["equations"][eq] = {"rows": rows, "summary": summary}
    out = args.out or str(pathlib.Path(__file__).parent / "results/discovery_select.json")
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out} ({results['cpu']}, load average {results['load_average'][0]:.1f})")


if __name__ == "__main__":
    main()
