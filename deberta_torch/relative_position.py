"""Relative-position buckets and gather indices in torch; the buckets come from deberta_core.relative_position."""

from __future__ import annotations

from typing import NamedTuple

import torch

from deberta_core import relative_position as oracle


class RelativeRows(NamedTuple):
    """What a (T, S) attention reads of the relative table: the reachable rows and a line into them.

    table: (R, C) the relative table (after the v2 LayerNorm).
    line: int64 (T + S - 1,), line[i - j + S - 1] is the row of `table` that query i and key j read.
    flat_ends: optional python ints (m_lo, m_hi): line[m] == line[0] for m <= m_lo and line[m] == line[-1] for
        m >= m_hi. Long inputs clamp far distances to the end rows; those stretches need no matmul.
    reach: optional python ints (lo, hi), the rows line[0] and line[-1]: only table[lo : hi + 1] is read.
    sources: the parameters `table` is computed from (the relative embeddings, the LayerNorm's): what
        identifies its value when it is recomputed in every call of a compiled graph.
    """

    table: torch.Tensor
    line: torch.Tensor
    flat_ends: tuple[int, int] | None = None
    reach: tuple[int, int] | None = None
    sources: tuple[torch.Tensor, ...] = ()


@torch.compiler.assume_constant_result  # traced graphs take the table as a constant, not its numpy code
def _bucket_table(bucket_size: int, max_position: int) -> torch.Tensor:
    return torch.from_numpy(oracle.bucket_table(bucket_size, max_position))


def make_log_bucket_position(relative_pos: torch.Tensor, bucket_size: int, max_position: int) -> torch.Tensor:
    """Map signed distances d = i - j to log buckets, read from deberta_core's `bucket_table` (the one
    definition; far distances saturate at bucket_size, the same clamped row as the reference's).

    relative_pos: int64, any shape. Returns int64 of the same shape.
    """
    table = _bucket_table(bucket_size, max_position).to(relative_pos.device)
    magnitude = torch.clamp(relative_pos.abs(), max=table.shape[0] - 1)
    return torch.sign(relative_pos) * table[magnitude]


def relative_position_line(query_size: int, key_size: int, span: int, bucket_size: int = -1,
                           max_position: int = -1, device=None) -> torch.Tensor:
    """Table row for every distance a (T, S) attention can see: int64 (T + S - 1,).

    line[m] is the row read at distance d = i - j = m - (S - 1), so idx[i, j] = line[i - j + S - 1].
    The bucket function runs once per distinct distance. The line is non-decreasing (buckets are
    monotone, then clamped), so the rows it reaches are exactly line[0] .. line[-1].
    """
    distances = torch.arange(-(key_size - 1), query_size, dtype=torch.long, device=device)
    if bucket_size > 0 and max_position > 0:
        distances = make_log_bucket_position(distances, bucket_size, max_position)
    return torch.clamp(distances + span, 0, 2 * span - 1)


def index_from_line(line: torch.Tensor, query_size: int, key_size: int) -> torch.Tensor:
    """Expand a distance line (T + S - 1,) into the (T, S) index matrix idx[i, j] = line[i - j + S - 1]."""
    q = torch.arange(query_size, dtype=torch.long, device=line.device)[:, None]
    k = torch.arange(key_size, dtype=torch.long, device=line.device)[None, :]
    return line[q - k + (key_size - 1)]


def relative_position_index(query_size: int, key_size: int, span: int, bucket_size: int = -1,
                            max_position: int = -1, device=None) -> torch.Tensor:
    """Row of the sliced relative table read by each (query i, key j) pair: int64 (T, S).

    idx[i, j] = clamp(bucket(i - j) + span, 0, 2 * span - 1). idx depends only on i - j, so the bucket
    function runs once over the T + S - 1 distinct distances and the matrix is gathered from that line.
    """
    line = relative_position_line(query_size, key_size, span, bucket_size, max_position, device=device)
    return index_from_line(line, query_size, key_size)


def flat_ends(line: torch.Tensor) -> tuple[int, int]:
    """(m_lo, m_hi) of a non-decreasing line: the last entry of its first run, the first of its last run."""
    width = line.shape[0]
    return int((line == line[0]).sum()) - 1, width - int((line == line[-1]).sum())


def line_from_index(index: torch.Tensor) -> torch.Tensor:
    """The distance line of a (T, S) index matrix (inverse of `index_from_line`): int64 (T + S - 1,)."""
    T, S = index.shape
    # distances -(S - 1) .. 0 sit in the first row read right to left, 1 .. T - 1 in the first column
    return torch.cat([index[0].flip(0), index[1:, 0]])
