"""Replaced-token detection: the `mask_predictions` head, the generator + discriminator step, the three
embedding-sharing modes and their gradients, torch against Keras, loading a v3 release and exporting the
discriminator. The truth is deberta_core.pretraining's numpy definitions and small cases worked by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import deberta_torch as dt
from deberta_core import pretraining as rules
from deberta_core.config import DebertaV2Config
from deberta_core.tf_names import tf_weights
from deberta_core.weight_names import model_weights
from tests.cases import SEQ_LEN, variant_config_kwargs
from tests.pretraining.helpers import randomised

MODES = rules.EMBEDDING_SHARING
SPECIAL = [0, 1, 2, 3]  # pad, [CLS], [SEP], [MASK] in these tiny vocabularies
MASK_ID = 3


def _configs(**disc):
    _, kwargs = variant_config_kwargs("v3_buckets_shared")
    generator = DebertaV2Config(**{**kwargs, "num_hidden_layers": 1, "intermediate_size": 24},
                                use_emd=True, legacy=False)
    return generator, DebertaV2Config(**{**kwargs, **disc})


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, 100, (2, SEQ_LEN))
    ids[:, 0], ids[:, -1] = 1, 2
    mask = np.ones_like(ids)
    mask[1, 30:] = 0
    ids[1, 30:] = 0
    masked, labels = rules.mask_tokens(ids, rng, mask_token_id=MASK_ID, vocab_size=100, special_ids=SPECIAL,
                                       attention_mask=mask)
    noise = rng.random((2, SEQ_LEN, 100)).astype(np.float32)
    return masked, mask, labels, noise


def _pair(mode, seed=0, **disc):
    torch.manual_seed(seed)
    return randomised(dt.DebertaV2ForRTDPretraining(*_configs(**disc), embedding_sharing=mode), seed)


def _run(model, batch):
    masked, mask, labels, noise = batch
    with torch.no_grad():
        return model(torch.tensor(masked), attention_mask=torch.tensor(mask), labels=torch.tensor(labels),
                     sampling_noise=torch.tensor(noise))


# ------------------------------------------------------------------------------------ rules by hand
def test_rules_by_hand():
    labels = np.array([[-100, 5, 7, -100]])
    replaced = rules.replace_masked([[4, 3, 3, 6]], labels, [[9, 5, 9, 9]])
    assert replaced.tolist() == [[4, 5, 9, 6]]  # off the targets the input stays; 5 was sampled back
    assert rules.rtd_labels(labels, replaced).tolist() == [[0.0, 0.0, 1.0, 0.0]]
    assert math.isclose(rules.rtd_loss([[0.0, 2.0]], [[1, 0]], [[1, 0]]), math.log(2))
    both = (math.log(2) + math.log1p(math.exp(2.0))) / 2
    assert math.isclose(rules.rtd_loss([[0.0, 2.0]], [[1, 0]]), both)
    assert math.isclose(rules.mlm_loss(np.zeros((1, 2, 4)), [[-100, 3]]), math.log(4))
    assert rules.mlm_loss(np.zeros((1, 2, 4)), [[-100, -100]]) == 0.0
    assert rules.pretraining_loss(1.0, 0.5) == 6.0 and rules.RTD_LAMBDA == 10.0 and rules.EMD_STEPS == 2
    assert rules.sample_tokens([[0.0, 100.0]], [[0.999, 0.001]]).tolist() == [1]
    probs = np.array([0.2, 0.3, 0.5])
    draws = rules.sample_tokens(np.broadcast_to(np.log(probs), (20000, 3)), np.random.default_rng(0).random((20000, 3)))
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / 20000, probs, atol=0.012)
    hot = rules.sample_tokens(np.broadcast_to(np.log(probs), (20000, 3)) * 4,  # the temperature divides them
                              np.random.default_rng(0).random((20000, 3)), temperature=4.0)
    np.testing.assert_allclose(np.bincount(hot, minlength=3) / 20000, probs, atol=0.012)
    gen, delta = np.ones((2, 2)), np.full((2, 2), 0.5)
    assert rules.shared_table(gen, delta, "gdes").tolist() == [[1.5, 1.5]] * 2
    assert rules.shared_table(gen, delta, "es").tolist() == gen.tolist()
    assert rules.shared_table(gen, delta, "none").tolist() == delta.tolist()
    generator, discriminator = _configs()
    with pytest.raises(ValueError, match="embedding_sharing must be one of"):
        rules.check_pair(generator, discriminator, "tied")
    with pytest.raises(ValueError, match="vocabularies differ"):
        rules.check_pair(generator, discriminator.copy(vocab_size=101), "none")
    with pytest.raises(ValueError, match="one embedding width"):
        rules.check_pair(generator, discriminator.copy(embedding_size=16), "gdes")


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_samplers_draw_what_the_rule_draws(framework):
    rng = np.random.default_rng(3)
    logits, noise = rng.normal(size=(2, 7, 50)).astype(np.float32), rng.random((2, 7, 50)).astype(np.float32)
    expected = rules.sample_tokens(logits, noise, temperature=0.7)
    if framework == "torch":
        from deberta_torch.pretraining import sample_tokens
        got = sample_tokens(torch.tensor(logits), 0.7, torch.tensor(noise)).numpy()
    else:
        pytest.importorskip("deberta_tf")
        from deberta_tf.pretraining import sample_tokens
        got = np.asarray(sample_tokens(logits, 0.7, noise))
    assert got.tolist() == expected.tolist()


# ------------------------------------------------------------------------ the mask_predictions head
def _numpy_head(state, hidden, eps):
    s = {k: v.double().numpy() for k, v in state.items()}
    x = hidden[:, :1] + hidden
    mu = x.mean(-1, keepdims=True)
    x = (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)
    x = x * s["mask_predictions.LayerNorm.weight"] + s["mask_predictions.LayerNorm.bias"]
    x = x @ s["mask_predictions.dense.weight"].T + s["mask_predictions.dense.bias"]
    x = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    return (x @ s["mask_predictions.classifier.weight"].T + s["mask_predictions.classifier.bias"])[..., 0]


def test_rtd_head_equals_a_numpy_forward_in_both_frameworks():
    _, config = _configs()
    model = randomised(dt.DebertaV2ForReplacedTokenDetection(config), seed=2)
    assert set(model.state_dict()) == set(model_weights(config, "replaced_token_detection"))
    masked, mask, _, _ = _batch()
    labels = (np.random.default_rng(4).random(masked.shape) < 0.3).astype(np.int64)
    with torch.no_grad():
        out = model(torch.tensor(masked), attention_mask=torch.tensor(mask), labels=torch.tensor(labels),
                    output_hidden_states=True)
    expected = _numpy_head(model.state_dict(), out.hidden_states[-1].double().numpy(), config.layer_norm_eps)
    assert out.logits.shape == masked.shape
    assert np.abs(out.logits.numpy() - expected).max() < 1e-5
    assert abs(float(out.loss) - rules.rtd_loss(out.logits.numpy(), labels, mask)) < 1e-6

    deberta_tf = pytest.importorskip("deberta_tf")
    keras_model = deberta_tf.TFDebertaV2ForReplacedTokenDetection(config)
    assert {w.name for w in tf_weights(config, "replaced_token_detection").values()} == \
        set(keras_model._variables_by_name())
    keras_model.load_checkpoint_state({k: v.numpy() for k, v in model.state_dict().items()}, strict=True)
    got = keras_model(masked, attention_mask=mask, labels=labels)
    assert np.abs(np.asarray(got.logits) - out.logits.numpy()).max() < 1e-5
    assert abs(float(got.loss) - float(out.loss)) < 1e-6


def test_a_v3_release_loads_its_discriminator_head(tmp_path):
    """The keys a released v3 checkpoint carries: `deberta.*`, the absolute table (unused),
    `lm_predictions.lm_head.*` and the discriminator's `mask_predictions.{dense,LayerNorm,classifier}.*`."""
    _, config = _configs()
    source = randomised(dt.DebertaV2ForReplacedTokenDetection(config), seed=5)
    H = config.hidden_size
    state = {**source.state_dict(), "deberta.embeddings.position_embeddings.weight": torch.randn(64, H),
             "lm_predictions.lm_head.dense.weight": torch.randn(H, H), "lm_predictions.lm_head.bias": torch.randn(100)}
    state = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
             for k, v in state.items()}
    torch.save(state, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    model, info = dt.DebertaV2ForReplacedTokenDetection.from_pretrained(tmp_path, output_loading_info=True)
    assert info.missing == [] and sorted(info.unexpected) == ["lm_predictions.lm_head.bias",
                                                              "lm_predictions.lm_head.dense.weight"]
    assert info.ignored == ["deberta.embeddings.position_embeddings.weight"]
    masked, mask, _, _ = _batch()
    with torch.no_grad():
        logits = model(torch.tensor(masked), attention_mask=torch.tensor(mask)).logits
        expected = source(torch.tensor(masked), attention_mask=torch.tensor(mask)).logits
    assert torch.equal(logits, expected)
    _, other = dt.DebertaV2ForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert "mask_predictions.classifier.weight" in other.ignored  # every other class still ignores the head
    deberta_tf = pytest.importorskip("deberta_tf")
    keras_model = deberta_tf.TFDebertaV2ForReplacedTokenDetection.from_pretrained(tmp_path)
    assert np.abs(np.asarray(keras_model(masked, attention_mask=mask).logits) - expected.numpy()).max() < 1e-5


# ----------------------------------------------------------------------------- the pre-training step
def test_a_step_follows_the_rules():
    model = _pair("gdes")
    batch = _batch()
    masked, mask, labels, noise = batch
    out = _run(model, batch)
    targets = labels != -100
    # the head projects only the targets' rows: the full masked LM's logits there
    with torch.no_grad():
        full = model.generator(torch.tensor(masked), attention_mask=torch.tensor(mask)).logits
    assert out.generator_logits.shape == (targets.sum(), 100)
    assert float((out.generator_logits - full[torch.tensor(targets)]).abs().max()) < 1e-5
    samples = np.array(masked)
    samples[targets] = rules.sample_tokens(out.generator_logits.numpy(), noise[targets])
    replaced = rules.replace_masked(masked, labels, samples)
    assert out.replaced_input_ids.tolist() == replaced.tolist()
    assert out.rtd_labels.numpy().tolist() == rules.rtd_labels(labels, replaced).tolist()
    assert 0 < out.rtd_labels.sum() <= targets.sum()
    assert abs(float(out.mlm_loss) - rules.mlm_loss(full.numpy(), labels)) < 1e-5
    assert abs(float(out.rtd_loss) - rules.rtd_loss(out.discriminator_logits.numpy(), out.rtd_labels.numpy(),
                                                    mask)) < 1e-6
    assert abs(float(out.loss) - rules.pretraining_loss(float(out.mlm_loss), float(out.rtd_loss))) < 1e-5
    # the discriminator saw the replaced ids through stop_gradient(generator table) + delta
    with torch.no_grad():
        plain = dt.DebertaV2ForReplacedTokenDetection(model.discriminator.config)
        plain.load_checkpoint_state(model.discriminator_state_dict(), strict=True)
        again = plain.eval()(out.replaced_input_ids, attention_mask=torch.tensor(mask)).logits
    assert float((again - out.discriminator_logits).abs().max()) < 1e-6
    # a sample equal to the original token is not a replacement: noise that picks the original everywhere
    picks = np.full_like(noise, 1e-30)
    np.put_along_axis(picks, np.where(labels == -100, 0, labels)[..., None], 1 - 1e-7, axis=-1)
    same = _run(model, (masked, mask, labels, picks))
    assert (same.replaced_input_ids.numpy()[labels != -100] == labels[labels != -100]).all()
    assert float(same.rtd_labels.sum()) == 0.0


@pytest.mark.parametrize("mode", MODES)
def test_torch_and_keras_take_the_same_step(mode):
    deberta_tf = pytest.importorskip("deberta_tf")
    model = _pair(mode, seed=6)
    batch = _batch(1)
    expected = _run(model, batch)
    keras_model = deberta_tf.TFDebertaV2ForRTDPretraining(*_configs(), embedding_sharing=mode)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    keras_model.load_state(state)
    back = keras_model.state_dict()
    assert set(back) == set(state) and all(np.array_equal(back[k], state[k]) for k in state)
    masked, mask, labels, noise = batch
    got = keras_model(masked, attention_mask=mask, labels=labels, sampling_noise=noise)
    for name in ("loss", "mlm_loss", "rtd_loss"):
        assert abs(float(got[name]) - float(expected[name])) < 1e-5, name
    for name in ("generator_logits", "discriminator_logits"):
        assert np.abs(np.asarray(got[name]) - expected[name].numpy()).max() < 1e-5, name
    assert np.asarray(got.replaced_input_ids).tolist() == expected.replaced_input_ids.tolist()
    assert len(keras_model.trainable_variables) == len(list(model.parameters()))


def _tables(model):
    """(generator word table, the discriminator's own word parameter: its table, the delta, or the shared one)."""
    generator = model.generator.deberta.embeddings.word_embeddings.weight
    own = model.discriminator.deberta.embeddings.word_embeddings
    return generator, own._weight if model.embedding_sharing == "gdes" else own.weight


def _norm(grad):
    return 0.0 if grad is None else float(grad.abs().sum())


@pytest.mark.parametrize("mode", MODES)
def test_torch_gradients_follow_the_sharing_mode(mode):
    model = _pair(mode).train()
    for module in model.modules():  # dropout off: the two backward passes see one forward
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    masked, mask, labels, noise = _batch()
    out = model(torch.tensor(masked), attention_mask=torch.tensor(mask), labels=torch.tensor(labels),
                sampling_noise=torch.tensor(noise))
    generator, own = _tables(model)
    rtd = torch.autograd.grad(out.rtd_loss, [generator, own], retain_graph=True, allow_unused=True)
    mlm = torch.autograd.grad(out.mlm_loss, [generator, own], allow_unused=True)
    assert _norm(mlm[0]) > 0
    if mode == "gdes":
        assert _norm(rtd[0]) == 0.0 and _norm(rtd[1]) > 0 and _norm(mlm[1]) == 0.0
    elif mode == "es":
        assert own is generator and _norm(rtd[0]) > 0
    else:
        assert _norm(rtd[0]) == 0.0 and _norm(rtd[1]) > 0 and _norm(mlm[1]) == 0.0


@pytest.mark.parametrize("mode", MODES)
def test_keras_gradients_follow_the_sharing_mode(mode):
    deberta_tf = pytest.importorskip("deberta_tf")
    import tensorflow as tf

    keras_model = deberta_tf.TFDebertaV2ForRTDPretraining(*_configs(), embedding_sharing=mode)
    keras_model.load_state({k: v.numpy() for k, v in _pair(mode).state_dict().items()})
    masked, mask, labels, noise = _batch()
    generator = keras_model.generator.deberta.embeddings.word_embeddings.weight
    table = keras_model.discriminator.deberta.embeddings.word_embeddings
    own = table._weight if mode == "gdes" else table.weight
    with tf.GradientTape(persistent=True) as tape:
        out = keras_model(masked, attention_mask=mask, labels=labels, sampling_noise=noise, training=False)
    rtd = tape.gradient(out.rtd_loss, [generator, own])
    mlm = tape.gradient(out.mlm_loss, [generator, own])
    norm = lambda g: 0.0 if g is None else float(tf.reduce_sum(tf.abs(tf.convert_to_tensor(g))))  # noqa: E731
    assert norm(mlm[0]) > 0
    if mode == "es":
        assert own is generator and norm(rtd[0]) > 0
    else:
        assert norm(rtd[0]) == 0.0 and norm(rtd[1]) > 0 and norm(mlm[1]) == 0.0


# ---------------------------------------------------------------------------------------- export
def test_the_discriminator_exports_for_fine_tuning(tmp_path):
    model = _pair("gdes", seed=7)  # a non-zero delta
    masked, mask, labels, noise = _batch()
    out = _run(model, (masked, mask, labels, noise))
    model.export_discriminator(tmp_path / "base")
    base = dt.DebertaV2Model.from_pretrained(tmp_path / "base", strict=True)
    folded = model.generator.deberta.embeddings.word_embeddings.weight + \
        model.discriminator.deberta.embeddings.word_embeddings._weight
    assert torch.equal(base.embeddings.word_embeddings.weight, folded.detach())
    with torch.no_grad():
        expected = model.discriminator.deberta(out.replaced_input_ids, attention_mask=torch.tensor(mask))
        got = base(out.replaced_input_ids, attention_mask=torch.tensor(mask))
    assert torch.equal(got.last_hidden_state, expected.last_hidden_state)
    classifier = dt.DebertaV2ForSequenceClassification.from_pretrained(tmp_path / "base", num_labels=3)
    assert torch.equal(classifier.deberta.embeddings.word_embeddings.weight, folded.detach())

    model.save_pretrained(tmp_path / "pair")
    again = dt.DebertaV2ForRTDPretraining.from_pretrained(tmp_path / "pair")
    assert again.embedding_sharing == "gdes" and again.rtd_lambda == rules.RTD_LAMBDA
    reloaded = _run(again, (masked, mask, labels, noise))
    assert abs(float(reloaded.loss) - float(out.loss)) < 1e-5

    deberta_tf = pytest.importorskip("deberta_tf")
    keras_model = deberta_tf.TFDebertaV2ForRTDPretraining.from_pretrained(tmp_path / "pair")
    got = keras_model(masked, attention_mask=mask, labels=labels, sampling_noise=noise)
    assert abs(float(got.loss) - float(out.loss)) < 1e-5
    keras_model.export_discriminator(tmp_path / "keras_base")
    from_keras = dt.DebertaV2Model.from_pretrained(tmp_path / "keras_base", strict=True)
    with torch.no_grad():
        got = from_keras(out.replaced_input_ids, attention_mask=torch.tensor(mask)).last_hidden_state
    keep = torch.tensor(mask).bool()
    assert float((got[keep] - expected.last_hidden_state[keep]).abs().max()) < 1e-5


def test_sampling_without_noise_is_the_inverse_cdf():
    """Without sampling_noise both frameworks draw by the inverse CDF (one uniform per row): with the
    uniforms they drew, deberta_core.pretraining.sample_by_cdf picks the same tokens, and the draws
    follow softmax(logits)."""
    import deberta_torch.pretraining as pt_rtd

    logits = torch.tensor(np.log([[0.5, 0.3, 0.2, 1e-9]] * 4000), dtype=torch.float32)
    torch.manual_seed(3)
    drawn = pt_rtd.sample_tokens(logits)
    torch.manual_seed(3)
    uniforms = torch.rand(4000, 1)[:, 0].numpy()
    assert drawn.tolist() == rules.sample_by_cdf(logits.numpy(), uniforms).tolist()
    shares = np.bincount(drawn.numpy(), minlength=4) / 4000
    assert np.abs(shares - [0.5, 0.3, 0.2, 0.0]).max() < 0.03 and shares[3] == 0
    import keras

    import deberta_tf.pretraining as tf_rtd

    seed = keras.random.SeedGenerator(11)
    state = np.asarray(seed.state.value).copy()
    got = np.asarray(tf_rtd.sample_tokens(logits.numpy(), seed=seed))
    seed.state.assign(state)
    u = np.asarray(keras.random.uniform((4000, 1), seed=seed))[:, 0]
    assert got.tolist() == rules.sample_by_cdf(logits.numpy(), u).tolist()
