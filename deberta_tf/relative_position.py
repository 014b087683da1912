"""Relative-position buckets and gather indices in keras.ops; the buckets come from deberta_core.relative_position."""

from __future__ import annotations

from keras import ops

from deberta_core import relative_position as oracle


def make_log_bucket_position(relative_pos, bucket_size: int, max_position: int):
    """Map signed distances d = i - j to log buckets, read from deberta_core's `bucket_table` (the one
    definition; far distances saturate at bucket_size, the same clamped row as the reference's).

    relative_pos: int32, any shape. Returns int32 of the same shape.
    """
    table = ops.convert_to_tensor(oracle.bucket_table(bucket_size, max_position).astype("int32"))
    magnitude = ops.minimum(ops.abs(relative_pos), ops.shape(table)[0] - 1)
    return ops.sign(relative_pos) * ops.take(table, magnitude, axis=0)


def relative_position_line(query_size, key_size, span, bucket_size: int = -1, max_position: int = -1):
    """Table row for every distance a (T, S) attention can see: int32 (T + S - 1,).

    line[m] is the row read at distance d = i - j = m - (S - 1), so idx[i, j] = line[i - j + S - 1].
    query_size, key_size and span may be Python ints or scalar tensors (unknown lengths in a graph).
    """
    distances = ops.arange(-(key_size - 1), query_size, dtype="int32")
    if bucket_size > 0 and max_position > 0:
        distances = make_log_bucket_position(distances, bucket_size, max_position)
    return ops.clip(distances + span, 0, 2 * span - 1)


def index_from_line(line, query_size, key_size):
    """Expand a distance line (T + S - 1,) into the (T, S) index matrix idx[i, j] = line[i - j + S - 1]."""
    q = ops.arange(query_size, dtype="int32")[:, None]
    k = ops.arange(key_size, dtype="int32")[None, :]
    return ops.take(line, q - k + (key_size - 1), axis=0)


def relative_position_index(query_size, key_size, span, bucket_size: int = -1, max_position: int = -1):
    """Row of the sliced relative table read by each (query i, key j) pair: int32 (T, S).

    idx[i, j] = clamp(bucket(i - j) + span, 0, 2 * span - 1). idx depends only on i - j, so the bucket
    function runs once over the T + S - 1 distinct distances and the matrix is gathered from that line.
    """
    line = relative_position_line(query_size, key_size, span, bucket_size, max_position)
    return index_from_line(line, query_size, key_size)
