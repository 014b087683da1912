"""Relative-position buckets and gather indices in keras.ops equal the numpy oracle exactly."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from deberta_core import relative_position as oracle
from deberta_tf import ops as backend_ops
from deberta_tf.relative_position import make_log_bucket_position, relative_position_index


@pytest.mark.parametrize("bucket_size,max_position", [(256, 512), (8, 32), (16, 64), (32, 128), (384, 2048)])
def test_buckets_equal_oracle(bucket_size, max_position):
    distances = np.arange(-2048, 2049, dtype=np.int32)
    got = ops.convert_to_numpy(make_log_bucket_position(ops.convert_to_tensor(distances), bucket_size, max_position))
    expected = oracle.make_log_bucket_position(distances, bucket_size, max_position)
    # past the first bucket reaching bucket_size the Keras function saturates; the index clamp makes it the same row
    np.testing.assert_array_equal(got, np.clip(expected, -bucket_size, bucket_size))
    np.testing.assert_array_equal(got[::-1], -got)  # odd: bucket(-d) = -bucket(d)
    if (bucket_size, max_position) == (256, 512):
        lookup = dict(zip(distances.tolist(), got.tolist()))
        assert [lookup[d] for d in (150, 200, 255, 300, 400, 500, 511, 512)] == [143, 169, 192, 207, 233, 254, 255, 256]
    if (bucket_size, max_position) == (384, 2048):
        assert got[distances == 2047][0] == 383  # a float32 log tie: ceil() moves it to 384 if computed carelessly


@pytest.mark.parametrize("T,S,span,buckets,K", [(40, 40, 8, 8, 32), (40, 40, 16, -1, 16), (12, 12, 12, -1, 16),
                                                 (7, 11, 5, -1, 512), (600, 600, 256, 256, 512),
                                                 (2100, 2100, 384, 384, 2048)])
def test_index_equals_oracle(T, S, span, buckets, K):
    got = ops.convert_to_numpy(relative_position_index(T, S, span, buckets, K))
    np.testing.assert_array_equal(got, oracle.relative_position_index(T, S, span, buckets, K))


def test_index_with_unknown_length_in_a_graph():
    """Export and fit trace with an unknown sequence length; the index is then built from tensors."""

    @tf.function(input_signature=[tf.TensorSpec((None,), tf.int32)])
    def index_for(ids):
        T = tf.shape(ids)[0]
        return relative_position_index(T, T, tf.minimum(T, 16), -1, 16), relative_position_index(T, T, 8, 8, 32)

    for T in (5, 40):
        v1_index, bucket_index = index_for(tf.zeros((T,), tf.int32))
        np.testing.assert_array_equal(v1_index.numpy(), oracle.relative_position_index(T, T, min(T, 16)))
        np.testing.assert_array_equal(bucket_index.numpy(), oracle.relative_position_index(T, T, 8, 8, 32))


def test_onehot_gather_equals_gather():
    rng = np.random.default_rng(0)
    scores = ops.convert_to_tensor(rng.normal(size=(2, 3, 6, 10)).astype(np.float32))
    index = ops.convert_to_tensor(oracle.relative_position_index(6, 6, 5).astype(np.int32))
    gathered = ops.convert_to_numpy(backend_ops.take_along_last_axis(scores, index))
    try:
        backend_ops.set_gather_strategy("onehot")
        onehot = ops.convert_to_numpy(backend_ops.take_along_last_axis(scores, index))
    finally:
        backend_ops.set_gather_strategy("gather")
    np.testing.assert_allclose(onehot, gathered, atol=1e-6)
    expected = np.take_along_axis(ops.convert_to_numpy(scores), np.broadcast_to(ops.convert_to_numpy(index), (2, 3, 6, 6)),
                                  axis=-1)
    np.testing.assert_array_equal(gathered, expected)
    with pytest.raises(ValueError, match="unknown gather strategy 'fast'"):
        backend_ops.set_gather_strategy("fast")
