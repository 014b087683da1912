"""Fine-tuning tools of the Keras models: resize_token_embeddings (against transformers 4.57.6 and
deberta_torch on the same weights), Keras 3 LoRA (enable_lora / merge_lora, `.keras` and save_pretrained),
and mixed precision (mixed_float16 / mixed_bfloat16: finite, and close to float32)."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # the reference TF classes (one test) need tf-keras (Keras 2)

import deberta_tf  # noqa: E402
from tests.tf.tf_cases import make_batch, make_config, make_labels  # noqa: E402
from tests.tf.tf_helpers import max_diff, numpy, tf_class, torch_model  # noqa: E402

OLD_VOCAB = 100  # tests/cases.py _SMALL


def _logits(model, batch):
    return numpy(keras.ops.cast(model(batch).logits, "float32"))


# --------------------------------------------------------------------------------- resize_token_embeddings
RESIZE_CASES = [  # variant, legacy (cls.predictions) or the original lm_predictions head, tied decoder
    ("v3_buckets_shared", True, True),
    ("v2_conv_unshared", True, False),
    ("v1_rel", True, True),
    ("v1_abs_types", True, False),
    ("v2_nobuckets_types_embproj", False, True),  # the reference ties lm_head.dense instead: torch only
]


def _torch_logits(model, batch):
    import torch

    with torch.no_grad():
        return model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy()


@pytest.mark.parametrize("variant,legacy,tied", RESIZE_CASES)
def test_resize_keeps_old_logits_like_the_reference_and_torch(variant, legacy, tied, tmp_path):
    transformers = pytest.importorskip("transformers")
    config = make_config(variant, legacy=legacy, tie_word_embeddings=tied)
    pt = torch_model(config, "masked_lm")
    pt.save_pretrained(tmp_path)
    ours = tf_class(config.family, "masked_lm").from_pretrained(tmp_path, strict=True)
    batch = make_batch(config)  # ids of the old vocabulary
    before = _logits(ours, batch)
    np.testing.assert_allclose(before, _torch_logits(pt, batch), atol=1e-5)

    keras.utils.set_random_seed(0)
    old_table = numpy(ours.get_input_embeddings().weight)
    layer = ours.resize_token_embeddings(105, pad_to_multiple_of=8)  # -> 112
    assert layer is ours.get_input_embeddings() and ours.config.vocab_size == 112
    after = _logits(ours, batch)
    assert after.shape == (*before.shape[:2], 112)
    # old tokens: the same logits up to fp32 round-off (a wider projection may block its matmul differently)
    np.testing.assert_allclose(after[..., :OLD_VOCAB], before, rtol=0, atol=1e-6)
    table = numpy(layer.weight)
    np.testing.assert_array_equal(table[:OLD_VOCAB], old_table)
    # mean_resizing: N(mean, 1e-9 * cov) of the old rows: the mean, give or take 3e-5 of the spread
    np.testing.assert_allclose(table[OLD_VOCAB:], np.broadcast_to(old_table.mean(0), (12, old_table.shape[1])),
                               atol=5e-4 * old_table.std())

    if hasattr(pt, "resize_token_embeddings"):  # deberta_torch's own resize, where it exists
        pt.resize_token_embeddings(105, pad_to_multiple_of=8)
        assert pt.config.vocab_size == 112
    np.testing.assert_allclose(after[..., :OLD_VOCAB], _torch_logits(pt, batch)[..., :OLD_VOCAB], atol=1e-5)

    if legacy:  # transformers' non-legacy DeBERTa MLM ties lm_head.dense to the embeddings (a bug): not compared
        reference = getattr(transformers, type(ours).__name__.removeprefix("TF")).from_pretrained(tmp_path).eval()
        reference.resize_token_embeddings(105, pad_to_multiple_of=8)
        assert reference.config.vocab_size == 112
        theirs = _torch_logits(reference, batch)
        np.testing.assert_allclose(after[..., :OLD_VOCAB], theirs[..., :OLD_VOCAB], atol=1e-5)
        # new columns: both drew new rows within ~1e-5 of the same mean (and the same bias rule)
        np.testing.assert_allclose(after[..., OLD_VOCAB:], theirs[..., OLD_VOCAB:], atol=1e-3)
        ref_bias = reference.cls.predictions.bias.detach().numpy()
        our_bias = numpy(ours.cls.predictions.bias)
        np.testing.assert_allclose(our_bias, ref_bias, atol=1e-6)
        if tied:
            assert (our_bias[OLD_VOCAB:] == 0).all()


@pytest.mark.parametrize("tied", [True, False])
def test_resized_model_trains_and_saves(tied, tmp_path):
    keras.utils.set_random_seed(0)
    config = make_config("v2_conv_unshared", tie_word_embeddings=tied)
    model = deberta_tf.TFDebertaV2ForMaskedLM(config)
    model.resize_token_embeddings(120)
    assert model.config.vocab_size == 120 and config.vocab_size == 120
    batch = make_batch(model.config)
    batch["input_ids"][:, 1] = 117  # a new token in the input (ids are checked against the new size)
    labels = make_labels("masked_lm", model.config, batch)["labels"]
    labels[:, 2] = 111  # and in the labels
    with pytest.raises(ValueError, match="vocab"):
        model({**batch, "input_ids": np.full_like(batch["input_ids"], 120)})

    before = float(model(batch, labels=labels).loss)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    history = model.fit(tf.data.Dataset.from_tensors((batch, labels)).repeat(4), verbose=0)
    assert np.isfinite(history.history["loss"][0]) and float(model(batch, labels=labels).loss) < before
    reference = _logits(model, batch)

    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert reloaded.config.vocab_size == 120
    assert max_diff(_logits(reloaded, batch), reference) == 0.0
    model.save_pretrained(tmp_path / "pretrained")
    again = deberta_tf.TFDebertaV2ForMaskedLM.from_pretrained(tmp_path / "pretrained", strict=True)
    assert again.config.vocab_size == 120
    assert max_diff(_logits(again, batch), reference) == 0.0


def test_resize_shrinks_pads_and_checks_its_arguments():
    config = make_config("v1_abs_types", num_labels=3)
    model = deberta_tf.TFDebertaForSequenceClassification(config)
    batch = make_batch(config)
    batch["input_ids"] = np.minimum(batch["input_ids"], 89)
    before = _logits(model, batch)
    table = numpy(model.get_input_embeddings().weight)
    assert model.resize_token_embeddings() is model.get_input_embeddings()  # nothing to do
    model.resize_token_embeddings(90)
    np.testing.assert_array_equal(numpy(model.get_input_embeddings().weight), table[:90])
    np.testing.assert_array_equal(_logits(model, batch), before)
    model.resize_token_embeddings(pad_to_multiple_of=64)  # pads the current size
    assert model.config.vocab_size == 128 and model.get_input_embeddings().weight.shape == (128, 32)
    for bad in ({"new_num_tokens": 0}, {"new_num_tokens": 10, "pad_to_multiple_of": 2.0}):
        with pytest.raises(ValueError):
            model.resize_token_embeddings(**bad)
    base = deberta_tf.TFDebertaModel(config)
    base.resize_token_embeddings(101, mean_resizing=False)  # N(0, initializer_range) rows
    assert base.get_input_embeddings().weight.shape == (101, 32) and base.config.vocab_size == 101


# -------------------------------------------------------------------------------------------------- LoRA
def _lora_model(family, variant):
    """A sequence classifier whose frozen weights are large enough (initializer_range 0.2) for LoRA on the
    attention alone to move its logits; with the default 0.02 the frozen head keeps them near zero."""
    keras.utils.set_random_seed(0)
    config = make_config(variant, num_labels=2, initializer_range=0.2)
    return config, tf_class(family, "sequence_classification")(config)


def _toy_task(config, n=16, seed=0):
    """Label = which of two marker tokens (5 or 6) sits at position 1: learnable by attention."""
    rng = np.random.default_rng(seed)
    batch = make_batch(config, seed=seed, batch=n, seq_len=16, row_lengths=(16,) * n)
    labels = rng.integers(0, 2, size=(n,))
    batch["input_ids"][:, 0] = 1
    batch["input_ids"][:, 1] = 5 + labels
    return batch, labels


@pytest.mark.parametrize("family,variant,targets", [("v2", "v3_buckets_shared", 3), ("v1", "v1_rel", 1)])
def test_enable_lora_trains_only_the_lora_weights(family, variant, targets):
    config, model = _lora_model(family, variant)
    batch, labels = _toy_task(config)
    before = _logits(model, batch)
    frozen = {v.path: numpy(v) for v in model.weights}
    model.enable_lora(4)

    trainable = model.trainable_weights
    pairs = config.num_hidden_layers * targets
    assert len(trainable) == 2 * pairs
    assert all(v.name in ("lora_kernel_a", "lora_kernel_b") for v in trainable)
    width = 3 * config.hidden_size if family == "v1" else config.hidden_size  # in_proj is (C, 3C)
    assert sum(int(np.prod(v.shape)) for v in trainable) == pairs * 4 * (config.hidden_size + width)
    assert len(model.non_trainable_weights) == len(frozen)
    np.testing.assert_array_equal(_logits(model, batch), before)  # lora_kernel_b starts at zero
    with pytest.raises(ValueError, match="already enabled"):
        model.enable_lora(4)

    model.compile(optimizer=keras.optimizers.Adam(2e-2), run_eagerly=True)  # eager: no tracing, faster here
    first = float(model.evaluate(batch, labels, verbose=0))
    model.fit(batch, labels, batch_size=16, epochs=10, verbose=0)
    assert float(model.evaluate(batch, labels, verbose=0)) < 0.5 * first
    assert all(np.array_equal(numpy(v), frozen[v.path]) for v in model.weights if v.path in frozen)


def test_enable_lora_options():
    config = make_config("v3_buckets_shared", num_labels=2)
    model = deberta_tf.TFDebertaV2ForSequenceClassification(config)
    model.enable_lora(2, lora_alpha=8, target_layer_names=["query_proj", "value_proj"], train_head=True)
    names = sorted({v.path.split("/", 1)[1] for v in model.trainable_weights})
    assert [n for n in names if "lora" not in n] == ["classifier/bias", "classifier/kernel", "pooler/dense/bias",
                                                     "pooler/dense/kernel"]
    assert len([n for n in names if "lora" in n]) == 2 * 2 * config.num_hidden_layers
    layer = model.deberta.encoder.layer[0].attention.self.query_proj
    assert layer.lora_alpha == 8 and layer.lora_rank == 2
    assert not model.deberta.encoder.layer[0].attention.self.key_proj.lora_enabled
    with pytest.raises(ValueError, match="no Linear layer"):
        deberta_tf.TFDebertaV2Model(config).enable_lora(2, target_layer_names=["in_proj"])


@pytest.mark.parametrize("family,variant", [("v2", "v2_conv_unshared"), ("v1", "v1_abs_types")])
def test_lora_keras_file_merge_and_save_pretrained(family, variant, tmp_path):
    config, model = _lora_model(family, variant)
    batch, labels = _toy_task(config)
    model.enable_lora(4)
    # v2 fits in graph mode, v1 eagerly (faster to start on CPU)
    model.compile(optimizer=keras.optimizers.Adam(2e-2), jit_compile=False, run_eagerly=family == "v1")
    model.fit(batch, labels, batch_size=16, epochs=3, verbose=0)
    attention = model.deberta.encoder.layer[0].attention.self
    lora_b = (attention.in_proj if family == "v1" else attention.value_proj).lora_kernel_b
    assert np.abs(numpy(lora_b)).max() > 0
    reference = _logits(model, batch)

    model.save(tmp_path / "model.keras")  # LoRA kept unmerged: it reloads with LoRA on, same weights
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert reloaded.lora_settings == model.lora_settings
    assert [v.path for v in reloaded.trainable_weights] == [v.path for v in model.trainable_weights]
    assert all(np.array_equal(numpy(a), numpy(b)) for a, b in zip(reloaded.weights, model.weights))
    assert max_diff(_logits(reloaded, batch), reference) == 0.0
    lora_values = {v.path: numpy(v) for v in reloaded.trainable_weights}
    reloaded.compile(optimizer=keras.optimizers.Adam(2e-2), run_eagerly=True)
    reloaded.fit(batch, labels, batch_size=16, epochs=1, verbose=0)  # and LoRA training resumes
    assert all(not np.array_equal(numpy(v), lora_values[v.path]) for v in reloaded.trainable_weights)

    model.save_pretrained(tmp_path / "pretrained")  # merged kernels, no LoRA weights
    plain = type(model).from_pretrained(tmp_path / "pretrained", strict=True)
    assert plain.lora_settings is None
    assert max_diff(_logits(plain, batch), reference) < 1e-5

    count, lora_count = len(model.weights), len([v for v in model.weights if "lora" in v.name])
    model.merge_lora()
    assert model.lora_settings is None and "lora" not in model.get_config()
    assert len(model.weights) == count - lora_count and not any("lora" in v.name for v in model.weights)
    assert len(model.trainable_weights) == len(model.weights)  # a plain, trainable model again
    assert max_diff(_logits(model, batch), reference) < 1e-5
    assert max_diff(_logits(model, batch), _logits(plain, batch)) == 0.0


def test_lora_save_pretrained_loads_in_the_reference(tmp_path):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("tf_keras")
    config, model = _lora_model("v2", "v3_buckets_shared")
    batch, labels = _toy_task(config)
    model.enable_lora(4)
    model.compile(optimizer=keras.optimizers.Adam(2e-2), run_eagerly=True)
    model.fit(batch, labels, batch_size=16, epochs=3, verbose=0)
    model.save_pretrained(tmp_path)
    theirs, info = transformers.TFDebertaV2ForSequenceClassification.from_pretrained(tmp_path,
                                                                                      output_loading_info=True)
    assert info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    np.testing.assert_allclose(_logits(model, batch), theirs(batch).logits.numpy(), atol=1e-5)


# ---------------------------------------------------------------------------------------- mixed precision
@pytest.fixture(params=["mixed_float16", "mixed_bfloat16"])
def policy(request):
    try:
        yield request.param
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _float32_and_mixed(family, head, variant, policy, scale_attention=1.0):
    """The same weights built in float32 and under `policy` (set globally on return)."""
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(0)
    config = make_config(variant, num_labels=3)
    full = tf_class(family, head)(config)
    if scale_attention != 1.0:  # large attention scores: what overflows float16
        for layer in full.deberta.encoder.layer:
            attention = layer.attention.self
            for proj in ((attention.in_proj,) if family == "v1" else (attention.query_proj, attention.key_proj)):
                proj.kernel.assign(proj.kernel * scale_attention)
    keras.mixed_precision.set_global_policy(policy)
    mixed = tf_class(family, head)(config)
    mixed.set_weights(full.get_weights())
    return config, full, mixed


def _close(mixed, full, batch, rel):
    a, b = _logits(mixed, batch), _logits(full, batch)
    assert np.isfinite(a).all()
    real = batch["attention_mask"].astype(bool)
    if a.ndim == 3:
        a, b = a[real], b[real]
    assert np.abs(a - b).max() <= rel * np.abs(b).max(), np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("family,variant,head", [("v2", "v3_buckets_shared", "masked_lm"),
                                                 ("v2", "v2_conv_unshared", "sequence_classification"),
                                                 ("v1", "v1_c2p_talking", "masked_lm"),
                                                 ("v1", "v1_abs_types", "sequence_classification")])
def test_mixed_precision_fit_and_evaluate(family, variant, head, policy):
    config, full, model = _float32_and_mixed(family, head, variant, policy)
    batch = make_batch(config)
    labels = make_labels(head, config, batch)["labels"]
    out = model(batch, labels=labels)
    assert keras.backend.standardize_dtype(out.logits.dtype) == policy.removeprefix("mixed_")
    assert out.loss.dtype == tf.float32 and all(v.dtype == "float32" for v in model.weights)
    _close(model, full, batch, rel=5e-2)  # finite and close, not just finite
    # one graph-mode fit (dynamic loss scaling traced); the rest eager, which is 3x faster to start here
    graph = policy == "mixed_float16" and variant == "v3_buckets_shared"
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False, run_eagerly=not graph)
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    history = model.fit(tf.data.Dataset.from_tensors((batch, labels)).repeat(3), verbose=0)
    loss = model.evaluate(batch, labels, verbose=0)
    assert np.isfinite(history.history["loss"]).all() and np.isfinite(loss)
    assert np.isfinite(_logits(model, batch)).all()
    assert loss < float(full(batch, labels=labels).loss)  # it trained


@pytest.mark.parametrize("family,variant", [("v2", "v3_buckets_shared"), ("v1", "v1_rel")])
def test_float16_large_attention_scores_stay_finite(family, variant):
    """Scores of ~1e4 per term: c2p / p2c products past float16's 65504 before the division by the scale
    gave nan; now the operands are scaled first and the sum and softmax run in float32."""
    try:
        config, full, model = _float32_and_mixed(family, "sequence_classification", variant, "mixed_float16",
                                                 scale_attention=1000.0)
        _close(model, full, make_batch(config), rel=5e-2)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_lora_under_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    config, model = _lora_model("v2", "v3_buckets_shared")
    batch, labels = _toy_task(config)
    model.enable_lora(4)
    assert all(v.dtype == "float32" for v in model.trainable_weights)  # LoRA weights stay float32
    model.compile(optimizer=keras.optimizers.Adam(2e-2), run_eagerly=True)
    first = model.evaluate(batch, labels, verbose=0)
    history = model.fit(batch, labels, batch_size=16, epochs=6, verbose=0)
    assert np.isfinite(history.history["loss"]).all() and model.evaluate(batch, labels, verbose=0) < first
