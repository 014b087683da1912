"""Disentangled self-attention (SPEC §2.6-2.9).

Legend: B batch, T query length, S key length, H heads, D head dim, C = H * D, R = 2 * span rows of the
relative table.

Relative terms, for query i and key j with idx(i, j) = clamp(bucket(i - j) + span, 0, R - 1):
  c2p[b, h, i, j] = q[b, h, i] . pos_key[h, idx(i, j)]
      score every query against every row, (B, H, T, R), then gather the rows by idx: (B, H, T, S)
  p2c[b, h, i, j] = k[b, h, j] . pos_query[h, idx(i, j)]
      computed key-major, (B, H, S, R), gathered with idx transposed, then transposed to (B, H, T, S).
The paper writes delta(j, i) for p2c; microsoft/DeBERTa and transformers both read idx(i, j), and the
checkpoints were trained that way. Each term is divided by sqrt(D * scale_factor); the key is divided
before the content product so fp16 scores cannot overflow (transformers PR #24116).

Fully masked query rows (padding) follow the current PyTorch reference: scores are filled with the
dtype's minimum and a plain softmax runs, so those rows attend uniformly to every key (they are not
zeroed, as the old reference TF classes did). Real-token rows are unaffected.
Gathers go through ops.take_along_last_axis, so no backend branch lives in this file.
Under mixed precision (float16 / bfloat16 compute) the scores are summed, masked and softmaxed in
float32, and the relative operands are scaled before their products (_half_precision_attention), so
float16 neither overflows in c2p/p2c nor turns the masked fill into -inf - -inf = nan.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from deberta_core.config import BaseDebertaConfig

from .layers import Linear, ResidualLayerNorm
from .ops import dtype_min, take_along_last_axis

HALF_DTYPES = ("float16", "bfloat16")


def _split_heads(x, num_heads: int):
    """(..., N, C) -> (..., H, N, D)."""
    x = ops.reshape(x, (*ops.shape(x)[:-1], num_heads, -1))
    return ops.swapaxes(x, -2, -3)


def _merge_heads(x):
    """(B, H, T, D) -> (B, T, C)."""
    B, H, T, D = ops.shape(x)
    return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (B, T, H * D))


def _mix_heads(projection, x):
    """Apply a Linear over the head axis of (B, H, T, S) (v1 talking heads)."""
    return ops.transpose(projection(ops.transpose(x, (0, 2, 3, 1))), (0, 3, 1, 2))


def disentangled_attention(query, key, value, pair_mask, scale, pos_key=None, pos_query=None, rel_index=None,
                           dropout=None, head_logits_proj=None, head_weights_proj=None, training=False):
    """Attention probabilities and context with optional c2p/p2c relative terms.

    query, key, value: (B, H, T|S, D). pair_mask: bool (B, 1, T, S), True where i may attend to j.
    scale: python float sqrt(D * scale_factor). pos_key / pos_query: (H, R, D) or None.
    rel_index: int (T, S). head_*_proj: v1 talking-head mixes over H (bias-free Linear) or None.
    dropout: a Dropout layer run with `training`. Returns context (B, H, T, D) and probabilities (B, H, T, S).
    """
    compute_dtype = keras.backend.standardize_dtype(query.dtype)
    if compute_dtype in HALF_DTYPES:
        return _half_precision_attention(query, key, value, pair_mask, scale, pos_key, pos_query, rel_index,
                                         dropout, head_logits_proj, head_weights_proj, training)
    scores = ops.matmul(query, ops.swapaxes(key, -1, -2) / scale)  # (B, H, T, S)
    if pos_key is not None:
        c2p = ops.matmul(query, ops.swapaxes(pos_key, -1, -2))  # (B, H, T, R)
        scores = scores + take_along_last_axis(c2p, rel_index) / scale
    if pos_query is not None:
        p2c = ops.matmul(key, ops.swapaxes(pos_query, -1, -2))  # (B, H, S, R)
        scores = scores + ops.swapaxes(take_along_last_axis(p2c, ops.transpose(rel_index)), -1, -2) / scale
    if head_logits_proj is not None:
        scores = _mix_heads(head_logits_proj, scores)
    scores = ops.where(pair_mask, scores, dtype_min(scores.dtype))
    probs = ops.softmax(scores, axis=-1)
    if dropout is not None:
        probs = dropout(probs, training=training)
    if head_weights_proj is not None:
        probs = _mix_heads(head_weights_proj, probs)
    return ops.matmul(probs, value), probs


def _half_precision_attention(query, key, value, pair_mask, scale, pos_key, pos_query, rel_index, dropout,
                              head_logits_proj, head_weights_proj, training):
    """disentangled_attention for float16 / bfloat16 compute (mixed precision), safe from fp16 overflow.

    The three score matmuls stay in the compute dtype, each with its position/key operand divided by the
    scale *before* the product (so c2p and p2c cannot overflow float16 where the fp32 path divides after
    the gather); the terms are then summed, masked with float32's minimum and softmaxed in float32, and
    the probabilities go back to the compute dtype for dropout and the value product. Same math as the
    float32 path; only where the division happens and the precision of the sum and softmax differ.
    """
    dtype = query.dtype
    inv_scale = ops.cast(1.0 / scale, dtype)
    scores = ops.cast(ops.matmul(query, ops.swapaxes(key, -1, -2) * inv_scale), "float32")  # (B, H, T, S)
    if pos_key is not None:
        c2p = ops.matmul(query, ops.swapaxes(pos_key, -1, -2) * inv_scale)  # (B, H, T, R)
        scores = scores + ops.cast(take_along_last_axis(c2p, rel_index), "float32")
    if pos_query is not None:
        p2c = ops.matmul(key, ops.swapaxes(pos_query, -1, -2) * inv_scale)  # (B, H, S, R)
        p2c = ops.swapaxes(take_along_last_axis(p2c, ops.transpose(rel_index)), -1, -2)
        scores = scores + ops.cast(p2c, "float32")
    if head_logits_proj is not None:
        scores = ops.cast(_mix_heads(head_logits_proj, scores), "float32")  # the Linear runs in the compute dtype
    scores = ops.where(pair_mask, scores, dtype_min("float32"))
    probs = ops.cast(ops.softmax(scores, axis=-1), dtype)
    if dropout is not None:
        probs = dropout(probs, training=training)
    if head_weights_proj is not None:
        probs = _mix_heads(head_weights_proj, probs)
    return ops.matmul(probs, value), probs


class _DisentangledAttention(keras.layers.Layer):
    """What both attention layouts share: head geometry, scale, dropouts and the relative projections."""

    def __init__(self, config: BaseDebertaConfig, **kwargs):
        super().__init__(**kwargs)
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.head_dim
        self.all_head_size = config.num_attention_heads * config.head_dim
        # sqrt of the float32 value, in double precision, as the torch models compute it.
        self.scale = math.sqrt(float(np.float32(config.head_dim * config.scale_factor)))
        self.use_c2p = config.uses_c2p
        self.use_p2c = config.uses_p2c
        self.relative_attention = config.relative_attention
        self.pos_dropout = (keras.layers.Dropout(config.hidden_dropout_prob, name="pos_dropout")
                            if config.relative_attention else None)
        self.dropout = keras.layers.Dropout(config.attention_probs_dropout_prob, name="dropout")

    def _project_relative_table(self, rel_embeddings, training):
        """Project the relative table into per-head position keys/queries: each (H, R, D) or None.

        The table goes through this layer's own dropout in training (SPEC §2.13; the reference TF classes
        never applied it).
        """
        if not self.relative_attention or rel_embeddings is None:
            return None, None
        rel = self.pos_dropout(rel_embeddings, training=training)
        pos_key = _split_heads(self._pos_key_module()(rel), self.num_attention_heads) if self.use_c2p else None
        pos_query = _split_heads(self._pos_query_module()(rel), self.num_attention_heads) if self.use_p2c else None
        return pos_key, pos_query

    def _attend(self, q, k, v, pair_mask, rel_embeddings, rel_index, logits_proj=None, weights_proj=None,
                training=False):
        pos_key, pos_query = self._project_relative_table(rel_embeddings, training)
        return disentangled_attention(q, k, v, pair_mask, self.scale, pos_key, pos_query, rel_index,
                                      self.dropout, logits_proj, weights_proj, training=training)


class DebertaSelfAttention(_DisentangledAttention):
    """DeBERTa v1 layout: one fused, per-head interleaved `in_proj` (no bias) plus `q_bias`/`v_bias`.

    `in_proj` kernel (C, 3C) = weight.T, whose output viewed as (H, 3, D) holds q, k, v of each head in
    turn (SPEC §2.7). Relative projections: `pos_proj` (c2p, no bias) and `pos_q_proj` (p2c). Optional
    talking heads.
    """

    def __init__(self, config: BaseDebertaConfig, **kwargs):
        super().__init__(config, **kwargs)
        C = self.all_head_size
        self.in_proj = Linear(config.hidden_size, 3 * C, config, use_bias=False, name="in_proj")
        self.talking_head = config.talking_head
        if config.talking_head:
            A = config.num_attention_heads
            self.head_logits_proj = Linear(A, A, config, use_bias=False, name="head_logits_proj")
            self.head_weights_proj = Linear(A, A, config, use_bias=False, name="head_weights_proj")
        if self.use_c2p:
            self.pos_proj = Linear(config.hidden_size, C, config, use_bias=False, name="pos_proj")
        if self.use_p2c:
            self.pos_q_proj = Linear(config.hidden_size, C, config, name="pos_q_proj")

    def build(self, input_shape=None):
        self.in_proj.build()
        self.q_bias = self.add_weight(name="q_bias", shape=(self.all_head_size,), initializer="zeros")
        self.v_bias = self.add_weight(name="v_bias", shape=(self.all_head_size,), initializer="zeros")
        if self.talking_head:
            self.head_logits_proj.build()
            self.head_weights_proj.build()
        if self.use_c2p:
            self.pos_proj.build()
        if self.use_p2c:
            self.pos_q_proj.build()

    def _pos_key_module(self):
        return self.pos_proj

    def _pos_query_module(self):
        return self.pos_q_proj

    def call(self, hidden_states, pair_mask, rel_embeddings=None, rel_index=None, training=False):
        """hidden_states (B, T, C) -> context (B, T, C), probabilities (B, H, T, T)."""
        qkv = _split_heads(self.in_proj(hidden_states), self.num_attention_heads)  # (B, H, T, 3D)
        q, k, v = ops.split(qkv, 3, axis=-1)
        q = q + ops.reshape(self.q_bias, (self.num_attention_heads, 1, -1))  # (H, 1, D) broadcasts over B and T
        v = v + ops.reshape(self.v_bias, (self.num_attention_heads, 1, -1))
        logits_proj = self.head_logits_proj if self.talking_head else None
        weights_proj = self.head_weights_proj if self.talking_head else None
        context, probs = self._attend(q, k, v, pair_mask, rel_embeddings, rel_index, logits_proj, weights_proj,
                                      training=training)
        return _merge_heads(context), probs


class DebertaV2SelfAttention(_DisentangledAttention):
    """DeBERTa v2/v3 layout: separate `query_proj`, `key_proj`, `value_proj` (with biases).

    With share_att_key the relative table goes through key_proj/query_proj, biases included; otherwise
    through its own `pos_key_proj` (c2p) and `pos_query_proj` (p2c). (The reference TF classes call
    those two `pos_proj`/`pos_q_proj`; deberta_core.tf_names reads and writes that spelling in h5 files.)
    """

    def __init__(self, config: BaseDebertaConfig, **kwargs):
        super().__init__(config, **kwargs)
        C = self.all_head_size
        self.query_proj = Linear(config.hidden_size, C, config, name="query_proj")
        self.key_proj = Linear(config.hidden_size, C, config, name="key_proj")
        self.value_proj = Linear(config.hidden_size, C, config, name="value_proj")
        self.share_att_key = config.share_att_key
        if not config.share_att_key:
            if self.use_c2p:
                self.pos_key_proj = Linear(config.hidden_size, C, config, name="pos_key_proj")
            if self.use_p2c:
                self.pos_query_proj = Linear(config.hidden_size, C, config, name="pos_query_proj")

    def build(self, input_shape=None):
        for layer in (self.query_proj, self.key_proj, self.value_proj):
            layer.build()
        if not self.share_att_key:
            if self.use_c2p:
                self.pos_key_proj.build()
            if self.use_p2c:
                self.pos_query_proj.build()

    def _pos_key_module(self):
        return self.key_proj if self.share_att_key else self.pos_key_proj

    def _pos_query_module(self):
        return self.query_proj if self.share_att_key else self.pos_query_proj

    def call(self, hidden_states, pair_mask, rel_embeddings=None, rel_index=None, training=False):
        """hidden_states (B, T, C) -> context (B, T, C), probabilities (B, H, T, T)."""
        q = _split_heads(self.query_proj(hidden_states), self.num_attention_heads)  # (B, H, T, D)
        k = _split_heads(self.key_proj(hidden_states), self.num_attention_heads)
        v = _split_heads(self.value_proj(hidden_states), self.num_attention_heads)
        context, probs = self._attend(q, k, v, pair_mask, rel_embeddings, rel_index, training=training)
        return _merge_heads(context), probs


class DebertaSelfOutput(ResidualLayerNorm):
    """Post-attention projection, dropout, residual and LayerNorm (`attention.output.*`)."""

    def __init__(self, config: BaseDebertaConfig, **kwargs):
        super().__init__(config.num_attention_heads * config.head_dim, config, **kwargs)


class DebertaAttention(keras.layers.Layer):
    """`attention.self` (the family's layout) followed by `attention.output`."""

    def __init__(self, config: BaseDebertaConfig, **kwargs):
        super().__init__(**kwargs)
        self.self = (DebertaSelfAttention(config, name="self") if config.family == "v1"
                     else DebertaV2SelfAttention(config, name="self"))
        # Keras layers own a read-only `output` property, so the attribute differs from torch's `output`;
        # the layer name (and so every variable path) is still "output".
        self.self_output = DebertaSelfOutput(config, name="output")

    def build(self, input_shape=None):
        self.self.build()
        self.self_output.build()

    def call(self, hidden_states, pair_mask, rel_embeddings=None, rel_index=None, training=False):
        context, probs = self.self(hidden_states, pair_mask, rel_embeddings, rel_index, training=training)
        return self.self_output(context, hidden_states, training=training), probs
