"""The enhanced mask decoder: against an independent numpy forward, against the original package's own layer
modules (DeBERTa==0.1.12 via tests/original/shim.py), torch against Keras, and an original-layout checkpoint
whose fill-mask logits must be the original's."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import deberta_torch as dt
from deberta_core.config import DebertaConfig, DebertaV2Config
from deberta_core.pipelines import pipeline
from deberta_core.relative_position import relative_position_index
from deberta_core.tf_names import tf_weights
from deberta_core.tokenization import DebertaV2TokenizerFast
from deberta_core.weight_names import model_weights
from deberta_torch.emd import enhanced_mask_decoder
from tests.cases import SEQ_LEN, data_path, variant_config_kwargs
from tests.original.shim import load_original
from tests.pretraining.helpers import randomised

orig, _ = load_original()


def _config(variant, **extra):
    family, kwargs = variant_config_kwargs(variant)
    cls = DebertaConfig if family == "v1" else DebertaV2Config
    return cls(**{**kwargs, "use_emd": True, "legacy": False, "tie_word_embeddings": True, **extra})


def _inputs(vocab=100, seed=1):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (2, SEQ_LEN), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 27:] = 0
    return ids, mask


# ---------------------------------------------------------------------------- an independent numpy forward
def _layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


def _gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _numpy_emd_logits(state, cfg, hidden, mask):
    """v2 layer with c2p + p2c, queries from P + hidden, run twice, then lm_predictions.lm_head: float64."""
    s = {k: v.double().numpy() for k, v in state.items()}
    lin = lambda x, p: x @ s[p + ".weight"].T + s[p + ".bias"]  # noqa: E731
    B, T, C = hidden.shape
    H, D = cfg.num_attention_heads, C // cfg.num_attention_heads
    eps, span = cfg.layer_norm_eps, cfg.position_buckets
    rel = _layer_norm(s["deberta.encoder.rel_embeddings.weight"], s["deberta.encoder.LayerNorm.weight"],
                      s["deberta.encoder.LayerNorm.bias"], eps)
    idx = relative_position_index(T, T, span, cfg.position_buckets, cfg.relative_span)
    scale = math.sqrt(D * 3)
    pair = (mask[:, None, :, None] * mask[:, None, None, :]).astype(bool)
    p = f"deberta.encoder.layer.{cfg.num_hidden_layers - 1}."
    heads = lambda x: x.reshape(*x.shape[:-1], H, D).swapaxes(-2, -3)  # noqa: E731
    pos_key = heads(lin(rel, p + "attention.self.key_proj"))      # share_att_key: the table goes through key_proj
    pos_query = heads(lin(rel, p + "attention.self.query_proj"))  # and query_proj, biases included
    query = s["deberta.embeddings.position_embeddings.weight"][:T][None] + hidden
    for _ in range(2):
        q = heads(lin(query, p + "attention.self.query_proj"))
        k = heads(lin(hidden, p + "attention.self.key_proj"))
        v = heads(lin(hidden, p + "attention.self.value_proj"))
        c2p = np.take_along_axis(q @ pos_key.swapaxes(-1, -2), np.broadcast_to(idx, (B, H, T, T)), -1)
        p2c = np.take_along_axis(k @ pos_query.swapaxes(-1, -2), np.broadcast_to(idx.T, (B, H, T, T)), -1)
        p2c = p2c.swapaxes(-1, -2)
        scores = np.where(pair, (q @ k.swapaxes(-1, -2) + c2p + p2c) / scale, -1e30)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).swapaxes(1, 2).reshape(B, T, C)
        norm = p + "attention.output.LayerNorm."
        attended = _layer_norm(lin(context, p + "attention.output.dense") + query, s[norm + "weight"], s[norm + "bias"],
                               eps)
        ffn = lin(_gelu(lin(attended, p + "intermediate.dense")), p + "output.dense")
        query = _layer_norm(ffn + attended, s[p + "output.LayerNorm.weight"], s[p + "output.LayerNorm.bias"], eps)
    h = "lm_predictions.lm_head."
    x = _layer_norm(_gelu(lin(query, h + "dense")), s[h + "LayerNorm.weight"], s[h + "LayerNorm.bias"], eps)
    return x @ s["deberta.embeddings.word_embeddings.weight"].T + s[h + "bias"]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_emd_equals_an_independent_numpy_forward(attn):
    cfg = _config("v3_buckets_shared")
    model = randomised(dt.DebertaV2ForMaskedLM(cfg))
    model.set_attn_implementation(attn)
    ids, mask = _inputs()
    with torch.no_grad():
        out = model(ids, attention_mask=mask, output_hidden_states=True)
        plain = dt.DebertaV2ForMaskedLM(cfg.copy(use_emd=False))
        plain.load_checkpoint_state(model.state_dict())
        before = plain.eval()(ids, attention_mask=mask).logits
    expected = _numpy_emd_logits(model.state_dict(), cfg, out.hidden_states[-2].double().numpy(), mask.numpy())
    keep = mask.bool().numpy()
    assert np.abs(out.logits.numpy()[keep] - expected[keep]).max() < 2e-5
    assert len(out.hidden_states) == cfg.num_hidden_layers + 1  # the encoder's, as asked
    assert float((before - out.logits).abs().max()) > 1e-2  # the decoder changes the logits


def test_v1_decoder_equals_the_v2_decoder_of_the_same_weights():
    """v1's fused in_proj gives q from the query states and k, v from the hidden states: re-expressed in the v2
    layout (conversion/v1_to_v2, exact), the v2 decoder must compute the same logits."""
    from pathlib import Path

    from conversion.sources import Checkpoint
    from conversion.v1_to_v2 import v1_to_v2

    cfg = _config("v1_rel")
    v1 = randomised(dt.DebertaForMaskedLM(cfg), seed=3)
    state = {k: v.numpy() for k, v in v1.state_dict().items()}
    v2 = v1_to_v2(Checkpoint(cfg, state, "hf-pt", Path(".")))
    assert v2.config.use_emd
    twin = dt.DebertaV2ForMaskedLM(v2.config)
    twin.load_checkpoint_state(v2.state, strict=True)
    ids, mask = _inputs()
    keep = mask.bool()
    with torch.no_grad():
        expected = twin.eval()(ids, attention_mask=mask).logits
        for attn in ("sdpa", "eager"):
            v1.set_attn_implementation(attn)
            assert float((v1(ids, attention_mask=mask).logits[keep] - expected[keep]).abs().max()) < 2e-5, attn


# ------------------------------------------------------------------ the original package's layer modules
ORIGINAL_SIZES = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=48, max_position_embeddings=64, hidden_act="gelu")
ORIGINAL_CONFIGS = {
    "v3_shape": dict(relative_attention=True, pos_att_type="p2c|c2p", position_buckets=8, max_relative_positions=32,
                     norm_rel_ebd="layer_norm", share_att_key=True, position_biased_input=False, layer_norm_eps=1e-7),
    "conv_unshared": dict(relative_attention=True, pos_att_type="c2p|p2c", conv_kernel_size=3, conv_act="gelu",
                          max_relative_positions=24, position_biased_input=False, layer_norm_eps=1e-7),
}


def _original_mlm(name, seed=0):
    """The original encoder with random weights, plus what the later original adds for the MLM: the absolute
    table (embeddings.position_embeddings, built even without position_biased_input) and BertLMPredictionHead."""
    config = {**ORIGINAL_SIZES, **ORIGINAL_CONFIGS[name]}
    torch.manual_seed(seed)
    encoder = randomised(orig.DeBERTa(orig.ModelConfig.from_dict(config)), seed)
    generator = torch.Generator().manual_seed(seed + 1)
    H, V = config["hidden_size"], config["vocab_size"]
    extra = {"deberta.embeddings.position_embeddings.weight": 0.1 * torch.randn(config["max_position_embeddings"], H,
                                                                              generator=generator),
             "lm_predictions.lm_head.dense.weight": 0.1 * torch.randn(H, H, generator=generator),
             "lm_predictions.lm_head.dense.bias": 0.1 * torch.randn(H, generator=generator),
             "lm_predictions.lm_head.LayerNorm.weight": 1 + 0.1 * torch.randn(H, generator=generator),
             "lm_predictions.lm_head.LayerNorm.bias": 0.1 * torch.randn(H, generator=generator),
             "lm_predictions.lm_head.bias": 0.1 * torch.randn(V, generator=generator)}
    return config, encoder, extra


def _original_emd(config, encoder, extra, ids, mask):
    """masked_language_model.EnhancedMaskDecoder.emd_context_layer and its lm_head, with the original's modules."""
    with torch.no_grad():
        layers = encoder(ids, mask, output_all_encoded_layers=True)
        hidden = layers[-2]
        attention_mask = encoder.encoder.get_attention_mask(mask)
        rel_embeddings = encoder.encoder.get_rel_embedding()
        query = extra["deberta.embeddings.position_embeddings.weight"][: ids.shape[1]][None] + hidden
        for layer in [encoder.encoder.layer[-1] for _ in range(2)]:
            query = layer(hidden, attention_mask, return_att=False, query_states=query, relative_pos=None,
                          rel_embeddings=rel_embeddings)
        h = "lm_predictions.lm_head."
        norm = orig.LayerNorm(config["hidden_size"], config["layer_norm_eps"])
        norm.weight.copy_(extra[h + "LayerNorm.weight"])
        norm.bias.copy_(extra[h + "LayerNorm.bias"])
        states = norm(orig.ACT2FN[config["hidden_act"]](query @ extra[h + "dense.weight"].T + extra[h + "dense.bias"]))
        logits = states @ encoder.embeddings.word_embeddings.weight.T + extra[h + "bias"]
    return query, logits


def _original_state(encoder, extra):
    return {**{"deberta." + k: v for k, v in encoder.state_dict().items()}, **extra}


@pytest.mark.parametrize("name", list(ORIGINAL_CONFIGS))
def test_emd_equals_the_original_layer_modules(name):
    config, encoder, extra = _original_mlm(name)
    ids, mask = _inputs()
    expected_states, expected_logits = _original_emd(config, encoder, extra, ids, mask)
    ours = dt.DebertaV2ForMaskedLM(DebertaV2Config(**config, use_emd=True, legacy=False))
    info = ours.load_checkpoint_state(_original_state(encoder, extra), strict=True)
    assert info.ignored == [] and info.missing == []
    keep = mask.bool()
    for attn in ("sdpa", "eager"):
        ours.eval().set_attn_implementation(attn)
        with torch.no_grad():
            out = ours(ids, attention_mask=mask, output_hidden_states=True)
            states = enhanced_mask_decoder(ours.deberta, out.hidden_states[-2], mask)
        assert float((states[keep] - expected_states[keep]).abs().max()) < 2e-5, attn
        assert float((out.logits[keep] - expected_logits[keep]).abs().max()) < 2e-5, attn


def test_original_checkpoint_fill_mask_gives_the_original_logits(tmp_path):
    """A microsoft/DeBERTa-style MLM checkpoint (pytorch_model.bin + model_config.json, `deberta.` keys,
    `lm_predictions.lm_head`, an absolute table with position_biased_input False) read with use_emd=True."""
    tokenizer = DebertaV2TokenizerFast.from_pretrained(data_path("tokenizers", "deberta-v3"))
    config = {**ORIGINAL_SIZES, **ORIGINAL_CONFIGS["v3_shape"], "vocab_size": 128100}
    torch.manual_seed(0)
    encoder = randomised(orig.DeBERTa(orig.ModelConfig.from_dict(config)), 0)
    H = config["hidden_size"]
    generator = torch.Generator().manual_seed(3)
    extra = {"deberta.embeddings.position_embeddings.weight": 0.1 * torch.randn(64, H, generator=generator)}
    for key, shape in (("dense.weight", (H, H)), ("dense.bias", (H,)), ("LayerNorm.bias", (H,)), ("bias", (128100,))):
        extra["lm_predictions.lm_head." + key] = 0.1 * torch.randn(*shape, generator=generator)
    extra["lm_predictions.lm_head.LayerNorm.weight"] = torch.ones(H)
    torch.save(_original_state(encoder, extra), tmp_path / "pytorch_model.bin")
    (tmp_path / "model_config.json").write_text(json.dumps({k: v for k, v in config.items()
                                                            if k != "layer_norm_eps"}))  # left to the default

    ours, info = dt.DebertaV2ForMaskedLM.from_pretrained(tmp_path, use_emd=True, output_loading_info=True, strict=True)
    assert ours.config.use_emd and not ours.config.legacy
    assert not any("position_embeddings" in k for k in info.ignored)
    texts = ["The capital of France is [MASK].", "He had a guest [MASK] in the series."]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    _, expected = _original_emd(config, encoder, extra, batch["input_ids"], batch["attention_mask"])
    with torch.no_grad():
        logits = ours(**batch).logits
    at_mask = batch["input_ids"] == tokenizer.mask_token_id
    assert float((logits[at_mask] - expected[at_mask]).abs().max()) < 2e-5

    fill = pipeline("fill-mask", model=ours, tokenizer=tokenizer, top_k=5)
    for text, row, results in zip(texts, expected[at_mask], fill(texts)):
        probs = torch.softmax(row, -1)
        top = torch.topk(probs, 5)
        assert [r["token"] for r in results] == top.indices.tolist(), text
        np.testing.assert_allclose([r["score"] for r in results], top.values.numpy(), rtol=1e-4, atol=1e-7)

    plain = dt.DebertaV2ForMaskedLM.from_pretrained(tmp_path)  # without the knob: today's (reference) behaviour
    assert not plain.config.use_emd and plain.deberta.embeddings.position_embeddings is None


# -------------------------------------------------------------------------------------- torch and Keras
@pytest.mark.parametrize("variant", ["v3_buckets_shared", "v2_conv_unshared", "v1_rel", "v1_c2p_talking"])
def test_torch_and_keras_decode_alike(variant):
    deberta_tf = pytest.importorskip("deberta_tf")
    cfg = _config(variant)
    torch_cls = dt.DebertaForMaskedLM if cfg.family == "v1" else dt.DebertaV2ForMaskedLM
    keras_cls = deberta_tf.TFDebertaForMaskedLM if cfg.family == "v1" else deberta_tf.TFDebertaV2ForMaskedLM
    model = randomised(torch_cls(cfg), seed=4)
    keras_model = keras_cls(cfg)
    keras_model.load_checkpoint_state({k: v.numpy() for k, v in model.state_dict().items()}, strict=True)
    ids, mask = _inputs()
    labels = torch.where(torch.rand(ids.shape, generator=torch.Generator().manual_seed(5)) < 0.2, ids, -100)
    with torch.no_grad():
        expected = model(ids, attention_mask=mask, labels=labels)
    got = keras_model(ids.numpy(), attention_mask=mask.numpy(), labels=labels.numpy())
    keep = mask.bool().numpy()
    assert np.abs(np.asarray(got.logits)[keep] - expected.logits.numpy()[keep]).max() < 1e-5
    assert abs(float(got.loss) - float(expected.loss)) < 1e-5
    assert got.hidden_states is None and expected.hidden_states is None
    names = {w.name for w in tf_weights(cfg, "masked_lm").values()}
    assert names == set(keras_model._variables_by_name())


def test_use_emd_config_and_weight_names():
    cfg = _config("v3_buckets_shared")
    assert cfg.to_dict()["use_emd"] is True
    assert "use_emd" not in DebertaV2Config(**variant_config_kwargs("v3_buckets_shared")[1]).to_dict()
    assert DebertaV2Config.from_dict(cfg.to_dict()).use_emd
    keys = model_weights(cfg, "masked_lm")
    assert keys["deberta.embeddings.position_embeddings.weight"].shape == (cfg.max_position_embeddings, cfg.hidden_size)
    assert set(keys) == set(dt.DebertaV2ForMaskedLM(cfg).state_dict())
    assert "embeddings.position_embeddings.weight" not in model_weights(cfg)  # the other classes hold no table
    assert dt.DebertaV2Model(cfg).embeddings.position_embeddings is None
    _, kwargs = variant_config_kwargs("v2_c2p_only_abs")
    with pytest.raises(ValueError, match="use_emd needs position_biased_input=False"):
        DebertaV2Config(**kwargs, use_emd=True)
    _, kwargs = variant_config_kwargs("v2_nobuckets_types_embproj")
    with pytest.raises(ValueError, match="use_emd needs embedding_size == hidden_size"):
        DebertaV2Config(**kwargs, use_emd=True)
