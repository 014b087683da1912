"""Checkpoint loading and saving: layouts, key rules, sharding, dtypes, atomic saves, clear errors."""

import json

import pytest
import torch
import transformers as tr
from safetensors.torch import load_file

import deberta_torch as dt
from tests.cases import variant_config_kwargs

ORIGINAL = {"v1": "v1_rel", "v2": "v3_buckets_shared"}


def _ref(variant, cls_name, **extra):
    family, cfg = variant_config_kwargs(variant)
    prefix = "Deberta" if family == "v1" else "DebertaV2"
    torch.manual_seed(0)
    model = getattr(tr, prefix + cls_name)(getattr(tr, prefix + "Config")(**{**cfg, **extra})).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("deberta."):
                p.add_(torch.randn_like(p) * 0.02)
    return family, prefix, model


def _ids():
    ids = torch.randint(4, 100, (2, 20), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 14:] = 0
    return ids, mask


@pytest.mark.parametrize("family", ["v1", "v2"])
def test_original_layout_checkpoint_loads_with_its_mlm_head(family, tmp_path):
    """Prefix-less base keys, LayerNorm gamma/beta, `lm_predictions.lm_head`, an unused absolute position
    table and the v3 `mask_predictions` head: the microsoft/DeBERTa layout."""
    # The reference crashes with legacy=False and tied embeddings (SPEC §3.1), so it runs untied; the
    # original head reads the word embeddings directly either way.
    _, prefix, ref = _ref(ORIGINAL[family], "ForMaskedLM", legacy=False, tie_word_embeddings=False)
    H = ref.config.hidden_size
    state = {}
    for key, value in ref.state_dict().items():
        key = key.removeprefix("deberta.")
        if "LayerNorm." in key:
            key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        state[key] = value.clone()
    state["embeddings.position_embeddings.weight"] = torch.randn(64, H)
    state["mask_predictions.dense.weight"] = torch.randn(H, H)
    state["mask_predictions.classifier.bias"] = torch.randn(1)
    assert not any(k.startswith("cls.") for k in state)
    torch.save(state, tmp_path / "pytorch_model.bin")
    config = ref.config.to_dict()
    config["legacy"] = True  # the checkpoint's keys decide the head layout, not this flag
    (tmp_path / "config.json").write_text(json.dumps(config))

    ours, info = getattr(dt, prefix + "ForMaskedLM").from_pretrained(tmp_path, output_loading_info=True, strict=True)
    assert ours.config.legacy is False and hasattr(ours, "lm_predictions")
    assert info.missing == [] and info.unexpected == []
    assert "embeddings.position_embeddings.weight" in info.ignored
    assert {"mask_predictions.dense.weight", "mask_predictions.classifier.bias"} <= set(info.ignored)
    ids, mask = _ids()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, attention_mask=mask).logits, ref(ids, attention_mask=mask).logits,
                                   atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", ["v1", "v2"])
def test_legacy_mlm_head_is_tied_to_word_embeddings(family, tmp_path):
    _, prefix, ref = _ref(ORIGINAL[family], "ForMaskedLM")
    ref.save_pretrained(tmp_path)
    ours = getattr(dt, prefix + "ForMaskedLM").from_pretrained(tmp_path, strict=True)
    ids, mask = _ids()
    with torch.no_grad():
        before = ours(ids).logits
        ours.deberta.embeddings.word_embeddings.weight[7] += 1.0  # the decoder row for token 7 moves too
        after = ours(ids).logits
    changed = (after - before).abs().amax(dim=(0, 1)) > 0
    assert changed[7] and changed.sum() < ours.config.vocab_size


@pytest.mark.parametrize("fmt", ["sharded_safetensors", "pytorch_bin", "sharded_bin"])
def test_other_checkpoint_formats_load(fmt, tmp_path):
    _, prefix, ref = _ref("v3_buckets_shared", "ForSequenceClassification")
    kwargs = {"sharded_safetensors": dict(max_shard_size="20KB"),
              "pytorch_bin": dict(safe_serialization=False),
              "sharded_bin": dict(safe_serialization=False, max_shard_size="20KB")}[fmt]
    ref.save_pretrained(tmp_path, **kwargs)
    names = {p.name for p in tmp_path.iterdir()}
    assert ("index.json" in " ".join(names)) == fmt.startswith("sharded")
    ours = dt.DebertaV2ForSequenceClassification.from_pretrained(tmp_path, strict=True)
    ids, mask = _ids()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, attention_mask=mask).logits, ref(ids, attention_mask=mask).logits,
                                   atol=1e-5, rtol=0)


def test_base_checkpoint_into_head_model_reports_missing_head_keys(tmp_path):
    _, _, ref = _ref("v3_buckets_shared", "Model")
    ref.save_pretrained(tmp_path)
    model, info = dt.DebertaV2ForSequenceClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert sorted(info.missing) == ["classifier.bias", "classifier.weight", "pooler.dense.bias", "pooler.dense.weight"]
    assert info.unexpected == []
    torch.testing.assert_close(model.deberta.embeddings.word_embeddings.weight, ref.embeddings.word_embeddings.weight)
    with pytest.raises(ValueError, match=r"missing keys \[.*classifier\.bias"):
        dt.DebertaV2ForSequenceClassification.from_pretrained(tmp_path, strict=True)


def test_head_checkpoint_into_base_model_reports_unexpected_keys(tmp_path):
    _, _, ref = _ref("v3_buckets_shared", "ForTokenClassification")
    ref.save_pretrained(tmp_path)
    model, info = dt.DebertaV2Model.from_pretrained(tmp_path, output_loading_info=True)
    assert info.missing == [] and sorted(info.unexpected) == ["classifier.bias", "classifier.weight"]
    with pytest.raises(ValueError, match=r"unexpected keys \['classifier"):
        dt.DebertaV2Model.from_pretrained(tmp_path, strict=True)


def test_unknown_key_is_refused_when_strict(tmp_path):
    _, _, ref = _ref("v1_rel", "Model")
    state = dict(ref.state_dict())
    state["mystery.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "pytorch_model.bin")
    ref.config.to_json_file(tmp_path / "config.json")
    _, info = dt.DebertaModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info.unexpected == ["mystery.weight"]
    with pytest.raises(ValueError, match="mystery"):
        dt.DebertaModel.from_pretrained(tmp_path, strict=True)


def test_unused_encoder_tensor_is_always_an_error(tmp_path):
    """A tensor inside the encoder that the config does not describe is never dropped, strict or not."""
    _, _, ref = _ref("v1_rel", "Model")
    state = dict(ref.state_dict())
    state["encoder.layer.0.attention.self.mystery.weight"] = torch.zeros(2)
    torch.save(state, tmp_path / "pytorch_model.bin")
    ref.config.to_json_file(tmp_path / "config.json")
    with pytest.raises(ValueError, match=r"dropped that DebertaModel should use: \['encoder.layer.0.attention.self.mystery"):
        dt.DebertaModel.from_pretrained(tmp_path)


def test_shape_mismatch_is_an_error_unless_ignored(tmp_path):
    _, _, ref = _ref("v3_buckets_shared", "ForSequenceClassification")
    ref.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"classifier.weight: checkpoint \(2, 32\) vs model \(5, 32\)"):
        dt.DebertaV2ForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    model, info = dt.DebertaV2ForSequenceClassification.from_pretrained(
        tmp_path, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
    assert {k for k, _, _ in info.mismatched} == {"classifier.weight", "classifier.bias"}
    assert model.classifier.weight.shape == (5, 32)


def test_wrong_family_config_is_refused(tmp_path):
    _, _, ref = _ref("v1_rel", "Model")
    ref.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="model_type 'deberta' .*use DebertaConfig"):
        dt.DebertaV2Model.from_pretrained(tmp_path)
    with pytest.raises(TypeError, match="DebertaV2Model needs a DebertaV2Config, got DebertaConfig"):
        dt.DebertaV2Model(dt.DebertaConfig(hidden_size=32, num_attention_heads=4, num_hidden_layers=1,
                                           intermediate_size=8, vocab_size=10))


def test_corrupt_and_missing_files_get_clear_errors(tmp_path):
    _, _, ref = _ref("v3_buckets_shared", "Model")
    ref.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match="corrupt checkpoint file .*model.safetensors"):
        dt.DebertaV2Model.from_pretrained(tmp_path)
    weights.unlink()
    with pytest.raises(FileNotFoundError, match="no weights in .*model.safetensors.*pytorch_model.bin"):
        dt.DebertaV2Model.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        dt.DebertaV2Model.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no model directory at /nonexistent/model"):
        dt.DebertaV2Model.from_pretrained("/nonexistent/model")


def test_tf_only_directory_loads(tmp_path):
    """A directory with only tf_model.h5 (the reference TF layout) loads in torch to the same function."""
    from conversion.convert import convert
    from conversion.sources import read_checkpoint

    _, _, ref = _ref("v3_buckets_shared", "ForSequenceClassification")
    ref.save_pretrained(tmp_path / "pt")
    convert(read_checkpoint(tmp_path / "pt"), tmp_path / "tf", "tf")
    assert not list((tmp_path / "tf").glob("*.safetensors"))
    ids, mask = _ids()
    ours = dt.DebertaV2ForSequenceClassification.from_pretrained(tmp_path / "tf", strict=True)
    with torch.no_grad():
        assert torch.allclose(ours(ids, attention_mask=mask).logits, ref(ids, attention_mask=mask).logits, atol=1e-6)
    (tmp_path / "tf" / "tf_model.h5").write_bytes(b"\x89HDF\r\n")
    with pytest.raises(ValueError, match="corrupt TF checkpoint .*tf_model.h5"):
        dt.DebertaV2Model.from_pretrained(tmp_path / "tf")


@pytest.mark.parametrize("variant,head", [("v1_rel", "ForMaskedLM"), ("v2_conv_unshared", "ForQuestionAnswering"),
                                          ("v3_buckets_shared", "ForMultipleChoice")])
def test_our_save_loads_in_the_reference(variant, head, tmp_path):
    family, prefix, _ = _ref(variant, "Model")
    _, cfg = variant_config_kwargs(variant)
    torch.manual_seed(1)
    ours = getattr(dt, prefix + head)(getattr(dt, prefix + "Config")(**cfg)).eval()
    ours.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    ref, info = getattr(tr, prefix + head).from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    ids, mask = _ids()
    if head == "ForMultipleChoice":
        ids, mask = ids[:, None].repeat(1, 2, 1), mask[:, None].repeat(1, 2, 1)
    with torch.no_grad():
        a, b = ref(ids, attention_mask=mask), ours(ids, attention_mask=mask)
    for key in a.keys():
        torch.testing.assert_close(b[key], a[key], atol=1e-5, rtol=0)
    # And back into ours, bit for bit.
    again = getattr(dt, prefix + head).from_pretrained(tmp_path, strict=True)
    for (k, v), (k2, v2) in zip(ours.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def test_save_is_atomic(tmp_path, monkeypatch):
    _, cfg = variant_config_kwargs("v3_buckets_shared")
    model = dt.DebertaV2Model(dt.DebertaV2Config(**cfg))
    model.save_pretrained(tmp_path)
    good = (tmp_path / "model.safetensors").read_bytes()

    def exploding_save(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half a file")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr("deberta_torch.pretrained.save_file", exploding_save)
    with torch.no_grad():
        model.embeddings.word_embeddings.weight.add_(1.0)
    with pytest.raises(KeyboardInterrupt):
        model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("variant,prefix", [("v1_rel", "Deberta"), ("v3_buckets_shared", "DebertaV2")])
def test_bfloat16_builds_and_runs(variant, prefix, tmp_path):
    """Every parameter in the model dtype (the reference leaves v1 q_bias/v_bias in fp32 and crashes)."""
    _, _, ref = _ref(variant, "ForSequenceClassification")
    ref.save_pretrained(tmp_path)
    cls = getattr(dt, prefix + "ForSequenceClassification")
    fp32 = cls.from_pretrained(tmp_path)
    bf16 = cls.from_pretrained(tmp_path, torch_dtype="bfloat16")
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    cast = cls.from_pretrained(tmp_path).to(torch.bfloat16)
    assert {p.dtype for p in cast.parameters()} == {torch.bfloat16}
    ids, mask = _ids()
    with torch.no_grad():
        a = fp32(ids, attention_mask=mask).logits
        b = bf16(ids, attention_mask=mask, labels=torch.tensor([0, 1]))
        c = cast(ids, attention_mask=mask).logits
    assert b.logits.dtype == torch.bfloat16 and torch.isfinite(b.loss)
    torch.testing.assert_close(b.logits.float(), a, atol=0.05, rtol=0.05)
    torch.testing.assert_close(c, b.logits)
    # Built fresh in bf16 with the default dtype, too.
    torch.set_default_dtype(torch.bfloat16)
    try:
        fresh = cls(getattr(dt, prefix + "Config")(**variant_config_kwargs(variant)[1]))
    finally:
        torch.set_default_dtype(torch.float32)
    assert {p.dtype for p in fresh.parameters()} == {torch.bfloat16}


@pytest.mark.parametrize("family", ["v1", "v2"])
def test_untied_legacy_decoder_loads_its_own_weight(family, tmp_path):
    _, prefix, ref = _ref(ORIGINAL[family], "ForMaskedLM", tie_word_embeddings=False)
    ref.save_pretrained(tmp_path)
    ours = getattr(dt, prefix + "ForMaskedLM").from_pretrained(tmp_path, strict=True)
    torch.testing.assert_close(ours.cls.predictions.decoder.weight, ref.cls.predictions.decoder.weight, atol=0, rtol=0)
    ids, mask = _ids()
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, attention_mask=mask).logits, ref(ids, attention_mask=mask).logits,
                                   atol=1e-5, rtol=0)
