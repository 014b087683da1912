"""Scaling out reaches the weights of one process on the same global batch (dropout off):
torchrun with 2 gloo processes, and MirroredStrategy over 2 logical CPU devices (in a subprocess:
logical devices must be made before TensorFlow initialises)."""

from __future__ import annotations

import json
import sys
import textwrap

from tests.train.conftest import (losses, max_difference, metrics, run_main, run_subprocess, tiny_config,
                                  train_argv, weights)

# NER: the loss is a mean over labelled tokens, whose count differs between shards, so this also checks
# the shards' loss weights. Warm-up + linear decay, clipping on.
OPTIONS = dict(max_steps=4, batch_size=8, max_train_examples=16, eval_every=2, lr=2e-3, warmup_steps=1)


def test_torchrun_two_processes_equal_one(tmp_path):
    config = tiny_config(tmp_path)
    # 2 processes x 2 accumulation steps x 2 rows against 1 process x 8 rows
    argv = train_argv("ner", "pt", config, tmp_path / "ddp", grad_accum=2, **OPTIONS)
    run_subprocess([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    "-m", "deberta_core.train", *argv])
    assert run_main(train_argv("ner", "pt", config, tmp_path / "one", **OPTIONS)) == 0
    report = metrics(tmp_path / "ddp")
    assert report["world_size"] == 2 and "DDP over 2 processes (gloo)" in report["backend"]
    assert [e["step"] for e in report["evals"]] == [2, 4]
    assert max(abs(a - b) for a, b in zip(losses(tmp_path / "ddp"), losses(tmp_path / "one"))) < 1e-5
    assert max_difference(weights(tmp_path / "ddp" / "last"), weights(tmp_path / "one" / "last")) < 1e-5
    first = weights(tmp_path / "one" / "best")
    assert max_difference(first, weights(tmp_path / "one" / "last")) > 1e-4 or report["best"]["step"] == 4


def test_mirrored_strategy_two_devices_equal_one(tmp_path):
    config = tiny_config(tmp_path)
    two = train_argv("ner", "tf", config, tmp_path / "two", devices=2, **OPTIONS)
    one = train_argv("ner", "tf", config, tmp_path / "one", **OPTIONS)
    script = textwrap.dedent(f"""
        from deberta_core.train import main
        assert main({two!r}) == 0  # creates the 2 logical CPU devices first thing
        assert main({one!r}) == 0  # the default strategy, one device
    """)
    run_subprocess([sys.executable, "-c", script])
    report = metrics(tmp_path / "two")
    assert report["world_size"] == 2 and "MirroredStrategy over 2 replicas" in report["backend"]
    assert max(abs(a - b) for a, b in zip(losses(tmp_path / "two"), losses(tmp_path / "one"))) < 1e-5
    assert max_difference(weights(tmp_path / "two" / "last"), weights(tmp_path / "one" / "last")) < 1e-5
    assert json.loads((tmp_path / "two" / "last" / "trainer_state.json").read_text())["step"] == 4


def test_jax_data_parallel_equals_one_device_and_tensorflow(tmp_path):
    """KERAS_BACKEND=jax: DataParallel over 2 host devices equals 1 device, and both equal the
    TensorFlow backend from the same starting checkpoint (a PyTorch run's, so it also crosses over)."""
    config = tiny_config(tmp_path)
    start = tmp_path / "start"
    assert run_main(train_argv("ner", "pt", config, start, **{**OPTIONS, "max_steps": 1, "eval_every": 1})) == 0
    common = {**OPTIONS, "model": str(start / "last")}
    two = train_argv("ner", "tf", None, tmp_path / "two", devices=2, **common)
    one = train_argv("ner", "tf", None, tmp_path / "one", **common)
    script = textwrap.dedent(f"""
        import keras
        assert keras.config.backend() == "jax"
        from deberta_core.train import main
        assert main({two!r}) == 0  # asks JAX for 2 host devices before it starts
        assert main({one!r}) == 0
    """)
    run_subprocess([sys.executable, "-c", script], env={"KERAS_BACKEND": "jax"})
    assert run_main(train_argv("ner", "tf", None, tmp_path / "tf", **common)) == 0
    report = metrics(tmp_path / "two")
    assert report["world_size"] == 2 and "DataParallel over 2 devices" in report["backend"]
    assert "JAX" in metrics(tmp_path / "one")["backend"] and "TensorFlow" in metrics(tmp_path / "tf")["backend"]
    for other in ("one", "tf"):
        assert max(abs(a - b) for a, b in zip(losses(tmp_path / "two"), losses(tmp_path / other))) < 1e-5, other
        assert max_difference(weights(tmp_path / "two" / "last"), weights(tmp_path / other / "last")) < 1e-5, other
    assert max_difference(weights(start / "last"), weights(tmp_path / "two" / "last")) > 1e-3  # it trained

