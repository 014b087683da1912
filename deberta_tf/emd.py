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
the decoder. `TFDebertaForMaskedLM` / `TFDebertaV2ForMaskedLM` use it when `config.use_emd` is True.
"""

from __future__ import annotations

from keras import ops

from deberta_core.pretraining import EMD_STEPS

from .attention import _merge_heads, _split_heads
from .backbone import build_masks
from .layers import Embedding


def attach_position_table(embeddings, config) -> None:
    """Give `embeddings` (not yet built) the absolute table the decoder reads, (P, C) at
    deberta/embeddings/position_embeddings/embeddings, when the encoder input does not already use one."""
    if embeddings.position_embeddings is None:
        embeddings.position_embeddings = Embedding(config.max_position_embeddings, config.embedding_dim, config,
                                                   name="position_embeddings")


def _query_key_value(attention, query_states, hidden_states):
    """q from `query_states`, k and v from `hidden_states`, each (B, H, T, D), in the layer's own layout."""
    H = attention.num_attention_heads
    if hasattr(attention, "in_proj"):  # v1: fused, per-head interleaved in_proj plus q_bias / v_bias
        q = ops.split(_split_heads(attention.in_proj(query_states), H), 3, axis=-1)[0]
        _, k, v = ops.split(_split_heads(attention.in_proj(hidden_states), H), 3, axis=-1)
        return (q + ops.reshape(attention.q_bias, (H, 1, -1)), k, v + ops.reshape(attention.v_bias, (H, 1, -1)))
    return (_split_heads(attention.query_proj(query_states), H), _split_heads(attention.key_proj(hidden_states), H),
            _split_heads(attention.value_proj(hidden_states), H))


def layer_with_query(layer, hidden_states, query_states, pair_mask, rel_embeddings=None, rel_index=None,
                     training=False):
    """One transformer layer whose queries (and residuals) come from `query_states`, (B, T, C) each."""
    attention = layer.attention.self
    q, k, v = _query_key_value(attention, query_states, hidden_states)
    talking = getattr(attention, "talking_head", False)
    context, _ = attention._attend(q, k, v, pair_mask, rel_embeddings, rel_index,
                                   attention.head_logits_proj if talking else None,
                                   attention.head_weights_proj if talking else None, training=training)
    attention_output = layer.attention.self_output(_merge_heads(context), query_states, training=training)
    return layer.ffn_output(layer.intermediate(attention_output), attention_output, training=training)


def enhanced_mask_decoder(main_layer, hidden_states, attention_mask=None, position_ids=None, training=False):
    """The decoder's output (B, T, C), to feed the masked-LM head.

    main_layer: the model's `deberta` layer (its embeddings hold the position table).
    hidden_states: (B, T, C), the input of the last encoder layer (`hidden_states[-2]` of the encoder).
    attention_mask / position_ids: as given to the model (None: all ones / 0..T-1).
    Every query position is decoded; the original decodes only the masked ones, which gives the same
    values there (a query row depends on its own query state only).
    """
    encoder = main_layer.encoder
    B, T = ops.shape(hidden_states)[0], ops.shape(hidden_states)[1]
    if attention_mask is None:
        attention_mask = ops.ones((B, T), dtype="int32")
    _, pair_mask = build_masks(attention_mask)
    if position_ids is None:
        position_ids = ops.arange(T, dtype="int32")[None, :]
    positions = main_layer.embeddings.position_embeddings(position_ids)
    query_states = ops.cast(positions, hidden_states.dtype) + hidden_states
    rel_embeddings, rel_index = encoder._relative_inputs(T)
    layer = encoder.layer[-1]
    for _ in range(EMD_STEPS):
        query_states = layer_with_query(layer, hidden_states, query_states, pair_mask, rel_embeddings, rel_index,
                                        training=training)
    return query_states
