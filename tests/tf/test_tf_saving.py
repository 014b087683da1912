"""Saving and loading in every format: tf_model.h5, PyTorch weights, get_config/from_config, `.keras`,
SavedModel export; and clear errors for checkpoints that do not fit."""

from __future__ import annotations

import json

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

import deberta_tf
from deberta_core.config import load_config
from tests.tf.tf_cases import make_batch, make_config
from tests.tf.tf_helpers import ALL_TF_CLASSES, max_diff, model_inputs, tf_class, torch_model

VARIANT = {"v1": "v1_abs_types", "v2": "v2_conv_unshared"}


def _model(family, head, **overrides):
    settings = {"type_vocab_size": 2, "num_labels": 2 if head == "question_answering" else 3, **overrides}
    config = make_config(VARIANT[family], **settings)
    keras.utils.set_random_seed(7)
    return tf_class(family, head)(config)


def _main(out):
    """The main output tensor: last_hidden_state, logits or start_logits."""
    for name in ("last_hidden_state", "logits", "start_logits"):
        if name in out:
            return out[name]
    raise AssertionError(out)


@pytest.mark.parametrize("family,head", ALL_TF_CLASSES)
def test_save_pretrained_round_trip(family, head, tmp_path):
    model = _model(family, head)
    inputs = model_inputs(head, model.config, labels=False)
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "tf_model.h5"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == [type(model).__name__.removeprefix("TF")]
    assert load_config(tmp_path) == model.config.copy(architectures=config["architectures"])
    reloaded, info = type(model).from_pretrained(tmp_path, output_loading_info=True)
    assert info.as_dict() == {"missing_keys": [], "unexpected_keys": [], "ignored_keys": [], "mismatched_keys": []}
    assert max_diff(_main(model(inputs)), _main(reloaded(inputs))) == 0.0


@pytest.mark.parametrize("family,head", ALL_TF_CLASSES)
def test_keras_config_and_keras_file_round_trip(family, head, tmp_path):
    model = _model(family, head)
    inputs = model_inputs(head, model.config, labels=False)
    clone = type(model).from_config(model.get_config())
    assert type(clone) is type(model) and clone.config == model.config and clone.name == model.name
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(reloaded) is type(model) and reloaded.config == model.config
    assert max_diff(_main(model(inputs)), _main(reloaded(inputs))) == 0.0


@pytest.mark.parametrize("family,head", [("v2", "multiple_choice"), ("v1", "base")])
def test_export_saved_model_with_named_inputs(family, head, tmp_path):
    """(batch, choices, sequence) inputs with token types; (batch, sequence) without them."""
    model = _model(family, head, **({} if head == "multiple_choice" else {"type_vocab_size": 0}))
    inputs = model_inputs(head, model.config, labels=False)
    model.export(tmp_path / "saved", verbose=False)
    serve = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"]
    expected_names = {"input_ids", "attention_mask"} | ({"token_type_ids"} if model.config.type_vocab_size else set())
    assert set(serve.structured_input_signature[1]) == expected_names
    out = serve(**{k: tf.constant(v, tf.int32) for k, v in inputs.items()})
    reference = model(inputs)
    for name, value in out.items():
        assert max_diff(reference[name], value) < 1e-6
    # another sequence length through the same signature
    short = {k: tf.constant(v[..., :7], tf.int32) for k, v in inputs.items()}
    assert max_diff(_main(model(short)), _main(serve(**short))) < 1e-6


@pytest.mark.parametrize("fmt", ["safetensors", "pytorch"])
@pytest.mark.parametrize("family,head", [("v2", "masked_lm"), ("v1", "sequence_classification")])
def test_from_pytorch_weights(fmt, family, head, tmp_path):
    config = make_config(VARIANT[family], num_labels=3)
    pt = torch_model(config, head)
    pt.save_pretrained(tmp_path)
    if fmt == "pytorch":
        (tmp_path / "model.safetensors").unlink()
        torch.save(pt.state_dict(), tmp_path / "pytorch_model.bin")
    model, info = tf_class(family, head).from_pretrained(tmp_path, output_loading_info=True)
    assert info.missing == [] and info.unexpected == []
    inputs = model_inputs(head, config, labels=False)
    with torch.no_grad():
        expected = pt(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits
    assert max_diff(expected, model(inputs).logits) < 1e-5


def test_bfloat16_and_tf_named_safetensors(tmp_path):
    """bfloat16 PyTorch weights (numpy has no bfloat16) and safetensors written by the reference TF classes
    (TF names, metadata format "tf") both load."""
    from safetensors.numpy import save_file

    from deberta_core.tf_names import tf_weights

    config = make_config("v2_conv_unshared", num_labels=3)
    pt = torch_model(config, "sequence_classification").to(torch.bfloat16)
    pt.save_pretrained(tmp_path / "bf16")
    model = deberta_tf.TFDebertaV2ForSequenceClassification.from_pretrained(tmp_path / "bf16", strict=True)
    embeddings = pt.deberta.embeddings.word_embeddings.weight.detach().float().numpy()
    np.testing.assert_array_equal(model.deberta.embeddings.word_embeddings.weight.numpy(), embeddings)

    variables = model._variables_by_name()
    named = {w.h5_name: variables[w.name].numpy() for w in tf_weights(config, "sequence_classification").values()}
    (tmp_path / "tfsafe").mkdir()
    config.save_pretrained(tmp_path / "tfsafe")
    save_file(named, str(tmp_path / "tfsafe" / "model.safetensors"), metadata={"format": "tf"})
    again = deberta_tf.TFDebertaV2ForSequenceClassification.from_pretrained(tmp_path / "tfsafe", strict=True)
    batch = make_batch(config)
    assert max_diff(model(batch).logits, again(batch).logits) == 0.0


def test_tf_weights_win_unless_from_pt(tmp_path):
    config = make_config("v2_conv_unshared", num_labels=3)
    torch_model(config, "sequence_classification").save_pretrained(tmp_path)
    keras_model = deberta_tf.TFDebertaV2ForSequenceClassification(config)
    keras_model.save_pretrained(tmp_path)  # writes tf_model.h5 beside model.safetensors
    batch = make_batch(config)
    from_tf = deberta_tf.TFDebertaV2ForSequenceClassification.from_pretrained(tmp_path)
    from_pt = deberta_tf.TFDebertaV2ForSequenceClassification.from_pretrained(tmp_path, from_pt=True)
    assert max_diff(from_tf(batch).logits, keras_model(batch).logits) == 0.0
    assert max_diff(from_pt(batch).logits, keras_model(batch).logits) > 1e-3


def test_masked_lm_layout_follows_the_checkpoint(tmp_path):
    config = make_config("v1_rel", legacy=False)
    torch_model(config, "masked_lm").save_pretrained(tmp_path)
    model = deberta_tf.TFDebertaForMaskedLM.from_pretrained(tmp_path, legacy=True)  # the keys win
    assert model.config.legacy is False and hasattr(model, "lm_predictions")


def test_base_and_task_checkpoints_load_into_each_other(tmp_path):
    config = make_config("v3_buckets_shared", num_labels=3)
    task = deberta_tf.TFDebertaV2ForSequenceClassification(config)
    task.save_pretrained(tmp_path / "task")
    base, info = deberta_tf.TFDebertaV2Model.from_pretrained(tmp_path / "task", output_loading_info=True)
    assert sorted(info.unexpected) == ["classifier.bias", "classifier.weight", "pooler.dense.bias", "pooler.dense.weight"]
    batch = make_batch(config)
    assert max_diff(base(batch).last_hidden_state, task.deberta(batch["input_ids"], attention_mask=batch["attention_mask"])[0]) == 0.0
    base.save_pretrained(tmp_path / "base")
    again, info = deberta_tf.TFDebertaV2ForSequenceClassification.from_pretrained(tmp_path / "base", output_loading_info=True)
    assert sorted(info.missing) == ["classifier.bias", "classifier.weight", "pooler.dense.bias", "pooler.dense.weight"]


def test_reads_both_spellings_of_the_v2_position_projections(tmp_path):
    """Our h5 files use the reference TF spelling (pos_proj / pos_q_proj); files with the PyTorch spelling load too."""
    config = make_config("v2_conv_unshared")
    model = deberta_tf.TFDebertaV2Model(config)
    model.save_pretrained(tmp_path)
    with h5py.File(tmp_path / "tf_model.h5") as handle:
        names = [n.decode() for n in handle["deberta"].attrs["weight_names"]]
    assert any("/attention/self/pos_proj/kernel" in n for n in names)
    assert not any("pos_key_proj" in n or "pos_query_proj" in n for n in names)
    with h5py.File(tmp_path / "tf_model.h5", "r+") as handle:  # rewrite with the PyTorch spelling
        group = handle["deberta"]
        renamed = []
        for name in names:
            new = name.replace("/pos_proj/", "/pos_key_proj/").replace("/pos_q_proj/", "/pos_query_proj/")
            if new != name:
                group.move(name, new)
            renamed.append(new.encode())
        group.attrs["weight_names"] = np.asarray(renamed)
    reloaded, info = deberta_tf.TFDebertaV2Model.from_pretrained(tmp_path, output_loading_info=True)
    assert info.missing == [] and info.unexpected == []
    batch = make_batch(config)
    assert max_diff(model(batch).last_hidden_state, reloaded(batch).last_hidden_state) == 0.0


def test_mismatched_checkpoints_are_named(tmp_path, caplog):
    config = make_config("v2_conv_unshared", num_labels=3)
    torch_model(config, "sequence_classification").save_pretrained(tmp_path)
    # shares keys (no pos_key_proj / pos_query_proj): the checkpoint's own projections would go unused,
    # which is an error strict or not (the config does not describe the weights)
    shared = make_config("v2_conv_unshared", num_labels=3, share_att_key=True)
    for strict in (True, False):
        with pytest.raises(ValueError, match="should use: .*deberta.encoder.layer.0.attention.self.pos_key_proj.weight"):
            deberta_tf.TFDebertaV2ForSequenceClassification.from_pretrained(tmp_path, config=shared, strict=strict)
    # token types the checkpoint lacks: missing, refused when strict, else named in the log
    other = make_config("v2_conv_unshared", num_labels=3, type_vocab_size=2)
    with pytest.raises(ValueError) as err:
        deberta_tf.TFDebertaV2ForSequenceClassification.from_pretrained(tmp_path, config=other, strict=True)
    message = str(err.value)
    assert "checkpoint does not fit TFDebertaV2ForSequenceClassification (strict=True)" in message
    assert "missing keys ['deberta.embeddings.token_type_embeddings.weight']" in message
    with caplog.at_level("WARNING", logger="deberta_tf"):
        _, info = deberta_tf.TFDebertaV2ForSequenceClassification.from_pretrained(
            tmp_path, config=other, output_loading_info=True)
    assert "token_type_embeddings" in caplog.text
    assert info.missing == ["deberta.embeddings.token_type_embeddings.weight"]
    with pytest.raises(ValueError, match=r"classifier.weight: checkpoint \(3, 32\) vs model \(5, 32\)"):
        deberta_tf.TFDebertaV2ForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    model, info = deberta_tf.TFDebertaV2ForSequenceClassification.from_pretrained(
        tmp_path, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
    assert sorted(m[0] for m in info.mismatched) == ["classifier.bias", "classifier.weight"]
    assert model.config.num_labels == 5


def test_missing_or_corrupt_files(tmp_path):
    make_config("v2_nobuckets_types_embproj").save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no weights in"):
        deberta_tf.TFDebertaV2Model.from_pretrained(tmp_path)
    (tmp_path / "tf_model.h5").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        deberta_tf.TFDebertaV2Model.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="config has model_type 'deberta-v2' but DebertaConfig reads 'deberta'"):
        deberta_tf.TFDebertaModel.from_pretrained(tmp_path)
