"""deberta_core.tf_names: the PyTorch key <-> Keras name map, transposes and the tf_model.h5 layout (SPEC §4.3)."""

from __future__ import annotations

import numpy as np
import pytest

from deberta_core.tf_names import (from_tf_layout, h5_name, model_scope, read_tf_h5, state_dict_from_tf, tf_name,
                                   tf_name_to_key, tf_weights, to_tf_layout, write_tf_h5)
from deberta_core.weight_names import model_weights
from tests.tf.tf_cases import VARIANTS, make_config
from tests.tf.tf_helpers import tf_class

WEIGHT_HEADS = [None, "masked_lm", "sequence_classification", "token_classification", "question_answering",
                "multiple_choice"]


def _cases():
    """Every variant as a base model, and every head of two variants (one per family)."""
    for variant in VARIANTS:
        yield variant, None
    for head in WEIGHT_HEADS[1:]:
        yield "v2_conv_unshared", head
        if head != "multiple_choice":
            yield "v1_c2p_talking", head


@pytest.mark.parametrize("variant,head", list(_cases()))
def test_keras_variables_are_the_table(variant, head):
    """A bijection: every Keras variable is in the table, every table entry is a variable, shapes agree."""
    config = make_config(variant)
    model = tf_class(config.family, head or "base")(config)
    variables = model._variables_by_name()
    table = tf_weights(config, head)
    assert set(variables) == {w.name for w in table.values()}
    for weight in table.values():
        assert tuple(variables[weight.name].shape) == weight.shape, weight.name
    assert len(model.weights) == len(table)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("head", WEIGHT_HEADS)
def test_names_map_back_to_keys(variant, head):
    config = make_config(variant)
    prefix = "deberta." if head is None else ""
    for key, weight in tf_weights(config, head).items():
        assert tf_name_to_key(weight.name, config.family) == prefix + key
        assert tf_name_to_key(weight.h5_name + ":0", config.family) == prefix + key


def test_reference_names():
    """Spot checks against names dumped from the reference TF classes (transformers 4.57)."""
    v2 = make_config("v2_conv_unshared")
    table = tf_weights(v2, "sequence_classification")
    assert table["deberta.embeddings.word_embeddings.weight"].name == "deberta/embeddings/word_embeddings/weight"
    assert table["deberta.encoder.rel_embeddings.weight"].name == "deberta/encoder/rel_embeddings.weight"
    key = "deberta.encoder.layer.1.attention.self.pos_key_proj.weight"
    assert table[key].name == "deberta/encoder/layer_._1/attention/self/pos_key_proj/kernel"
    assert table[key].h5_name == "deberta/encoder/layer_._1/attention/self/pos_proj/kernel"
    assert table["deberta.encoder.layer.0.attention.self.pos_query_proj.bias"].h5_name.endswith("self/pos_q_proj/bias")
    assert table["deberta.encoder.layer.0.output.LayerNorm.weight"].name == "deberta/encoder/layer_._0/output/LayerNorm/gamma"
    assert table["classifier.weight"].name == "classifier/kernel"
    assert table["classifier.weight"].shape == (32, 2)  # kernel (in, out); num_labels defaults to 2
    v1 = make_config("v1_abs_types")
    t1 = tf_weights(v1, "masked_lm")
    assert t1["deberta.embeddings.position_embeddings.weight"].name == "deberta/embeddings/position_embeddings/embeddings"
    assert t1["deberta.encoder.layer.0.attention.self.pos_proj.weight"].h5_name.endswith("self/pos_proj/kernel")
    assert t1["cls.predictions.transform.LayerNorm.bias"].name == "cls/predictions/transform/LayerNorm/beta"
    assert t1["cls.predictions.bias"].name == "cls/predictions/bias"
    conv = tf_weights(make_config("v2_conv_unshared"))
    assert conv["encoder.conv.conv.weight"].name == "deberta/encoder/conv/conv/kernel"
    assert conv["encoder.conv.conv.weight"].shape == (3, 32, 32)
    assert model_scope("TFDebertaV2ForSequenceClassification") == "tf_deberta_v2_for_sequence_classification"
    assert model_scope("TFDebertaForMaskedLM") == "tf_deberta_for_masked_lm"
    # v1 keeps its own pos_proj / pos_q_proj names; only v2 has two spellings
    assert h5_name("deberta/encoder/layer_._0/attention/self/pos_proj/kernel", "v1").endswith("pos_proj/kernel")
    assert tf_name_to_key("deberta/encoder/layer_._0/attention/self/pos_proj/kernel", "v1").endswith("self.pos_proj.weight")
    assert tf_name_to_key("deberta/encoder/layer_._0/attention/self/pos_proj/kernel", "v2").endswith("self.pos_key_proj.weight")


def test_layouts_round_trip():
    rng = np.random.default_rng(0)
    linear, conv = rng.normal(size=(5, 3)), rng.normal(size=(6, 3, 2))
    assert to_tf_layout(linear, "linear").shape == (3, 5)
    assert to_tf_layout(conv, "conv1d").shape == (2, 3, 6)
    np.testing.assert_array_equal(from_tf_layout(to_tf_layout(linear, "linear"), "x/dense/kernel"), linear)
    np.testing.assert_array_equal(from_tf_layout(to_tf_layout(conv, "conv1d"), "x/conv/kernel:0"), conv)
    np.testing.assert_array_equal(to_tf_layout(linear, "embedding"), linear)
    assert tf_name("deberta.encoder.conv.conv.weight", "conv1d") == "deberta/encoder/conv/conv/kernel"


def test_state_dict_from_tf_maps_both_spellings_and_refuses_duplicates():
    config = make_config("v2_conv_unshared")
    table = tf_weights(config)
    arrays = {w.h5_name: np.zeros(w.shape, np.float32) for w in table.values()}
    state = state_dict_from_tf(arrays, "v2")
    assert set(state) == {"deberta." + k for k in model_weights(config)}
    for key, weight in table.items():
        assert state["deberta." + key].shape == model_weights(config)[key].shape
    name = "deberta/encoder/layer_._0/attention/self/pos_key_proj/kernel"
    arrays[name] = np.zeros((32, 32), np.float32)  # the same tensor in our spelling too
    with pytest.raises(ValueError, match="both map to 'deberta.encoder.layer.0.attention.self.pos_key_proj.weight'"):
        state_dict_from_tf(arrays, "v2")


def test_h5_round_trip_with_chunked_name_lists(tmp_path):
    """Name lists over HDF5's 64 KB attribute limit are split in chunks, as tf-keras (and the reference) do."""
    rng = np.random.default_rng(0)
    arrays = {f"deberta/encoder/layer_._{i}/attention/self/a_rather_long_module_name_{i:04d}/kernel":
              rng.normal(size=(2, 3)).astype(np.float32) for i in range(800)}
    arrays["classifier/bias"] = np.arange(3, dtype=np.float32)
    path = tmp_path / "tf_model.h5"
    write_tf_h5(path, arrays, model_scope="tf_deberta_v2_for_sequence_classification")
    import h5py

    with h5py.File(path) as handle:
        assert list(handle.attrs["layer_names"]) == [b"deberta", b"classifier"]
        assert "weight_names" not in handle["deberta"].attrs and "weight_names0" in handle["deberta"].attrs
        assert handle["classifier"].attrs["weight_names"][0] == b"tf_deberta_v2_for_sequence_classification/classifier/bias:0"
    back = read_tf_h5(path)
    assert list(back) == list(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(back[name], array)


def test_h5_masked_lm_group_lists_the_tied_embeddings(tmp_path):
    """As in the reference's files, `cls` lists the embeddings it is tied to (a hard link, stored once)."""
    import h5py

    arrays = {"deberta/embeddings/word_embeddings/weight": np.ones((4, 2), np.float32),
              "deberta/encoder/rel_embeddings.weight": np.zeros((2, 2), np.float32),
              "cls/predictions/bias": np.zeros(4, np.float32)}
    write_tf_h5(tmp_path / "m.h5", arrays, model_scope="tf_deberta_for_masked_lm")
    with h5py.File(tmp_path / "m.h5") as handle:
        listed = [n.decode() for n in handle["cls"].attrs["weight_names"]]
        assert listed == ["tf_deberta_for_masked_lm/cls/predictions/bias:0",
                          "tf_deberta_for_masked_lm/deberta/embeddings/word_embeddings/weight:0"]
        link = handle["cls"]["tf_deberta_for_masked_lm/deberta/embeddings/word_embeddings/weight:0"]
        assert link.id == handle["deberta"]["tf_deberta_for_masked_lm/deberta/embeddings/word_embeddings/weight:0"].id
    assert list(read_tf_h5(tmp_path / "m.h5")) == list(arrays)


def test_read_tf_h5_rejects_other_files(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        read_tf_h5(tmp_path / "x.h5")
    import h5py

    with h5py.File(tmp_path / "y.h5", "w") as handle:
        handle.create_dataset("w", data=np.zeros(2))
    with pytest.raises(ValueError, match="not a Keras weights file"):
        read_tf_h5(tmp_path / "y.h5")
