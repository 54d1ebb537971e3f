"""`generative likelihood`: test negative log-likelihoods of trained runs, as a markdown table.

Any model family whose module (see `generative.families`) defines the hook

    log_likelihood(config, state, x, key) -> [n] log-likelihood in nats

can be compared: x are held-out examples (2-D toy points [n, 2], or images [n, H, W, C] in
[0, 1]); for images the value is the log-density of the dequantised 8-bit levels
v = k + u on [0, 256)^D (uniform dequantisation, u drawn from `key`), so that
−log p / (D ln 2) is in bits per dimension. A module may also define
`test_data(config, n) -> np.ndarray`, the n held-out examples it scores; otherwise the
examples come from `config.data`: `toy` -> `sample_toy(data.toy, fold_in(PRNGKey(seed),
2^31 − 1), n)` (the held-out set of the toy runs), `digits` -> the first n test digits.

Runs are named by folder (`likelihood.runs`) or by preset (`likelihood.presets`, whose folder
is `runs/generative-train-PRESET`, where `generative train --config PRESET` writes); each
folder's saved `config.json` and newest checkpoint are used. The table goes to
`likelihood.md` (and `likelihood.json`) in the command's workdir.
"""

from __future__ import annotations

import json
import logging
import math
import pathlib
import time

import jax
import ml_collections
import numpy as np

__all__ = ["run_table", "likelihood_of_run", "held_out"]

logger = logging.getLogger(__name__)


def _names(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def held_out(module, config: ml_collections.ConfigDict, n: int) -> np.ndarray:
    """The n held-out examples a family's likelihood is measured on (module docstring)."""
    if hasattr(module, "test_data"):
        return np.asarray(module.test_data(config, n))
    d = config.data
    if d.get("name", "toy") == "toy":
        from generative.data.toy import sample_toy

        key = jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), 2**31 - 1)
        return np.asarray(sample_toy(d.toy, key, n), np.float32)
    if d.get("name") == "digits":
        from generative.data.digits import load_digits

        n_font = int(d.get("num_font_digits", 0)) or None
        te = load_digits("test", d.source, d.get("data_dir", "") or None, n_font)
        return te.images[:n, ..., None]
    raise ValueError(f"no held-out data for data.name={d.name!r}; valid choices: toy, digits")


def likelihood_of_run(folder, n: int, seed: int = 0) -> dict:
    """NLL (nats, and bits/dim) of the newest checkpoint in run folder `folder` on n held-out
    examples."""
    from generative.families import FAMILIES, family_module, restore_state

    folder = pathlib.Path(folder)
    path = folder / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{folder} holds no config.json (not a run folder)")
    config = ml_collections.ConfigDict(json.loads(path.read_text()))
    module = family_module(config.family)
    if not hasattr(module, "log_likelihood"):
        with_hook = [f for f in FAMILIES if hasattr(family_module(f), "log_likelihood")]
        raise ValueError(
            f"family {config.family!r} ({folder}) defines no log_likelihood; families with "
            f"one: {', '.join(with_hook)}"
        )
    _, state = restore_state(config, folder)
    x = held_out(module, config, n)
    t0 = time.perf_counter()
    logp = np.asarray(module.log_likelihood(config, state, x, jax.random.PRNGKey(seed)))
    seconds = time.perf_counter() - t0
    nll = -logp.astype(np.float64)
    dims = int(np.prod(x.shape[1:]))
    model = config.get("model", {})
    kind = model.get("kind", "") if hasattr(model, "get") else ""
    return {
        "run": str(folder),
        "family": config.family,
        "model": kind or config.family,
        "data": config.data.toy if config.data.get("name", "toy") == "toy" else config.data.name,
        "step": int(jax.device_get(state.step)),
        "num": int(len(nll)),
        "nll_nats": float(nll.mean()),
        "nll_stderr": float(nll.std(ddof=1) / math.sqrt(len(nll))) if len(nll) > 1 else 0.0,
        "bits_per_dim": float(nll.mean() / (dims * math.log(2))),
        "seconds": seconds,
    }


def run_table(config: ml_collections.ConfigDict, workdir) -> list[dict]:
    """The likelihood table of the runs of `config.likelihood` (module docstring)."""
    c = config.likelihood
    folders = _names(c.runs) + [f"runs/generative-train-{p}" for p in _names(c.presets)]
    if not folders:
        raise ValueError(
            "name runs to compare: likelihood.runs=DIR,... or likelihood.presets=P,..."
        )
    rows = [likelihood_of_run(f, int(c.num), int(config.seed)) for f in folders]
    lines = [
        "| run | family | model | data | step | examples | NLL (nats) | ± s.e. | bits/dim "
        "| seconds |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['family']} | {r['model']} | {r['data']} | {r['step']} | "
            f"{r['num']} | {r['nll_nats']:.3f} | {r['nll_stderr']:.3f} | "
            f"{r['bits_per_dim']:.4f} | {r['seconds']:.1f} |"
        )
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "likelihood.md").write_text("\n".join(lines) + "\n")
    (workdir / "likelihood.json").write_text(json.dumps(rows, indent=2) + "\n")
    for line in lines:
        logger.info("%s", line)
    return rows
