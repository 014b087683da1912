"""--resume continues exactly: an interrupted run resumed to the end has the weights and the loss
curve of an uninterrupted one (dropout on, so the dropout randomness must continue too)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.train.conftest import losses, max_difference, metrics, run_main, tiny_config, train_argv, weights


def check_same(whole, pieces, tolerance):
    assert len(losses(pieces)) == len(losses(whole))
    np.testing.assert_allclose(losses(pieces), losses(whole), atol=tolerance, rtol=0)
    assert max_difference(weights(pieces / "last"), weights(whole / "last")) <= tolerance
    assert metrics(pieces)["evals"][-1]["metrics"] == pytest.approx(metrics(whole)["evals"][-1]["metrics"],
                                                                    abs=1e-5)


@pytest.fixture(scope="module")
def torch_whole(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume_pt")
    config = tiny_config(root, dropout=0.1)
    options = dict(max_steps=8, max_train_examples=16, eval_every=4, warmup_steps=2, weight_decay=0.01)
    assert run_main(train_argv("classification", "pt", config, root / "whole", **options)) == 0
    return root, config, options


def test_torch_stop_after_then_resume(torch_whole):
    root, config, options = torch_whole
    argv = train_argv("classification", "pt", config, root / "pieces", **options)
    assert run_main(argv + ["--stop-after", "3"]) == 0
    assert metrics(root / "pieces")["stop_reason"] == "stop_after"
    assert metrics(root / "pieces")["steps_done"] == 3
    assert run_main(argv + ["--resume"]) == 0
    check_same(root / "whole", root / "pieces", 1e-6)
    report = metrics(root / "pieces")
    assert [e["step"] for e in report["evals"]] == [3, 4, 8]
    assert report["timing"]["invocations"] == 2


def test_torch_time_budget_then_resume(torch_whole):
    root, config, options = torch_whole
    argv = train_argv("classification", "pt", config, root / "budget", **options)
    assert run_main(argv + ["--time-budget", "0.00001"]) == 0  # stops cleanly after the first step
    assert metrics(root / "budget")["stop_reason"] == "time_budget"
    assert metrics(root / "budget")["steps_done"] == 1
    assert run_main(argv + ["--resume"]) == 0
    check_same(root / "whole", root / "budget", 1e-6)


def test_resume_refuses_changed_arguments(torch_whole, capsys):
    root, config, options = torch_whole
    argv = train_argv("classification", "pt", config, root / "whole", **{**options, "lr": 1e-2})
    assert run_main(argv + ["--resume", "--max-steps", "9"]) == 2
    assert "--lr: 0.001 then, 0.01 now" in capsys.readouterr().err


def test_keras_max_steps_4_then_resume_to_8(tmp_path):
    # the literal "--max-steps 4, then --resume --max-steps 8": a constant schedule does not depend on the
    # run's length, so the pieces must equal the whole
    config = tiny_config(tmp_path, dropout=0.1)
    options = dict(max_train_examples=16, eval_every=4, schedule="constant", warmup_steps=2, weight_decay=0.01)
    assert run_main(train_argv("classification", "tf", config, tmp_path / "whole", max_steps=8, **options)) == 0
    assert run_main(train_argv("classification", "tf", config, tmp_path / "pieces", max_steps=4, **options)) == 0
    assert run_main(train_argv("classification", "tf", config, tmp_path / "pieces", max_steps=8, resume=True,
                               **options)) == 0
    check_same(tmp_path / "whole", tmp_path / "pieces", 1e-6)
