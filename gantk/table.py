"""`gantk table`: run the paper's grid of flows and tabulate the final Sinkhorn divergence.

Each (cell, seed) is one `gantk flow --config paper:CELL` run in its own process and work
dir (`WORKDIR/runs/CELL/seedS`), `workers` at a time; runs already finished are reused, so an
interrupted table resumes. Results: `WORKDIR/table.csv` (one row per run) and
`WORKDIR/table.md` (mean ± std over seeds, the paper's layout).
"""

from __future__ import annotations

import concurrent.futures
import csv
import itertools
import logging
import math
import os
import pathlib
import subprocess
import sys

import ml_collections

from gantk.configs import paper

logger = logging.getLogger(__name__)

__all__ = ["run_table", "cells"]


def cells(config: ml_collections.ConfigDict) -> list[str]:
    for name, what, valid in (
        ("datasets", "dataset", paper.DATASETS),
        ("losses", "loss", paper.LOSSES),
        ("kernels", "kernel", paper.KERNELS),
    ):
        for v in config[name]:
            if v not in valid:
                raise ValueError(f"unknown table {what} '{v}'; valid: {', '.join(valid)}")
    out = []
    for d, l, k in itertools.product(config.datasets, config.losses, config.kernels):
        cell = f"{d}-{l}-{k}"
        if cell in paper.VARIANTS:
            out.append(cell)
    return out


def _final_sinkhorn(workdir: pathlib.Path, steps: int) -> float | None:
    path = workdir / "metrics.csv"
    if not path.exists():
        return None
    rows = list(csv.DictReader(path.open()))
    if not rows or int(rows[-1]["step"]) != steps:
        return None
    return float(rows[-1]["sinkhorn"])


def _run_one(cell: str, seed: int, workdir: pathlib.Path, config) -> tuple[str, int, float, str]:
    done = _final_sinkhorn(workdir, config.steps)
    if done is not None:
        return cell, seed, done, ""
    log_every = min(int(config.log_every), int(config.steps))
    args = [
        sys.executable, "-c", "from gantk.main import main; raise SystemExit(main())",
        "flow", "--config", f"paper:{cell}", "--seed", str(seed), "--workdir", str(workdir),
        f"num_steps={config.steps}", f"log_every={log_every}", f"checkpoint_every={log_every}",
        "progress=false", "eval.figures=false",
    ]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        err = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return cell, seed, math.nan, err
    return cell, seed, _final_sinkhorn(workdir, config.steps) or math.nan, ""


def _mean_std(values: list[float]) -> str:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return "failed"
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return f"{mean:.2e} ± {std:.1e}"


def run_table(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> dict:
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    grid = cells(config)
    seeds = [int(config.seed) + i for i in range(int(config.seeds))]
    jobs = [(c, s) for c in grid for s in seeds]
    logger.info(
        "%d runs (%d cells x %d seeds), %d at a time",
        len(jobs),
        len(grid),
        len(seeds),
        config.workers,
    )
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=int(config.workers)) as pool:
        futures = [
            pool.submit(_run_one, c, s, workdir / "runs" / c / f"seed{s}", config) for c, s in jobs
        ]
        for i, fut in enumerate(concurrent.futures.as_completed(futures), 1):
            cell, seed, value, err = fut.result()
            results.append((cell, seed, value, err))
            note = f"  ERROR: {err}" if err else ""
            logger.info(
                "[%d/%d] %s seed %d: sinkhorn %.3e%s", i, len(jobs), cell, seed, value, note
            )
    results.sort()
    with (workdir / "table.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["cell", "dataset", "loss", "kernel", "seed", "steps", "final_sinkhorn", "error"]
        )
        for cell, seed, value, err in results:
            w.writerow([cell, *cell.split("-"), seed, config.steps, value, err])
    by_cell: dict[str, list[float]] = {}
    for cell, _, value, _ in results:
        by_cell.setdefault(cell, []).append(value)
    cols = [(l, k) for l in config.losses for k in config.kernels]
    cols = [(l, k) for l, k in cols if any(f"{d}-{l}-{k}" in by_cell for d in config.datasets)]
    lines = [
        f"Final Sinkhorn divergence after {config.steps} generator steps "
        f"(mean ± std over {len(seeds)} seeds)",
        "",
        "| dataset | " + " | ".join(f"{l} {k}" for l, k in cols) + " |",
        "| --- |" + " --- |" * len(cols),
    ]
    for d in config.datasets:
        row = [
            _mean_std(by_cell[f"{d}-{l}-{k}"]) if f"{d}-{l}-{k}" in by_cell else "—"
            for l, k in cols
        ]
        lines.append(f"| {d} | " + " | ".join(row) + " |")
    (workdir / "table.md").write_text("\n".join(lines) + "\n")
    for line in lines:
        logger.info("%s", line)
    logger.info("wrote %s and %s", workdir / "table.csv", workdir / "table.md")
    return {"cells": len(grid), "runs": len(jobs)}
