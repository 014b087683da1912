"""Training with model.fit (no compiled loss: each head's own loss), mixed precision, XLA inference, and a
real run: SST-2 sentences through the real DeBERTa-v3 SentencePiece model, loss well below chance."""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import deberta_tf
from deberta_core.config import DebertaV2Config
from tests.cases import DATA
from tests.tf.tf_cases import make_config
from tests.tf.tf_helpers import max_diff, model_inputs, tf_class

LABEL_NAMES = {"question_answering": ("start_positions", "end_positions")}


def _split(head, inputs):
    names = LABEL_NAMES.get(head, ("labels",))
    x = {k: v for k, v in inputs.items() if k not in names}
    y = {k: inputs[k] for k in names} if head == "question_answering" else inputs["labels"]
    return x, y


@pytest.mark.parametrize("variant,head", [("v1_c2p_talking", "masked_lm"), ("v3_buckets_shared", "sequence_classification"),
                                          ("v1_abs_types", "token_classification"),
                                          ("v2_conv_unshared", "question_answering"), ("v2_nobuckets_types_embproj", "multiple_choice")])
def test_fit_trains_each_head_with_its_own_loss(variant, head):
    keras.utils.set_random_seed(0)
    config = make_config(variant, num_labels=2 if head == "question_answering" else 3)
    model = tf_class(config.family, head)(config)
    inputs = model_inputs(head, config)
    x, y = _split(head, inputs)
    before = float(model(inputs).loss)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), run_eagerly=True)
    history = model.fit(tf.data.Dataset.from_tensors((x, y)).repeat(2), verbose=0)  # labels as y
    history2 = model.fit(tf.data.Dataset.from_tensors(inputs), verbose=0)  # labels in the inputs
    after = float(model(inputs).loss)
    assert np.isfinite(history.history["loss"][0]) and np.isfinite(history2.history["loss"][0])
    assert after < before
    # evaluate uses the same loss as call(labels=...)
    assert abs(model.evaluate(x, y, verbose=0, return_dict=True)["loss"] - after) < 1e-5


def test_fit_without_labels_is_refused():
    config = make_config("v2_nobuckets_types_embproj", num_labels=3)
    model = deberta_tf.TFDebertaV2ForSequenceClassification(config)
    model.compile(optimizer="sgd", run_eagerly=True)
    x, _ = _split("sequence_classification", model_inputs("sequence_classification", config))
    with pytest.raises(ValueError, match="was fit without labels"):
        model.fit(tf.data.Dataset.from_tensors(x), verbose=0)


def test_compiled_loss_and_metrics_see_the_logits():
    keras.utils.set_random_seed(0)
    config = make_config("v3_buckets_shared", num_labels=3)
    model = deberta_tf.TFDebertaV2ForSequenceClassification(config)
    x, y = _split("sequence_classification", model_inputs("sequence_classification", config))
    y = np.abs(y)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], run_eagerly=True)
    history = model.fit(tf.data.Dataset.from_tensors((x, y)), verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    model.compile(optimizer="sgd", run_eagerly=True)  # back to the head's loss
    assert abs(model.evaluate(x, y, verbose=0, return_dict=True)["loss"] - float(model(x, labels=y).loss)) < 1e-5


@pytest.fixture
def mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_fit_in_mixed_bfloat16(mixed_bfloat16):
    """bfloat16 compute, float32 variables and losses; a graph-mode fit step on CPU."""
    keras.utils.set_random_seed(0)
    config = make_config("v2_conv_unshared", num_labels=3)
    model = deberta_tf.TFDebertaV2ForSequenceClassification(config)
    inputs = model_inputs("sequence_classification", config)
    out = model(inputs, output_attentions=True)
    assert out.logits.dtype == tf.bfloat16 and out.attentions[0].dtype == tf.bfloat16
    assert out.loss.dtype == tf.float32 and all(v.dtype == "float32" for v in model.weights)
    x, y = _split("sequence_classification", inputs)
    model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    history = model.fit(tf.data.Dataset.from_tensors((x, y)).repeat(3), verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_jit_compiled_inference_matches_eager():
    config = make_config("v2_conv_unshared", num_labels=3)
    model = deberta_tf.TFDebertaV2ForSequenceClassification(config)
    x, _ = _split("sequence_classification", model_inputs("sequence_classification", config))
    eager = model(x).logits
    model.compile(jit_compile=True)
    assert max_diff(eager, model.predict(x, verbose=0)["logits"]) < 1e-5


# ------------------------------------------------------------------------------------------- SST-2
def _read_sst2(path: Path, limit: int | None = None):
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    rows = rows[:limit] if limit else rows
    return [r[0] for r in rows], np.array([int(r[1]) for r in rows])


def _encode(tokenizer, texts, length=32):
    """[CLS]=1 pieces [SEP]=2, truncated and right-padded with [PAD]=0 (SPEC §5.2)."""
    ids = np.zeros((len(texts), length), np.int32)
    for row, pieces in enumerate(tokenizer.encode(texts)):
        pieces = [1] + pieces[: length - 2] + [2]
        ids[row, : len(pieces)] = pieces
    return ids, (ids != 0).astype(np.int32)


def test_fit_learns_sst2():
    import sentencepiece as spm
    data, model_file = DATA / "datasets" / "sst2", DATA / "tokenizers" / "deberta-v3" / "spm.model"
    tokenizer = spm.SentencePieceProcessor(model_file=str(model_file))
    train_text, train_y = _read_sst2(data / "alps_train.tsv", limit=8000)
    dev_text, dev_y = _read_sst2(data / "glue_sst2_dev.tsv")
    train_ids, train_mask = _encode(tokenizer, train_text)
    dev_ids, dev_mask = _encode(tokenizer, dev_text)

    keras.utils.set_random_seed(0)
    config = DebertaV2Config(vocab_size=128100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=64, embedding_size=8, relative_attention=True, pos_att_type="p2c|c2p",
                             position_buckets=16, max_relative_positions=64, share_att_key=True,
                             norm_rel_ebd="layer_norm", position_biased_input=False, num_labels=2)
    # embedding_size 8 (+ embed_proj) keeps the 128100-row table, and its Adam update, cheap on CPU
    model = deberta_tf.TFDebertaV2ForSequenceClassification(config)
    steps, batch_size = 250, 32
    train = (tf.data.Dataset.from_tensor_slices(({"input_ids": train_ids, "attention_mask": train_mask}, train_y))
             .shuffle(len(train_y), seed=0).batch(batch_size, drop_remainder=True).take(steps))
    model.compile(optimizer=keras.optimizers.Adam(2e-3), jit_compile=False)
    history = model.fit(train, verbose=0)
    chance = float(np.log(2))
    assert history.history["loss"][0] < chance  # the epoch's running mean, first steps included
    dev = {"input_ids": dev_ids, "attention_mask": dev_mask}
    dev_loss = model.evaluate(dev, dev_y, batch_size=256, verbose=0)
    accuracy = float((model.predict(dev, batch_size=256, verbose=0)["logits"].argmax(-1) == dev_y).mean())
    assert dev_loss < 0.6, f"dev loss {dev_loss:.3f} (chance {chance:.3f})"
    assert accuracy > 0.7, f"dev accuracy {accuracy:.3f}"
