"""Relative-position buckets and gather indices in keras.ops; mirrors deberta_core.relative_position."""

from __future__ import annotations

import functools

import numpy as np
from keras import ops

from deberta_core import relative_position as oracle


@functools.lru_cache(maxsize=None)
def _bucket_table(bucket_size: int, max_position: int) -> np.ndarray:
    """bucket(|d|) for d = 0, 1, ... up to the first distance whose bucket reaches bucket_size (int32).

    Computed once by the numpy oracle. Buckets only grow with |d|, and every bucket >= bucket_size lands
    on the same clamped row, so the table ends there.
    """
    magnitudes = np.arange(0, 2 * max_position + bucket_size + 2)
    buckets = oracle.make_log_bucket_position(magnitudes, bucket_size, max_position)
    end = int(np.argmax(buckets >= bucket_size)) if (buckets >= bucket_size).any() else len(buckets) - 1
    return buckets[: end + 1].astype(np.int32)


def make_log_bucket_position(relative_pos, bucket_size: int, max_position: int):
    """Map signed distances d = i - j to log buckets (see deberta_core.relative_position for the rule).

    The buckets are read from a table the numpy oracle computes, not recomputed with ops.log: TensorFlow's
    vectorised float32 log can differ from the scalar one by an ulp, and at |d| = max_position - 1 the
    ratio of two logs is exactly an integer, so ceil() would move it a whole bucket (bucket_size=384,
    max_position=2048 gives 384 instead of the reference's 383). Distances past the first one whose
    bucket reaches bucket_size get bucket_size (the reference grows further); the caller's clamp to
    [0, 2 * bucket_size) makes both the same row.
    relative_pos: int32, any shape. Returns int32 of the same shape.
    """
    table = _bucket_table(bucket_size, max_position)
    magnitude = ops.minimum(ops.abs(relative_pos), len(table) - 1)
    return ops.sign(relative_pos) * ops.take(ops.convert_to_tensor(table), magnitude, axis=0)


def relative_position_index(query_size, key_size, span, bucket_size: int = -1, max_position: int = -1):
    """Row of the sliced relative table read by each (query i, key j) pair: int32 (T, S).

    idx[i, j] = clamp(bucket(i - j) + span, 0, 2 * span - 1). idx depends only on i - j, so the bucket
    function runs once over the T + S - 1 distinct distances and the matrix is gathered from that line.
    query_size, key_size and span may be Python ints or scalar tensors (unknown lengths in a graph).
    """
    distances = ops.arange(-(key_size - 1), query_size, dtype="int32")
    if bucket_size > 0 and max_position > 0:
        distances = make_log_bucket_position(distances, bucket_size, max_position)
    line = ops.clip(distances + span, 0, 2 * span - 1)
    q = ops.arange(query_size, dtype="int32")[:, None]
    k = ops.arange(key_size, dtype="int32")[None, :]
    return ops.take(line, q - k + (key_size - 1), axis=0)
