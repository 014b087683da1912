"""Relative-position buckets and gather indices in torch; mirrors deberta_core.relative_position."""

from __future__ import annotations

import torch


def make_log_bucket_position(relative_pos: torch.Tensor, bucket_size: int, max_position: int) -> torch.Tensor:
    """Map signed distances d = i - j to log buckets (see deberta_core.relative_position for the rule).

    The log branch runs in float32 exactly as the reference does, so bucket ids match it bit for bit.
    relative_pos: int64, any shape. Returns int64 of the same shape.
    """
    mid = bucket_size // 2
    sign = torch.sign(relative_pos)
    inside = (relative_pos < mid) & (relative_pos > -mid)
    abs_pos = torch.where(inside, torch.full_like(relative_pos, mid - 1), relative_pos.abs())
    ratio = abs_pos.to(torch.float32) / mid
    denom = torch.log(torch.tensor((max_position - 1) / mid, dtype=torch.float32, device=relative_pos.device))
    log_pos = torch.ceil(torch.log(ratio) / denom * (mid - 1)) + mid
    bucket = torch.where(abs_pos <= mid, relative_pos.to(torch.float32), log_pos * sign)
    return bucket.to(torch.long)


def relative_position_index(query_size: int, key_size: int, span: int, bucket_size: int = -1,
                            max_position: int = -1, device=None) -> torch.Tensor:
    """Row of the sliced relative table read by each (query i, key j) pair: int64 (T, S).

    idx[i, j] = clamp(bucket(i - j) + span, 0, 2 * span - 1). idx depends only on i - j, so the bucket
    function runs once over the T + S - 1 distinct distances and the matrix is gathered from that line.
    """
    distances = torch.arange(-(key_size - 1), query_size, dtype=torch.long, device=device)
    if bucket_size > 0 and max_position > 0:
        distances = make_log_bucket_position(distances, bucket_size, max_position)
    line = torch.clamp(distances + span, 0, 2 * span - 1)
    q = torch.arange(query_size, dtype=torch.long, device=device)[:, None]
    k = torch.arange(key_size, dtype=torch.long, device=device)[None, :]
    return line[q - k + (key_size - 1)]
