"""Export: torch.export and ONNX (dynamo exporter, run in onnxruntime) with a dynamic batch and length.

Models come from the reference (transformers==4.57.6, random weights, save_pretrained) and are loaded
with our classes; the exported graphs, run at shapes other than the one traced, must give the
reference's outputs (padding included). The reference itself cannot be exported with a dynamic length
(SPEC §7 items 5-8).
"""

import numpy as np
import onnxruntime
import pytest
import torch

from tests.torch.test_parity_reference import _pair

TOL = 1e-5


def _batch(batch, length, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 100, (batch, length), generator=g)
    mask = torch.ones_like(ids)
    mask[0, length // 2:] = 0  # right padding
    return ids, mask


def _dims():
    batch, seq = torch.export.Dim("batch", min=1, max=16), torch.export.Dim("seq", min=2, max=64)
    return ({0: batch, 1: seq}, {0: batch, 1: seq})


@pytest.mark.parametrize("variant,head", [("v1_rel", "sequence_classification"),
                                          ("v3_buckets_shared", "masked_lm"),
                                          ("v2_conv_unshared", "question_answering")])
def test_torch_export_dynamic_shapes(variant, head, tmp_path):
    ref, ours, _ = _pair(variant, head, tmp_path)
    ids, mask = _batch(2, 12, seed=0)
    program = torch.export.export(ours, (ids, mask), dynamic_shapes=_dims())  # outputs stay dataclasses
    exported = program.module()
    for batch, length in ((3, 40), (1, 7)):
        ids, mask = _batch(batch, length, seed=length)
        out = exported(ids, mask)
        with torch.no_grad():
            expected = ref(input_ids=ids, attention_mask=mask)
        for name in expected.keys():
            assert (out[name] - expected[name]).abs().max().item() < TOL, (name, batch, length)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning", "ignore::UserWarning")
@pytest.mark.parametrize("variant,head", [("v1_rel", "sequence_classification"),
                                          ("v3_buckets_shared", "token_classification")])
def test_onnx_export_runs_in_onnxruntime(variant, head, tmp_path):
    ref, ours, _ = _pair(variant, head, tmp_path / "model")
    ids, mask = _batch(2, 12, seed=0)
    program = torch.onnx.export(ours, (ids, mask), dynamo=True, input_names=["input_ids", "attention_mask"],
                                output_names=["logits"], dynamic_shapes=_dims(), verbose=False)
    path = tmp_path / "model.onnx"
    program.save(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch, length in ((3, 40), (1, 7)):
        ids, mask = _batch(batch, length, seed=length)
        (logits,) = session.run(["logits"], {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
        with torch.no_grad():
            expected = ref(input_ids=ids, attention_mask=mask).logits.numpy()
        assert logits.shape == expected.shape
        assert np.abs(logits - expected).max() < TOL, (batch, length)
