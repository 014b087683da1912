"""Input formats (keywords, dict, list, one tensor; numpy or tensors) and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import deberta_tf
from deberta_core import losses as core_losses
from tests.tf.tf_cases import make_batch, make_config
from tests.tf.tf_helpers import max_diff


@pytest.fixture(scope="module")
def model():
    return deberta_tf.TFDebertaV2ForSequenceClassification(make_config("v2_embproj_types_abs", num_labels=3))


@pytest.fixture(scope="module")
def batch(model):
    return make_batch(model.config)


def test_every_input_format_gives_the_same_logits(model, batch):
    ids, mask, types = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
    reference = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    as_tensors = {k: tf.constant(v) for k, v in batch.items()}
    for out in (model(batch), model(as_tensors), model([ids, mask, types]), model((ids, mask, types)),
                model(ids, mask, types), model({"input_ids": ids}, attention_mask=mask, token_type_ids=types),
                model(tf.constant(ids), attention_mask=tf.constant(mask, tf.int32), token_type_ids=types),
                model.predict(batch, verbose=0)):
        assert max_diff(reference, out["logits"]) < 1e-6


def test_single_ids_tensor_and_python_lists(model):
    ids = [[1, 5, 7, 9, 2]]
    a = model(ids).logits
    b = model(np.asarray(ids)).logits
    c = model({"input_ids": ids, "attention_mask": [[1, 1, 1, 1, 1]]}).logits
    assert max_diff(a, b) == 0.0 and max_diff(a, c) == 0.0


def test_inputs_embeds_replace_ids(model, batch):
    embeds = model.deberta.embeddings.word_embeddings.weight.numpy()[batch["input_ids"]]
    a = model(batch).logits
    b = model(inputs_embeds=embeds, attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"]).logits
    assert max_diff(a, b) < 1e-6


def test_outputs_as_tuple_and_labels_give_loss(model, batch):
    labels = np.array([0, 1, 2])
    full = model(batch, labels=labels, output_hidden_states=True)
    loss, logits, hidden = model(batch, labels=labels, return_dict=False, output_hidden_states=True)
    assert max_diff(logits, full.logits) == 0.0 and len(hidden) == model.config.num_hidden_layers + 1
    assert all(max_diff(a, b) == 0.0 for a, b in zip(hidden, full.hidden_states))
    # the loss is deberta_core's definition of this head's loss, on these logits
    expected = core_losses.sequence_classification_loss(np.asarray(logits), labels, 3, None)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert model(batch).loss is None


@pytest.mark.parametrize("variant", ["v2_embproj_types_abs", "v1_rel"])
def test_graph_mode_with_unknown_dims(variant, model, batch):
    """model.fit, tf.function and export trace with unknown batch and length; shapes are checked where known.
    (v1 then slices its relative table with a tensor span.)"""
    if variant == "v1_rel":
        model = deberta_tf.TFDebertaForSequenceClassification(make_config("v1_rel", num_labels=3))
        batch = make_batch(model.config)
    spec = {k: tf.TensorSpec((None, None), tf.int64) for k in batch}
    f = tf.function(lambda b: model(b).logits, input_signature=[spec])
    for length in (40, 9):
        short = {k: v[:, :length] for k, v in batch.items()}
        assert max_diff(f({k: tf.constant(v) for k, v in short.items()}), model(short).logits) < 1e-6


BAD_INPUTS = [
    (dict(input_ids=np.ones((2, 3, 4), np.int64)), "input_ids must have shape (batch, sequence), got (2, 3, 4)"),
    (dict(input_ids=np.ones((5,), np.int64)), "input_ids must have shape (batch, sequence), got (5,)"),
    (dict(input_ids=np.array([[1, 2, 100]])), "input_ids contains id 100, outside the vocabulary [0, 100)"),
    (dict(input_ids=np.array([[1, -3, 2]])), "input_ids contains id -3, outside the vocabulary [0, 100)"),
    (dict(input_ids=np.ones((1, 3), np.float32)), "input_ids must be integer token ids"),
    (dict(input_ids=np.ones((2, 4), np.int64), attention_mask=np.ones((2, 5), np.int64)),
     "attention_mask shape (2, 5) does not match the input shape (2, 4)"),
    (dict(input_ids=np.ones((1, 3), np.int64), attention_mask=np.array([[1, 2, 1]])),
     "attention_mask must hold only 0 and 1"),
    (dict(input_ids=np.ones((1, 3), np.int64), token_type_ids=np.array([[0, 1, 2]])),
     "token_type_ids contains 2, outside [0, 2)"),
    (dict(input_ids=np.ones((1, 3), np.int64), token_type_ids=np.zeros((1, 4), np.int64)),
     "token_type_ids shape (1, 4) does not match the input shape (1, 3)"),
    (dict(input_ids=np.ones((1, 65), np.int64)), "sequence length 65 exceeds max_position_embeddings (64)"),
    (dict(input_ids=np.ones((1, 3), np.int64), position_ids=np.array([[0, 1, 64]])),
     "position_ids contains 64, outside [0, 64)"),
    (dict(input_ids=np.ones((1, 3), np.int64), inputs_embeds=np.ones((1, 3, 16), np.float32)),
     "pass exactly one of input_ids and inputs_embeds (both were given)"),
    (dict(inputs_embeds=np.ones((1, 3, 32), np.float32)), "inputs_embeds last dimension is 32"),
    (dict(), "pass exactly one of input_ids and inputs_embeds (neither was given)"),
    (dict(input_ids=np.ones((3, 4), np.int64), labels=np.full((3, 2), 0.5, np.float32)),
     "labels has shape (3, 2), expected (3, 3)"),
]


@pytest.mark.parametrize("kwargs,message", BAD_INPUTS, ids=[m[:40] for _, m in BAD_INPUTS])
def test_bad_input_raises_a_clear_error(model, kwargs, message):
    with pytest.raises(ValueError) as err:
        model(**kwargs)
    assert message in str(err.value)


def test_bad_input_names(model, batch):
    with pytest.raises(ValueError, match=r"unknown input name\(s\) \['input_idz'\]"):
        model({"input_idz": batch["input_ids"]})
    with pytest.raises(ValueError, match=r"input\(s\) \['attention_mask'\] given twice"):
        model(batch, attention_mask=batch["attention_mask"])
    with pytest.raises(ValueError, match="11 inputs given in a list"):
        model([batch["input_ids"]] * 11)


def test_out_of_vocabulary_ids_fail_in_a_graph(model):
    """Traced graphs cannot check values in Python; a run-time assertion names the problem."""
    f = tf.function(lambda ids: model(ids).logits, input_signature=[tf.TensorSpec((None, None), tf.int64)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="input_ids outside the vocabulary"):
        f(tf.constant([[1, 2, 150]], tf.int64))


def test_head_specific_errors():
    config = make_config("v2_nobuckets_types_embproj", num_labels=2)
    qa = deberta_tf.TFDebertaV2ForQuestionAnswering(config)
    ids = np.ones((2, 5), np.int64)
    with pytest.raises(ValueError, match="pass both start_positions and end_positions"):
        qa(ids, start_positions=np.array([1, 2]))
    with pytest.raises(ValueError, match=r"start_positions has shape \(3,\), expected \(2,\)"):
        qa(ids, start_positions=np.array([1, 2, 3]), end_positions=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="question answering needs num_labels == 2"):
        deberta_tf.TFDebertaV2ForQuestionAnswering(make_config("v2_nobuckets_types_embproj", num_labels=3))(ids)
    mc = deberta_tf.TFDebertaV2ForMultipleChoice(config)
    with pytest.raises(ValueError, match=r"input_ids must have shape \(batch, num_choices, sequence\)"):
        mc(ids)
    with pytest.raises(ValueError, match=r"labels has shape \(3,\), expected \(2,\)"):
        mc(np.ones((2, 3, 5), np.int64), labels=np.array([0, 1, 2]))
    tok = deberta_tf.TFDebertaV2ForTokenClassification(config)
    with pytest.raises(ValueError, match=r"labels has shape \(2, 4\), expected \(2, 5\)"):
        tok(ids, labels=np.zeros((2, 4), np.int64))
    with pytest.raises(TypeError, match="needs a DebertaV2Config, got DebertaConfig"):
        deberta_tf.TFDebertaV2Model(make_config("v1_rel"))
