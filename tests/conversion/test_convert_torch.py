"""deberta-convert into PyTorch: from HF PyTorch checkpoints and the original microsoft/DeBERTa layout."""

import pytest
import torch
from safetensors.torch import load_file

import deberta_torch as dt
from conversion.__main__ import main
from tests.conversion.helpers import batch, class_cases, reference_model, write_original_layout


def _ours(family, stem, directory):
    return getattr(dt, ("Deberta" if family == "v1" else "DebertaV2") + stem).from_pretrained(directory, strict=True)


def _assert_same_outputs(ref, ours, stem):
    kwargs = batch(stem, ref.config.type_vocab_size > 0)
    with torch.no_grad():
        a, b = ref(**kwargs), ours(**kwargs)
    for key in a.keys():
        torch.testing.assert_close(b[key], a[key], atol=1e-5, rtol=0)


@pytest.mark.parametrize("family,stem", class_cases())
def test_hf_torch_checkpoint_converts_bit_for_bit(family, stem, tmp_path, capsys):
    ref = reference_model(family, stem)
    ref.save_pretrained(tmp_path / "src")
    assert main([str(tmp_path / "src"), str(tmp_path / "dst"), "--to", "torch", "--verify"]) == 0
    assert "verify: OK" in capsys.readouterr().out
    src = load_file(tmp_path / "src" / "model.safetensors")
    dst = load_file(tmp_path / "dst" / "model.safetensors")
    assert set(dst) == set(src) - {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    assert all(torch.equal(dst[k], src[k]) for k in dst)
    _assert_same_outputs(ref, _ours(family, stem, tmp_path / "dst"), stem)


@pytest.mark.parametrize("family,stem", class_cases())
def test_original_layout_converts(family, stem, tmp_path, capsys):
    extra = {"legacy": False} if stem == "ForMaskedLM" else {}
    ref = reference_model(family, stem, **extra)
    src = write_original_layout(ref, tmp_path / "orig")
    args = [str(src / "pytorch.model.bin"), str(tmp_path / "dst"), "--to", "torch", "--verify"]
    if stem in ("ForSequenceClassification", "ForMultipleChoice"):  # the same tensors; the class must be named
        args += ["--model-class", stem]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "verify: OK" in out
    report = (tmp_path / "dst" / "conversion_report.txt").read_text()
    prefix = "" if stem == "Model" else "deberta."
    assert f"renamed     embeddings.LayerNorm.gamma -> {prefix}embeddings.LayerNorm.weight" in report
    assert "dropped     mask_predictions.dense.weight" in report
    assert "dropped     embeddings.position_embeddings.weight" in report
    ours = _ours(family, stem, tmp_path / "dst")
    if stem == "ForMaskedLM":
        assert hasattr(ours, "lm_predictions")  # the original head was kept, not re-initialised
    _assert_same_outputs(ref, ours, stem)


def test_destination_exists_needs_force(tmp_path, capsys):
    ref = reference_model("v2", "Model")
    ref.save_pretrained(tmp_path / "src")
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "keep.txt").write_text("mine")
    assert main([str(tmp_path / "src"), str(tmp_path / "dst"), "--to", "torch"]) == 1
    err = capsys.readouterr().err
    assert "destination" in err and "exists; pass --force to replace it" in err
    assert [p.name for p in (tmp_path / "dst").iterdir()] == ["keep.txt"]
    assert main([str(tmp_path / "src"), str(tmp_path / "dst"), "--to", "torch", "--force"]) == 0
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == ["config.json", "conversion_report.txt",
                                                                    "model.safetensors"]


def _leftovers(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir() if p.name not in ("src",))


def test_truncated_safetensors_is_refused_and_nothing_written(tmp_path, capsys):
    reference_model("v2", "Model").save_pretrained(tmp_path / "src")
    f = tmp_path / "src" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:1000])
    assert main([str(tmp_path / "src"), str(tmp_path / "dst"), "--to", "torch"]) == 1
    assert "corrupt checkpoint file" in capsys.readouterr().err
    assert _leftovers(tmp_path) == []


def test_config_that_does_not_fit_the_weights_is_refused(tmp_path, capsys):
    ref = reference_model("v2", "ForTokenClassification")
    ref.save_pretrained(tmp_path / "src")
    cfg = (tmp_path / "src" / "config.json")
    cfg.write_text(cfg.read_text().replace('"intermediate_size": 37', '"intermediate_size": 40'))
    assert main([str(tmp_path / "src"), str(tmp_path / "dst"), "--to", "torch"]) == 1
    err = capsys.readouterr().err
    assert "config does not fit the weights" in err and "intermediate.dense.bias has shape (37,)" in err
    assert _leftovers(tmp_path) == []


def test_missing_tensors_are_named(tmp_path, capsys):
    reference_model("v2", "Model").save_pretrained(tmp_path / "src")
    assert main([str(tmp_path / "src"), str(tmp_path / "dst"), "--to", "torch", "--model-class", "ForQuestionAnswering"]) == 1
    assert "lacks tensors the destination needs: ['qa_outputs.weight', 'qa_outputs.bias']" in capsys.readouterr().err
    assert _leftovers(tmp_path) == []
    assert main([str(tmp_path / "src"), str(tmp_path / "dst"), "--to", "torch", "--model-class", "ForQuestionAnswering",
                 "--allow-missing"]) == 0
    assert "missing     qa_outputs.weight" in (tmp_path / "dst" / "conversion_report.txt").read_text()


@pytest.mark.parametrize("stem", ["Model", "ForMaskedLM", "ForSequenceClassification", "ForQuestionAnswering"])
def test_v1_checkpoint_reexpressed_in_the_v2_layout_computes_the_same(stem, tmp_path, capsys):
    ref = reference_model("v1", stem)
    write_original_layout(ref, tmp_path / "orig")
    args = [str(tmp_path / "orig"), str(tmp_path / "dst"), "--to", "torch", "--family", "v2", "--verify"]
    if stem == "ForSequenceClassification":
        args += ["--model-class", stem]
    assert main(args) == 0
    assert "verify: OK" in capsys.readouterr().out
    v2 = _ours("v2", stem, tmp_path / "dst")
    assert v2.config.model_type == "deberta-v2"
    assert "split       encoder.layer.0.attention.self.in_proj.weight" in (tmp_path / "dst" / "conversion_report.txt").read_text()
    _assert_same_outputs(ref, v2, stem)


def test_split_in_proj_undoes_the_per_head_interleaving():
    import numpy as np

    from conversion.v1_to_v2 import split_in_proj

    H, D, C = 2, 3, 6
    w = np.arange(3 * C * C, dtype=np.float32).reshape(3 * C, C)
    q, k, v = split_in_proj(w, H)
    # Rows a*3D + {0..D-1} are head a's query rows (SPEC §2.7), by hand:
    assert np.array_equal(q, np.concatenate([w[0:3], w[9:12]]))
    assert np.array_equal(k, np.concatenate([w[3:6], w[12:15]]))
    assert np.array_equal(v, np.concatenate([w[6:9], w[15:18]]))


def test_v1_options_v2_cannot_express_are_refused(tmp_path, capsys):
    ref = reference_model("v1", "Model", pos_att_type="c2p|p2c|p2p")
    write_original_layout(ref, tmp_path / "orig")
    assert main([str(tmp_path / "orig"), str(tmp_path / "dst"), "--to", "torch", "--family", "v2"]) == 1
    assert "pos_att_type has 'p2p'" in capsys.readouterr().err
    assert not (tmp_path / "dst").exists()
