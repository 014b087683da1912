"""Each task trains in each framework from a --config: outputs written, the loss falls on a toy subset,
and OUTPUT/best loads in the other framework with the same logits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.train.conftest import TOKENIZER, losses, metrics, run_main, tiny_config, train_argv

TASKS = ("classification", "ner", "qa")
FRAMEWORKS = ("pt", "tf")
HEADS = {"classification": "ForSequenceClassification", "ner": "ForTokenClassification",
         "qa": "ForQuestionAnswering"}
METRICS = {"classification": {"accuracy", "macro_f1", "loss"}, "ner": {"precision", "recall", "f1", "loss"},
           "qa": {"exact_match", "f1", "loss"}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(task, framework) -> output directory of a 16-step run on 8 examples (evaluated at steps 8 and 16)."""
    root = tmp_path_factory.mktemp("train_tasks")
    config = tiny_config(root)
    out = {}
    for task in TASKS:
        for framework in FRAMEWORKS:
            output = root / f"{task}-{framework}"
            argv = train_argv(task, framework, config, output, max_steps=16, eval_every=8, lr=3e-3,
                              schedule="constant", max_grad_norm=0)
            assert run_main(argv) == 0
            out[task, framework] = output
    return out


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("task", TASKS)
def test_outputs_and_falling_loss(runs, task, framework):
    output = runs[task, framework]
    weights = "model.safetensors" if framework == "pt" else "tf_model.h5"
    for name in ("best", "last"):
        for file in ("config.json", weights, "spm.model", "tokenizer_config.json"):
            assert (output / name / file).is_file(), f"{name}/{file}"
    assert (output / "last" / "trainer_state.json").is_file()
    assert (output / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = metrics(output)
    assert [e["step"] for e in report["evals"]] == [8, 16]
    for entry in report["evals"]:
        assert set(entry) >= {"step", "epoch", "train_loss", "metrics"}
        assert set(entry["metrics"]) == METRICS[task]
    assert report["timing"]["train_seconds"] > 0 and report["model_config"]["hidden_size"] == 32
    assert report["best"]["metric"] == {"classification": "accuracy"}.get(task, "f1")
    assert report["baselines"]
    series = losses(output)
    assert len(series) == 16
    assert np.mean(series[-3:]) < 0.7 * series[0], series
    assert report["evals"][-1]["metrics"]["loss"] < report["evals"][0]["metrics"]["loss"] or task == "ner"
    best = json.loads((output / "best" / "eval_results.json").read_text())
    assert best["step"] == report["best"]["step"]


def _inputs(task):
    from deberta_core.pipelines.loading import load_tokenizer

    tokenizer = load_tokenizer(TOKENIZER)
    if task == "qa":
        encoded = tokenizer(["Who won?", "Where is it?"], ["The Broncos won the game.", "It is in Santa Clara."],
                            padding=True)
    else:
        encoded = tokenizer(["a charming and often affecting journey", "Empire State Building on fire"], padding=True)
    return {k: np.asarray(encoded[k], dtype=np.int64) for k in ("input_ids", "attention_mask")}


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("task", TASKS)
def test_best_loads_in_the_other_framework(runs, task, framework):
    import torch

    import deberta_tf
    import deberta_torch

    best = runs[task, framework] / "best"
    torch_model = getattr(deberta_torch, "DebertaV2" + HEADS[task]).from_pretrained(best, strict=True)
    keras_model = getattr(deberta_tf, "TFDebertaV2" + HEADS[task]).from_pretrained(best, strict=True)
    config = json.loads((best / "config.json").read_text())
    assert torch_model.config.id2label == keras_model.config.id2label == {int(k): v for k, v in
                                                                          config["id2label"].items()}
    inputs = _inputs(task)
    with torch.no_grad():
        expected = torch_model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    got = keras_model(inputs, training=False)
    for name in (("start_logits", "end_logits") if task == "qa" else ("logits",)):
        a, b = expected[name].numpy(), np.asarray(got[name])
        np.testing.assert_allclose(b, a, atol=1e-4, rtol=0)
        assert np.abs(a).max() > 1e-3  # trained, not all-zero


def test_fine_tune_checkpoints_across_frameworks(runs, tmp_path):
    """--model: a Keras checkpoint fine-tuned by PyTorch with a new head (NER tags), and a PyTorch
    checkpoint continued by Keras with its own labels (the head is kept). A learning rate of 1e-9
    leaves the weights where they started, so they must be the checkpoint's."""
    from tests.train.conftest import max_difference, weights

    source = runs["classification", "tf"] / "best"
    argv = train_argv("ner", "pt", None, tmp_path / "ner", model=source, tokenizer=None, lr=1e-9)
    assert run_main(argv) == 0  # the tokenizer comes from the --model directory
    config = json.loads((tmp_path / "ner" / "best" / "config.json").read_text())
    assert config["id2label"]["0"] == "O" and len(config["id2label"]) == 13
    before, after = weights(source), weights(tmp_path / "ner" / "last")
    encoder = {k: v for k, v in before.items() if k.startswith("deberta.")}
    assert max_difference(encoder, {k: after[k] for k in encoder}) < 1e-6
    assert "classifier.weight" in after and after["classifier.weight"].shape == (13, 32)

    source = runs["classification", "pt"] / "best"
    argv = train_argv("classification", "tf", None, tmp_path / "cls", model=source, tokenizer=None, lr=1e-9,
                      max_steps=2)
    assert run_main(argv) == 0
    assert max_difference(weights(source), weights(tmp_path / "cls" / "last")) < 1e-6
