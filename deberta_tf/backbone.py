"""`TFDebertaModel` and `TFDebertaV2Model`: token ids to hidden states, nothing else.

Like the reference TF classes, every model nests the encoder in a main layer named `deberta`, so weight
paths are identical in the base model and the task models (deberta/embeddings/..., deberta/encoder/...).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from deberta_core.config import BaseDebertaConfig
from deberta_core.outputs import BaseModelOutput, resolve_output_flags
from deberta_core.validation import check_model_inputs

from .embeddings import DebertaEmbeddings
from .encoder import DebertaEncoder
from .ops import assert_in_range, has_value
from .pretrained import TFDebertaPreTrainedModel, TFDebertaV2PreTrainedModel, _TFPreTrained, unpack_inputs


def _min_max(t):
    """(min, max) of an eager tensor as Python ints, or None (no value while tracing, or empty)."""
    if t is None or not has_value(t):
        return None
    values = ops.convert_to_numpy(t)
    if values.size == 0:
        return None
    return int(values.min()), int(values.max())


def _known_shape(t, expected):
    """t's static shape with unknown dims (None while tracing) taken from `expected`, for the shape checks.

    Unknown dims cannot be checked before run time; filling them with the expected value checks the rest.
    """
    if t is None:
        return None
    shape = tuple(t.shape)
    fill = tuple(expected) + (1,) * len(shape)
    return tuple(fill[i] if d is None else d for i, d in enumerate(shape))


def check_inputs(config: BaseDebertaConfig, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds):
    """Validate a batch with deberta_core.validation: shapes always, value ranges when they are known.

    Eager inputs get every check. While tracing (model.fit, tf.function, export) shapes are checked where
    static, and out-of-range ids, token types and positions become run-time assertions in TensorFlow
    graphs (XLA drops those; on CPU the embedding gather still refuses such ids).
    """
    main = input_ids if input_ids is not None else inputs_embeds
    dims = () if main is None else _known_shape(main, (1, 1, config.embedding_dim))
    B, T = (tuple(dims) + (1, 1))[:2]  # placeholders when the rank is wrong: the check below reports it
    mask_expected = {2: (B, T), 3: (B, T, T), 4: (B, 1, T, T)}.get(
        len(attention_mask.shape) if attention_mask is not None else 2, (B, T))
    eager = all(has_value(t) for t in (input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds))
    mask_is_binary = None
    if attention_mask is not None and eager:
        values = ops.convert_to_numpy(attention_mask)
        mask_is_binary = bool(np.isin(values, (0, 1)).all())
    check_model_inputs(
        config,
        ids_shape=_known_shape(input_ids, (B, T)),
        embeds_shape=_known_shape(inputs_embeds, (B, T, config.embedding_dim)),
        mask_shape=_known_shape(attention_mask, mask_expected),
        token_type_shape=_known_shape(token_type_ids, (B, T)),
        position_shape=_known_shape(position_ids, (B, T)),
        id_range=_min_max(input_ids) if eager else None,
        token_type_range=_min_max(token_type_ids) if eager else None,
        position_range=_min_max(position_ids) if eager else None,
        mask_is_binary=mask_is_binary,
        ids_is_integer=None if input_ids is None else "int" in keras.backend.standardize_dtype(input_ids.dtype),
    )


def build_masks(attention_mask):
    """Token mask (B, T) and pairwise attention mask bool (B, 1, T, T) from the user's mask.

    A 2-D mask m gives M[b, i, j] = m[b, i] and m[b, j], so a padded query row is fully masked (SPEC §2.3).
    3-D (B, T, T) and 4-D (B, 1, T, T) masks are used as given; their token mask, used to zero padded
    embeddings and conv outputs, marks positions some query may attend to (the reference's conv rule).
    """
    if len(attention_mask.shape) == 2:
        token = attention_mask != 0
        return token, ops.logical_and(token[:, None, :, None], token[:, None, None, :])
    pair = attention_mask if len(attention_mask.shape) == 4 else attention_mask[:, None]
    pair = pair != 0
    token = ops.any(ops.any(pair, axis=1), axis=-2)
    return token, pair


class DebertaMainLayer(keras.layers.Layer):
    """Embeddings and encoder (the `deberta` layer of every model): returns (last, hidden_states, attentions)."""

    def __init__(self, config: BaseDebertaConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.embeddings = DebertaEmbeddings(config, name="embeddings")
        self.encoder = DebertaEncoder(config, name="encoder")

    def build(self, input_shape=None):
        self.embeddings.build()
        self.encoder.build()

    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
             output_attentions=False, output_hidden_states=False, training=False):
        cfg = self.config
        check_inputs(cfg, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds)
        if input_ids is not None and not has_value(input_ids):
            input_ids = assert_in_range(input_ids, 0, cfg.vocab_size, "input_ids outside the vocabulary")
        if token_type_ids is not None and cfg.type_vocab_size > 0 and not has_value(token_type_ids):
            token_type_ids = assert_in_range(token_type_ids, 0, cfg.type_vocab_size, "token_type_ids out of range")
        if position_ids is not None and cfg.position_biased_input and not has_value(position_ids):
            position_ids = assert_in_range(position_ids, 0, cfg.max_position_embeddings, "position_ids out of range")
        shape = ops.shape(input_ids) if input_ids is not None else ops.shape(inputs_embeds)[:2]
        if attention_mask is None:
            attention_mask = ops.ones(shape, dtype="int32")
        token_mask, pair_mask = build_masks(attention_mask)
        embedding_output = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids,
                                           position_ids=position_ids, token_mask=token_mask,
                                           inputs_embeds=inputs_embeds, training=training)
        return self.encoder(embedding_output, pair_mask, token_mask, output_hidden_states=output_hidden_states,
                            output_attentions=output_attentions, training=training)


class _Backbone(_TFPreTrained):
    """The bare encoder; the public classes fix the config type."""

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.deberta = DebertaMainLayer(config, name="deberta")
        self.build()

    def build(self, input_shape=None):
        if not self.built:
            self.deberta.build()

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
             output_attentions=None, output_hidden_states=None, return_dict=None, training=False):
        """Encode a batch.

        Args:
            input_ids: int (B, T), or inputs_embeds (B, T, embedding_size) instead (exactly one of them).
                May also be a dict of these arguments, or a list of them in this order.
            attention_mask: (B, T) of 0/1 (1 = real token), or a pairwise (B, T, T) / (B, 1, T, T) mask.
                Defaults to all ones.
            token_type_ids: int (B, T), used only when type_vocab_size > 0. Defaults to zeros.
            position_ids: int (B, T) or (1, T), used only with absolute positions. Defaults to 0..T-1.
            output_attentions / output_hidden_states / return_dict: as in transformers (config defaults).
            training: runs every dropout site (SPEC §2.13) when True.

        Returns:
            BaseModelOutput(last_hidden_state (B, T, C), hidden_states (L + 1 of them), attentions (L of
            (B, H, T, T))), or the tuple of its non-None fields when return_dict=False.
            Padded positions attend uniformly to all keys, as in the PyTorch reference (>= 4.47).
        """
        output_attentions, output_hidden_states, return_dict = resolve_output_flags(
            self.config, output_attentions, output_hidden_states, return_dict)
        last, hidden_states, attentions = self.deberta(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states, training=training)
        out = BaseModelOutput(last_hidden_state=last, hidden_states=hidden_states, attentions=attentions)
        return out if return_dict else out.to_tuple()


@keras.saving.register_keras_serializable(package="deberta_tf")
class TFDebertaModel(_Backbone, TFDebertaPreTrainedModel):
    """The bare DeBERTa v1 encoder (no head)."""


@keras.saving.register_keras_serializable(package="deberta_tf")
class TFDebertaV2Model(_Backbone, TFDebertaV2PreTrainedModel):
    """The bare DeBERTa-v2/v3 encoder (no head)."""
