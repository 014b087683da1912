"""The native relative-bias kernel (deberta_torch/csrc/relative_bias.c) against the PyTorch path.

It sums the two band products in one pass, reading the transposed term in registers (AVX-512 or AVX2,
scalar elsewhere). Its band matmuls have other shapes than the PyTorch path's, so the GEMM may block
the dot products differently: float32 is held to a few ulps, bfloat16 to one; masks must match exactly.
"""

import pytest
import torch

import deberta_torch.kernels as kernels
from deberta_core.relative_position import line_bounds
from deberta_torch import native
from deberta_torch.relative_position import relative_position_line
from tests.torch.test_fast_path import build, inputs, max_diff, run


def _case(B, T, dtype, c2p=True, p2c=True, seed=0):
    H, D = 3, 16
    g = torch.Generator().manual_seed(seed)
    q, key_rev = (torch.randn(B, H, T, D, generator=g).to(dtype) for _ in range(2))
    pos_key, pos_query = (torch.randn(H, 64, D, generator=g).to(dtype) for _ in range(2))
    line = relative_position_line(T, T, 32, 32, 64)
    key_line, query_line = kernels.distance_tables(pos_key if c2p else None, pos_query if p2c else None, line, 4.0)
    fill = torch.zeros(B, T, dtype=torch.bool)
    fill[-1, : T // 3] = True
    return q, key_rev, key_line, query_line, fill, line_bounds(T, T, 32, 32, 64)[2:]


def test_the_kernel_builds_here():
    """CI's machine has a C compiler: a failed build must show, not fall back silently."""
    assert native.library() is not None, native.unavailable_reason()


@pytest.mark.parametrize("terms", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("B,T", [(2, 48), (1, 37), (3, 16), (2, 70)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_native_bias_equals_the_torch_path(B, T, dtype, terms):
    q, key_rev, key_line, query_line, fill, flat = _case(B, T, dtype, *terms)
    with torch.inference_mode():
        columns = kernels.native_columns(q, key_line, query_line, flat)
        assert columns is not None
        expected = kernels.relative_bias(q, key_rev, key_line, query_line, (0, T), fill, flat)
        for rows in [(0, T), (T // 3, T)]:  # a query block that starts inside the sequence
            want = expected[:, :, rows[0]: rows[1]]
            for tile in kernels.NATIVE_TILES + (8,):
                got = kernels._native_bias(q, key_rev, columns, rows, fill, tile)
                masked = want == torch.finfo(dtype).min
                assert torch.equal(got == torch.finfo(dtype).min, masked)
                scale = want[~masked].float().abs().max().item()
                ulp = 2 ** -7 if dtype == torch.bfloat16 else 2 ** -22  # a few float32 ulps: GEMM blocking
                assert max_diff(got[~masked], want[~masked]) <= ulp * scale, (rows, tile)


@pytest.mark.parametrize("T", [64, 70])
def test_native_bias_reads_strided_queries_and_keys(T):
    """In the model q and k are views into the fused projection (row stride 3 H D): the tile matmuls take
    them in place."""
    q, key_rev, key_line, query_line, fill, flat = _case(2, T, torch.float32)
    wide = torch.randn(2, T, 3, *q.shape[1:2], q.shape[-1])
    wide[:, :, 1] = q.transpose(1, 2)
    wide[:, :, 2] = key_rev.transpose(1, 2)
    q_view, key_view = wide[:, :, 1].transpose(1, 2), wide[:, :, 2].transpose(1, 2)
    assert not q_view.is_contiguous()
    with torch.inference_mode():
        columns = kernels.native_columns(q, key_line, query_line, flat)
        for tile in (16, 64):
            want = kernels._native_bias(q, key_rev, columns, (0, T), fill, tile)
            assert torch.equal(kernels._native_bias(q_view, key_view, columns, (0, T), fill, tile), want)


def test_model_with_native_bias_equals_torch_bias():
    model = build("v3_buckets_shared").eval()
    ids, mask = inputs()
    outs = {}
    try:
        for backend in ("native", "torch", "auto"):
            kernels.set_bias_backend(backend)
            with torch.no_grad():
                outs[backend] = run(model, "sdpa", ids, mask).last_hidden_state
        assert set(kernels.bias_choices().values()) <= {f"native/{t}" for t in kernels.NATIVE_TILES} | {"torch"}
    finally:
        kernels.set_bias_backend("auto")
    assert max_diff(outs["native"], outs["torch"]) < 1e-5 and max_diff(outs["auto"], outs["torch"]) < 1e-5
    with pytest.raises(ValueError, match="unknown bias backend 'fast'"):
        kernels.set_bias_backend("fast")


def test_no_compiler_falls_back_to_torch(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("DEBERTA_DUAL_CACHE", str(tmp_path / "cache"))
    native.library.cache_clear()
    try:
        assert native.library() is None and "no-such-compiler" in native.unavailable_reason()
        q, key_rev, key_line, query_line, fill, flat = _case(2, 40, torch.float32)
        with torch.inference_mode():
            assert kernels.native_columns(q, key_line, query_line, flat) is None
    finally:
        native.library.cache_clear()
