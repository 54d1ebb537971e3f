"""Scalar metrics to `metrics.csv` and TensorBoard event files, resume-aware."""

from __future__ import annotations

import csv
import math
import pathlib
from collections.abc import Mapping

__all__ = ["MetricWriter"]


class MetricWriter:
    """Appends one CSV row (and TensorBoard scalars) per logging step.

    On resume from step `start_step`, rows written after that step by the interrupted run are
    dropped (CSV rewritten, TensorBoard events purged), so the files match an uninterrupted run.
    """

    def __init__(self, workdir: pathlib.Path, start_step: int = 0, tensorboard: bool = True):
        self.path = pathlib.Path(workdir) / "metrics.csv"
        self.fields: list[str] | None = None
        rows: list[dict] = []
        if self.path.exists():
            with self.path.open(newline="") as f:
                reader = csv.DictReader(f)
                self.fields = reader.fieldnames
                rows = [r for r in reader if r.get("step") and int(float(r["step"])) <= start_step]
            with self.path.open("w", newline="") as f:
                if self.fields:
                    w = csv.DictWriter(f, fieldnames=self.fields)
                    w.writeheader()
                    w.writerows(rows)
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(
                str(pathlib.Path(workdir) / "tb"), purge_step=start_step + 1 if start_step else None
            )

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        row = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        if self.fields is None:
            self.fields = list(row)
            with self.path.open("w", newline="") as f:
                csv.DictWriter(f, fieldnames=self.fields).writeheader()
        for k in row:
            if k not in self.fields:
                self._add_field(k)
        with self.path.open("a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields, restval="").writerow(row)
        if self._tb is not None:
            for k, v in row.items():
                if k != "step" and math.isfinite(v):
                    self._tb.add_scalar(k, v, global_step=int(step))
            self._tb.flush()

    def _add_field(self, key: str) -> None:
        with self.path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        self.fields.append(key)
        with self.path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, restval="")
            w.writeheader()
            w.writerows(rows)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
