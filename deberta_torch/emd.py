"""The enhanced mask decoder (EMD): the masked-LM decoder the original microsoft/DeBERTa pre-trained with.

Legend: B batch, T length, C hidden size, H heads, D head dim, P max_position_embeddings.

What the original's `EnhancedMaskDecoder` computes when the input carries no absolute positions
(`position_biased_input=False`; the rule and its constants are stated once in deberta_core.pretraining):

  hidden = the input of the last encoder layer (output of layer L-2; the embedding output when L = 1)
  query  = P[position_ids] + hidden                  absolute positions enter here and only here
  EMD_STEPS (2) times, with the last layer's weights:
      query = last_layer(queries from `query`, keys and values from `hidden`)
  logits = the masked-LM head applied to `query`

The re-run layer's residuals are its query states, its relative positions are a normal layer's (query
and key lengths are equal) and its mask the pairwise one. The encoder's own last output does not reach
the decoder. `DebertaForMaskedLM` / `DebertaV2ForMaskedLM` use it when `config.use_emd` is True.
"""

from __future__ import annotations

import torch
from torch import nn

from deberta_core.pretraining import EMD_STEPS

from .attention import _merge_heads, _split_heads
from .backbone import build_masks
from . import fast_attention
from .kernels import project


def attach_position_table(embeddings: nn.Module, config, init) -> None:
    """Give `embeddings` the absolute table the decoder reads, (P, C) under the checkpoint key
    `deberta.embeddings.position_embeddings.weight`, when the encoder input does not already use one."""
    if embeddings.position_embeddings is None:
        embeddings.position_embeddings = nn.Embedding(config.max_position_embeddings, config.embedding_dim)
        init(embeddings.position_embeddings)


def _query_key_value(attention, query_states, hidden_states):
    """q from `query_states`, k and v from `hidden_states`, each (B, H, T, D), in the layer's own layout."""
    H = attention.num_attention_heads
    if hasattr(attention, "in_proj"):  # v1: fused, per-head interleaved in_proj plus q_bias / v_bias
        q = _split_heads(project(attention, "in_proj", query_states, [attention.in_proj]), H).chunk(3, dim=-1)[0]
        _, k, v = _split_heads(project(attention, "in_proj", hidden_states, [attention.in_proj]), H).chunk(3, dim=-1)
        return q + attention.q_bias.view(H, 1, -1), k, v + attention.v_bias.view(H, 1, -1)
    return (_split_heads(attention.query_proj(query_states), H), _split_heads(attention.key_proj(hidden_states), H),
            _split_heads(attention.value_proj(hidden_states), H))


def layer_with_query(layer, hidden_states, query_states, pair_mask, rel_embeddings=None, rel_index=None, **kwargs):
    """One transformer layer whose queries (and residuals) come from `query_states`, (B, T, C) each.

    kwargs (rel_rows, token_mask, output_attentions) go to the self-attention's `_attend`, as in DebertaLayer."""
    attention = layer.attention.self
    q, k, v = _query_key_value(attention, query_states, hidden_states)
    talking = getattr(attention, "talking_head", False)
    context, _ = attention._attend(q, k, v, pair_mask, rel_embeddings, rel_index,
                                   attention.head_logits_proj if talking else None,
                                   attention.head_weights_proj if talking else None, **kwargs)
    attention_output = layer.attention.output(_merge_heads(context), query_states)
    return layer.output(layer.intermediate(attention_output), attention_output)


def enhanced_mask_decoder(backbone, hidden_states, attention_mask=None, position_ids=None) -> torch.Tensor:
    """The decoder's output (B, T, C), to feed the masked-LM head.

    backbone: the model's DebertaModel / DebertaV2Model (its embeddings hold the position table).
    hidden_states: (B, T, C), the input of the last encoder layer (`hidden_states[-2]` of the encoder).
    attention_mask / position_ids: as given to the model (None: all ones / 0..T-1).
    Every query position is decoded; the original decodes only the masked ones, which gives the same
    values there (a query row depends on its own query state only).
    """
    encoder = backbone.encoder
    B, T = hidden_states.shape[:2]
    device = hidden_states.device
    if attention_mask is None:
        attention_mask = torch.ones((B, T), dtype=torch.long, device=device)
    token_mask, pair_mask = build_masks(attention_mask, (B, T))
    if position_ids is None:
        position_ids = torch.arange(T, device=device)[None, :]
    query_states = backbone.embeddings.position_embeddings(position_ids).to(hidden_states.dtype) + hidden_states
    rel_embeddings, rel_index = (encoder._relative_inputs(T) if fast_attention.needs_eager_inputs(encoder)
                                 else (None, None))
    pair_mask, fast = fast_attention.encoder_inputs(encoder, T, pair_mask, token_mask, output_attentions=False)
    layer = encoder.layer[-1]
    for _ in range(EMD_STEPS):
        query_states = layer_with_query(layer, hidden_states, query_states, pair_mask, rel_embeddings, rel_index,
                                        **fast)
    return query_states
