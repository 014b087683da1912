"""Learning-rate schedules as pure functions of the optimizer step (the transformers definitions).

``step`` counts the optimizer updates already made: the first update uses ``learning_rate(0, ...)``,
the last of ``total_steps`` updates ``learning_rate(total_steps - 1, ...)``. These are the values of
transformers' ``get_linear_schedule_with_warmup``, ``get_cosine_schedule_with_warmup`` (half a cycle)
and ``get_constant_schedule_with_warmup`` under ``LambdaLR``:

* warm-up (``step < warmup_steps``): ``base_lr * step / warmup_steps`` (so the first update of a run
  with warm-up has learning rate 0, as in transformers);
* then ``linear``: ``base_lr * (total - step) / (total - warmup)`` (floored at 0);
  ``cosine``: ``base_lr * 0.5 * (1 + cos(pi * (step - warmup) / (total - warmup)))`` (floored at 0);
  ``constant``: ``base_lr``.
"""

from __future__ import annotations

import math

SCHEDULES = ("linear", "cosine", "constant")


def warmup_steps_for(total_steps: int, warmup_steps: int | None = None, warmup_ratio: float | None = None) -> int:
    """Warm-up length: ``warmup_steps`` when given, else ``ceil(warmup_ratio * total_steps)`` (as transformers)."""
    if warmup_steps is not None and warmup_ratio is not None:
        raise ValueError("give warmup_steps or warmup_ratio, not both")
    if warmup_steps is not None:
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        return warmup_steps
    if warmup_ratio is None:
        return 0
    if not 0.0 <= warmup_ratio <= 1.0:
        raise ValueError(f"warmup_ratio must be in [0, 1], got {warmup_ratio!r}")
    return math.ceil(warmup_ratio * total_steps)


def learning_rate(step: int, *, base_lr: float, total_steps: int, warmup_steps: int = 0,
                  schedule: str = "linear") -> float:
    """The learning rate of the update made after ``step`` earlier updates (see the module docstring)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {schedule!r}")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step < warmup_steps:
        return base_lr * step / max(1, warmup_steps)
    if schedule == "constant":
        return base_lr
    if schedule == "linear":
        return base_lr * max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return base_lr * max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


__all__ = ["SCHEDULES", "learning_rate", "warmup_steps_for"]
