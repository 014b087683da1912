"""Token embeddings: word (+ absolute position) (+ token type), optional projection, LayerNorm, mask."""

from __future__ import annotations

import keras
from keras import ops

from deberta_core.config import BaseDebertaConfig

from .layers import Embedding, LayerNorm, Linear


class DebertaEmbeddings(keras.layers.Layer):
    """Map ids (or given embeddings) to the encoder input (SPEC §2.2).

    Shapes: input_ids (B, T) -> (B, T, C). `token_mask` (B, T) of 0/1 zeroes padded positions after the
    LayerNorm, as the reference does. Unlike the reference TF classes, the position table has the
    embedding width (it is (max_position_embeddings, embedding_size), as in every checkpoint).
    """

    def __init__(self, config: BaseDebertaConfig, **kwargs):
        super().__init__(**kwargs)
        E, H = config.embedding_dim, config.hidden_size
        self.word_embeddings = Embedding(config.vocab_size, E, config, weight_name="weight",
                                         padding_idx=config.pad_token_id, name="word_embeddings")
        self.position_biased_input = config.position_biased_input
        self.position_embeddings = (
            Embedding(config.max_position_embeddings, E, config, name="position_embeddings")
            if config.position_biased_input else None
        )
        self.token_type_embeddings = (
            Embedding(config.type_vocab_size, E, config, name="token_type_embeddings")
            if config.type_vocab_size > 0 else None
        )
        self.embed_proj = Linear(E, H, config, use_bias=False, name="embed_proj") if E != H else None
        self.LayerNorm = LayerNorm(H, eps=config.layer_norm_eps)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob, name="dropout")

    def build(self, input_shape=None):
        for layer in (self.word_embeddings, self.position_embeddings, self.token_type_embeddings,
                      self.embed_proj, self.LayerNorm):
            if layer is not None:
                layer.build()

    def call(self, input_ids=None, token_type_ids=None, position_ids=None, token_mask=None,
             inputs_embeds=None, training=False):
        embeddings = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        T = ops.shape(embeddings)[1]
        if self.position_biased_input:  # (a masked LM's EMD may hold the table without adding it)
            if position_ids is None:
                position_ids = ops.arange(T, dtype="int32")[None, :]
            embeddings = embeddings + self.position_embeddings(position_ids)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                token_type_ids = ops.zeros(ops.shape(embeddings)[:2], dtype="int32")
            embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        if self.embed_proj is not None:
            embeddings = self.embed_proj(embeddings)
        embeddings = self.LayerNorm(embeddings)
        if token_mask is not None:
            embeddings = embeddings * ops.cast(token_mask, embeddings.dtype)[..., None]
        return self.dropout(embeddings, training=training)
