"""Cross-framework parity: Keras models loaded from PyTorch weights give deberta_torch's numbers (fp32).

Every variant of tf_cases times every head: outputs, hidden states, attentions and losses within 1e-5,
padded rows included (both frameworks fill masked scores with the dtype minimum, SPEC §2.9).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch

from tests.tf.tf_cases import VARIANTS, heads_for, make_batch, make_config
from tests.tf.tf_helpers import max_diff, model_inputs, tf_class, torch_model

ATOL = 1e-5


# Where the Keras side runs: the CPU, and every GPU TensorFlow sees (CI has none; the torch side stays on
# the CPU). TF32 is off so fp32 means fp32 there too.
DEVICES = ["/CPU:0"] + [f"/GPU:{i}" for i, _ in enumerate(tf.config.list_physical_devices("GPU"))]
if len(DEVICES) > 1:
    tf.config.experimental.enable_tensor_float_32_execution(False)


def _compare(config, head, tmp_path, inputs=None, device="/CPU:0"):
    """Run the torch model and the Keras model loaded from its saved weights; return both outputs."""
    pt = torch_model(config, head)
    pt.save_pretrained(tmp_path)
    inputs = model_inputs(head, config) if inputs is None else inputs
    with torch.no_grad():
        expected = pt(**{k: torch.from_numpy(v) for k, v in inputs.items()}, output_hidden_states=True,
                      output_attentions=True)
    with tf.device(device):
        tf_model = tf_class(config.family, head).from_pretrained(tmp_path)
        got = tf_model(inputs, output_hidden_states=True, output_attentions=True)
    return expected, got


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("variant,head", [(v, h) for v in VARIANTS for h in heads_for(v)])
def test_matches_torch(variant, head, device, tmp_path):
    config = make_config(variant, num_labels=2 if head == "question_answering" else 3)
    expected, got = _compare(config, head, tmp_path, device=device)
    assert expected.keys() == got.keys()
    for name in expected.keys():
        diff = max_diff(expected[name], got[name])
        assert diff < ATOL, f"{variant}/{head}: {name} differs by {diff:.2e}"
    if head != "base":
        assert got.loss is not None and np.isfinite(float(got.loss))


@pytest.mark.parametrize("variant", ["v1_rel", "v3_buckets_shared"])
def test_padding_rows_are_uniform_like_torch(variant, tmp_path):
    """A padded query row attends uniformly to all keys (not zeroed, as the old reference TF classes did)."""
    config = make_config(variant)
    expected, got = _compare(config, "base", tmp_path)
    probs = np.asarray(got.attentions[0])
    T = probs.shape[-1]
    np.testing.assert_allclose(probs[2, :, 20], 1.0 / T, atol=1e-7)  # row 2 has 12 real tokens
    assert max_diff(expected.last_hidden_state[2, 12:], got.last_hidden_state[2, 12:]) < ATOL


@pytest.mark.parametrize("variant", ["v1_embproj_abs", "v3_buckets_shared"])
@pytest.mark.parametrize("layout", ["original", "untied"])
def test_original_mlm_layout_and_untied_decoder(variant, layout, tmp_path):
    """legacy=False (lm_predictions.lm_head, reads the embeddings) and an untied legacy decoder."""
    config = make_config(variant, legacy=layout == "untied", tie_word_embeddings=layout == "original")
    expected, got = _compare(config, "masked_lm", tmp_path)
    assert max_diff(expected.logits, got.logits) < ATOL
    assert max_diff(expected.loss, got.loss) < ATOL


@pytest.mark.parametrize("labels_kind", ["regression", "soft", "multi_label", "single_label", "all_negative",
                                         "regression_problem_type"])
def test_sequence_classification_loss_rules(labels_kind, tmp_path):
    rng = np.random.default_rng(3)
    batch = make_batch(make_config("v2_nobuckets_types_embproj"))
    overrides, labels = {"num_labels": 3}, None
    if labels_kind == "regression":
        overrides, labels = {"num_labels": 1}, rng.normal(size=(3,)).astype(np.float32)
    elif labels_kind == "regression_problem_type":
        overrides = {"num_labels": 1, "problem_type": "regression"}
        labels = rng.normal(size=(3, 1)).astype(np.float32)
    elif labels_kind == "soft":
        labels = rng.dirichlet(np.ones(3), size=3).astype(np.float32)
    elif labels_kind == "multi_label":
        overrides["problem_type"] = "multi_label_classification"
        labels = (rng.random((3, 3)) < 0.5).astype(np.float32)
    elif labels_kind == "single_label":
        overrides["problem_type"] = "single_label_classification"
        labels = np.array([0, 2, -100])
    elif labels_kind == "all_negative":
        labels = np.array([-1, -1, -1])
    config = make_config("v2_nobuckets_types_embproj", **overrides)
    expected, got = _compare(config, "sequence_classification", tmp_path, {**batch, "labels": labels})
    assert max_diff(expected.loss, got.loss) < ATOL
    assert max_diff(expected.logits, got.logits) < ATOL  # flattened to (B,) for num_labels == 1
    if labels_kind == "all_negative":
        assert float(got.loss) == 0.0


def test_question_answering_positions_outside_are_ignored(tmp_path):
    config = make_config("v2_nobuckets_types_embproj", num_labels=2)
    inputs = {**make_batch(config), "start_positions": np.array([[3], [50], [-4]]),
              "end_positions": np.array([[39], [2], [100]])}
    expected, got = _compare(config, "question_answering", tmp_path, inputs)
    assert max_diff(expected.loss, got.loss) < ATOL


def _dropout_layers(model):
    import keras

    return [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dropout)]


@pytest.mark.parametrize("variant,head", [("v1_c2p_talking", "token_classification"),
                                          ("v2_conv_unshared", "sequence_classification"),
                                          ("v3_buckets_shared", "multiple_choice")])
def test_training_drives_every_dropout_site(variant, head):
    """training=True reaches each Dropout (embeddings, relative table per layer, attention probabilities,
    both residual branches, conv, pooler, classifier); training=False reaches none, and is deterministic."""
    config = make_config(variant, pooler_dropout=0.1)
    model = tf_class(config.family, head)(config)
    calls = {}
    for layer in _dropout_layers(model):
        original = layer.call

        def spy(inputs, training=None, _layer=layer, _original=original):
            calls.setdefault(id(_layer), []).append(bool(training))
            return _original(inputs, training=training)

        layer.call = spy
    inputs = model_inputs(head, config, labels=False)
    model(inputs, training=True)
    layers = _dropout_layers(model)
    assert set(calls) == {id(layer) for layer in layers}
    assert all(all(flags) for flags in calls.values())
    # the relative-embedding dropout, once per layer (the reference TF classes never ran it)
    assert sum(layer.name == "pos_dropout" for layer in layers) == config.num_hidden_layers
    calls.clear()
    first = model(inputs, training=False)
    assert not any(any(flags) for flags in calls.values())
    second = model(inputs, training=False)
    assert max_diff(first.logits, second.logits) == 0.0
    noisy = model(inputs, training=True)
    assert max_diff(first.logits, noisy.logits) > 0.0
