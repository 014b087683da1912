"""The fast paths of disentangled attention and everything they keep between calls.

attention.py and encoder.py hold the reference-shaped model (the twins of deberta_tf's files); this
module holds what makes it fast, chosen per module by `attn_implementation`:

  "sdpa"            (default) c2p and p2c scored against the position table laid out by distance, inside
                    the band each block of rows can see, summed into one additive bias and handed with
                    the mask to scaled_dot_product_attention (kernels.relative_attention). Under
                    torch.compile, inference calls that kernel as one operator
                    (kernels.compiled_relative_attention).
  "flex_attention"  the reference's gathers inside FlexAttention's score_mod (flex.py): one fused kernel
                    on GPUs, memory linear in T; calls it cannot serve (dropout, probabilities, CPU
                    backward) take "sdpa".
  "eager"           not here: attention.disentangled_attention, the reference computation.

What the encoder prepares once per forward for every fast layer (`encoder_inputs`): the relative table
(after the v2 LayerNorm), its distance line (row read at each distance i - j, T + S - 1 entries), the
rows that line reaches, and the mask in its cheapest form (none, padding, arbitrary). What each layer
keeps (`position_tables`): its projected position keys and queries. In eval mode without autograd both
are cached, as declared attributes of the modules (`DebertaEncoder._relative_cache`,
`_DisentangledAttention._table_cache`), until a weight they come from changes.
"""

from __future__ import annotations

import torch
from torch import nn

from deberta_core.relative_position import line_bounds

from . import flex
from .kernels import (bias_tables, cached_position_tables, compiled_relative_attention, compiling_for_inference,
                      distance_tables, mask_form, relative_attention, TensorsState, tracing)
from .relative_position import RelativeRows, index_from_line, line_from_index, relative_position_line

# attn_implementation -> the fast path that serves it (None: the eager computation in attention.py)
PATHS = {"sdpa": "banded", "eager": None, "flex_attention": "flex"}


# ------------------------------------------------------------------------------------ encoder level
def needs_eager_inputs(encoder) -> bool:
    """Whether some layer computes the reference way (eager, or v1 talking heads): it needs the (T, T) index."""
    return any(PATHS[layer.attention.self.attn_implementation] is None
               or getattr(layer.attention.self, "talking_head", False) for layer in encoder.layer)


def encoder_inputs(encoder, seq_len: int, pair_mask, token_mask, output_attentions: bool):
    """The pair mask every layer gets (None when nothing is masked) and the fast layers' keyword inputs.

    Returns (pair_mask, {"rel_rows": RelativeRows or None, "token_mask": (B, T) bool when pair_mask is
    its outer product, else None, "output_attentions": ...}).
    """
    if tracing():  # no data-dependent branches in a graph (see kernels.compiled_relative_attention)
        padding = None
    else:
        pair_mask, padding = mask_form(pair_mask, token_mask)
    fast = any(PATHS[layer.attention.self.attn_implementation] is not None for layer in encoder.layer)
    rows = relative_rows(encoder, seq_len) if fast else None
    return pair_mask, {"rel_rows": rows, "token_mask": padding, "output_attentions": output_attentions}


def relative_rows(encoder, seq_len: int) -> RelativeRows | None:
    """The whole relative table and the distance line into it in absolute rows, so one projected table
    serves every length. In eval mode without autograd kept per length (the four most recent) until a
    relative weight changes (kernels.TensorsState)."""
    if not encoder.relative_attention:
        return None
    compiling = tracing()
    parameters = encoder._relative_parameters()
    if not encoder.training and not torch.is_grad_enabled() and not compiling:
        store = encoder._relative_cache
        mode = torch.is_inference_mode_enabled()
        if store.get("mode") != mode or not store["state"].holds(parameters):
            store.clear()
            store.update(mode=mode, state=TensorsState(parameters), table=encoder._normed_table(), lengths={})
        lengths = store["lengths"]
        if seq_len not in lengths:
            if len(lengths) >= 4:
                lengths.pop(next(iter(lengths)))
            lengths[seq_len] = _rows(encoder, store["table"], seq_len, parameters, compiling)
        return lengths[seq_len]
    return _rows(encoder, encoder._normed_table(), seq_len, parameters, compiling)


def _rows(encoder, table, seq_len, parameters, compiling) -> RelativeRows:
    span = encoder._span(seq_len)
    offset = encoder.max_relative_positions - span if encoder.family == "v1" else 0  # v1 reads [K - span, K + span)
    line = relative_position_line(seq_len, seq_len, span, encoder.position_buckets, encoder.max_relative_positions,
                                  device=table.device) + offset  # (no branch on offset: it is symbolic under export)
    if compiling:  # a traced length may be symbolic (and looks like an int to dynamo): the whole table
        return RelativeRows(table, line, sources=tuple(parameters))
    # the rows it reaches and its flat ends follow from the sizes
    lo, hi, m_lo, m_hi = line_bounds(seq_len, seq_len, span, encoder.position_buckets, encoder.max_relative_positions)
    return RelativeRows(table, line, (m_lo, m_hi), (lo + offset, hi + offset))


# -------------------------------------------------------------------------------------- layer level
def path(attention, q, k, v, logits_proj, rel_embeddings, rel_rows, output_attentions: bool) -> str | None:
    """How this call runs: "banded", "operator" (the banded kernel as one compiled operator), "flex", or
    None for the eager computation: eager modules, talking heads, and relative calls whose length is
    symbolic outside the operator (the banded kernel's Python block loop would fix a traced graph to
    one length, so torch.export / ONNX with dynamic shapes and compiled training take the
    shape-generic gathers, the same numbers)."""
    chosen = PATHS[attention.attn_implementation]
    if chosen is None or logits_proj is not None:
        return None
    dropout_p = attention.dropout.p if attention.training else 0.0
    if chosen == "flex" and flex.usable(q, dropout_p, output_attentions):
        how = "flex"
    elif not output_attentions and dropout_p == 0.0 and compiling_for_inference(q, k, v, *position_parameters(attention)):
        return "operator"
    else:
        how = "banded"
    relative = attention.relative_attention and (rel_embeddings is not None or rel_rows is not None)
    symbolic = isinstance(q.shape[2], torch.SymInt) or isinstance(k.shape[2], torch.SymInt)
    return None if relative and symbolic else how


def eager_inputs(q, k, pair_mask, rel_embeddings, rel_index, rel_rows, token_mask):
    """What the eager computation reads, from whichever form the caller prepared: the relative table,
    its (T, S) index and the (B, 1, T, S) pair mask (or None)."""
    if rel_rows is not None and (rel_embeddings is None or rel_index is None):
        rel_embeddings, rel_index = rel_rows.table, index_from_line(rel_rows.line, q.shape[2], k.shape[2])
    if pair_mask is None and token_mask is not None:
        pair_mask = token_mask[:, None, :, None] & token_mask[:, None, None, :]
    return rel_embeddings, rel_index, pair_mask


def attend(attention, how: str, q, k, v, pair_mask, rel_embeddings=None, rel_index=None, *, rel_rows=None,
           token_mask=None, output_attentions: bool = True):
    """Context (B, H, T, D) and probabilities (B, H, T, S) (None unless "banded" with output_attentions)
    by the path `how` (see `path`). rel_rows, or else rel_embeddings with rel_index, give the relative
    positions; token_mask (B, T) bool, when given, says pair_mask is token_mask[i] & token_mask[j]."""
    relative = attention.relative_attention and (rel_embeddings is not None or rel_rows is not None)
    if q.dtype != k.dtype or v.dtype != k.dtype:  # v1 biases promote q, v under autocast
        q, v = q.to(k.dtype), v.to(k.dtype)
    if relative and rel_rows is None:
        rel_rows = RelativeRows(rel_embeddings, line_from_index(rel_index))
    if how == "flex":
        pos_key, pos_query, line = position_tables(attention, rel_rows, q.dtype) if relative else (None, None, None)
        return flex.flex_relative_attention(q, k, v, attention.scale, pos_key, pos_query, line, pair_mask,
                                            token_mask), None
    pos_key = pos_query = line = key_line = query_line = native = None
    dropout_p = attention.dropout.p if attention.training else 0.0
    if relative:
        pos_key, pos_query, line = position_tables(attention, rel_rows, q.dtype)
    if how == "operator":  # it picks its bias kernel on each call
        if pair_mask is None and token_mask is not None:
            pair_mask = token_mask[:, None, :, None] & token_mask[:, None, None, :]
        flat = list(rel_rows.flat_ends) if relative and rel_rows.flat_ends is not None else None
        return compiled_relative_attention(q, k, v, attention.scale, pos_key, pos_query, line, pair_mask,
                                           flat).transpose(1, 2), None
    if relative:
        if dropout_p == 0.0 and not output_attentions:
            key_line, query_line, native = bias_tables(q, pos_key, pos_query, line)
        else:
            key_line, query_line = distance_tables(pos_key, pos_query, line)
    return relative_attention(q, k, v, attention.scale, key_line, query_line, pair_mask, token_mask,
                              dropout_p=dropout_p, output_attentions=output_attentions,
                              flat_ends=rel_rows.flat_ends if relative else None, native=native)


def position_modules(attention) -> list[nn.Module | None]:
    """The modules that project the relative table into position keys (c2p) and queries (p2c); None for a term
    that is off."""
    return [attention._pos_key_module() if attention.use_c2p else None,
            attention._pos_query_module() if attention.use_p2c else None]


def position_parameters(attention) -> list[torch.Tensor]:
    return [p for m in position_modules(attention) if m is not None for p in m.parameters()]


def _plain_projections(attention):
    """(key weight, key bias, query weight, query bias) of the position projections (None for a term that
    is off or has no bias), or None when one is not a plain nn.Linear (PEFT, hooks)."""
    modules = position_modules(attention)
    if any(m is not None and (type(m) is not nn.Linear or m._forward_hooks or m._forward_pre_hooks)
           for m in modules):
        return None
    return tuple(t for m in modules for t in ((None, None) if m is None else (m.weight, m.bias)))


def position_tables(attention, rows: RelativeRows, dtype: torch.dtype):
    """Projected position keys and queries divided by the scale, (H, R', D) each or None, and the
    distance line into their rows, int64 (T + S - 1,).

    In eval mode without autograd the projected table, (H, R, D) each, is kept in the module's
    `_table_cache` and reused for every length until the table (the encoder's cached tensor) or a
    projection weight changes (kernels.TensorsState: optimizer steps, load_state_dict and .to() all
    invalidate it). Compiled inference graphs keep it in the
    `deberta::position_tables` operator instead. Otherwise only the rows this length reaches are
    projected (R' <= R).
    """
    scale = attention.scale
    if not attention.training and not torch.is_grad_enabled() and not tracing():
        key = (dtype, torch.is_inference_mode_enabled())
        parameters = position_parameters(attention)
        hit = attention._table_cache.get(key)
        if hit is not None and hit[0] is rows.table and hit[1].holds(parameters):
            return (*hit[2], rows.line)
        pos_key, pos_query = attention._project_relative_table(rows.table)
        tables = tuple(None if t is None else (t / scale).to(dtype) for t in (pos_key, pos_query))
        attention._table_cache.clear()
        attention._table_cache[key] = (rows.table, TensorsState(parameters), tables)
        return (*tables, rows.line)
    table, line = rows.table, rows.line
    projections = _plain_projections(attention)
    if rows.sources and projections is not None and not attention.training and compiling_for_inference(table):
        pos_key, pos_query = cached_position_tables(table, list(rows.sources), *projections,
                                                    attention.num_attention_heads, scale, dtype)
        return (pos_key if attention.use_c2p else None), (pos_query if attention.use_p2c else None), line
    if rows.reach is not None and (rows.reach[0] > 0 or rows.reach[1] < table.shape[0] - 1):
        table, line = table[rows.reach[0]: rows.reach[1] + 1], line - rows.reach[0]
    pos_key, pos_query = attention._project_relative_table(table)
    return (*(None if t is None else (t / scale).to(dtype) for t in (pos_key, pos_query)), line)
