"""Transformer layers, the v2 convolution branch and the encoder loop (SPEC §2.10-2.12)."""

from __future__ import annotations

import keras
from keras import ops

from deberta_core.config import BaseDebertaConfig

from .attention import DebertaAttention
from .layers import LayerNorm, Linear, ResidualLayerNorm, get_activation, initializer
from .relative_position import relative_position_index


class DebertaIntermediate(keras.layers.Layer):
    def __init__(self, config: BaseDebertaConfig, **kwargs):
        super().__init__(**kwargs)
        self.dense = Linear(config.hidden_size, config.intermediate_size, config, name="dense")
        self.intermediate_act_fn = get_activation(config.hidden_act)

    def build(self, input_shape=None):
        self.dense.build()

    def call(self, hidden_states):
        return self.intermediate_act_fn(self.dense(hidden_states))


class DebertaOutput(ResidualLayerNorm):
    """Feed-forward output projection, dropout, residual and LayerNorm (`output.*`)."""

    def __init__(self, config: BaseDebertaConfig, **kwargs):
        super().__init__(config.intermediate_size, config, **kwargs)


class DebertaLayer(keras.layers.Layer):
    """Post-LN block: attention, residual + LN, feed-forward, residual + LN. (B, T, C) -> (B, T, C)."""

    def __init__(self, config: BaseDebertaConfig, **kwargs):
        super().__init__(**kwargs)
        self.attention = DebertaAttention(config, name="attention")
        self.intermediate = DebertaIntermediate(config, name="intermediate")
        # torch's `output`; Keras layers own a read-only `output` property (the layer name stays "output").
        self.ffn_output = DebertaOutput(config, name="output")

    def build(self, input_shape=None):
        self.attention.build()
        self.intermediate.build()
        self.ffn_output.build()

    def call(self, hidden_states, pair_mask, rel_embeddings=None, rel_index=None, training=False):
        attention_output, probs = self.attention(hidden_states, pair_mask, rel_embeddings, rel_index,
                                                 training=training)
        layer_output = self.ffn_output(self.intermediate(attention_output), attention_output, training=training)
        return layer_output, probs


class ConvLayer(keras.layers.Layer):
    """v2 convolution branch, applied once after layer 0 (SPEC §2.11).

    Convolves the *embedding output* over the sequence, zeroes padded positions, and adds it to the
    layer-0 output before a LayerNorm; the result is masked again. Keras convolves channels-last, so no
    transposes are needed; `conv_groups` is honoured (the reference TF classes ignored it).
    """

    def __init__(self, config: BaseDebertaConfig, **kwargs):
        super().__init__(**kwargs)
        k = config.conv_kernel_size
        self.hidden_size = config.hidden_size
        # padding "same" with an odd kernel pads (k - 1) / 2 on each side, as torch's padding=(k - 1) // 2.
        self.conv = keras.layers.Conv1D(config.hidden_size, k, padding="same", groups=config.conv_groups,
                                        kernel_initializer=initializer(config), name="conv")
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob, name="dropout")
        self.conv_act = get_activation(config.conv_act)

    def build(self, input_shape=None):
        self.conv.build((None, None, self.hidden_size))
        self.LayerNorm.build()

    def call(self, embedding_output, layer_output, token_mask, training=False):
        """embedding_output, layer_output (B, T, C); token_mask (B, T) of 0/1."""
        out = self.conv(embedding_output)
        keep = ops.cast(token_mask, out.dtype)[..., None]
        out = self.conv_act(self.dropout(out * keep, training=training))
        return self.LayerNorm(layer_output + out) * keep


class DebertaEncoder(keras.layers.Layer):
    """The layer stack plus what every layer shares: the relative table and its index matrix."""

    def __init__(self, config: BaseDebertaConfig, **kwargs):
        super().__init__(**kwargs)
        self.family = config.family
        self.config = config
        # Named like the reference TF classes: torch's `layer.3` is `layer_._3`.
        self.layer = [DebertaLayer(config, name=f"layer_._{i}") for i in range(config.num_hidden_layers)]
        self.relative_attention = config.relative_attention
        self.max_relative_positions = config.relative_span
        self.position_buckets = config.position_buckets if config.family == "v2" else -1
        self.LayerNorm = (LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
                          if config.norm_rel_embeddings else None)
        self.conv = ConvLayer(config, name="conv") if config.family == "v2" and config.conv_kernel_size > 0 else None

    def build(self, input_shape=None):
        if self.relative_attention:
            # One variable named with a dot, as the reference TF classes have it (not an Embedding layer).
            self.rel_embeddings = self.add_weight(
                name="rel_embeddings.weight", shape=(self.config.rel_embeddings_size, self.config.hidden_size),
                initializer=initializer(self.config))
        for layer in self.layer:
            layer.build()
        if self.LayerNorm is not None:
            self.LayerNorm.build()
        if self.conv is not None:
            self.conv.build()

    def _relative_inputs(self, seq_len):
        """Relative table rows this length can reach (after the v2 LayerNorm) and the (T, T) index."""
        if not self.relative_attention:
            return None, None
        table = ops.convert_to_tensor(self.rel_embeddings)
        if self.LayerNorm is not None:
            table = self.LayerNorm(table)
        if self.family == "v1":
            # v1 uses only the rows a length can reach: [K - span, K + span) of the 2K-row table.
            # (Python min keeps the span static when the length is; a graph length needs the tensor op.)
            K = self.max_relative_positions
            span = min(seq_len, K) if isinstance(seq_len, int) else ops.minimum(seq_len, K)
            table = table[K - span: K + span]
        else:
            span = ops.shape(table)[0] // 2
        index = relative_position_index(seq_len, seq_len, span, self.position_buckets, self.max_relative_positions)
        return table, index

    def call(self, embedding_output, pair_mask, token_mask, output_hidden_states=False, output_attentions=False,
             training=False):
        """embedding_output (B, T, C); pair_mask bool (B, 1, T, T); token_mask (B, T).

        Returns the last hidden state, all hidden states (L + 1, or None) and attentions (L, or None).
        """
        rel_embeddings, rel_index = self._relative_inputs(ops.shape(embedding_output)[1])
        all_hidden = [embedding_output] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        hidden_states = embedding_output
        for i, layer in enumerate(self.layer):
            hidden_states, probs = layer(hidden_states, pair_mask, rel_embeddings, rel_index, training=training)
            if i == 0 and self.conv is not None:
                hidden_states = self.conv(embedding_output, hidden_states, token_mask, training=training)
            if output_hidden_states:
                all_hidden.append(hidden_states)
            if output_attentions:
                all_attentions.append(probs)
        return (hidden_states,
                tuple(all_hidden) if output_hidden_states else None,
                tuple(all_attentions) if output_attentions else None)
