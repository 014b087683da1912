"""What deberta-train writes besides the checkpoints: OUTPUT/metrics.json and OUTPUT/curves.png."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from ..io import atomic_path, atomic_write_text

logger = logging.getLogger("deberta_core.train")

METRIC_LABELS = {"accuracy": "accuracy", "macro_f1": "macro F1", "f1": "F1", "precision": "precision",
                 "recall": "recall", "exact_match": "exact match"}


def _clean(value):
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(_clean(data), indent=2) + "\n")


def _moving_mean(values: np.ndarray, window: int) -> np.ndarray:
    return np.convolve(values, np.ones(window) / window, mode="valid")


def plot_curves(path: Path, train_log: list[dict], evals: list[dict], *, task: str, primary: str,
                baselines: dict | None = None, title: str = "", percent: bool = True,
                panel: list[str] | None = None) -> None:
    """Two panels against the optimizer step: the training loss (per step and a moving mean, plus the
    eval loss at each evaluation), and the eval metrics with the trivial baseline(s) dashed.

    percent: the metrics are fractions, shown x100. panel: the metrics of the right panel (default:
    the primary metric and the task's usual companions)."""
    try:
        import matplotlib
    except ImportError:
        logger.warning("matplotlib is not installed: %s not written", path)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if train_log:
        steps = np.array([r["step"] for r in train_log])
        losses = np.array([r["loss"] for r in train_log], dtype=np.float64)
        left.plot(steps, losses, color="#bbbbbb", lw=0.8, label="train loss per step")
        window = max(1, min(50, len(losses) // 10))
        if window > 1:
            left.plot(steps[window - 1:], _moving_mean(losses, window), color="#1f5fa8", lw=2,
                      label=f"train loss, {window}-step mean")
    eval_steps = [e["step"] for e in evals]
    if evals and all(e["metrics"].get("loss") is not None for e in evals):
        left.plot(eval_steps, [e["metrics"]["loss"] for e in evals], "o-", color="#d62728", label="eval loss")
    left.set_xlabel("optimizer step")
    left.set_ylabel("loss")
    left.set_title("loss")
    left.legend(fontsize=8)
    names = panel if panel is not None else [primary] + {"classification": ["macro_f1"], "ner": ["precision", "recall"],
                                                         "qa": ["exact_match"]}.get(task, [])
    colors = ["#2ca02c", "#9467bd", "#8c564b"]
    scale = 100.0 if percent else 1.0
    for name, color in zip(names, colors):
        values = [e["metrics"].get(name) for e in evals]
        if evals and all(v is not None for v in values):
            right.plot(eval_steps, [scale * v for v in values], "o-", color=color,
                       lw=2 if name == primary else 1, label=f"eval {METRIC_LABELS.get(name, name)}")
    lines = 0
    for baseline, values in (baselines or {}).items():
        for name in [primary] if panel is None else panel:
            if values.get(name) is not None:
                right.axhline(scale * values[name], color="#777777", ls=["--", ":"][lines % 2], lw=1,
                              label=f"{baseline}: {METRIC_LABELS.get(name, name)} {scale * values[name]:.1f}")
                lines += 1
    right.set_xlabel("optimizer step")
    right.set_ylabel("%" if percent else "")
    right.set_title("eval metrics")
    if train_log:
        right.set_xlim(left.get_xlim())
    right.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


__all__ = ["plot_curves", "write_json"]
