"""PDE-FIND speed and accuracy: ours (physics.discovery, numpy) against PySINDy on the same data.

    .venv/bin/python benchmarks/discovery_bench.py                 # Burgers and KdV, clean and 1 %
    .venv/bin/python benchmarks/discovery_bench.py --repeats 3 --equations burgers

For each (equation, noise level): the data come from the spectral solver of physics.pde
(float64), the noise is 1 % of std(u) (seed 0). Each fit is the whole pipeline on the data in
memory: derivatives, library, sparse regression. Ours: the settings of the ``discover`` preset
(Rudy et al.'s TrainSTRidge; finite differences on clean data, local polynomials at the fixed
windows on noisy data: one fit, not the selection among a grid of them, which
benchmarks/discovery_select.py measures). PySINDy: ``PDELibrary`` with the same (P+1)(D+1)
terms, ``STLSQ`` with normalised columns (finite differences on clean data, Savitzky–Golay
smoothing before them on noisy data, same windows as ours). Both are timed alternately (``_common.alternating``: one call of each in
turn after a warm-up), median and spread over ``--repeats``; the ratio is PySINDy / ours.
Writes benchmarks/results/discovery.json (``--out``). Without pysindy the PySINDy columns are
empty ("pysindy not installed").
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import platform
import statistics
import sys
import time
import warnings

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from _common import SETTLE_S, alternating, cpu_model  # noqa: E402

from physics import discovery as D  # noqa: E402
from physics.configs import discover as preset  # noqa: E402


def _summary(equation, fit):
    mean, std, exact, _ = D.coefficient_errors(fit.equations(), D.TRUE_COEFFICIENTS[equation])
    return {
        "terms": sorted(fit.equations()["u_t"]),
        "exact_terms": exact,
        "error_mean_pct": mean,
        "error_std_pct": std,
        "model": str(fit),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--equations", default="burgers,kdv")
    p.add_argument("--noise", default="0,0.01")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--out", default=str(pathlib.Path(__file__).parent / "results/discovery.json"))
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")  # PySINDy's deprecation and convergence warnings
    try:
        import pysindy

        pysindy_version = pysindy.__version__
    except ImportError:
        pysindy_version = None
        print("pysindy not installed: ours only")
    cfg = preset.get_config().discover
    for eq in D.PDE_EQUATIONS:  # one fit at the fixed windows (the selection: discovery_select.py)
        cfg[eq].select = False
    results = {
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "numpy": __import__("numpy").__version__,
        "pysindy": pysindy_version,
        "repeats": args.repeats,
        "date": time.strftime("%Y-%m-%d"),
        "rows": [],
    }
    header = (
        f"{'equation':8s} {'noise':>5s} | {'ours (s)':>16s} {'terms':18s} {'error %':>13s} | "
        f"{'PySINDy (s)':>16s} {'terms':18s} {'error %':>13s} | ratio"
    )
    print(header)
    for eq in [e.strip() for e in args.equations.split(",") if e.strip()]:
        c = cfg[eq]
        t = time.perf_counter()
        clean = D.pde_dataset(eq, n=c.n, nt=c.nt)
        gen_seconds = time.perf_counter() - t
        for noise in [float(v) for v in args.noise.split(",")]:
            u = D.add_noise(clean["u"], noise, seed=0)
            data = {**clean, "u": u}
            noisy = noise > 0

            ours = functools.partial(D.discover_equation, eq, data, noisy, cfg)
            theirs = functools.partial(
                D.pysindy_pde_find,
                u,
                clean["x"],
                clean["dt"],
                max_derivative=c.max_derivative,
                max_power=c.max_power,
                optimizer="stlsq",
                threshold=c.pysindy_threshold,
                alpha=c.alpha,
                smooth=(2 * c.width_t + 1, c.deg_t) if noisy else None,
            )
            fns = [ours] + ([theirs] if pysindy_version else [])
            times = alternating(fns, args.repeats, settle=SETTLE_S)
            row = {
                "equation": eq,
                "noise": noise,
                "data_seconds_first_call": gen_seconds,
                "ours": {
                    **_summary(eq, ours()),
                    "median_s": statistics.median(times[0]),
                    "min_s": min(times[0]),
                    "max_s": max(times[0]),
                },
            }
            line = (
                f"{eq:8s} {noise:5.2f} | {row['ours']['median_s']:8.4f} "
                f"[{row['ours']['min_s']:.3f}-{row['ours']['max_s']:.3f}] "
                f"{','.join(row['ours']['terms']):18s} "
                f"{row['ours']['error_mean_pct']:6.3f}±{row['ours']['error_std_pct']:<6.3f} | "
            )
            if pysindy_version:
                row["pysindy_stlsq"] = {
                    **_summary(eq, theirs()),
                    "median_s": statistics.median(times[1]),
                    "min_s": min(times[1]),
                    "max_s": max(times[1]),
                }
                row["ratio"] = row["pysindy_stlsq"]["median_s"] / row["ours"]["median_s"]
                r = row["pysindy_stlsq"]
                line += (
                    f"{r['median_s']:8.4f} [{r['min_s']:.3f}-{r['max_s']:.3f}] "
                    f"{','.join(r['terms'])[:18]:18s} "
                    f"{r['error_mean_pct']:6.3f}±{r['error_std_pct']:<6.3f} | {row['ratio']:.1f}x"
                )
            else:
                line += "pysindy not installed"
            print(line, flush=True)
            results["rows"].append(row)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
