"""The mode-coverage study of GANs and ALI on the 2-D grid and ring (`generative table`).

Two protocols, each run for every model and data set, all seeds of one cell trained together
in one compiled program (`jax.vmap` over seeds inside `lax.scan` over steps):

  ali_paper: the MSc thesis / ALI paper's grid experiment: each seed draws its Adam learning
             rate log-uniformly in [lr_low, lr_high] and its β₁ uniformly in [b1_low,
             b1_high]; 10 000 samples per run; a mode counts if it is the most responsible
             component of at least one sample.
  pacgan:    PacGAN's fixed protocol: Adam 1e-4, β₁ 0.8, batch 100; 2 500 samples per run; a
             sample is of high quality within 3σ of its nearest mode, and a mode counts if it
             is the nearest mode of at least one high-quality sample; reverse KL between the
             histogram of high-quality samples over the modes and the uniform histogram.

Both use PacGAN's networks (generator 4×400 ReLU + BatchNorm with a 2-D latent; maxout
discriminator) and, as the papers, a fixed training set of 100 000 points (the presets'
`data.train_size`), from which every step draws its batch inside the compiled program. Both counts, the high-quality fraction and the reverse KL are written for
every run. The number of steps is a setting (`table.steps`): the papers trained far longer
(PacGAN: 400 epochs of 1 000 batches), so compare models within this table, not with the
published numbers, which the markdown table shows beside ours.

Each finished cell is stored in `cells.jsonl`; a rerun with the same settings skips it, so an
interrupted study resumes cell by cell.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from generative.core.cpu_codegen import products_only_options

__all__ = [
    "MODELS",
    "DATASETS",
    "PROTOCOLS",
    "PUBLISHED",
    "protocol_hyperparameters",
    "run_cell",
    "summarize",
    "run_table",
]

logger = logging.getLogger(__name__)

MODELS = ("gan", "ali", "wgan_gp", "lsgan", "hinge")
DATASETS = ("grid", "ring")
PROTOCOLS = ("ali_paper", "pacgan")

# Published numbers, (modes mean, modes std, high-quality %, reverse KL); None: not reported.
PUBLISHED = {
    ("ali_paper", "grid", "gan"): "10.4 ± 9.2 (min 1, max 22)",
    ("ali_paper", "grid", "ali"): "13.4 ± 5.8 (min 8, max 25)",
    ("pacgan", "grid", "gan"): "17.3 ± 0.8, 94.8 %, KL 0.70",
    ("pacgan", "grid", "ali"): "24.1 ± 0.4, 95.7 %, KL 0.14",
    ("pacgan", "ring", "gan"): "6.3 ± 0.5, 98.2 %, KL 0.45",
    ("pacgan", "ring", "ali"): "6.6 ± 0.3, 97.6 %, KL 0.36",
}

# The preset that defines each model's networks and loss settings (n_critic, λ, labels, β₂).
_PRESETS = {
    "gan": "gan_grid",
    "ali": "ali_grid",
    "wgan_gp": "gan_grid_wgangp",
    "lsgan": "gan_grid_lsgan",
    "hinge": "gan_grid_hinge",
}
_LABELS = {
    "gan": "GAN",
    "ali": "ALI",
    "wgan_gp": "WGAN-GP",
    "lsgan": "LSGAN",
    "hinge": "hinge GAN",
}


def _check(what: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} '{value}'; valid: {', '.join(choices)}")


def cell_config(model: str, dataset: str, batch_size: int) -> ml_collections.ConfigDict:
    """The preset of `model` on `dataset`, at the table's batch size."""
    from generative.core.config import load_preset

    _check("model", model, MODELS)
    _check("data set", dataset, DATASETS)
    config = load_preset("generative.configs", _PRESETS[model])
    with config.unlocked():
        config.data.name = dataset
        config.batch_size = int(batch_size)
    return config


def protocol_hyperparameters(protocol: str, key: jax.Array, seeds: int, table) -> tuple:
    """(learning rates [seeds], Adam β₁ [seeds]) of a protocol's runs.

    ali_paper: lr log-uniform in table.lr_range, β₁ uniform in table.b1_range, per seed;
    pacgan: table.pacgan_lr and table.pacgan_b1 for every seed."""
    _check("protocol", protocol, PROTOCOLS)
    if protocol == "pacgan":
        return (
            jnp.full((seeds,), float(table.pacgan_lr)),
            jnp.full((seeds,), float(table.pacgan_b1)),
        )
    (lo, hi), (b_lo, b_hi) = table.lr_range, table.b1_range
    k1, k2 = jax.random.split(key)
    lr = jnp.exp(jax.random.uniform(k1, (seeds,), minval=math.log(lo), maxval=math.log(hi)))
    b1 = jax.random.uniform(k2, (seeds,), minval=b_lo, maxval=b_hi)
    return lr, b1


def run_cell(
    model: str,
    dataset: str,
    protocols: tuple[str, ...] | list[str],
    table: ml_collections.ConfigDict,
    *,
    seed: int = 0,
) -> dict[str, dict]:
    """Train the `table.seeds` runs of every protocol for one (model, data set) together, in
    one compiled program (the protocols differ only in their per-run learning rate and β₁),
    and score them. -> {protocol: {"lr", "b1", "modes", "modes_high_quality",
    "high_quality", "reverse_kl", "finite": lists over runs, "seconds": the cell's wall time
    (compilation included)}}."""
    from generative.data.toy import mixture
    from generative.families import family_module
    from generative.metrics import mode_coverage

    t0 = time.perf_counter()
    protocols = tuple(protocols)
    config = cell_config(model, dataset, table.batch_size)
    module = family_module(config.family)
    net = module.build_model(config)
    seeds, steps = int(table.seeds), int(table.steps)
    root = jax.random.PRNGKey(seed)
    hps = [
        protocol_hyperparameters(p, jax.random.fold_in(root, PROTOCOLS.index(p)), seeds, table)
        for p in protocols
    ]
    lr = jnp.concatenate([h[0] for h in hps])
    b1 = jnp.concatenate([h[1] for h in hps])
    runs = lr.shape[0]
    k_init, k_train, k_eval = jax.random.split(jax.random.fold_in(root, 100), 3)

    init = jax.vmap(lambda k, a, b: module.init_state(net, k, a, b))
    states = jax.jit(init)(jax.random.split(k_init, runs), lr, b1)
    step = jax.vmap(module.train_step(net))
    run_ids = jnp.arange(runs)

    def body(states, i):
        keys = jax.vmap(lambda r: jax.random.fold_in(jax.random.fold_in(k_train, r), i))(run_ids)
        states, _ = step(states, keys)
        return states, None

    # chunks of up to 1000 steps: at most two programs (full chunks and the remainder)
    # PacGAN's MLPs: on CPU, YNNPACK takes the products only where that was measured faster
    options = products_only_options()
    run_chunk = jax.jit(
        lambda states, start, n: jax.lax.scan(body, states, start + jnp.arange(n))[0],
        static_argnums=2,
        donate_argnums=0,
        compiler_options=options,
    )
    for start in range(0, steps, 1000):
        states = run_chunk(states, jnp.asarray(start), min(1000, steps - start))

    centers, std = mixture(dataset)
    counts = [int(table.samples[p]) for p in protocols]

    @functools.partial(jax.jit, compiler_options=options)
    def score(states):
        def one(state, k):
            x = module.sample(net, state, k, max(counts))
            return {
                n: {**mode_coverage(x[:n], centers, std), "finite": jnp.all(jnp.isfinite(x[:n]))}
                for n in sorted(set(counts))
            }

        return jax.vmap(one)(states, jax.random.split(k_eval, runs))

    scores = jax.device_get(score(states))
    seconds = time.perf_counter() - t0
    out = {}
    for i, (p, n) in enumerate(zip(protocols, counts)):
        rows = slice(i * seeds, (i + 1) * seeds)
        result = {k: np.asarray(v)[rows].tolist() for k, v in scores[n].items()}
        result.update(lr=np.asarray(lr)[rows].tolist(), b1=np.asarray(b1)[rows].tolist())
        result["seconds"] = seconds
        out[p] = result
    return out


def summarize(result: dict) -> dict:
    """Statistics over the seeds of one cell: modes (both counts) mean, std (ddof 1), min,
    max; high-quality fraction mean; reverse KL mean and std over the runs where it is defined
    (some high-quality sample); the number of runs whose samples were all finite."""

    def stats(values):
        v = np.asarray(values, np.float64)
        return {
            "mean": float(v.mean()),
            "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()),
            "max": float(v.max()),
        }

    kl = np.asarray(result["reverse_kl"], np.float64)
    kl = kl[np.isfinite(kl)]
    return {
        "modes": stats(result["modes"]),
        "modes_high_quality": stats(result["modes_high_quality"]),
        "high_quality": float(np.mean(result["high_quality"])),
        "reverse_kl": float(kl.mean()) if kl.size else float("nan"),
        "reverse_kl_std": float(kl.std(ddof=1)) if kl.size > 1 else 0.0,
        "reverse_kl_runs": int(kl.size),
        "finite_runs": int(np.sum(result["finite"])),
        "runs": len(result["modes"]),
    }


def _cell_key(protocols, dataset, model, table) -> str:
    """What a stored cell was computed with (a rerun with other settings computes it anew)."""
    settings = {k: table[k] for k in ("seeds", "steps", "batch_size")}
    settings.update(samples={p: table.samples[p] for p in protocols}, seed=int(table.seed))
    if "ali_paper" in protocols:
        settings.update(lr_range=list(table.lr_range), b1_range=list(table.b1_range))
    if "pacgan" in protocols:
        settings.update(lr=table.pacgan_lr, b1=table.pacgan_b1)
    return json.dumps([list(protocols), dataset, model, settings], sort_keys=True)


def _names(value: str) -> list[str]:
    return [v.strip() for v in str(value).split(",") if v.strip()]


def _fmt(s: dict) -> str:
    return f"{s['mean']:.1f} ± {s['std']:.1f} ({s['min']:.0f}–{s['max']:.0f})"


def run_table(config: ml_collections.ConfigDict, workdir) -> list[dict]:
    """Run every (protocol, data set, model) cell of `config.table` and write
    `runs.csv` (one row per run), `table.csv` and `table.md` (one row per cell) in `workdir`."""
    table = config.table
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    cells_path = workdir / "cells.jsonl"
    done = {}
    if cells_path.exists():
        for line in cells_path.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                done[entry["key"]] = entry["result"]
    protocols, datasets, models = (
        _names(table.protocols),
        _names(table.datasets),
        _names(table.models),
    )
    results = {}
    t_start = time.perf_counter()
    for dataset in datasets:
        for model in models:
            key = _cell_key(protocols, dataset, model, table)
            if key in done:
                logger.info("%s / %s: stored in %s", dataset, model, cells_path)
                cell = done[key]
            else:
                cell = run_cell(model, dataset, protocols, table, seed=int(table.seed))
                with cells_path.open("a") as f:
                    f.write(json.dumps({"key": key, "result": cell}) + "\n")
            for protocol in protocols:
                results[protocol, dataset, model] = cell[protocol]
    rows, run_rows = [], []
    for protocol in protocols:
        for dataset in datasets:
            for model in models:
                result = results[protocol, dataset, model]
                s = summarize(result)
                logger.info(
                    "%s / %s / %s: modes %s, high-quality modes %s, %.1f %% high quality, "
                    "reverse KL %.3f",
                    protocol, dataset, model, _fmt(s["modes"]), _fmt(s["modes_high_quality"]),
                    100 * s["high_quality"], s["reverse_kl"],
                )  # fmt: skip
                rows.append({"protocol": protocol, "dataset": dataset, "model": model, **s,
                             "seconds": result["seconds"]})  # fmt: skip
                for i in range(len(result["modes"])):
                    run_rows.append(
                        {"protocol": protocol, "dataset": dataset, "model": model, "run": i,
                         **{k: result[k][i] for k in ("lr", "b1", "modes", "modes_high_quality",
                                                      "high_quality", "reverse_kl", "finite")}}
                    )  # fmt: skip
    _write_csv(workdir / "runs.csv", run_rows)
    _write_csv(workdir / "table.csv", [_flat(r) for r in rows])
    (workdir / "table.md").write_text(markdown_table(rows, table))
    logger.info(
        "mode-coverage table in %s (%.0f s)", workdir / "table.md", time.perf_counter() - t_start
    )
    return rows


def _flat(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out.update({f"{k}_{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def _write_csv(path: pathlib.Path, rows: list[dict]) -> None:
    if not rows:
        return
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _total_seconds(rows: list[dict]) -> float:
    cells = {(r["dataset"], r["model"]): r["seconds"] for r in rows}
    return float(sum(cells.values()))


def markdown_table(rows: list[dict], table) -> str:
    """The table in markdown, with the published numbers of the same protocol beside ours."""
    lines = [
        f"Mode coverage: {table.seeds} runs per cell, {table.steps} steps at batch "
        f"{table.batch_size}; modes as mean ± std (min–max) over the runs.",
        "",
        "| protocol | data | model | modes (any sample) | modes (high-quality samples) "
        "| high quality | reverse KL | published | cell (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        kl = "n/a" if not math.isfinite(r["reverse_kl"]) else f"{r['reverse_kl']:.2f}"
        published = PUBLISHED.get((r["protocol"], r["dataset"], r["model"]), "")
        lines.append(
            f"| {r['protocol']} | {r['dataset']} | {_LABELS[r['model']]} | {_fmt(r['modes'])} "
            f"| {_fmt(r['modes_high_quality'])} | {100 * r['high_quality']:.1f} % | {kl} "
            f"| {published} | {r['seconds']:.0f} |"
        )
    lines += [
        "",
        "ali_paper: random Adam learning rate (log-uniform in "
        f"[{table.lr_range[0]:g}, {table.lr_range[1]:g}]) and β₁ (uniform in "
        f"[{table.b1_range[0]:g}, {table.b1_range[1]:g}]) per run, "
        f"{table.samples['ali_paper']} samples; its published column counts modes with any "
        "sample (mean ± std). pacgan: Adam "
        f"{table.pacgan_lr:g}, β₁ {table.pacgan_b1:g}, {table.samples['pacgan']} samples; its "
        "published column (mean ± standard error over 10 trials) counts modes with a "
        "high-quality sample and was trained for 400 000 steps. cell (s): wall time of the "
        "(data set, model) cell, which trains the runs of both protocols together "
        f"(compilation included); all cells: {_total_seconds(rows):.0f} s.",
    ]
    return "\n".join(lines) + "\n"
