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

Two code paths compute the same numbers (fp32 to ~1e-6), chosen per module by `attn_implementation`:
  "sdpa"  (default) c2p and p2c scored against the table laid out by distance inside the band each
          block of rows can see, summed into one additive bias and handed with the mask to
          torch.nn.functional.scaled_dot_product_attention (deberta_torch/kernels.py). In eval mode
          the projected position table is cached until a weight changes. A graph traced with a
          symbolic sequence length uses the eager computation (the banded one unrolls per length).
  "eager" the reference-shaped computation: (B, H, T, R) products, gathers, an explicit softmax.
  "flex_attention" the reference's gathers inside FlexAttention's score_mod (deberta_torch/flex.py): one
          fused kernel on GPUs, memory linear in T; calls it cannot serve take "sdpa".
Under torch.compile, inference calls "sdpa"'s kernel as one operator (kernels.compiled_relative_attention).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from deberta_core.config import BaseDebertaConfig

from . import flex
from .kernels import (InferenceCache, cached_position_tables, compiled_relative_attention, project,
                      relative_attention, state_key, tracing)
from .layers import ResidualLayerNorm
from .relative_position import RelativeRows, index_from_line, line_from_index

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


def _compiling_for_inference(*tensors) -> bool:
    """Inside torch.compile (not export or jit.trace) with nothing that needs a gradient."""
    if not torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing():
        return False
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


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
        self._table_cache = InferenceCache()  # eval-mode position projections, see _distance_tables

    def _project_relative_table(self, rel_embeddings):
        """Project the relative table into per-head position keys/queries: each (H, R, D) or None."""
        if not self.relative_attention or rel_embeddings is None:
            return None, None
        rel = self.pos_dropout(rel_embeddings)
        pos_key = _split_heads(self._pos_key_module()(rel), self.num_attention_heads) if self.use_c2p else None
        pos_query = _split_heads(self._pos_query_module()(rel), self.num_attention_heads) if self.use_p2c else None
        return pos_key, pos_query

    def _position_tables(self, rows: RelativeRows, dtype: torch.dtype):
        """Projected position keys and queries divided by the scale, (H, R', D) each or None, and the
        distance line into their rows, int64 (T + S - 1,).

        In eval mode without autograd the projected table, (H, R, D) each, is cached and reused for every
        length until the table (the encoder's cached tensor) or a projection weight changes: parameters
        are compared by storage and version counter, so optimizer steps, load_state_dict and .to() all
        invalidate it. Otherwise only the rows this length reaches are projected (R' <= R).
        """
        cacheable = not self.training and not torch.is_grad_enabled() and not tracing()
        if cacheable:
            key = (dtype, torch.is_inference_mode_enabled())
            versions = state_key(self._position_parameters())
            hit = self._table_cache.get(key)
            if hit is not None and hit[0] is rows.table and hit[1] == versions:
                pos_key, pos_query = hit[2]
            else:
                pos_key, pos_query = self._project_relative_table(rows.table)
                pos_key, pos_query = (None if t is None else (t / self.scale).to(dtype) for t in (pos_key, pos_query))
                self._table_cache.clear()
                self._table_cache[key] = (rows.table, versions, (pos_key, pos_query))
            return pos_key, pos_query, rows.line
        table, line = rows.table, rows.line
        projections = self._position_projections()
        if rows.sources and projections is not None and not self.training and _compiling_for_inference(table):
            pos_key, pos_query = cached_position_tables(rows.table, list(rows.sources), *projections,
                                                        self.num_attention_heads, self.scale, dtype)
            return (pos_key if self.use_c2p else None), (pos_query if self.use_p2c else None), line
        if rows.reach is not None and (rows.reach[0] > 0 or rows.reach[1] < table.shape[0] - 1):
            table, line = table[rows.reach[0]: rows.reach[1] + 1], line - rows.reach[0]
        pos_key, pos_query = self._project_relative_table(table)
        pos_key, pos_query = (None if t is None else (t / self.scale).to(dtype) for t in (pos_key, pos_query))
        return pos_key, pos_query, line

    def _position_projections(self):
        """(key weight, key bias, query weight, query bias) of the position projections (None for a term
        that is off or has no bias), or None when one is not a plain nn.Linear (PEFT, hooks)."""
        modules = [self._pos_key_module() if self.use_c2p else None, self._pos_query_module() if self.use_p2c else None]
        if any(m is not None and (type(m) is not nn.Linear or m._forward_hooks or m._forward_pre_hooks)
               for m in modules):
            return None
        return tuple(t for m in modules for t in ((None, None) if m is None else (m.weight, m.bias)))

    def _distance_tables(self, rows: RelativeRows, dtype: torch.dtype):
        """(H, T + S - 1, D) position keys and queries laid out by distance, divided by the scale."""
        pos_key, pos_query, line = self._position_tables(rows, dtype)
        return tuple(None if t is None else t.index_select(-2, line) for t in (pos_key, pos_query))

    def _attend(self, q, k, v, pair_mask, rel_embeddings, rel_index, logits_proj=None, weights_proj=None, *,
                rel_rows: RelativeRows | None = None, token_mask=None, output_attentions: bool = True):
        """Context (B, H, T, D) and probabilities (B, H, T, S) (None from "sdpa" unless output_attentions).

        rel_embeddings/rel_index feed the eager path; rel_rows (the table and the distance line into it)
        feeds the fast path. Either is derived from the other when only one is given.
        token_mask (B, T) bool, when given, says pair_mask is token_mask[i] & token_mask[j].
        """
        relative = self.relative_attention and (rel_embeddings is not None or rel_rows is not None)
        dropout_p = self.dropout.p if self.training else 0.0
        impl = self.attn_implementation
        if impl == "flex_attention" and not flex.usable(q, dropout_p, output_attentions):
            impl = "sdpa"  # no dropout, probabilities or CPU backward in FlexAttention
        # torch.compile inference calls the banded kernel as one operator (kernels.compiled_relative_attention),
        # for any length. Elsewhere the kernel's Python block loop would fix a traced graph to one length, so
        # a symbolic length (torch.export / ONNX with dynamic shapes, compiled training) takes the
        # shape-generic gathers instead (the same numbers).
        as_operator = (impl == "sdpa" and logits_proj is None and not output_attentions
                       and dropout_p == 0.0 and _compiling_for_inference(q, k, v, *self._position_parameters()))
        symbolic = isinstance(q.shape[2], torch.SymInt) or isinstance(k.shape[2], torch.SymInt)
        if impl == "eager" or logits_proj is not None or (relative and symbolic and not as_operator):
            if relative and (rel_embeddings is None or rel_index is None):
                rel_embeddings = rel_rows.table
                rel_index = index_from_line(rel_rows.line, q.shape[2], k.shape[2])
            if pair_mask is None and token_mask is not None:
                pair_mask = token_mask[:, None, :, None] & token_mask[:, None, None, :]
            pos_key, pos_query = self._project_relative_table(rel_embeddings) if relative else (None, None)
            return disentangled_attention(q, k, v, pair_mask, self.scale, pos_key, pos_query, rel_index,
                                          self.dropout, logits_proj, weights_proj)
        if q.dtype != k.dtype or v.dtype != k.dtype:  # v1 biases promote q, v under autocast
            q, v = q.to(k.dtype), v.to(k.dtype)
        if relative and rel_rows is None:
            rel_rows = RelativeRows(rel_embeddings, line_from_index(rel_index))
        if impl == "flex_attention":
            pos_key, pos_query, line = self._position_tables(rel_rows, q.dtype) if relative else (None, None, None)
            return flex.flex_relative_attention(q, k, v, self.scale, pos_key, pos_query, line, pair_mask, token_mask), None
        key_line = query_line = None
        if relative:
            key_line, query_line = self._distance_tables(rel_rows, q.dtype)
        if as_operator:
            if pair_mask is None and token_mask is not None:
                pair_mask = token_mask[:, None, :, None] & token_mask[:, None, None, :]
            flat = list(rel_rows.flat_ends) if relative and rel_rows.flat_ends is not None else None
            return compiled_relative_attention(q, k, v, self.scale, key_line, query_line, pair_mask, flat), None
        return relative_attention(q, k, v, self.scale, key_line, query_line, pair_mask, token_mask,
                                  dropout_p=dropout_p, output_attentions=output_attentions,
                                  flat_ends=rel_rows.flat_ends if relative else None)


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

    def _position_parameters(self):
        return [p for name in ("pos_proj", "pos_q_proj") if hasattr(self, name)
                for p in getattr(self, name).parameters()]

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

    def _position_parameters(self):
        if self.share_att_key:
            names = (("key_proj",) if self.use_c2p else ()) + (("query_proj",) if self.use_p2c else ())
        else:
            names = (("pos_key_proj",) if self.use_c2p else ()) + (("pos_query_proj",) if self.use_p2c else ())
        return [p for name in names for p in getattr(self, name).parameters()]

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
