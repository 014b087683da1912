"""Relative positions, log buckets and gather indices: the numpy oracle both frameworks are tested against.

For query i and key j the signed distance is d = i - j. v2/v3 checkpoints squeeze far distances into
log buckets; both attention terms then read row idx(i, j) = clamp(bucket(d) + span, 0, 2 * span - 1)
of the (sliced) relative table (SPEC §2.4-2.6).
"""

from __future__ import annotations

import functools

import numpy as np


def make_log_bucket_position(relative_pos: np.ndarray, bucket_size: int, max_position: int) -> np.ndarray:
    """Map signed distances to relative-position buckets.

    Distances with |d| <= bucket_size // 2 keep their value; farther ones are squeezed on a log scale so
    that |d| = max_position - 1 lands on bucket_size - 1, sign kept. For bucket_size=256,
    max_position=512: 150 -> 143, 300 -> 207, 511 -> 255, and 512 -> 256, which is out of range (callers
    clamp after shifting by the span; the reference does not clamp d first, SPEC §2.4).

    The log branch runs in float32, as in the reference: ceil() turns a last-bit difference into a whole
    bucket. Returns int64 of the same shape.
    """
    relative_pos = np.asarray(relative_pos, dtype=np.int64)
    mid = bucket_size // 2
    sign = np.sign(relative_pos)
    inside = (relative_pos < mid) & (relative_pos > -mid)
    abs_pos = np.where(inside, mid - 1, np.abs(relative_pos))
    ratio = (abs_pos.astype(np.float32) / np.float32(mid)).astype(np.float32)
    denom = np.log(np.float32((max_position - 1) / mid))
    log_pos = np.ceil(np.log(ratio) / denom * np.float32(mid - 1)).astype(np.float32) + np.float32(mid)
    bucket = np.where(abs_pos <= mid, relative_pos.astype(np.float32), log_pos * sign)
    return bucket.astype(np.int64)


@functools.lru_cache(maxsize=None)
def bucket_table(bucket_size: int, max_position: int) -> np.ndarray:
    """bucket(|d|) for |d| = 0, 1, ... up to the first distance whose bucket reaches bucket_size: int64.

    The one definition of the buckets both frameworks use: they look distances up in this table instead
    of recomputing logs. A framework's vectorised float32 log can differ from numpy's by an ulp, and at
    |d| = max_position - 1 the ratio of two logs is exactly an integer, so ceil() would move it a whole
    bucket (bucket_size=384, max_position=2048 gives 384 instead of the reference's 383). Buckets only
    grow with |d|, and every bucket >= bucket_size lands on the same clamped row, so the table ends at
    the first one: farther distances saturate there (the reference grows further, into the same row).
    """
    magnitudes = np.arange(0, 2 * max_position + bucket_size + 2)
    buckets = make_log_bucket_position(magnitudes, bucket_size, max_position)
    reached = buckets >= bucket_size
    end = int(np.argmax(reached)) if reached.any() else len(buckets) - 1
    return buckets[: end + 1]


@functools.lru_cache(maxsize=256)
def line_bounds(query_size: int, key_size: int, span: int, bucket_size: int = -1,
                max_position: int = -1) -> tuple[int, int, int, int]:
    """What the distance line of a (Tq, Tk) attention reaches, as python ints: (lo, hi, m_lo, m_hi).

    The line holds the row read at each distance d = i - j, line[d + Tk - 1], with buckets looked up in
    `bucket_table` as the frameworks do. It is non-decreasing, so it reads rows lo = line[0] .. hi =
    line[-1] only; line[m] == lo for m <= m_lo and line[m] == hi for m >= m_hi (the clamped far ends).
    Computed from the sizes alone, so a compiled graph or a GPU gets them without reading a tensor.
    """
    distances = np.arange(-(key_size - 1), query_size, dtype=np.int64)
    if bucket_size > 0 and max_position > 0:
        table = bucket_table(bucket_size, max_position)
        distances = np.sign(distances) * table[np.minimum(np.abs(distances), len(table) - 1)]
    line = np.clip(distances + span, 0, 2 * span - 1)
    width = len(line)
    return int(line[0]), int(line[-1]), int((line == line[0]).sum()) - 1, width - int((line == line[-1]).sum())


def relative_position_index(query_size: int, key_size: int, span: int, bucket_size: int = -1,
                            max_position: int = -1) -> np.ndarray:
    """Row index into the sliced relative table for every (query, key) pair: int64 (Tq, Tk).

    span: S, half the number of table rows used (v1: min(max(Tq, Tk), K); v2: B if buckets else K).
    bucket_size, max_position: B and K for v2 log buckets; bucket_size <= 0 disables them.
    """
    q = np.arange(query_size, dtype=np.int64)[:, None]
    k = np.arange(key_size, dtype=np.int64)[None, :]
    rel = q - k
    if bucket_size > 0 and max_position > 0:
        rel = make_log_bucket_position(rel, bucket_size, max_position)
    return np.clip(rel + span, 0, 2 * span - 1)
