"""Log buckets and gather indices: the numpy oracle, our torch code and the reference agree exactly."""

import numpy as np
import pytest
import torch
from transformers.models.deberta_v2 import modeling_deberta_v2 as ref_v2

from deberta_core.relative_position import make_log_bucket_position, relative_position_index
from deberta_torch import relative_position as ours

CONFIGS = [(256, 512), (8, 32), (32, 128), (64, 512), (128, 1024), (384, 2048)]


@pytest.mark.parametrize("buckets,max_position", CONFIGS)
def test_buckets_match_reference_and_are_odd(buckets, max_position):
    d = torch.arange(-2048, 2049)
    ref = ref_v2.make_log_bucket_position(d, buckets, max_position).long()
    torch_ours = ours.make_log_bucket_position(d, buckets, max_position)
    numpy_ours = make_log_bucket_position(d.numpy(), buckets, max_position)
    assert np.array_equal(numpy_ours, ref.numpy())  # the formula, bit for bit
    # The frameworks read the oracle's table, which saturates at +-buckets: the row every farther
    # distance reaches after the clamp, as the reference's growing buckets do.
    assert torch.equal(torch_ours, ref.clamp(-buckets, buckets))
    assert torch.equal(torch_ours.flip(0), -torch_ours)


@pytest.mark.parametrize("n,span,buckets,max_position", [(40, 8, 8, 32), (300, 256, 256, 512), (40, 16, -1, 16),
                                                          (10, 10, -1, 64)])
def test_index_matrix_matches_reference_construction(n, span, buckets, max_position):
    q = torch.zeros(1, n, 4)
    rel = ref_v2.build_relative_position(q, q, bucket_size=buckets, max_position=max_position)[0]
    expected = torch.clamp(rel + span, 0, 2 * span - 1)
    assert torch.equal(ours.relative_position_index(n, n, span, buckets, max_position), expected)
    assert np.array_equal(relative_position_index(n, n, span, buckets, max_position), expected.numpy())
