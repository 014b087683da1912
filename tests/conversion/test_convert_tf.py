"""deberta-convert across frameworks: every class of both families, both directions, bit-exact round trips."""

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import deberta_tf
from conversion.__main__ import main
from deberta_core.tf_names import read_tf_h5
from tests.conversion.helpers import batch, class_cases, reference_model, write_original_layout


def _tf_model(family, stem, directory):
    return getattr(deberta_tf, "TF" + ("Deberta" if family == "v1" else "DebertaV2") + stem).from_pretrained(directory)


def _convert(src, dst, to, *extra):
    assert main([str(src), str(dst), "--to", to, *extra]) == 0


@pytest.mark.parametrize("family,stem", class_cases())
def test_torch_to_tf_to_torch_is_bit_exact_and_tf_matches_the_reference(family, stem, tmp_path):
    ref = reference_model(family, stem)
    ref.save_pretrained(tmp_path / "pt")
    _convert(tmp_path / "pt", tmp_path / "tf", "tf")
    _convert(tmp_path / "tf", tmp_path / "pt2", "torch")
    before = load_file(tmp_path / "pt" / "model.safetensors")
    after = load_file(tmp_path / "pt2" / "model.safetensors")
    assert set(after) == set(before) - {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    for key, value in after.items():
        assert torch.equal(value, before[key]), key
    kwargs = batch(stem, ref.config.type_vocab_size > 0)
    with torch.no_grad():
        expected = ref(**kwargs)
    got = _tf_model(family, stem, tmp_path / "tf")({k: v.numpy() for k, v in kwargs.items()}, training=False)
    for key in expected.keys():
        np.testing.assert_allclose(np.asarray(got[key]), expected[key].numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("family,stem", [("v1", "ForMaskedLM"), ("v2", "ForQuestionAnswering"),
                                         ("v2", "ForMultipleChoice"), ("v1", "Model")])
def test_tf_to_torch_to_tf_is_bit_exact(family, stem, tmp_path):
    ref = reference_model(family, stem)
    ref.save_pretrained(tmp_path / "pt")
    _convert(tmp_path / "pt", tmp_path / "tf", "tf")
    keras_model = _tf_model(family, stem, tmp_path / "tf")
    keras_model.save_pretrained(tmp_path / "tf_saved")  # written by the Keras side itself
    _convert(tmp_path / "tf_saved", tmp_path / "pt2", "torch", "--verify")
    _convert(tmp_path / "pt2", tmp_path / "tf2", "tf")
    a, b = read_tf_h5(tmp_path / "tf_saved" / "tf_model.h5"), read_tf_h5(tmp_path / "tf2" / "tf_model.h5")
    assert set(a) == set(b)
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


@pytest.mark.parametrize("family,stem", [("v1", "ForMaskedLM"), ("v2", "ForMaskedLM"), ("v2", "ForTokenClassification")])
def test_original_layout_to_tf(family, stem, tmp_path, capsys):
    ref = reference_model(family, stem, **({"legacy": False} if stem == "ForMaskedLM" else {}))
    write_original_layout(ref, tmp_path / "orig")
    _convert(tmp_path / "orig", tmp_path / "tf", "tf", "--verify")
    assert "verify: OK" in capsys.readouterr().out
    assert "transposed" in (tmp_path / "tf" / "conversion_report.txt").read_text()
    kwargs = batch(stem, False)
    with torch.no_grad():
        expected = ref(**kwargs).logits.numpy()
    got = _tf_model(family, stem, tmp_path / "tf")({k: v.numpy() for k, v in kwargs.items()}, training=False)
    np.testing.assert_allclose(np.asarray(got["logits"]), expected, atol=1e-5, rtol=0)


def _tf_checkpoint(tmp_path):
    reference_model("v2", "ForTokenClassification").save_pretrained(tmp_path / "pt")
    _convert(tmp_path / "pt", tmp_path / "tf", "tf")
    return tmp_path / "tf"


def test_h5_missing_a_layer_is_refused_and_nothing_written(tmp_path, capsys):
    src = _tf_checkpoint(tmp_path)
    with h5py.File(src / "tf_model.h5", "r+") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        assert "classifier" in names
        del f["classifier"]
        f.attrs["layer_names"] = [n.encode() for n in names if n != "classifier"]
    assert main([str(src), str(tmp_path / "out"), "--to", "torch"]) == 1
    assert "lacks tensors the destination needs: ['classifier.weight', 'classifier.bias']" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_truncated_h5_is_refused(tmp_path, capsys):
    src = _tf_checkpoint(tmp_path)
    data = (src / "tf_model.h5").read_bytes()
    (src / "tf_model.h5").write_bytes(data[: len(data) // 3])
    assert main([str(src), str(tmp_path / "out"), "--to", "torch"]) == 1
    assert "corrupt TF checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_tokenizer_files_travel_with_the_checkpoint(tmp_path):
    from tests.cases import DATA

    reference_model("v2", "Model").save_pretrained(tmp_path / "pt")
    for name in ("spm.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"):
        (tmp_path / "pt" / name).write_bytes((DATA / "tokenizers" / "deberta-v3" / name).read_bytes())
    _convert(tmp_path / "pt", tmp_path / "tf", "tf")
    for name in ("spm.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"):
        assert (tmp_path / "tf" / name).read_bytes() == (tmp_path / "pt" / name).read_bytes()
