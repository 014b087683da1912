"""Fast disentangled attention: relative scores from banded matmuls, one additive bias, a fused softmax.

Legend: B batch, T query length, S key length, H heads, D head dim, W = T + S - 1 distinct distances.

The relative index depends only on the distance: idx(i, j) = line[i - j + S - 1] (relative_position.py).
Lay the position tables out by distance once, pos_key_line[m] = pos_key[line[m]] / scale (and the same
for pos_query), and number the keys backwards, c = S - 1 - j. Then both relative terms depend on i + c:
  c2p[i, j] = q_i . pos_key_line[i + c]          p2c[i, j] = k_j . pos_query_line[i + c]
so a block of n query rows needs only the band pos_key_line[r0 : r0 + n + S - 1]: one (n, n + S - 1)
matmul, read through a strided view with row stride n + S (the Transformer-XL "relative shift"), and a
block of keys needs a (n + k - 1, k) band of pos_query_line, read along its diagonals. No int64 index,
no gather, no (B, H, T, R) products. The banded work equals one extra q.k product per term.

CPU inference can do less (`_native_bias`): the line is non-decreasing, so a tile of rows reads one
contiguous range of table rows, and where log buckets or the clamped far ends repeat rows that range
is narrower than the tile's distances. Its band is a product with those rows of the table itself
(no layout by distance), and csrc/relative_bias.c reads each score through the line as it sums the
two terms. At 512 tokens with v3's buckets that is about two thirds of the banded work.

c2p + p2c, with the mask folded in as the dtype minimum, is the additive bias of one attention core:
`torch.nn.functional.scaled_dot_product_attention` (its CPU kernel fuses q.k, the bias, the softmax
and the value product), or in bfloat16 inference a baddbmm + softmax + bmm on the cache-sized block where that was
measured faster on the CPU at hand (`_core`). Reversing the keys (and values) changes nothing but the order of the
softmax sum. The bias is built per (batch chunk, query block) so it stays in cache and its memory is
bounded; long inputs are processed one query block at a time.

Masks follow the PyTorch reference (SPEC §2.9): a masked score is the dtype minimum and the softmax is
plain, so a fully masked (padding) query row attends uniformly to every key. With a 2-D padding mask
the bias masks padded keys only, and padded query rows get that uniform result, mean(v), directly.
"""

from __future__ import annotations

import functools
import time
from typing import NamedTuple

import numpy as np

import torch
import torch.nn.functional as F
from torch.multiprocessing.reductions import StorageWeakRef

from . import native

# Query rows per c2p band and keys per p2c band of the PyTorch paths (the training bias, `_strided_bias`), by
# element size: a wider band wastes (tile - 1) / S of the work, a narrower one runs smaller matmuls.
# float32: 16 rows, the fastest or as fast in the training bias's forward + backward on both EPYCs measured
# (Zen 3 AVX2, Zen 4 AVX-512): at 8x128, v3-base shapes, 37.0 against 40.4 ms for 32 (Zen 4), at 2x512
# 108 against 107, at 32x32 12.2 against 19.3. bfloat16: tuned on an AVX-512 CPU (docs/performance.md).
TILE_QUERY = {4: 16, 2: 64}
TILE_KEY = {4: 16, 2: 32}
# Elements of the (chunk, H, rows, S) bias built at once in inference (16 MB in float32).
BIAS_BUDGET = 4 * 2 ** 20


class MeasuredChoice:
    """A kernel picked per shape by timing the candidates on the CPU at hand (`_fastest`: once per key,
    interleaved), or forced by name. Which kernel wins depends on the CPU (oneDNN's packed Linear helps
    on AVX-512 without AMX and loses with AMX), so nothing here is tuned for one machine."""

    def __init__(self, what: str, backends: tuple[str, ...] = ("auto",)):
        self.what, self.backends, self.backend, self.picks = what, backends, "auto", {}

    def force(self, backend: str) -> None:
        """Use `backend` from now on ("auto": measure again per shape); forgets earlier picks."""
        if backend not in self.backends:
            raise ValueError(f"unknown {self.what} backend {backend!r}; choose one of {self.backends}")
        self.backend = backend
        self.picks.clear()

    def pick(self, key: tuple, runs: dict) -> str:
        """The name of the fastest of `runs` (name -> callable) for `key`, timed the first time it is asked."""
        if key not in self.picks:
            self.picks[key] = _fastest(runs)
        return self.picks[key]


# How CPU inference runs the encoder's Linear layers: "packed" (oneDNN, weights packed once, the exact
# GELU fused), "plain" (F.linear) or "auto". Picks: (dtype, rows bucket, in, out, gelu) -> the winner.
LINEAR = MeasuredChoice("linear", ("auto", "packed", "plain"))
# How CPU inference builds the bias: "native" (band products over the table rows each tile reads, summed
# by csrc/relative_bias.c in one pass; NATIVE_TILES compete), "torch" (band products over every distance,
# strided adds) or "auto". Both give the same values. Picks: (dtype, B, n, S) -> "native/<tile>" or "torch".
BIAS = MeasuredChoice("bias", ("auto", "native", "torch"))
# The bfloat16 inference attention core: fused SDPA or baddbmm + softmax + bmm (`_core`).
# Picks: (dtype, B, H, n, D, S) -> "fused" or "unfused".
CORE = MeasuredChoice("bfloat16 attention core")
# The precision bfloat16 CPU inference attention computes in (`relative_attention`): "bfloat16", or
# "float32" on the upcast inputs (faster where bfloat16 matmuls are emulated). Picks: (B, H, T, D, S,
# c2p, p2c) -> "bfloat16" or "float32".
PRECISION = MeasuredChoice("bfloat16 attention precision", ("auto", "bfloat16", "float32"))
LINEAR_BACKENDS, BIAS_BACKENDS = LINEAR.backends, BIAS.backends
# Query rows per c2p band (and keys per p2c band) the native path tries; it keeps the fastest per shape.
# A wider tile reads more table rows per row (its rows' distances reach further) but runs larger and
# fewer matmuls: at 128 tokens a 32-row tile's band is 160 rows wide against 192 at 64.
NATIVE_TILES = (32, 64, 128, 256, 512)
# Band widths are padded to a multiple of this: an odd width slows a float32 (b)mm by a third or more
# (an (r, 64) x (64, 159) band: 2.7 against 1.7 ms at width 160 on an AVX2 EPYC).
BAND_ALIGN = 16


def _aligned(width):
    """`width` (an int or an integer array) rounded up to a multiple of BAND_ALIGN."""
    return -(-width // BAND_ALIGN) * BAND_ALIGN


def set_bias_backend(name: str) -> None:
    """Choose how CPU inference builds the relative bias: "auto" (measured per shape), "native" or "torch"."""
    BIAS.force(name)


def bias_choices() -> dict[tuple, str]:
    """What the bias picked so far: (dtype, batch, rows, keys) -> "native/<tile>" or "torch"."""
    return dict(BIAS.picks)


def set_linear_backend(name: str) -> None:
    """Choose how CPU inference runs Linear layers: "auto" (measured per shape), "packed" or "plain"."""
    LINEAR.force(name)


def linear_choices() -> dict[tuple, str]:
    """What "auto" picked so far: (dtype, rows bucket, in, out, gelu) -> "packed" or "plain"."""
    return dict(LINEAR.picks)


def distance_tables(pos_key, pos_query, line, scale=None):
    """Lay (H, R, D) position keys/queries out by distance and divide them by the score scale (None: they
    already are).

    Returns pos_key_line and pos_query_line, (H, T + S - 1, D) each (or None): row m belongs to the
    distance d = m - (S - 1), i.e. to the table row line[m].
    """
    def laid_out(table):
        if table is None:
            return None
        return (table if scale is None else table / scale).index_select(-2, line)

    return laid_out(pos_key), laid_out(pos_query)


def bias_tables(query, pos_key, pos_query, line):
    """What `relative_attention` reads of the position tables (H, R, D), divided by the scale, with the
    distance line: (None, None, `native_tables`) where the native bias may build the bias, else the tables
    laid out by distance (`distance_tables`) and None."""
    native = native_tables(query, pos_key, pos_query, line)
    if native is not None:
        return None, None, native
    return (*distance_tables(pos_key, pos_query, line), None)


def relative_bias(query, key_rev, pos_key_line, pos_query_line, rows: tuple[int, int], key_fill_rev=None,
                  flat_ends: tuple[int, int] | None = None, tile_query: int | None = None,
                  tile_key: int | None = None, autograd: bool | None = None,
                  native: NativeTables | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """(c2p + p2c) / scale for query rows [i0, i1) against every key, keys reversed: (B, H, i1 - i0, S).

    query (B, H, T, D); key_rev (B, H, S, D) = key.flip(2); tables from `distance_tables` (either may
    be None). key_fill_rev: optional bool (B, S) in reversed key order, True for keys to mask: their
    bias is the dtype minimum. flat_ends: (m_lo, m_hi) from `relative_position.flat_ends`, or None: where
    i + c <= m_lo (or >= m_hi) every distance reads the first (last) table row, and the term is a
    per-row or per-key constant instead of a band product. autograd: build the bias with `_BandBias`,
    whose backward is written out (the in-place paths are cheap only without a gradient); None picks it
    exactly when autograd records the call.
    native: the same tables by row from `native_tables`, when the native kernel may build this bias
    (inference); it competes with the PyTorch path (`BIAS`). out: a buffer of at least (B, H, i1 - i0, S) to
    build the bias in (in place only), so that a loop over query blocks reuses one allocation.
    """
    B, H, T, D = query.shape
    S = key_rev.shape[2]
    tile_query = TILE_QUERY.get(query.element_size(), 32) if tile_query is None else tile_query
    tile_key = TILE_KEY.get(query.element_size(), 32) if tile_key is None else tile_key
    if autograd is None:  # both give the same values
        autograd = torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                                   for t in (query, key_rev, pos_key_line, pos_query_line))
    if autograd:
        bias = _BandBias.apply(query, key_rev, pos_key_line, pos_query_line, tuple(rows), tile_query, tile_key)
        if key_fill_rev is not None:
            bias = bias.masked_fill(key_fill_rev[:, None, None, :], torch.finfo(bias.dtype).min)
        return bias
    if native is not None:
        n = rows[1] - rows[0]
        runs = {f"native/{tile}": functools.partial(_native_bias, query, key_rev, native, rows, key_fill_rev, tile,
                                                    out)
                for tile in NATIVE_TILES}
        # tiles at least as long as both sides are one computation (the tile is cut to the length): time one
        timed = {}
        for tile in NATIVE_TILES:
            timed.setdefault((min(tile, n), min(tile, S)), f"native/{tile}")
        timed = {name: runs[name] for name in timed.values()}
        if BIAS.backend == "auto":
            def strided():
                lines = (pos_key_line, pos_query_line)
                if pos_key_line is None and pos_query_line is None:
                    lines = native.distance_tables()
                return _strided_bias(query, key_rev, *lines, rows, key_fill_rev, flat_ends, tile_query, tile_key, out)
            runs["torch"] = timed["torch"] = strided
        return runs[BIAS.pick((query.dtype, B, n, S), timed)]()
    return _strided_bias(query, key_rev, pos_key_line, pos_query_line, rows, key_fill_rev, flat_ends, tile_query,
                         tile_key, out)


def _strided_bias(query, key_rev, pos_key_line, pos_query_line, rows, key_fill_rev, flat_ends, tile_query,
                  tile_key, out=None):
    """`relative_bias` in place with PyTorch ops: band tiles written into the bias through strided views."""
    B, H, T, D = query.shape
    S = key_rev.shape[2]
    table = pos_key_line if pos_key_line is not None else pos_query_line
    W = table.shape[1]
    m_lo, m_hi = (-1, W) if flat_ends is None else flat_ends
    i0, i1 = rows
    n = i1 - i0
    minimum = torch.finfo(query.dtype).min
    dense_windows = query.device.type == "cpu" and query.dtype in (torch.bfloat16, torch.float16)
    bias = _buffer(query, out, (B, H, n, S))
    if pos_query_line is not None:
        # p2c[i, c] = k_rev[c] . pos_query_line[i + c]; keys below c_lo (from c_hi on) see one row only
        c_lo = min(max(m_lo - i1 + 2, 0), S)
        c_hi = min(max(m_hi - i0, c_lo), S)
        for c0, c1, end in ((0, c_lo, 0), (c_hi, S, W - 1)):
            if c1 > c0:
                const = key_rev[:, :, c0:c1] @ pos_query_line[:, end, :, None]  # (B, H, k, 1)
                if key_fill_rev is not None:
                    const.masked_fill_(key_fill_rev[:, None, c0:c1, None], torch.finfo(const.dtype).min)
                bias[..., c0:c1] = const.transpose(-1, -2)
        for c0 in range(c_lo, c_hi, tile_key):
            c1 = min(c_hi, c0 + tile_key)
            k = c1 - c0
            keys = key_rev[:, :, c0:c1].permute(1, 3, 0, 2).reshape(H, D, B * k)  # (H, D, B k)
            band = pos_query_line[:, i0 + c0: i1 + c1 - 1] @ keys  # (H, n + k - 1, B k), band row x = i - i0 + c - c0
            if key_fill_rev is not None:
                band.view(H, n + k - 1, B, k).masked_fill_(key_fill_rev[:, c0:c1], torch.finfo(band.dtype).min)
            # fresh, contiguous matmul output read along its diagonals
            bias[..., c0:c1] = band.as_strided((B, H, n, k), (k, (n + k - 1) * B * k, B * k, B * k + 1))
    else:
        bias.zero_()
        if key_fill_rev is not None:
            bias.masked_fill_(key_fill_rev[:, None, None, :], minimum)
    if pos_key_line is not None:
        # c2p[i, c] = q_i . pos_key_line[i + c]
        for r0 in range(i0, i1, tile_query):
            r1 = min(i1, r0 + tile_query)
            r = r1 - r0
            a, b = r0 - i0, r1 - i0  # rows of the bias (index it afresh each time: autograd tracks views)
            q = query[:, :, r0:r1]
            c_lo = min(max(m_lo - r1 + 2, 0), S)
            c_hi = min(max(m_hi - r0, c_lo), S)
            if c_lo > 0:
                bias[:, :, a:b, :c_lo] += q @ pos_key_line[:, 0, :, None]  # (B, H, r, 1)
            if c_hi < S:
                bias[:, :, a:b, c_hi:] += q @ pos_key_line[:, W - 1, :, None]
            if c_hi > c_lo:
                rows_q = _rows(query, r0, r)  # (H, B r, D)
                window = pos_key_line[:, r0 + c_lo: r1 - 1 + c_hi]
                if dense_windows:  # oneDNN would transpose-copy the strided window itself, twice as slowly
                    window = window.contiguous()
                band = rows_q @ window.transpose(-1, -2)  # (H, B r, r + c_hi - c_lo - 1)
                # band column m = (i - r0) + (c - c_lo): a row stride of w + 1 walks the diagonal
                bias[:, :, a:b, c_lo:c_hi] += _c2p_diagonals(band, B, c_hi - c_lo)
    return bias


class NativeTables(NamedTuple):
    """The position tables the native bias reads, by table row: what `native_tables` returns.

    pos_key, pos_query: (H, R, D), divided by the scale, or None (term off). line: int32 (T + S - 1,), the
    distance line; line_rows: the same as a numpy int64 array, for planning the bands in Python. plans:
    the band plans of this line, by block and tile (`_native_bias`), kept with its values (`_line_entry`).
    """

    pos_key: torch.Tensor | None
    pos_query: torch.Tensor | None
    line: torch.Tensor
    line_rows: np.ndarray
    plans: dict

    def to(self, dtype: torch.dtype) -> NativeTables:
        return self._replace(**{name: getattr(self, name).to(dtype) for name in ("pos_key", "pos_query")
                                if getattr(self, name) is not None})

    def distance_tables(self):
        """The same tables laid out by distance, (H, T + S - 1, D) each or None: what the PyTorch path reads."""
        return distance_tables(self.pos_key, self.pos_query, torch.from_numpy(self.line_rows))


def native_tables(query, pos_key, pos_query, line) -> NativeTables | None:
    """What the native bias needs, from the projected position tables (H, R, D) divided by the scale (either
    may be None) and the distance line (T + S - 1,), or None where that path does not apply: not CPU
    inference in float32/bfloat16, traced, `set_bias_backend("torch")`, no compiler, or a line that
    steps by more than one row (only odd bucket settings do; the kernel's contiguous reads assume 0 or 1).
    """
    tables = [t for t in (pos_key, pos_query) if t is not None]
    if (BIAS.backend == "torch" or not tables or query.device.type != "cpu"
            or query.dtype not in (torch.float32, torch.bfloat16) or tracing()
            or (torch.is_grad_enabled() and any(t.requires_grad for t in [query, *tables]))):
        return None
    entry = _line_entry(line, tables[0].shape[1])
    if entry is None or native.library() is None:
        return None
    return NativeTables(pos_key, pos_query, *entry)


# Per distance line, by its values and the table's row count: its int32 copy, numpy rows and band plans,
# or None where the native kernel cannot read it. Keyed by value, not by tensor, so a compiled graph, which
# makes a new line tensor on every call, hits it too. Converting, checking and planning a line again cost
# ~0.3 ms per layer, ~1.3% of a 128-token v3-base layer.
_LINES: dict[tuple, tuple | None] = {}
_LINES_KEPT = 32


def _line_entry(line: torch.Tensor, table_rows: int):
    rows = line.detach().cpu().numpy()
    key = (table_rows, rows.dtype.str, rows.tobytes())
    if key in _LINES:
        return _LINES[key]
    rows = rows.astype(np.int64)
    steps = np.diff(rows)
    entry = (torch.from_numpy(rows.astype(np.int32)), rows, {})
    if rows.size and (rows.min() < 0 or rows.max() >= table_rows) or steps.size and (
            steps.min() < 0 or steps.max() > 1):
        entry = None
    while len(_LINES) >= _LINES_KEPT:
        _LINES.pop(next(iter(_LINES)))
    _LINES[key] = entry
    return entry


class _Bands(NamedTuple):
    """Where the band products of one term go: tile t holds `size` positions (query rows or keys) against
    table rows [first[t], first[t] + width[t]), contiguous at offset[t] of a flat buffer.

    runs: the matmuls that compute them, as python ints (start position, first row, width, offset, tiles,
    row step): one per run of alike tiles (equal widths, first rows in arithmetic progression, positions
    back to back), batched over that run's overlapping windows of the table.
    """

    size: int
    first: np.ndarray
    width: np.ndarray
    offset: np.ndarray
    total: int
    runs: list[tuple[int, int, int, int, int, int]]

    def base(self) -> torch.Tensor:
        """Per tile, offset - first row (the kernel adds line[i + c]), int64 as the kernel reads it."""
        return torch.from_numpy((self.offset - self.first).astype(np.int64))

    def stride(self) -> torch.Tensor:
        """Per tile, its width (the row stride of its band), int64."""
        return torch.from_numpy(self.width.astype(np.int64))


def _bands(line_rows: np.ndarray, m0: int, count: int, other: int, size: int, table_rows: int) -> _Bands:
    """The tiles of `count` positions, `size` each (the last shifted back to end at `count`), where position p
    meets the `other` positions of the other side at line entries m0 + p .. m0 + p + other - 1."""
    tiles = -(-count // size)
    starts = np.minimum(np.arange(tiles) * size, count - size)
    lo = line_rows[m0 + starts]
    hi = line_rows[m0 + starts + size - 1 + other - 1]
    # padded widths keep oneDNN on its fast kernels; shift a window back rather than read past the table
    width = np.minimum(_aligned(hi - lo + 1), table_rows)
    first = np.maximum(np.minimum(lo, table_rows - width), 0)
    offset = np.concatenate([[0], np.cumsum(width * size)[:-1]])
    runs, t = [], 0
    while t < tiles:
        end, step = t + 1, 0
        if end < tiles:
            step = int(first[end] - first[t])
            while end < tiles and width[end] == width[t] and first[end] - first[end - 1] == step and (
                    starts[end] - starts[end - 1] == size):
                end += 1
        runs.append((int(starts[t]), int(first[t]), int(width[t]), int(offset[t]), end - t, step))
        t = end
    return _Bands(size, first, width, offset, int((width * size).sum()), runs)


def _buffer(like, out, shape):
    """The leading `shape` of `out` (a reused buffer), or a new tensor."""
    if out is None:
        return like.new_empty(shape)
    return out[tuple(slice(0, size) for size in shape)]


def _pointer(t: torch.Tensor | None):
    return None if t is None else t.data_ptr()


def _native_bias(query, key_rev, tables: NativeTables, rows, key_fill_rev, tile=64, out=None):
    """`relative_bias` from band products (BLAS matmuls) summed by csrc/relative_bias.c in one pass.

    One (b, h) slice at a time, through two scratch buffers reused by every slice, so the bands are
    still in cache when the kernel reads them. (Building all slices' bands first streams two
    bias-sized tensors through main memory; in a 12-layer model that made the same matmuls and the
    same sum about twice as slow as when timed alone.)

    Each band holds only the table rows its tile reads: the line is non-decreasing, so those are one
    contiguous range, narrower than the tile's span of distances wherever log buckets or the clamped far
    ends repeat rows (at 512 tokens with v3's 256 buckets, 373 rows on average against 575 distances
    per 64-row tile). c2p: query rows in tiles of r = tile, q_tile (r, D) @ pos_key[h, rows].T; p2c: keys
    in tiles of k = tile, k_tile (k, D) @ pos_query[h, rows].T.
    """
    B, H = query.shape[:2]
    S = key_rev.shape[2]
    i0, i1 = rows
    n = i1 - i0
    r, k = min(tile, n), min(tile, S)
    pos_key, pos_query, line, line_rows, plans = tables
    R = (pos_key if pos_key is not None else pos_query).shape[1]
    plan_key = (i0, n, S, r, k, R, pos_key is not None, pos_query is not None)
    if plan_key not in plans:
        c_bands = None if pos_key is None else _bands(line_rows, i0, n, S, r, R)
        p_bands = None if pos_query is None else _bands(line_rows, i0, S, n, k, R)
        c_meta = (None, None) if c_bands is None else (c_bands.base(), c_bands.stride())
        p_meta = (None, None) if p_bands is None else (p_bands.base(), p_bands.stride())
        plans[plan_key] = (c_bands, p_bands, *c_meta, *p_meta)
    c_bands, p_bands, c_base, c_stride, p_base, p_stride = plans[plan_key]
    # 16 spare elements: the kernel reads 8 values at a time from a band row, which may run past its end
    c2p = None if c_bands is None else query.new_empty(c_bands.total + 16)
    p2c = None if p_bands is None else query.new_empty(p_bands.total + 16)
    bias = _buffer(query, out, (B, H, n, S))  # each (b, h) slice's rows contiguous, as the kernel writes them
    fill = None if key_fill_rev is None else key_fill_rev.to(torch.uint8).contiguous()
    line_at = line.data_ptr() + i0 * line.element_size()
    lib = native.library()
    kernel = lib.relative_bias_bf16 if query.dtype == torch.bfloat16 else lib.relative_bias_f32
    for b in range(B):
        for h in range(H):
            if c2p is not None:
                _band_tiles(query[b, h, i0:i1], pos_key[h], c_bands, c2p)
            if p2c is not None:
                _band_tiles(key_rev[b, h], pos_query[h], p_bands, p2c)
            kernel(bias[b, h].data_ptr(), _pointer(c2p), _pointer(p2c), None if fill is None else fill[b].data_ptr(),
                   line_at, _pointer(c_base), _pointer(c_stride), _pointer(p_base), _pointer(p_stride), n, S, r, k)
    return bias


def _band_tiles(lhs, table, bands: _Bands, out):
    """Tile t of `bands` into out[offset[t]:]: lhs[s : s + size] @ table[first[t] : first[t] + width[t]].T, s =
    min(t * size, L - size); lhs (L, D), table (R, D). One matmul per run of alike tiles (batched through
    a strided view of the table's overlapping windows). Called once per (batch, head) slice, so its
    per-call overhead counts: everything is precomputed in `bands`."""
    D = lhs.shape[1]
    size = bands.size
    rows, cols = table.stride()
    for start, first, width, offset, tiles, step in bands.runs:
        if tiles == 1:
            torch.mm(lhs[start: start + size], table[first: first + width].t(),
                     out=out[offset: offset + size * width].view(size, width))
        else:
            windows = table.as_strided((tiles, D, width), (step * rows, cols, rows),
                                       table.storage_offset() + first * rows)
            torch.bmm(lhs[start: start + tiles * size].unflatten(0, (tiles, size)), windows,
                      out=out[offset: offset + tiles * size * width].view(tiles, size, width))


class _BandBias(torch.autograd.Function):
    """`relative_bias` under autograd (training), with its backward written out.

    Built by autograd from PyTorch ops, the banded bias costs more in its bookkeeping than in its
    matmuls: every tile's slice of q gets a zero-filled gradient that is then summed, every shifted band
    a zero-padded copy, and the concatenated tiles a transposed copy (forward + backward at 8 x 128,
    v3-base shapes, one AVX2 EPYC thread: 44.2 ms before, 37.7 ms with this function, `python
    benchmarks/profile.py bias`; docs/performance.md, Training).

    Forward: the band products of `_strided_bias` without its flat ends (the bands cover them), written
    into the bias through the same strided views. Backward: each tile's gradient is scattered onto the
    diagonals of a band-shaped buffer G, whose other entries stay zero for every tile of that shape,
    then grad(rows) = G @ band rows of the table and grad(table rows) += G.T @ rows. Band widths are
    padded to BAND_ALIGN (the tables get BAND_ALIGN - 1 zero rows past their end): the extra columns
    lie beyond every diagonal read.
    Twice differentiable: the backward is built from differentiable ops (the bias is linear in each
    input), so under create_graph=True (gradient penalties, meta-learning) autograd records it, with
    a fresh G per tile, since a recorded matmul keeps its G for the second derivative.
    """

    @staticmethod
    def forward(ctx, query, key_rev, pos_key_line, pos_query_line, rows, tile_query, tile_key):
        B, H, T, D = query.shape
        S = key_rev.shape[2]
        i0, i1 = rows
        n = i1 - i0
        key_table, query_table = (None if t is None else F.pad(t, (0, 0, 0, BAND_ALIGN - 1))
                                  for t in (pos_key_line, pos_query_line))
        bias = query.new_empty(B, H, n, S)
        if query_table is None:
            bias.zero_()
        for c0, k, w in _key_tiles(n, S, tile_key) if query_table is not None else ():
            # p2c[i, c] = k_rev[c] . pos_query_line[i + c]: band (H, B k, w), band row c - c0, column i - i0 + c - c0
            band = _rows(key_rev, c0, k) @ query_table[:, i0 + c0: i0 + c0 + w].transpose(-1, -2)
            bias[..., c0: c0 + k] = _p2c_diagonals(band, B, n)
        for r0, r, w in _query_tiles(i0, i1, S, tile_query) if key_table is not None else ():
            # c2p[i, c] = q_i . pos_key_line[i + c]: band (H, B r, w), band row i - r0, column i - r0 + c
            band = _rows(query, r0, r) @ key_table[:, r0: r0 + w].transpose(-1, -2)
            bias[:, :, r0 - i0: r0 - i0 + r] += _c2p_diagonals(band, B, S)
        # the inputs themselves, padded again in backward: a tensor made here is not linked to them, and a
        # second derivative must reach the tables through the padding
        ctx.save_for_backward(query, key_rev, pos_key_line, pos_query_line)
        ctx.plan = rows, tile_query, tile_key
        return bias

    @staticmethod
    def backward(ctx, grad):
        query, key_rev, pos_key_line, pos_query_line = ctx.saved_tensors
        (i0, i1), tile_query, tile_key = ctx.plan
        B, H, T, D = query.shape
        S = key_rev.shape[2]
        n = i1 - i0
        grad = grad.contiguous()
        # in the gradient's dtype (under autocast it may differ from the saved inputs'), cast once here
        query, key_rev = query.to(grad.dtype), key_rev.to(grad.dtype)
        key_table, query_table = (None if t is None else F.pad(t.to(grad.dtype), (0, 0, 0, BAND_ALIGN - 1))
                                  for t in (pos_key_line, pos_query_line))
        need = ctx.needs_input_grad
        scratch = {}
        recorded = torch.is_grad_enabled()  # create_graph=True: this backward is itself differentiated

        def diagonals(term, shape):  # zero except the diagonals each tile of this term and shape overwrites
            if recorded:
                return grad.new_zeros(shape)
            if (term, shape) not in scratch:
                scratch[term, shape] = grad.new_zeros(shape)
            return scratch[term, shape]

        grad_query = grad_key = grad_key_table = grad_query_table = None
        if key_table is not None and (need[0] or need[2]):
            grad_query = query.new_zeros(B, H, T, D) if need[0] else None
            grad_key_table = torch.zeros_like(key_table) if need[2] else None
            for r0, r, w in _query_tiles(i0, i1, S, tile_query):
                G = diagonals("c2p", (H, B * r, w))
                _c2p_diagonals(G, B, S).copy_(grad[:, :, r0 - i0: r0 - i0 + r])
                if grad_query is not None:
                    grad_query[:, :, r0: r0 + r] = (G @ key_table[:, r0: r0 + w]).view(H, B, r, D).transpose(0, 1)
                if grad_key_table is not None:
                    grad_key_table[:, r0: r0 + w] += G.transpose(-1, -2) @ _rows(query, r0, r)
        if query_table is not None and (need[1] or need[3]):
            grad_key = key_rev.new_empty(B, H, S, D) if need[1] else None
            grad_query_table = torch.zeros_like(query_table) if need[3] else None
            for c0, k, w in _key_tiles(n, S, tile_key):
                G = diagonals("p2c", (H, B * k, w))
                _p2c_diagonals(G, B, n).copy_(grad[..., c0: c0 + k])
                if grad_key is not None:
                    grad_key[:, :, c0: c0 + k] = (G @ query_table[:, i0 + c0: i0 + c0 + w]).view(
                        H, B, k, D).transpose(0, 1)
                if grad_query_table is not None:
                    grad_query_table[:, i0 + c0: i0 + c0 + w] += G.transpose(-1, -2) @ _rows(key_rev, c0, k)
        unpadded = [None if t is None else t[:, : t.shape[1] - (BAND_ALIGN - 1)]
                    for t in (grad_key_table, grad_query_table)]
        return grad_query, grad_key, *unpadded, None, None, None


def _rows(x, start: int, count: int):
    """x[:, :, start : start + count] (B, H, L, D) as one (H, B count, D) matrix per head."""
    B, H, _, D = x.shape
    return x[:, :, start: start + count].transpose(0, 1).reshape(H, B * count, D)


def _c2p_diagonals(band, B: int, S: int):
    """The (B, H, r, S) view of a c2p band (H, B r, w) contiguous: [b, h, a, c] = band[h, b r + a, a + c]."""
    H, rows, w = band.shape
    r = rows // B
    return band.as_strided((B, H, r, S), (r * w, B * r * w, w + 1, 1))


def _p2c_diagonals(band, B: int, n: int):
    """The (B, H, n, k) view of a p2c band (H, B k, w) contiguous: [b, h, a, c] = band[h, b k + c, a + c]."""
    H, keys, w = band.shape
    k = keys // B
    return band.as_strided((B, H, n, k), (k * w, B * k * w, 1, w + 1))


def _query_tiles(i0: int, i1: int, S: int, tile: int):
    """(first row, rows, band width) of each c2p tile of query rows [i0, i1)."""
    for r0 in range(i0, i1, tile):
        r = min(i1, r0 + tile) - r0
        yield r0, r, _aligned(r + S - 1)


def _key_tiles(n: int, S: int, tile: int):
    """(first key, keys, band width) of each p2c tile of S keys against n query rows."""
    for c0 in range(0, S, tile):
        k = min(S, c0 + tile) - c0
        yield c0, k, _aligned(n + k - 1)


def _plan(B, H, T, S, grad: bool):
    """Batch chunk size and query block size for the bias."""
    if grad:
        return B, T  # autograd keeps every block anyway; one graph is cheapest
    per_row = H * S
    if per_row * T <= BIAS_BUDGET:
        return max(1, min(B, BIAS_BUDGET // (per_row * T))), T
    rows = max(64, (BIAS_BUDGET // per_row) // 64 * 64)
    return 1, min(T, rows)


def _core(query, key, value, bias, scale, dropout_p):
    """softmax(q.k / scale + bias) v for one block; bias (B, H, n, S) may be consumed (overwritten).

    In bfloat16 inference two kernels compete, timed once per shape (`core_choices`): the fused
    scaled_dot_product_attention, and a baddbmm + softmax + bmm on the block, which beat it on an
    AVX-512 CPU without AMX; with AMX the fused kernel's bf16 path runs on the tile unit.
    """
    if query.dtype != torch.bfloat16 or torch.is_grad_enabled() or dropout_p > 0.0 or tracing():
        return _fused_core(query, key, value, bias, scale, dropout_p)
    runs = {"fused": lambda: _fused_core(query, key, value, bias.clone(), scale, 0.0),
            "unfused": lambda: _unfused_core(query, key, value, bias.clone(), scale)}
    if CORE.pick((query.dtype, *query.shape, key.shape[2]), runs) == "fused":
        return _fused_core(query, key, value, bias, scale, 0.0)
    return _unfused_core(query, key, value, bias, scale)


def _fused_core(query, key, value, bias, scale, dropout_p):
    return F.scaled_dot_product_attention(query, key, value, attn_mask=bias, dropout_p=dropout_p, scale=1.0 / scale)


def _unfused_core(query, key, value, bias, scale):
    B, H, n, D = query.shape
    S = key.shape[2]
    scores = bias.view(B * H, n, S).baddbmm_(query.reshape(B * H, n, D), key.reshape(B * H, S, D).transpose(1, 2),
                                              alpha=1.0 / scale)
    return (torch.softmax(scores, dim=-1) @ value.reshape(B * H, S, -1)).view(B, H, n, -1)


def core_choices() -> dict[tuple, str]:
    """What the bfloat16 attention core picked so far: (dtype, B, H, n, D, S) -> "fused" or "unfused"."""
    return dict(CORE.picks)


def relative_attention(query, key, value, scale: float, pos_key_line=None, pos_query_line=None, pair_mask=None,
                       token_mask=None, dropout_p: float = 0.0, output_attentions: bool = False, flat_ends=None,
                       native: NativeTables | None = None):
    """Disentangled attention through one additive bias and a fused softmax.

    query, key, value: (B, H, T|S, D). scale: sqrt(D * scale_factor); the content score is q.k / scale.
    pos_key_line / pos_query_line: (H, T + S - 1, D) from `distance_tables`, or None (term disabled).
    pair_mask: bool (B, 1, T, S), True where query i may attend to key j, or None (attend everywhere).
    token_mask: bool (B, T), given when pair_mask is exactly token_mask[i] & token_mask[j] (a 2-D padding
    mask, T == S); padded keys are then masked in the bias and padded query rows get mean(v).
    flat_ends: optional (m_lo, m_hi) stretches of the distance line that read a single row (`relative_bias`).
    native: the same position tables by row (`native_tables`), or None: CPU inference may then build the
    bias with the native kernel. With it, pos_key_line and pos_query_line may be None: they are laid out
    from it only where something else needs them.
    Returns context (B, H, T, D) and, when output_attentions, probabilities (B, H, T, S) (else None).

    bfloat16 CPU inference runs in the precision measured faster for the shape (`PRECISION`): on a CPU
    without bfloat16 arithmetic (AVX2, or AVX-512 without its bf16 extension) every bfloat16 matmul is
    emulated, several times slower than float32, and the float32 computation on the upcast inputs
    (rounded back to bfloat16) is both faster and closer to exact; with AMX or AVX-512 bf16 it is not.
    """
    native_terms = () if native is None else (native.pos_key, native.pos_query)
    terms = native_terms or (pos_key_line, pos_query_line)
    if (query.dtype == torch.bfloat16 and query.device.type == "cpu" and not output_attentions and dropout_p == 0.0
            and not tracing() and not _needs_grad(query, key, value, pos_key_line, pos_query_line, *native_terms)):
        def computed_in(dtype):
            def cast(t):
                return None if t is None else t.to(dtype)

            def run():
                with torch.autocast("cpu", enabled=False):  # autocast would take float32 matmuls back to bf16
                    return _relative_attention(cast(query), cast(key), cast(value), scale, cast(pos_key_line),
                                               cast(pos_query_line), pair_mask, token_mask, 0.0, False,
                                               flat_ends, None if native is None else native.to(dtype)
                                               )[0].to(torch.bfloat16)
            return run
        runs = {"bfloat16": computed_in(torch.bfloat16), "float32": computed_in(torch.float32)}
        choice = PRECISION.backend
        if choice == "auto":
            choice = PRECISION.pick((*query.shape, key.shape[2], *(t is not None for t in terms)), runs)
        return runs[choice](), None
    return _relative_attention(query, key, value, scale, pos_key_line, pos_query_line, pair_mask, token_mask,
                               dropout_p, output_attentions, flat_ends, native)


def _needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _relative_attention(query, key, value, scale, pos_key_line, pos_query_line, pair_mask, token_mask, dropout_p,
                        output_attentions, flat_ends, native=None):
    """`relative_attention` in the dtype of its inputs."""
    B, H, T, D = query.shape
    S = key.shape[2]
    grad = _needs_grad(query, key, value, pos_key_line, pos_query_line,
                       *(() if native is None else (native.pos_key, native.pos_query)))
    if native is not None and (grad or output_attentions):  # paths the native kernel does not serve
        if pos_key_line is None and pos_query_line is None:
            pos_key_line, pos_query_line = native.distance_tables()
        native = None
    relative = pos_key_line is not None or pos_query_line is not None or native is not None
    if output_attentions:
        return _explicit(query, key, value, scale, pos_key_line, pos_query_line, pair_mask, token_mask, dropout_p,
                         flat_ends)
    if not relative and pair_mask is None:
        return F.scaled_dot_product_attention(query, key, value, dropout_p=dropout_p, scale=1.0 / scale), None
    padding = token_mask is not None
    if not relative:
        if padding:
            bias = torch.zeros((), dtype=query.dtype, device=query.device).masked_fill(
                ~token_mask[:, None, None, :], torch.finfo(query.dtype).min)
        else:
            bias = torch.zeros((), dtype=query.dtype, device=query.device).masked_fill(
                ~pair_mask, torch.finfo(query.dtype).min)
        context = F.scaled_dot_product_attention(query, key, value, attn_mask=bias, dropout_p=dropout_p,
                                                 scale=1.0 / scale)
        return (_uniform_padded_rows(context, value, token_mask) if padding else context), None

    key_rev, value_rev = key.flip(2), value.flip(2)
    fill_rev = (~token_mask).flip(-1) if padding else None
    mask_rev = pair_mask.flip(-1) if pair_mask is not None and not padding else None
    chunk, block = _plan(B, H, T, S, grad)
    if chunk == B and block == T:
        context = _attend_block(query, key_rev, value_rev, scale, pos_key_line, pos_query_line, mask_rev,
                                fill_rev, (0, T), dropout_p, flat_ends, native)
    else:
        context = query.new_empty(B, H, T, value.shape[-1])
        # one bias buffer for every block: a fresh 16 MB allocation per block costs page faults, and
        # glibc's growing mmap threshold then keeps the freed blocks on its heap (200 MB more peak
        # memory at 1 x 8192)
        workspace = None if grad else query.new_empty(chunk, H, block, S)
        for b0 in range(0, B, chunk):
            b1 = min(B, b0 + chunk)
            q, k, v = query[b0:b1], key_rev[b0:b1], value_rev[b0:b1]
            mask = None if mask_rev is None else mask_rev[b0:b1]
            fill = None if fill_rev is None else fill_rev[b0:b1]
            for i0 in range(0, T, block):
                i1 = min(T, i0 + block)
                context[b0:b1, :, i0:i1] = _attend_block(q, k, v, scale, pos_key_line, pos_query_line, mask, fill,
                                                         (i0, i1), dropout_p, flat_ends, native, workspace)
    if padding:
        context = _uniform_padded_rows(context, value, token_mask)
    return context, None


def _attend_block(query, key_rev, value_rev, scale, pos_key_line, pos_query_line, mask_rev, fill_rev, rows,
                  dropout_p, flat_ends, native=None, workspace=None):
    i0, i1 = rows
    bias = relative_bias(query, key_rev, pos_key_line, pos_query_line, rows, fill_rev, flat_ends, native=native,
                         out=workspace)
    if mask_rev is not None:
        bias = bias.masked_fill(~mask_rev[:, :, i0:i1], torch.finfo(bias.dtype).min)
    q = query if (i0, i1) == (0, query.shape[2]) else query[:, :, i0:i1]
    return _core(q, key_rev, value_rev, bias, scale, dropout_p)


def _uniform_padded_rows(context, value, token_mask):
    """Fully masked query rows attend uniformly to all S keys (reference semantics): mean of v."""
    mean = value.mean(dim=-2, keepdim=True).to(context.dtype)  # (B, H, 1, D)
    return torch.where(token_mask[:, None, :, None], context, mean)


def _explicit(query, key, value, scale, pos_key_line, pos_query_line, pair_mask, token_mask, dropout_p, flat_ends):
    """The same scores with probabilities materialised, for output_attentions=True."""
    T = query.shape[2]
    scores = query @ (key.transpose(-1, -2) / scale)  # (B, H, T, S)
    if pos_key_line is not None or pos_query_line is not None:
        bias = relative_bias(query, key.flip(2), pos_key_line, pos_query_line, (0, T), flat_ends=flat_ends)
        scores = scores + bias.flip(-1)
    if token_mask is not None and pair_mask is None:
        pair_mask = token_mask[:, None, :, None] & token_mask[:, None, None, :]
    if pair_mask is not None:
        scores = scores.masked_fill(~pair_mask, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1)
    if dropout_p > 0.0:
        probs = F.dropout(probs, p=dropout_p)
    return probs @ value, probs


def mask_form(pair_mask: torch.Tensor, token_mask: torch.Tensor | None = None):
    """What a (B, 1, T, S) bool mask is: (pair_mask, or None when it masks nothing; the (B, T) token mask
    when pair_mask is exactly token[i] & token[j] (a 2-D padding mask), else None).

    token_mask is the candidate to check; without it, it is read off the mask's rows. Reads the mask's
    values, so it runs eagerly: in compiled graphs inside `compiled_relative_attention`.
    """
    if bool(pair_mask.all()):
        return None, None
    T = pair_mask.shape[-1]
    if pair_mask.shape[1] == 1 and pair_mask.shape[-2] == T:
        token = pair_mask[:, 0].any(-1) if token_mask is None else token_mask.bool()
        if token.shape[-1] == T and torch.equal(pair_mask, token[:, None, :, None] & token[:, None, None, :]):
            return pair_mask, token
    return pair_mask, None


# A compiled graph cannot hold the banded kernel as traced ops: its Python loop over tiles unrolls into
# hundreds of small ops per layer (minutes of Inductor time, and slower code than eager), and its
# data-dependent shortcuts (an all-ones or padding mask) would be frozen into the graph. Inference
# graphs therefore call it as one opaque operator, which runs the eager kernel with its shortcuts on
# each call; Inductor compiles what surrounds it. Graphs that need gradients trace the ops instead.
@torch.library.custom_op("deberta::relative_attention", mutates_args=())
def compiled_relative_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float,
                                pos_key: torch.Tensor | None, pos_query: torch.Tensor | None,
                                line: torch.Tensor | None, pair_mask: torch.Tensor | None,
                                flat_ends: list[int] | None) -> torch.Tensor:
    """`relative_attention`'s context, (B, T, H, D) (heads second to last), as one operator for compiled
    inference graphs (no dropout, no probabilities). pos_key, pos_query: (H, R, D) divided by the scale
    (or None), line: the distance line (or None without relative terms); they take the native bias where
    it applies, else are laid out by distance here. pair_mask (B, 1, T, S) bool or None, its form found on
    each call (`mask_form`)."""
    token_mask = None
    if pair_mask is not None:
        pair_mask, token_mask = mask_form(pair_mask)
    key_line = query_line = native = None
    if line is not None:
        key_line, query_line, native = bias_tables(query, pos_key, pos_query, line)
    context, _ = relative_attention(query, key, value, scale, key_line, query_line, pair_mask, token_mask,
                                    flat_ends=None if flat_ends is None else tuple(flat_ends), native=native)
    # (B, T, H, D), contiguous as Inductor takes an operator's output to be: the layout SDPA's CPU kernels
    # write (so this is usually no copy), and the one the layer's merge of the heads reads as a view
    return context.transpose(1, 2).contiguous()


@compiled_relative_attention.register_fake
def _(query, key, value, scale, pos_key, pos_query, line, pair_mask, flat_ends):
    B, H, T, _ = query.shape
    return query.new_empty(B, T, H, value.shape[-1])


# Eager inference projects the position table once and keeps it (attention.py); a compiled graph would
# project it on every call, which costs as much as the layer itself for one short sequence. This
# operator keeps the projections between calls, keyed on the parameters they come from.
_POSITION_TABLES: dict[tuple, tuple] = {}
_POSITION_TABLES_KEPT = 64  # entries (two per layer and dtype); the oldest go first


@torch.library.custom_op("deberta::position_tables", mutates_args=())
def cached_position_tables(table: torch.Tensor, sources: list[torch.Tensor], key_weight: torch.Tensor | None,
                           key_bias: torch.Tensor | None, query_weight: torch.Tensor | None,
                           query_bias: torch.Tensor | None, heads: int, scale: float,
                           dtype: torch.dtype) -> list[torch.Tensor]:
    """Position keys and queries, (H, R, D) each (empty where the weight is None): `table` (R, C) through
    the projection, split into heads, divided by the scale; kept until a source or weight changes."""
    tensors = [*sources, *(t for t in (key_weight, key_bias, query_weight, query_bias) if t is not None)]
    presence = tuple(t is not None for t in (key_weight, key_bias, query_weight, query_bias))
    key = (state_key(tensors), presence, heads, scale, dtype, tuple(table.shape))
    entry = _POSITION_TABLES.get(key)
    if entry is not None and entry[0].holds(tensors):
        hit = entry[1]
    else:
        def project(weight, bias):
            if weight is None:
                return table.new_empty(0, dtype=dtype)
            out = F.linear(table, weight, bias)
            return (out.view(out.shape[0], heads, -1).transpose(0, 1) / scale).to(dtype).contiguous()

        hit = (project(key_weight, key_bias), project(query_weight, query_bias))
        _POSITION_TABLES.pop(key, None)
        while len(_POSITION_TABLES) >= _POSITION_TABLES_KEPT:
            _POSITION_TABLES.pop(next(iter(_POSITION_TABLES)))
        _POSITION_TABLES[key] = (TensorsState(tensors), hit)
    return [t.clone() for t in hit]  # the graph owns its outputs (Inductor may reuse their memory)


@cached_position_tables.register_fake
def _(table, sources, key_weight, key_bias, query_weight, query_bias, heads, scale, dtype):
    def shape(weight):
        if weight is None:
            return table.new_empty(0, dtype=dtype)
        return table.new_empty(heads, table.shape[0], weight.shape[0] // heads, dtype=dtype)

    return [shape(key_weight), shape(query_weight)]


# ----------------------------------------------------------------------------------- linear layers
def tracing() -> bool:
    """Inside torch.compile / torch.export or torch.jit.trace: no caches, no data-dependent shortcuts."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def compiling_for_inference(*tensors) -> bool:
    """Inside torch.compile (not export or jit.trace) with nothing that needs a gradient."""
    if not torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing():
        return False
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


class InferenceCache(dict):
    """Derived tensors kept between inference calls; copies and pickles as empty (rebuilt on demand).

    Packed oneDNN weights cannot be serialised, and a copied model must not share them anyway.
    """

    def __deepcopy__(self, memo):
        return type(self)()

    def __reduce__(self):
        return type(self), ()


def state_key(tensors) -> tuple:
    """Storage address, version counter and dtype of each of `tensors` (see `TensorsState`)."""
    return tuple((t.data_ptr(), t._version, t.dtype) for t in tensors)


class TensorsState:
    """What identifies the current values of some tensors, for a cache of what is derived from them.

    It holds while each tensor keeps its storage and its version counter. Version counters move on every
    in-place update (optimizer steps, load_state_dict, copy_); `.to()`, `.half()` and `.data =` replace the
    storage. An address alone is not enough: once a storage is freed a new one can take its address with
    the same version count (`model.half().float()`, one model freed and another built), so the state also
    keeps weak references to the storages, and one that is gone never matches. Keeps nothing alive.
    """

    __slots__ = ("key", "_storages")

    def __init__(self, tensors):
        self.key = state_key(tensors)
        self._storages = tuple(StorageWeakRef(t.untyped_storage()) for t in tensors)

    def holds(self, tensors) -> bool:
        return self.key == state_key(tensors) and self.alive()

    def alive(self) -> bool:
        """Whether every storage it was taken from still exists."""
        return not any(s.expired() for s in self._storages)


def cached(owner: torch.nn.Module, name: str, tensors, build):
    """`build()`, kept on `owner` until one of `tensors` changes (see `TensorsState`)."""
    store = owner.__dict__.setdefault("_inference_cache", InferenceCache())
    hit = store.get(name)
    if hit is not None and hit[0].holds(tensors):
        return hit[1]
    value = build()
    store[name] = (TensorsState(tensors), value)
    return value


@functools.lru_cache(maxsize=None)
def _packs_bfloat16() -> bool:
    """Whether oneDNN's packed bfloat16 Linear runs on this CPU: it needs AVX-512 (BW, VL, DQ; ATen's
    "AVX512" capability) and raises on AVX2-only CPUs, which then take the plain path."""
    return torch.backends.cpu.get_cpu_capability() in ("AVX512",)


def _packable(x: torch.Tensor, weight: torch.Tensor) -> bool:
    # tracing() first: dynamo cannot trace the CPU capability query (fullgraph=True raised on bfloat16)
    return (not tracing() and LINEAR.backend != "plain" and x.device.type == "cpu" and x.dtype == weight.dtype
            and (x.dtype == torch.float32 or (x.dtype == torch.bfloat16 and _packs_bfloat16()))
            and not torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu")
            and torch.backends.mkldnn.is_available())


# Bytes written between timed runs of `_fastest`: the size of a large server's last-level cache share.
_EVICT_BYTES = 32 << 20


def _fastest(runs: dict, repeats: int = 3) -> str:
    """Time each of `runs` (name -> callable; interleaved, after a warm-up each); name the fastest by its best time.

    Each timed run starts with the caches full of other data, as inside a model, where every layer's
    weights have just streamed through them. Timed hot, a kernel that makes large intermediates looks
    faster than it runs in the model: the native bias once built every head's bands before summing
    them, and timed hot it was picked at 1x512, where in a 12-layer model it ran at 0.64x BERT against
    0.73x for the PyTorch path and 0.81x for the per-(batch, head) bands of `_native_bias` now.
    """
    best = {name: float("inf") for name in runs}
    for run in runs.values():
        run()
    scratch = torch.empty(_EVICT_BYTES // 4)
    for repeat in range(repeats):
        for name, run in runs.items():
            scratch.fill_(float(repeat))
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return min(best, key=best.get)


def linear(owner, name: str, x: torch.Tensor, weights, biases=(), gelu: bool = False):
    """x @ cat(weights).T + cat(biases), then the exact GELU when `gelu`; several weights fuse into one matmul.

    weights: list of (out_i, in) tensors; biases: matching list of (out_i,) tensors, or empty for none.
    In CPU inference (no autograd) the concatenated weight is packed once for oneDNN and cached on
    `owner` (a module, or any object with a __dict__); otherwise this is F.linear (autograd flows
    through the concatenation). Compiled CPU inference graphs call it as one operator, `compiled_linear`.
    """
    tensors = list(weights) + list(biases)
    if _compiled_cpu_inference(x, tensors):
        return compiled_linear(x, list(weights), list(biases), gelu)
    if _packable(x, weights[0]):
        def build():
            weight = weights[0] if len(weights) == 1 else torch.cat(list(weights))
            bias = None if not biases else (biases[0] if len(biases) == 1 else torch.cat(list(biases)))
            return torch.ops.mkldnn._reorder_linear_weight(weight.detach()), None if bias is None else bias.detach()
        packed, bias = cached(owner, name + "/packed", tensors, build)

        def run_packed():
            if gelu:
                return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "gelu", [], "none")
            return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")

        if LINEAR.backend == "packed":
            return run_packed()
        rows = x.numel() // x.shape[-1]
        choice_key = (x.dtype, 1 << max(rows - 1, 0).bit_length(), x.shape[-1], sum(w.shape[0] for w in weights), gelu)
        runs = {"packed": run_packed, "plain": lambda: _plain_linear(owner, name, x, weights, biases, tensors, gelu)}
        if LINEAR.pick(choice_key, runs) == "packed":
            return run_packed()
    return _plain_linear(owner, name, x, weights, biases, tensors, gelu)


def _compiled_cpu_inference(x: torch.Tensor, tensors) -> bool:
    """Being traced by torch.compile for CPU inference in a dtype oneDNN packs."""
    return (compiling_for_inference(x, *tensors) and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.bfloat16) and all(t.dtype == x.dtype for t in tensors)
            and not torch.is_autocast_enabled("cpu"))


class _PackedWeights:
    """What `linear` caches for one set of weights called through `compiled_linear` (it stands in for the
    module eager inference keeps them on)."""


# Per set of weights (storage addresses, dtypes, shapes): (TensorsState, _PackedWeights). An entry whose
# weights are freed is dropped at the next miss, so this keeps no more than the live models' packed copies.
_COMPILED_LINEARS: dict[tuple, tuple] = {}


# Left to Inductor, a compiled graph runs the Linear layers as its own matmuls, without the packed
# oneDNN weights eager inference measures and keeps: where packing wins (an AVX-512 EPYC, Zen 4: 20-35%
# per matmul) the compiled model ran at 0.8x eager. Compiled inference graphs call this operator
# instead: `linear` run eagerly, its packed weights kept between calls, its kernel picked as in eager.
@torch.library.custom_op("deberta::linear", mutates_args=())
def compiled_linear(x: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor],
                    gelu: bool) -> torch.Tensor:
    """`linear` as one operator for compiled CPU inference graphs: x (..., in) -> (..., sum of out_i)."""
    tensors = [*weights, *biases]
    key = tuple((t.data_ptr(), t.dtype, tuple(t.shape)) for t in tensors)
    entry = _COMPILED_LINEARS.get(key)
    if entry is None or not entry[0].alive():
        for stale in [k for k, (state, _) in _COMPILED_LINEARS.items() if not state.alive()]:
            del _COMPILED_LINEARS[stale]
        entry = _COMPILED_LINEARS[key] = (TensorsState(tensors), _PackedWeights())
    out = linear(entry[1], "linear", x, weights, biases, gelu)
    return out.contiguous()  # Inductor takes an operator's output to be contiguous


@compiled_linear.register_fake
def _(x, weights, biases, gelu):
    return x.new_empty(*x.shape[:-1], sum(w.shape[0] for w in weights))


def _plain_linear(owner, name, x, weights, biases, tensors, gelu):
    if len(weights) == 1:
        weight, bias = weights[0], (biases[0] if biases else None)
    elif torch.is_grad_enabled() or tracing():
        weight, bias = torch.cat(list(weights)), (torch.cat(list(biases)) if biases else None)
    else:
        weight, bias = cached(owner, name + "/cat", tensors, lambda: (torch.cat(list(weights)),
                                                             torch.cat(list(biases)) if biases else None))
    out = F.linear(x, weight, bias)
    return _gelu(out) if gelu else out


def _gelu(out: torch.Tensor) -> torch.Tensor:
    """The exact GELU of a fresh matmul output, in place where nothing needs the input for a gradient: a
    second (rows, 4 * hidden) tensor costs more in page faults than the GELU itself (at 4x512, 25 MB:
    ~30 against ~9 ms on one AVX2 core)."""
    return F.gelu(out) if torch.is_grad_enabled() else torch.ops.aten.gelu_(out)


def project(owner: torch.nn.Module, name: str, x: torch.Tensor, modules, gelu: bool = False):
    """`linear` with the weights of `modules` (nn.Linear layers; their outputs concatenated).

    A module that is not a plain, hook-free nn.Linear (a PEFT LoRA layer, a quantised or hooked one)
    is called instead, so what it adds to its base weight is not bypassed by the fused, cached path.
    """
    plain = all(type(m) is torch.nn.Linear and not m._forward_hooks and not m._forward_pre_hooks for m in modules)
    biases = [m.bias for m in modules] if plain else []
    if plain and (all(b is None for b in biases) or all(b is not None for b in biases)):
        return linear(owner, name, x, [m.weight for m in modules], [b for b in biases if b is not None], gelu)
    out = modules[0](x) if len(modules) == 1 else torch.cat([m(x) for m in modules], dim=-1)
    return F.gelu(out) if gelu else out  # a module's output may be kept by its hooks: not in place
