"""The native relative-bias kernel (deberta_torch/csrc/relative_bias.c) against the PyTorch path.

Its bands cover only the table rows each tile reads, and it sums them in one pass, reading each score
through the distance line and the transposed term in registers (AVX2, scalar elsewhere). Its band
matmuls have other shapes than the PyTorch path's, so the GEMM may block the dot products differently:
float32 is held to a few ulps, bfloat16 to one; masks must match exactly.
"""

import numpy as np
import pytest
import torch

import deberta_torch.kernels as kernels
from deberta_core.relative_position import line_bounds
from deberta_torch import native
from deberta_torch.relative_position import relative_position_line
from tests.torch.test_fast_path import build, inputs, max_diff, run


def _case(B, T, dtype, c2p=True, p2c=True, seed=0, buckets=32):
    """Random queries, keys and tables for a (T, T) attention with span 32 and, when buckets > 0, log
    buckets (32 of them, up to distance 64): the line repeats rows in its log stretches and, past 64
    tokens, along its clamped far ends. Without buckets it steps by one row up to its clamped ends."""
    H, D = 3, 16
    g = torch.Generator().manual_seed(seed)
    q, key_rev = (torch.randn(B, H, T, D, generator=g).to(dtype) for _ in range(2))
    pos_key, pos_query = (torch.randn(H, 64, D, generator=g).to(dtype) for _ in range(2))
    pos_key, pos_query = pos_key if c2p else None, pos_query if p2c else None
    line = relative_position_line(T, T, 32, buckets, 64)
    key_line, query_line = kernels.distance_tables(pos_key, pos_query, line, 4.0)
    scaled = [None if t is None else t / 4.0 for t in (pos_key, pos_query)]
    fill = torch.zeros(B, T, dtype=torch.bool)
    fill[-1, : T // 3] = True
    with torch.inference_mode():
        tables = kernels.native_tables(q, *scaled, line)
    return q, key_rev, key_line, query_line, fill, line_bounds(T, T, 32, buckets, 64)[2:], tables


def test_the_kernel_builds_here():
    """CI's machine has a C compiler: a failed build must show, not fall back silently."""
    assert native.library() is not None, native.unavailable_reason()


@pytest.mark.parametrize("terms", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("B,T,buckets", [(2, 48, 32), (1, 37, 32), (3, 16, 32), (2, 70, 32), (1, 150, 32),
                                         (2, 90, 0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_native_bias_equals_the_torch_path(B, T, buckets, dtype, terms):
    q, key_rev, key_line, query_line, fill, flat, tables = _case(B, T, dtype, *terms, buckets=buckets)
    with torch.inference_mode():
        assert tables is not None
        expected = kernels.relative_bias(q, key_rev, key_line, query_line, (0, T), fill, flat)
        for rows in [(0, T), (T // 3, T), (T // 5, T // 2)]:  # query blocks that start inside the sequence
            want = expected[:, :, rows[0]: rows[1]]
            for tile in kernels.NATIVE_TILES + (8, 5):
                got = kernels._native_bias(q, key_rev, tables, rows, fill, tile)
                masked = want == torch.finfo(dtype).min
                assert torch.equal(got == torch.finfo(dtype).min, masked)
                scale = want[~masked].float().abs().max().item()
                ulp = 2 ** -7 if dtype == torch.bfloat16 else 2 ** -22  # a few float32 ulps: GEMM blocking
                assert max_diff(got[~masked], want[~masked]) <= ulp * scale, (rows, tile)


def test_bands_hold_only_the_rows_each_tile_reads():
    """v3-base at 512 tokens: a 64-row tile spans 575 distances, but log buckets repeat rows; the tiles'
    bands are the distinct rows (rounded up to 16), hand-checked against the line itself."""
    line = relative_position_line(512, 512, 256, 256, 512).numpy()
    bands = kernels._bands(line, 0, 512, 512, 64, 512)
    for t in range(8):
        reads = line[t * 64: t * 64 + 64 + 511]
        assert bands.first[t] <= reads.min() and reads.max() < bands.first[t] + bands.width[t]
        assert bands.width[t] == -(-len(np.unique(reads)) // 16) * 16 < 575
    assert bands.width.mean() < 0.7 * 575
    # a line that steps by one everywhere makes every tile alike: one batched matmul
    flat_free = kernels._bands(np.arange(1023), 0, 512, 512, 64, 1040)
    assert [run[4] for run in flat_free.runs] == [8]


def test_lines_with_wider_steps_take_the_torch_path():
    q = torch.randn(1, 2, 8, 4)
    with torch.inference_mode():
        assert kernels.native_tables(q, torch.randn(2, 20, 4), None, torch.arange(0, 30, 2)[:15]) is None
        assert kernels.native_tables(q, torch.randn(2, 20, 4), None, torch.arange(15)) is not None


@pytest.mark.parametrize("T", [64, 70])
def test_native_bias_reads_strided_queries_and_keys(T):
    """In the model q and k are views into the fused projection (row stride 3 H D): the tile matmuls take
    them in place."""
    q, key_rev, key_line, query_line, fill, flat, tables = _case(2, T, torch.float32)
    wide = torch.randn(2, T, 3, *q.shape[1:2], q.shape[-1])
    wide[:, :, 1] = q.transpose(1, 2)
    wide[:, :, 2] = key_rev.transpose(1, 2)
    q_view, key_view = wide[:, :, 1].transpose(1, 2), wide[:, :, 2].transpose(1, 2)
    assert not q_view.is_contiguous()
    with torch.inference_mode():
        for tile in (16, 64):
            want = kernels._native_bias(q, key_rev, tables, (0, T), fill, tile)
            assert torch.equal(kernels._native_bias(q_view, key_view, tables, (0, T), fill, tile), want)


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
        q, key_rev, key_line, query_line, fill, flat, tables = _case(2, 40, torch.float32)
        assert tables is None
    finally:
        native.library.cache_clear()


@pytest.mark.parametrize("backend", ["native", "torch"])
def test_bias_built_in_a_reused_buffer(backend):
    """Long inputs build each query block's bias in one buffer (kernels._relative_attention): a block
    smaller than the buffer must come out the same as in a fresh tensor, whatever the buffer held."""
    buffer = torch.full((2, 3, 32, 40), float("nan"))
    try:
        kernels.set_bias_backend(backend)
        q, key_rev, key_line, query_line, fill, flat, tables = _case(2, 40, torch.float32)
        assert (tables is None) == (backend == "torch")
        with torch.inference_mode():
            for rows in [(0, 32), (32, 40)]:
                fresh = kernels.relative_bias(q, key_rev, key_line, query_line, rows, fill, flat, native=tables)
                reused = kernels.relative_bias(q, key_rev, key_line, query_line, rows, fill, flat, native=tables,
                                               out=buffer)
                assert reused.data_ptr() == buffer.data_ptr() and torch.equal(reused, fresh)
    finally:
        kernels.set_bias_backend("auto")


@pytest.mark.parametrize("T, timed", [(20, {"native/32", "torch"}),
                                      (40, {"native/32", "native/64", "torch"}),
                                      (100, {"native/32", "native/64", "native/128", "torch"})])
def test_tiles_cut_to_the_same_length_are_timed_once(monkeypatch, T, timed):
    """A tile at least as long as the rows and the keys is cut to them: 128, 256 and 512 are then one
    computation, and the choice times it once, not three times on the first call of a shape."""
    seen = []
    monkeypatch.setattr(kernels, "_fastest", lambda runs: seen.append(set(runs)) or min(runs))
    kernels.BIAS.picks.clear()
    try:
        q, key_rev, key_line, query_line, fill, flat, tables = _case(1, T, torch.float32)
        with torch.inference_mode():
            bias = kernels.relative_bias(q, key_rev, key_line, query_line, (0, T), fill, flat, native=tables)
            reference = kernels.relative_bias(q, key_rev, key_line, query_line, (0, T), fill, flat)
    finally:
        kernels.BIAS.picks.clear()
    assert seen == [timed]
    assert max_diff(bias, reference) < 1e-5


def test_line_entry_follows_the_line(monkeypatch):
    """native_tables keeps a line's int32 copy and band plans by its values: another tensor with the same
    values (a compiled graph makes one per call) finds them; after an in-place change of the line it reads
    the new one, and the bias follows it."""
    monkeypatch.setattr(kernels, "_LINES", {})  # other tests' lines of this length are not counted
    B, T, H, D = 2, 40, 3, 16
    g = torch.Generator().manual_seed(0)
    q, key_rev = (torch.randn(B, H, T, D, generator=g) for _ in range(2))
    pos_key, pos_query = (torch.randn(H, 64, D, generator=g) for _ in range(2))
    line = relative_position_line(T, T, 32, 32, 64).clone()
    first = kernels.native_tables(q, pos_key, pos_query, line)
    kernels._native_bias(q, key_rev, first, (0, T), None, 32)
    again = kernels.native_tables(q, pos_key, pos_query, line.clone())
    assert again.plans is first.plans and len(first.plans) == 1
    other = relative_position_line(T, T, 8, 8, 64)  # another span: another line of the same length
    assert not torch.equal(other, line)
    line.copy_(other)
    changed = kernels.native_tables(q, pos_key, pos_query, line)
    assert changed.plans is not first.plans and np.array_equal(changed.line_rows, other.numpy())
    key_line, query_line = kernels.distance_tables(pos_key, pos_query, other)
    expected = kernels.relative_bias(q, key_rev, key_line, query_line, (0, T))
    assert max_diff(kernels._native_bias(q, key_rev, changed, (0, T), None, 32), expected) < 1e-5
