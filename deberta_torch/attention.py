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
zeroed). Real-token rows are unaffected.

This file is the reference computation, line for line the twin of deberta_tf/attention.py. Modules whose
`attn_implementation` is "sdpa" (the default) or "flex_attention" hand each call to fast_attention.py,
which computes the same numbers (fp32 to ~1e-6) without the (B, H, T, R) products and gathers, and
falls back here where it cannot serve a call.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deberta_core.config import BaseDebertaConfig

from . import fast_attention
from .kernels import InferenceCache, project
from .layers import ResidualLayerNorm

# Attention code paths selectable with `model.set_attn_implementation(name)`; the first is the default.
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flex_attention")
DEFAULT_ATTN_IMPLEMENTATION = ATTN_IMPLEMENTATIONS[0]


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(..., N, C) -> (..., H, N, D)."""
    x = x.view(*x.shape[:-1], num_heads, -1)
    return x.transpose(-2, -3)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, D) -> (B, T, C)."""
    B, H, T, D = x.shape
    return x.transpose(1, 2).reshape(B, T, H * D)


def disentangled_attention(query, key, value, pair_mask, scale, pos_key=None, pos_query=None, rel_index=None,
                           dropout=None, head_logits_proj=None, head_weights_proj=None):
    """Attention probabilities and context with optional c2p/p2c relative terms.

    query, key, value: (B, H, T|S, D). pair_mask: bool (B, 1, T, S), True where i may attend to j.
    scale: python float sqrt(D * scale_factor). pos_key / pos_query: (H, R, D) or None.
    rel_index: int64 (T, S). head_*_proj: v1 talking-head mixes over H (bias-free Linear) or None.
    pair_mask may be None (nothing masked).
    Returns context (B, H, T, D) and probabilities (B, H, T, S).
    """
    scores = query @ (key.transpose(-1, -2) / scale)  # (B, H, T, S)
    if pos_key is not None:
        c2p = query @ pos_key.transpose(-1, -2)  # (B, H, T, R)
        index = rel_index.expand(*c2p.shape[:2], *rel_index.shape)
        scores = scores + torch.gather(c2p, -1, index) / scale
    if pos_query is not None:
        p2c = key @ pos_query.transpose(-1, -2)  # (B, H, S, R)
        index_t = rel_index.transpose(0, 1).expand(*p2c.shape[:2], rel_index.shape[1], rel_index.shape[0])
        scores = scores + torch.gather(p2c, -1, index_t).transpose(-1, -2) / scale
    if head_logits_proj is not None:
        scores = head_logits_proj(scores.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    if pair_mask is not None:
        scores = scores.masked_fill(~pair_mask, torch.finfo(scores.dtype).min)
    probs = torch.softmax(scores, dim=-1)
    if dropout is not None:
        probs = dropout(probs)
    if head_weights_proj is not None:
        probs = head_weights_proj(probs.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    return probs @ value, probs


class _DisentangledAttention(nn.Module):
    """What both attention layouts share: head geometry, scale, dropouts and the relative projections."""

    def __init__(self, config: BaseDebertaConfig):
        super().__init__()
        self.num_attention_heads = config.num_attention_heads
        self.attention_head_size = config.head_dim
        self.all_head_size = config.num_attention_heads * config.head_dim
        self.scale = math.sqrt(float(torch.tensor(config.head_dim * config.scale_factor, dtype=torch.float32)))
        self.use_c2p = config.uses_c2p
        self.use_p2c = config.uses_p2c
        self.relative_attention = config.relative_attention
        self.pos_dropout = nn.Dropout(config.hidden_dropout_prob) if config.relative_attention else None
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.attn_implementation = DEFAULT_ATTN_IMPLEMENTATION
        self._table_cache = InferenceCache()  # eval-mode position projections (fast_attention.position_tables)

    def _project_relative_table(self, rel_embeddings):
        """Project the relative table into per-head position keys/queries: each (H, R, D) or None."""
        if not self.relative_attention or rel_embeddings is None:
            return None, None
        rel = self.pos_dropout(rel_embeddings)
        pos_key = _split_heads(self._pos_key_module()(rel), self.num_attention_heads) if self.use_c2p else None
        pos_query = _split_heads(self._pos_query_module()(rel), self.num_attention_heads) if self.use_p2c else None
        return pos_key, pos_query

    def _attend(self, q, k, v, pair_mask, rel_embeddings, rel_index, logits_proj=None, weights_proj=None, *,
                rel_rows=None, token_mask=None, output_attentions: bool = True):
        """Context (B, H, T, D) and probabilities (B, H, T, S) (None from a fast path unless it returns them).

        rel_embeddings/rel_index feed the eager computation, rel_rows (and token_mask, see
        fast_attention.encoder_inputs) the fast paths; each is derived from the other when needed.
        """
        how = fast_attention.path(self, q, k, v, logits_proj, rel_embeddings, rel_rows, output_attentions)
        if how is not None:
            return fast_attention.attend(self, how, q, k, v, pair_mask, rel_embeddings, rel_index, rel_rows=rel_rows,
                                         token_mask=token_mask, output_attentions=output_attentions)
        rel_embeddings, rel_index, pair_mask = fast_attention.eager_inputs(q, k, pair_mask, rel_embeddings, rel_index,
                                                                          rel_rows, token_mask)
        pos_key, pos_query = self._project_relative_table(rel_embeddings)
        return disentangled_attention(q, k, v, pair_mask, self.scale, pos_key, pos_query, rel_index,
                                      self.dropout, logits_proj, weights_proj)


class DebertaSelfAttention(_DisentangledAttention):
    """DeBERTa v1 layout: one fused, per-head interleaved `in_proj` (no bias) plus `q_bias`/`v_bias`.

    `in_proj.weight` (3C, C) viewed as (H, 3, D, C) holds W_q, W_k, W_v of each head in turn (SPEC §2.7).
    Relative projections: `pos_proj` (c2p, no bias) and `pos_q_proj` (p2c). Optional talking heads.
    """

    def __init__(self, config: BaseDebertaConfig):
        super().__init__(config)
        C = self.all_head_size
        self.in_proj = nn.Linear(config.hidden_size, 3 * C, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(C))
        self.v_bias = nn.Parameter(torch.zeros(C))
        self.talking_head = config.talking_head
        if config.talking_head:
            A = config.num_attention_heads
            self.head_logits_proj = nn.Linear(A, A, bias=False)
            self.head_weights_proj = nn.Linear(A, A, bias=False)
        if self.use_c2p:
            self.pos_proj = nn.Linear(config.hidden_size, C, bias=False)
        if self.use_p2c:
            self.pos_q_proj = nn.Linear(config.hidden_size, C)

    def _pos_key_module(self):
        return self.pos_proj

    def _pos_query_module(self):
        return self.pos_q_proj

    def forward(self, hidden_states, pair_mask, rel_embeddings=None, rel_index=None, *, rel_rows=None,
                token_mask=None, output_attentions: bool = True):
        """hidden_states (B, T, C) -> context (B, T, C), probabilities (B, H, T, T) (see `_attend`)."""
        qkv = project(self, "in_proj", hidden_states, [self.in_proj])
        qkv = _split_heads(qkv, self.num_attention_heads)  # (B, H, T, 3D)
        q, k, v = qkv.chunk(3, dim=-1)
        q = q + self.q_bias.view(self.num_attention_heads, 1, -1)  # (H, 1, D) broadcasts over B and T
        v = v + self.v_bias.view(self.num_attention_heads, 1, -1)
        logits_proj = self.head_logits_proj if self.talking_head else None
        weights_proj = self.head_weights_proj if self.talking_head else None
        context, probs = self._attend(q, k, v, pair_mask, rel_embeddings, rel_index, logits_proj, weights_proj,
                                      rel_rows=rel_rows, token_mask=token_mask, output_attentions=output_attentions)
        return _merge_heads(context), probs


class DebertaV2SelfAttention(_DisentangledAttention):
    """DeBERTa v2/v3 layout: separate `query_proj`, `key_proj`, `value_proj` (with biases).

    With share_att_key the relative table goes through key_proj/query_proj, biases included; otherwise
    through its own `pos_key_proj` (c2p) and `pos_query_proj` (p2c).
    """

    def __init__(self, config: BaseDebertaConfig):
        super().__init__(config)
        C = self.all_head_size
        self.query_proj = nn.Linear(config.hidden_size, C)
        self.key_proj = nn.Linear(config.hidden_size, C)
        self.value_proj = nn.Linear(config.hidden_size, C)
        self.share_att_key = config.share_att_key
        if not config.share_att_key:
            if self.use_c2p:
                self.pos_key_proj = nn.Linear(config.hidden_size, C)
            if self.use_p2c:
                self.pos_query_proj = nn.Linear(config.hidden_size, C)

    def _pos_key_module(self):
        return self.key_proj if self.share_att_key else self.pos_key_proj

    def _pos_query_module(self):
        return self.query_proj if self.share_att_key else self.pos_query_proj

    def forward(self, hidden_states, pair_mask, rel_embeddings=None, rel_index=None, *, rel_rows=None,
                token_mask=None, output_attentions: bool = True):
        """hidden_states (B, T, C) -> context (B, T, C), probabilities (B, H, T, T) (see `_attend`)."""
        projections = (self.query_proj, self.key_proj, self.value_proj)
        qkv = project(self, "qkv", hidden_states, projections)
        B, T = hidden_states.shape[:2]
        q, k, v = qkv.view(B, T, 3, self.num_attention_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, T, D)
        context, probs = self._attend(q, k, v, pair_mask, rel_embeddings, rel_index, rel_rows=rel_rows,
                                      token_mask=token_mask, output_attentions=output_attentions)
        return _merge_heads(context), probs


class DebertaSelfOutput(ResidualLayerNorm):
    """Post-attention projection, dropout, residual and LayerNorm (`attention.output.*`)."""

    def __init__(self, config: BaseDebertaConfig):
        super().__init__(config.num_attention_heads * config.head_dim, config)


class DebertaAttention(nn.Module):
    """`attention.self` (the family's layout) followed by `attention.output`."""

    def __init__(self, config: BaseDebertaConfig):
        super().__init__()
        self.self = DebertaSelfAttention(config) if config.family == "v1" else DebertaV2SelfAttention(config)
        self.output = DebertaSelfOutput(config)

    def forward(self, hidden_states, pair_mask, rel_embeddings=None, rel_index=None, **kwargs):
        context, probs = self.self(hidden_states, pair_mask, rel_embeddings, rel_index, **kwargs)
        return self.output(context, hidden_states), probs
