"""What only a GPU can show: half precision without overflow, FlexAttention's memory, compiled CUDA graphs.

The parity suites already run every case on each CUDA device (tests/torch/conftest.py DEVICES); these
tests add the GPU-only properties. Without a GPU they are skipped (CI has none).
"""

import pytest
import torch

import deberta_torch as dt
from tests.torch.test_fast_path import build, inputs, max_diff

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _base(hidden=256, heads=4, layers=2):
    torch.manual_seed(0)
    config = dt.DebertaV2Config(vocab_size=1000, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                intermediate_size=4 * hidden, max_position_embeddings=512, relative_attention=True,
                                position_buckets=256, max_relative_positions=-1, norm_rel_ebd="layer_norm",
                                share_att_key=True, pos_att_type="p2c|c2p", position_biased_input=False,
                                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return dt.DebertaV2Model(config).eval()


@pytest.mark.parametrize("impl", dt.ATTN_IMPLEMENTATIONS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_finite_and_close_to_float32(impl, dtype):
    model = _base().cuda()
    model.set_attn_implementation(impl)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 1000, (2, 700), generator=g).cuda()  # past the bucket range
    mask = torch.ones_like(ids)
    mask[1, 500:] = 0
    with torch.no_grad():
        full = model(ids, attention_mask=mask).last_hidden_state
        half = model.to(dtype)(ids, attention_mask=mask).last_hidden_state
    assert torch.isfinite(half).all()
    assert max_diff(half, full) < 0.1  # LayerNorm outputs of unit scale, 8-11 mantissa bits


def test_flex_attention_memory_grows_linearly():
    model = _base().cuda().half()
    model.set_attn_implementation("flex_attention")
    peaks = {}
    for T in (2048, 8192):
        ids = torch.randint(4, 1000, (1, T), device="cuda")
        with torch.no_grad():
            model(ids)  # compile this length
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            model(ids)
            torch.cuda.synchronize()
        peaks[T] = torch.cuda.max_memory_allocated() - base
    assert peaks[8192] < 6 * peaks[2048], peaks  # 4x the tokens; a (T, T) score matrix would be 16x


@pytest.mark.parametrize("name", ["v1_rel", "v3_buckets_shared"])
def test_compiled_cuda_inference_equals_eager(name):
    torch.backends.cuda.matmul.allow_tf32 = False
    model = build(name, hidden_size=64).eval().cuda()
    ids, mask = (t.cuda() for t in inputs())
    torch._dynamo.reset()
    with torch.no_grad():
        eager = model(ids, attention_mask=mask).last_hidden_state
        compiled = torch.compile(model, fullgraph=True)(ids, attention_mask=mask).last_hidden_state
    assert max_diff(compiled, eager) < 1e-5
