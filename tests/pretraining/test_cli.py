"""deberta-pretrain end to end on the repository's wikitext-2 text with the real v3 tokenizer: masking
plans checked by hand, falling held-out loss, the exported encoder, PyTorch == Keras for the masked LM,
exact resume, torchrun, and clear errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from deberta_core.losses import IGNORE_INDEX
from deberta_core.pretrain.data import MaskedBlocks, Masker, unigram_loss
from deberta_core.pretraining import MaskingRule
from tests.cases import data_path
from tests.train.conftest import (TOKENIZER, command_line, losses, max_difference, metrics, run_subprocess,
                                  tiny_config, weights)

TEXT = data_path("datasets", "wikitext-2-valid-test", "valid.txt")
HELD_OUT = data_path("datasets", "wikitext-2-valid-test", "test.txt")


def pretrain_argv(objective: str, framework: str, output, config=None, **options) -> list[str]:
    flags = {"objective": objective, "framework": framework, "config": config and str(config),
             "tokenizer": str(TOKENIZER), "train": str(TEXT), "eval": str(HELD_OUT), "block-size": 32,
             "max-train-blocks": 32, "max-eval-blocks": 8, "batch-size": 8, "max-steps": 4, "eval-every": 2,
             "lr": 2e-3, "output": str(output), "threads": 1, "seed": 0}
    return command_line(flags, options)


def run_pretrain(argv) -> int:
    from deberta_core.pretrain import main

    return main(argv)


# ------------------------------------------------------------------------------------ by hand
def test_masked_blocks_split_and_weigh_the_global_batch():
    rng = np.random.default_rng(0)
    blocks = {"input_ids": rng.integers(10, 50, (12, 10)), "attention_mask": np.ones((12, 10), dtype=np.int64)}
    blocks["attention_mask"][:, 7:] = 0
    masker = Masker(MaskingRule(mlm_probability=0.3), mask_token_id=3, vocab_size=50, special_ids=(0, 1, 2, 3))
    one = MaskedBlocks(blocks, masker, batch_size=8, grad_accum=1, world_size=1, seed=5)
    two = MaskedBlocks(blocks, masker, batch_size=8, grad_accum=2, world_size=2, seed=5)
    (whole,), (w1,) = one.step_batches(3)
    parts, w2 = two.step_batches(3)
    # the same global batch and masks however it is split
    assert all(np.array_equal(np.concatenate([p[k] for p in parts]), whole[k]) for k in whole)
    assert (whole["labels"][whole["attention_mask"] == 0] == IGNORE_INDEX).all()
    # each shard weighs its share of the masked tokens: round(0.3 * 7) = 2 per row, 2 rows per shard
    assert (whole["labels"] != IGNORE_INDEX).sum(axis=1).tolist() == [2] * 8
    assert w1 == [1.0] and w2 == [[0.25, 0.25], [0.25, 0.25]]
    again, _ = one.step_batches(3)  # a step's masks are a function of (seed, step): resume redraws them
    assert np.array_equal(again[0]["input_ids"], whole["input_ids"])
    assert not np.array_equal(one.step_batches(4)[0][0]["labels"], whole["labels"])


def test_text_comes_from_lines_or_a_named_column_never_the_labels(tmp_path):
    import bz2

    from deberta_core.pretrain.data import read_lines

    (tmp_path / "a.txt").write_text(" first line \n\n  \nsecond\n", encoding="utf-8")
    (tmp_path / "b.tsv").write_text("sentence\tlabel\na good film\t1\n\t0\ndull\t0\n", encoding="utf-8")
    (tmp_path / "c.jsonl.bz2").write_bytes(bz2.compress(b'{"text": "x y", "label": 3}\n{"text": "z"}\n'))
    files = [tmp_path / n for n in ("a.txt", "b.tsv", "c.jsonl.bz2")]
    assert read_lines(files) == ["first line", "second", "a good film", "dull", "x y", "z"]
    real = read_lines([data_path("datasets", "sst2", "alps_train.tsv")])
    assert len(real) == 60614 and real[0] == "when are bears bears and"  # PROVENANCE: 60,614 rows
    with pytest.raises(ValueError, match="no 'title' column"):
        read_lines(files[1:2], text_column="title")


def test_unigram_baseline_by_hand():
    train = np.array([[5, 5, 5, 6]])  # counts + 1 over a vocabulary of 8: p(5) = 4/12, p(6) = 2/12
    labels = np.array([[5, -100, 6]])
    assert abs(unigram_loss(train, labels, 8) - -(np.log(4 / 12) + np.log(2 / 12)) / 2) < 1e-12


# --------------------------------------------------------------------------------- end to end
def test_rtd_pretraining_learns_and_exports_an_encoder(tmp_path):
    config = tiny_config(tmp_path)
    output = tmp_path / "rtd"
    assert run_pretrain(pretrain_argv("rtd", "pt", output, config, max_steps=6, eval_every=3)) == 0
    report = metrics(output)
    first, last = (e["metrics"] for e in report["evals"])
    assert report["objective"] == "rtd" and last["loss"] < first["loss"]
    assert last["mlm_loss"] < first["mlm_loss"] < np.log(128100) + 0.5
    assert 0.0 <= last["rtd_accuracy"] <= 1.0 and 0.0 < last["replaced_share"] <= 1.0
    assert report["baselines"]["unigram"]["mlm_loss"] < np.log(128001)
    assert json.loads((output / "best" / "rtd_pretraining.json").read_text())["embedding_sharing"] == "gdes"
    generator = json.loads((output / "best" / "generator" / "config.json").read_text())
    assert generator["num_hidden_layers"] == 1 and generator["use_emd"] is True  # half depth, with EMD
    assert report["primary_metric"] == "mlm_loss" and report["best"]["value"] == last["mlm_loss"]
    # OUTPUT/encoder: the last discriminator's encoder, a plain DebertaV2Model both frameworks fine-tune
    encoder, discriminator = weights(output / "encoder"), weights(output / "last" / "discriminator")
    assert set(encoder) == {k.removeprefix("deberta.") for k in discriminator if k.startswith("deberta.")}
    assert all(np.array_equal(encoder[k], discriminator["deberta." + k]) for k in encoder)
    assert (output / "encoder" / "spm.model").is_file()
    import deberta_tf
    import deberta_torch

    pt = deberta_torch.DebertaV2ForSequenceClassification.from_pretrained(output / "encoder", num_labels=2)
    tf = deberta_tf.TFDebertaV2ForSequenceClassification.from_pretrained(output / "encoder", num_labels=2)
    table = encoder["embeddings.word_embeddings.weight"]
    assert np.array_equal(pt.deberta.embeddings.word_embeddings.weight.detach().numpy(), table)
    assert np.array_equal(np.asarray(tf.deberta.embeddings.word_embeddings.weight), table)


def test_masked_lm_pytorch_and_keras_take_the_same_steps(tmp_path):
    config = tiny_config(tmp_path)  # dropout off: the only randomness left is the masking, drawn in numpy
    start = tmp_path / "start"
    assert run_pretrain(pretrain_argv("mlm", "pt", start, config, max_steps=1, eval_every=1)) == 0
    runs = {}
    for fw in ("pt", "tf"):
        runs[fw] = tmp_path / fw
        assert run_pretrain(pretrain_argv("mlm", fw, runs[fw], model=str(start / "last"), warmup_steps=1)) == 0
    assert max(abs(a - b) for a, b in zip(losses(runs["pt"]), losses(runs["tf"]))) < 1e-4
    assert max_difference(weights(runs["pt"] / "last"), weights(runs["tf"] / "last")) < 1e-5
    assert max_difference(weights(start / "last"), weights(runs["pt"] / "last")) > 1e-3
    held_out = [e["metrics"]["loss"] for e in metrics(runs["pt"])["evals"]]
    assert held_out == sorted(held_out, reverse=True)
    encoders = [{k.removeprefix("deberta."): v for k, v in weights(runs[fw] / "encoder").items()} for fw in runs]
    assert max_difference(*encoders) < 1e-5  # the two frameworks' exports (safetensors, tf_model.h5)


def test_rtd_resume_continues_the_same_curve(tmp_path):
    config = tiny_config(tmp_path, dropout=0.1)  # dropout and the generator's samples both replay
    whole, split = tmp_path / "whole", tmp_path / "split"
    assert run_pretrain(pretrain_argv("rtd", "pt", whole, config)) == 0
    assert run_pretrain(pretrain_argv("rtd", "pt", split, config, stop_after=2)) == 0
    assert run_pretrain(pretrain_argv("rtd", "pt", split, config, resume=True)) == 0
    assert max(abs(a - b) for a, b in zip(losses(whole), losses(split))) < 1e-6
    assert len(losses(split)) == 4
    assert max_difference(weights(whole / "last" / "discriminator"), weights(split / "last" / "discriminator")) < 1e-6


def test_torchrun_two_processes_equal_one(tmp_path):
    config = tiny_config(tmp_path)
    argv = pretrain_argv("mlm", "pt", tmp_path / "ddp", config, grad_accum=2)
    run_subprocess([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    "-m", "deberta_core.pretrain", *argv])
    assert run_pretrain(pretrain_argv("mlm", "pt", tmp_path / "one", config)) == 0
    assert metrics(tmp_path / "ddp")["world_size"] == 2
    assert max(abs(a - b) for a, b in zip(losses(tmp_path / "ddp"), losses(tmp_path / "one"))) < 1e-5
    assert max_difference(weights(tmp_path / "ddp" / "last"), weights(tmp_path / "one" / "last")) < 1e-5


# ------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("change, message", [
    (dict(generator_config="CONFIG"), "--generator-config is for --objective rtd"),
    (dict(rtd_lambda=5.0), "--embedding-sharing and --rtd-lambda are for --objective rtd"),
    (dict(block_size=4), "--block-size must be >= 8"),
    (dict(mlm_probability=1.5), "--mlm-probability must be in (0, 1)"),
    (dict(train="/nonexistent.txt"), "/nonexistent.txt: no such file"),
    (dict(config=None), "give --config JSON"),
])
def test_bad_arguments_are_named(tmp_path, capsys, change, message):
    config = tiny_config(tmp_path)
    change = {"config": config, **{k: (str(config) if v == "CONFIG" else v) for k, v in change.items()}}
    argv = pretrain_argv("mlm", "pt", tmp_path / "out", **change)
    assert run_pretrain(argv) == 2
    assert message in capsys.readouterr().err


def test_rtd_is_refused_on_jax_with_the_reason(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert run_pretrain(pretrain_argv("rtd", "tf", tmp_path / "out", tiny_config(tmp_path))) == 2
    assert "jax.jit cannot compile" in capsys.readouterr().err


def test_a_vocabulary_smaller_than_the_tokenizer_is_refused(tmp_path, capsys):
    path = tiny_config(tmp_path)
    path.write_text(json.dumps({**json.loads(path.read_text()), "vocab_size": 1000}))
    assert run_pretrain(pretrain_argv("rtd", "pt", tmp_path / "out", path)) == 2
    assert "has 128001 tokens but the model's vocab_size is 1000" in capsys.readouterr().err
