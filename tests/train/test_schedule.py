"""The learning-rate schedule: hand-computed values of the transformers definitions."""

import math

import pytest

from deberta_core.train import learning_rate, warmup_steps_for


def lr(step, schedule, total=10, warmup=2, base=1.0):
    return learning_rate(step, base_lr=base, total_steps=total, warmup_steps=warmup, schedule=schedule)


def test_linear_warmup_then_linear_decay():
    # warm-up: 0/2, 1/2; decay: (10 - s) / 8 from s = 2
    expected = [0.0, 0.5, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0]
    assert [lr(s, "linear") for s in range(11)] == pytest.approx(expected, abs=1e-12)


def test_cosine_half_cycle():
    # after warm-up: 0.5 * (1 + cos(pi * (s - 2) / 8)); s = 6 is the middle (0.5), s = 10 the end (0)
    assert lr(0, "cosine") == 0.0
    assert lr(1, "cosine") == pytest.approx(0.5)
    assert lr(2, "cosine") == pytest.approx(1.0)
    assert lr(4, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))  # 0.853553...
    assert lr(4, "cosine") == pytest.approx(0.8535533905932737)
    assert lr(6, "cosine") == pytest.approx(0.5)
    assert lr(8, "cosine") == pytest.approx(0.1464466094067262)
    assert lr(10, "cosine") == pytest.approx(0.0, abs=1e-15)


def test_constant_with_and_without_warmup():
    assert [lr(s, "constant", warmup=4, base=3e-4) for s in range(6)] == pytest.approx(
        [0.0, 7.5e-5, 1.5e-4, 2.25e-4, 3e-4, 3e-4])
    assert lr(0, "constant", warmup=0, base=2e-5) == 2e-5


def test_no_warmup_first_step_uses_the_peak():
    assert lr(0, "linear", total=4, warmup=0, base=1e-3) == pytest.approx(1e-3)
    assert lr(3, "linear", total=4, warmup=0, base=1e-3) == pytest.approx(2.5e-4)


def test_warmup_from_ratio_rounds_up():
    assert warmup_steps_for(100, warmup_ratio=0.06) == 6
    assert warmup_steps_for(10, warmup_ratio=0.06) == 1  # ceil(0.6)
    assert warmup_steps_for(10, warmup_steps=3) == 3
    assert warmup_steps_for(10) == 0


def test_schedule_errors():
    with pytest.raises(ValueError, match="schedule must be one of"):
        lr(0, "step")
    with pytest.raises(ValueError, match="total_steps must be >= 1"):
        learning_rate(0, base_lr=1.0, total_steps=0)
    with pytest.raises(ValueError, match="warmup_ratio must be in"):
        warmup_steps_for(10, warmup_ratio=1.5)
    with pytest.raises(ValueError, match="not both"):
        warmup_steps_for(10, warmup_steps=1, warmup_ratio=0.1)
