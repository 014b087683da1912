"""The numpy relative-position definition on values computed by hand (no framework; the comparison with
the reference and with the torch code is tests/torch/test_relative_position.py, Keras tests/tf/)."""

import numpy as np
import pytest

from deberta_core.relative_position import bucket_table, make_log_bucket_position, relative_position_index


def test_published_bucket_values():
    # SPEC §2.4 (computed by hand from the formula for B=256, P=512).
    d = np.array([5, -128, 150, 200, 255, 256, 300, 400, 500, 510, 511, 512])
    assert make_log_bucket_position(d, 256, 512).tolist() == [5, -128, 143, 169, 192, 192, 207, 233, 254, 255, 255, 256]


def test_bucket_by_hand_small():
    # B=8, P=32: mid 4; |d| <= 4 kept; d=5: ceil(log(5/4)/log(31/4) * 3) + 4 = ceil(0.3277) + 4 = 5
    # d=31: ceil(log(31/4)/log(31/4) * 3) + 4 = 7; d=32: ceil(3.047) + 4 = 8
    d = np.array([0, 3, 4, 5, 31, 32, -5])
    assert make_log_bucket_position(d, 8, 32).tolist() == [0, 3, 4, 5, 7, 8, -5]


@pytest.mark.parametrize("buckets,max_position", [(8, 32), (256, 512), (384, 2048)])
def test_table_is_the_formula_up_to_saturation(buckets, max_position):
    table = bucket_table(buckets, max_position)
    assert table[-1] == buckets and (table[:-1] < buckets).all() and (np.diff(table) >= 0).all()
    assert np.array_equal(table, make_log_bucket_position(np.arange(len(table)), buckets, max_position))
    if (buckets, max_position) == (384, 2048):
        assert table[2047] == 383  # a float32 log tie, where careless arithmetic gives 384


def test_index_by_hand():
    # 3 queries, 3 keys, span 2, no buckets: clamp(i - j + 2, 0, 3)
    assert relative_position_index(3, 3, 2).tolist() == [[2, 1, 0], [3, 2, 1], [3, 3, 2]]
