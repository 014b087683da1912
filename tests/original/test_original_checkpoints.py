"""Original microsoft/DeBERTa checkpoints, in each on-disk form, against the original package's own forward.

The truth is PyPI `DeBERTa==0.1.12` (test-only, imported through tests/original/shim.py): it builds a model
from a config that leaves keys out, its weights are randomised and saved the way it saves them, then
`deberta-convert` and `from_pretrained` read that checkpoint and must compute what the original computes.
Rows of padded query positions are left out of the comparison: the original zeroes them, we follow the
current reference (DECISIONS.md 1).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import deberta_torch as dt
from conversion.__main__ import main as convert_main
from conversion.sources import read_checkpoint
from conversion.verify import unaccounted_tensors
from deberta_core.original import ORIGINAL_DEFAULTS
from tests.original.shim import load_original

orig, OriginalClassifier = load_original()

SIZES = dict(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
             max_position_embeddings=64)
# Configs as a user of the original writes them: each leaves out keys whose original default differs from
# (or coincides with) the Hugging Face one; the comments say which default each case leans on.
CONFIGS = {
    # pos_att_type left out: the original means c2p, Hugging Face means none (the reported bug)
    "c2p_by_default": dict(relative_attention=True, max_relative_positions=16),
    # v3-shaped, but share_att_key / type_vocab_size / hidden_act / layer_norm_eps left out
    "v3_shape": dict(relative_attention=True, pos_att_type="p2c|c2p", position_buckets=8, max_relative_positions=32,
                     norm_rel_ebd="layer_norm", position_biased_input=False),
    # unshared position projections (share_att_key left out) and the conv layer with conv_act/groups left out
    "conv_unshared": dict(relative_attention=True, pos_att_type="c2p|p2c", conv_kernel_size=3,
                          max_relative_positions=24, type_vocab_size=2),
    # nothing but sizes: no relative attention, absolute positions on (both by default)
    "sizes_only": dict(),
    # embedding_size != hidden_size, max_relative_positions left out (falls back to max_position_embeddings)
    "embed_proj": dict(relative_attention=True, pos_att_type="c2p", embedding_size=16, position_buckets=16,
                       share_att_key=True),
}
FORMS = ("release", "cache", "embedded")
SEQ = 40


def _original_config(extra):
    return orig.ModelConfig.from_dict({**SIZES, **extra})


def _randomise(model, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            base = 1.0 if "LayerNorm.weight" in name else 0.0
            param.copy_(base + 0.1 * torch.randn(param.shape, generator=generator))
    return model.eval()


def _inputs(types: bool):
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(4, SIZES["vocab_size"], (2, SEQ), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 27:] = 0
    type_ids = (torch.arange(SEQ) >= 20).long().expand(2, -1) if types else torch.zeros_like(ids)
    return ids, mask, type_ids


def _save(state: dict, config: dict, directory, form: str):
    directory.mkdir(parents=True, exist_ok=True)
    if form == "embedded":
        torch.save({**state, "config": config}, directory / "pytorch.model.bin")
        return directory
    torch.save(state, directory / ("pytorch.model.bin" if form == "release" else "pytorch_model.bin"))
    (directory / "model_config.json").write_text(json.dumps(config))
    return directory


def _original_encoder(name, seed=0):
    torch.manual_seed(seed)
    return _randomise(orig.DeBERTa(_original_config(CONFIGS[name])), seed)


def _real_rows(a, b, mask):
    keep = mask.bool()
    return float((a[keep] - b[keep]).abs().max())


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_encoder_converts_to_what_the_original_computes(name, form, attn, tmp_path, capsys):
    encoder = _original_encoder(name)
    ids, mask, types = _inputs(CONFIGS[name].get("type_vocab_size", 0) > 0)
    with torch.no_grad():
        expected = encoder(ids, mask, token_type_ids=types, output_all_encoded_layers=True)
    src = _save(encoder.state_dict(), {**SIZES, **CONFIGS[name]}, tmp_path / "orig", form)

    assert convert_main([str(src), str(tmp_path / "pt"), "--to", "torch", "--verify"]) == 0
    log = capsys.readouterr().out
    assert "verify: OK" in log
    report = (tmp_path / "pt" / "conversion_report.txt").read_text()
    for key in ORIGINAL_DEFAULTS:
        if key not in CONFIGS[name] and key not in SIZES:
            assert f"defaulted   {key} = " in report, f"{key} not reported as defaulted"

    for model in (dt.DebertaV2Model.from_pretrained(tmp_path / "pt", attn_implementation=attn),
                  dt.DebertaV2Model.from_pretrained(src, attn_implementation=attn)):  # the original form directly
        with torch.no_grad():
            out = model(ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
        assert len(out.hidden_states) == len(expected) + 1
        for layer, (ours, theirs) in enumerate(zip(out.hidden_states[1:], expected)):
            assert _real_rows(ours, theirs, mask) < 2e-5, f"layer {layer}"


@pytest.mark.parametrize("name", ["c2p_by_default", "v3_shape"])
def test_classifier_converts_to_what_the_original_computes(name, tmp_path):
    """SequenceClassificationModel (`deberta.` prefix, pooler, classifier; `pooling` in the config)."""
    torch.manual_seed(0)
    config = {**SIZES, **CONFIGS[name], "pooling": {"hidden_act": "gelu"}}
    model = _randomise(OriginalClassifier(orig.ModelConfig.from_dict(config), num_labels=3), 2)
    ids, mask, types = _inputs(False)
    with torch.no_grad():
        expected, _ = model(ids, type_ids=types, input_mask=mask)
    src = _save(model.state_dict(), config, tmp_path / "orig", "cache")
    assert convert_main([str(src), str(tmp_path / "pt"), "--to", "torch", "--model-class",
                         "ForSequenceClassification"]) == 0
    for directory in (tmp_path / "pt", src):
        ours = dt.DebertaV2ForSequenceClassification.from_pretrained(directory)
        with torch.no_grad():
            logits = ours(ids, attention_mask=mask, token_type_ids=types).logits
        assert float((logits - expected).abs().max()) < 2e-5


def _v1_release_state(encoder) -> dict:
    """The v1 release layout of an encoder the original built: W_q/W_k/W_v interleaved per head in `in_proj`,
    `q_bias`/`v_bias`, `pos_proj` without bias. The original reads it back through its own load hook
    (`DisentangledSelfAttention._pre_load_hook`)."""
    heads = SIZES["num_attention_heads"]
    state = {}
    for key, value in encoder.state_dict().items():
        prefix, _, leaf = key.rpartition("attention.self.")
        if not prefix:
            state[key] = value
            continue
        att = prefix + "attention.self."
        if leaf == "query_proj.weight":
            w = [encoder.state_dict()[f"{att}{p}_proj.weight"] for p in ("query", "key", "value")]
            per_head = torch.stack([x.view(heads, -1, x.shape[-1]) for x in w], dim=1)  # (H, 3, D, C)
            state[att + "in_proj.weight"] = per_head.reshape(-1, w[0].shape[-1])
        elif leaf == "query_proj.bias":
            state[att + "q_bias"] = value
        elif leaf == "value_proj.bias":
            state[att + "v_bias"] = value
        elif leaf == "pos_key_proj.weight":
            state[att + "pos_proj.weight"] = value
        elif leaf.startswith("pos_query_proj."):
            state[att + "pos_q_proj." + leaf.rsplit(".", 1)[1]] = value
    return state


@pytest.mark.parametrize("form", FORMS)
def test_v1_release_layout_converts_to_what_the_original_computes(form, tmp_path):
    config = {**SIZES, "relative_attention": True, "pos_att_type": "c2p|p2c", "max_relative_positions": 16}
    torch.manual_seed(0)
    built = _randomise(orig.DeBERTa(orig.ModelConfig.from_dict(config)), 3)
    with torch.no_grad():  # v1 has no key biases; the original's hook keeps its own, so make them zero
        for name, param in built.named_parameters():
            if name.endswith(("attention.self.key_proj.bias", "attention.self.pos_key_proj.bias")):
                param.zero_()
    v1_state = _v1_release_state(built)
    original = orig.DeBERTa(orig.ModelConfig.from_dict(config)).eval()
    with torch.no_grad():
        for name, param in original.named_parameters():
            if name.endswith("_proj.bias") and "attention.self" in name:
                param.zero_()
    original.load_state_dict(dict(v1_state))  # through the original's v1 hook
    ids, mask, types = _inputs(False)
    with torch.no_grad():
        expected = original(ids, mask, token_type_ids=types)
    src = _save(v1_state, config, tmp_path / "orig", form)
    assert read_checkpoint(src).config.family == "v1"
    assert convert_main([str(src), str(tmp_path / "pt"), "--to", "torch"]) == 0
    for model in (dt.DebertaModel.from_pretrained(tmp_path / "pt"), dt.DebertaModel.from_pretrained(src)):
        with torch.no_grad():
            out = model(ids, attention_mask=mask, output_hidden_states=True)
        for ours, theirs in zip(out.hidden_states[1:], expected):
            assert _real_rows(ours, theirs, mask) < 2e-5
    assert convert_main([str(src), str(tmp_path / "v2"), "--to", "torch", "--family", "v2"]) == 0
    with torch.no_grad():
        out = dt.DebertaV2Model.from_pretrained(tmp_path / "v2")(ids, attention_mask=mask, output_hidden_states=True)
    assert _real_rows(out.last_hidden_state, expected[-1], mask) < 2e-5


def test_keras_reads_the_original_form_too(tmp_path):
    deberta_tf = pytest.importorskip("deberta_tf")
    encoder = _original_encoder("c2p_by_default")
    ids, mask, types = _inputs(False)
    with torch.no_grad():
        expected = encoder(ids, mask)[-1]
    src = _save(encoder.state_dict(), {**SIZES, **CONFIGS["c2p_by_default"]}, tmp_path / "orig", "embedded")
    model = deberta_tf.TFDebertaV2Model.from_pretrained(src)
    out = model({"input_ids": ids.numpy(), "attention_mask": mask.numpy()}, training=False)
    ours = torch.from_numpy(np.array(out.last_hidden_state))
    assert _real_rows(ours, expected, mask) < 2e-5
    assert convert_main([str(src), str(tmp_path / "tf"), "--to", "tf", "--verify"]) == 0


def test_an_unused_source_tensor_fails_loudly(tmp_path, capsys):
    encoder = _original_encoder("c2p_by_default")
    state = dict(encoder.state_dict())
    state["encoder.layer.1.attention.self.extra_proj.weight"] = torch.zeros(32, 32)
    src = _save(state, {**SIZES, **CONFIGS["c2p_by_default"]}, tmp_path / "orig", "cache")
    assert convert_main([str(src), str(tmp_path / "pt"), "--to", "torch"]) == 1
    assert "encoder.layer.1.attention.self.extra_proj.weight" in capsys.readouterr().err
    assert not (tmp_path / "pt").exists()
    with pytest.raises(ValueError, match="extra_proj"):
        dt.DebertaV2Model.from_pretrained(src)


def test_a_config_that_does_not_describe_the_weights_fails_loudly(tmp_path, capsys):
    """relative_attention left out means off in the original too: the relative tensors are then unused, an
    error that says which defaults were taken, not a silent drop."""
    encoder = _original_encoder("c2p_by_default")
    config = {k: v for k, v in {**SIZES, **CONFIGS["c2p_by_default"]}.items() if k != "relative_attention"}
    src = _save(encoder.state_dict(), config, tmp_path / "orig", "release")
    assert convert_main([str(src), str(tmp_path / "pt"), "--to", "torch"]) == 1
    err = capsys.readouterr().err
    assert "pos_key_proj.weight" in err and "rel_embeddings" in err and "relative_attention" in err


def test_verify_catches_a_misread_config(tmp_path):
    """Read with Hugging Face defaults instead (the bug): verify's accounting names the dropped tensors,
    although both sides of its output comparison would agree."""
    encoder = _original_encoder("c2p_by_default")
    src = _save(encoder.state_dict(), {**SIZES, **CONFIGS["c2p_by_default"]}, tmp_path / "orig", "cache")
    ckpt = read_checkpoint(src)
    assert unaccounted_tensors(ckpt, None) == []
    ckpt.config = ckpt.config.copy(pos_att_type=None)  # what Hugging Face defaults make of this config
    assert sorted(unaccounted_tensors(ckpt, None)) == [
        f"encoder.layer.{i}.attention.self.pos_key_proj.{p}" for i in range(2) for p in ("bias", "weight")]


def test_heads_left_out_on_purpose_are_listed(tmp_path):
    torch.manual_seed(0)
    config = {**SIZES, **CONFIGS["v3_shape"]}
    model = _randomise(OriginalClassifier(orig.ModelConfig.from_dict(config), num_labels=2), 4)
    state = {**model.state_dict(), "lm_predictions.lm_head.bias": torch.zeros(SIZES["vocab_size"])}
    src = _save(state, config, tmp_path / "orig", "release")
    assert convert_main([str(src), str(tmp_path / "pt"), "--to", "torch", "--model-class", "Model", "--verify"]) == 0
    report = (tmp_path / "pt" / "conversion_report.txt").read_text()
    for key in ("pooler.dense.weight", "classifier.weight", "lm_predictions.lm_head.bias"):
        assert f"left out    {key} (" in report


def test_family_v2_on_a_v2_checkpoint_is_a_no_op(tmp_path, capsys):
    encoder = _original_encoder("v3_shape")
    src = _save(encoder.state_dict(), {**SIZES, **CONFIGS["v3_shape"]}, tmp_path / "orig", "cache")
    assert convert_main([str(src), str(tmp_path / "pt"), "--to", "torch", "--family", "v2", "--verify"]) == 0
    assert "already in the DeBERTa-v2 layout" in capsys.readouterr().out


def test_the_original_defaults_are_the_original_packages():
    """Every default we apply is what the original package itself falls back to."""
    config = orig.ModelConfig.from_dict({**SIZES})
    attention = orig.DisentangledSelfAttention(orig.ModelConfig.from_dict({**SIZES, "relative_attention": True}))
    assert attention.pos_att_type == [ORIGINAL_DEFAULTS["pos_att_type"]]
    assert attention.share_att_key is ORIGINAL_DEFAULTS["share_att_key"]
    assert attention.position_buckets == ORIGINAL_DEFAULTS["position_buckets"]
    encoder = orig.BertEncoder(config)
    assert encoder.relative_attention is ORIGINAL_DEFAULTS["relative_attention"]
    assert encoder.norm_rel_ebd == [ORIGINAL_DEFAULTS["norm_rel_ebd"]] and not encoder.with_conv
    assert orig.BertEmbeddings(config).position_biased_input is ORIGINAL_DEFAULTS["position_biased_input"]
    for key in ("hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "type_vocab_size",
                "initializer_range", "layer_norm_eps", "padding_idx"):
        assert getattr(orig.ModelConfig(), key) == ORIGINAL_DEFAULTS[key], key
