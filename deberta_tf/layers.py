"""Small building blocks shared by every DeBERTa layer: LayerNorm, Linear, Embedding, activations.

Each layer knows its input width, so its owner builds it with a bare `.build()`: the whole model is built
from the config alone, before any data is seen, and every variable gets its final name at once.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from deberta_core.config import BaseDebertaConfig


class LayerNorm(keras.layers.LayerNormalization):
    """LayerNorm over the last axis, width `dim`, weights gamma/beta (SPEC §2.1).

    Keras computes the statistics in at least float32 (it upcasts bfloat16/float16 inputs) and returns
    the compute dtype, which is what the torch `LayerNorm` of deberta_torch.layers does.
    """

    def __init__(self, dim: int, eps: float, name: str = "LayerNorm", **kwargs):
        super().__init__(epsilon=eps, name=name, **kwargs)
        self.dim = dim

    def build(self, input_shape=None):
        super().build((self.dim,))


def initializer(config: BaseDebertaConfig) -> keras.initializers.Initializer:
    """N(0, initializer_range), the reference init for every Linear and Embedding (SPEC §3.7)."""
    return keras.initializers.RandomNormal(mean=0.0, stddev=config.initializer_range)


class Linear(keras.layers.Dense):
    """torch's nn.Linear(in_features, out_features): kernel (in, out) = weight.T; bias starts at zero."""

    def __init__(self, in_features: int, out_features: int, config: BaseDebertaConfig, use_bias: bool = True,
                 **kwargs):
        super().__init__(out_features, use_bias=use_bias, kernel_initializer=initializer(config), **kwargs)
        self.in_features = in_features

    def build(self, input_shape=None):
        super().build((None, self.in_features))


class ResidualLayerNorm(keras.layers.Layer):
    """Projection to the hidden size, dropout, residual add and LayerNorm: `dense`, `dropout`, `LayerNorm`.

    (B, T, in_features) and the residual (B, T, C) -> (B, T, C). Both post-LN sub-layer outputs
    (`attention.output`, `output`) are this with their own input width.
    """

    def __init__(self, in_features: int, config: BaseDebertaConfig, **kwargs):
        super().__init__(**kwargs)
        self.dense = Linear(in_features, config.hidden_size, config, name="dense")
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob, name="dropout")

    def build(self, input_shape=None):
        self.dense.build()
        self.LayerNorm.build()

    def call(self, hidden_states, input_tensor, training=False):
        return self.LayerNorm(self.dropout(self.dense(hidden_states), training=training) + input_tensor)


class Embedding(keras.layers.Layer):
    """A lookup table (rows, width): ids (...) -> (..., width).

    `weight_name` is the variable name the reference TF classes use ("weight" for the word embeddings,
    "embeddings" for the position and token-type tables). `padding_idx`, when given, is zeroed at init,
    as torch's nn.Embedding does (it gets gradients in Keras; the reference TF classes do the same).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, config: BaseDebertaConfig,
                 weight_name: str = "embeddings", padding_idx: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.weight_name = weight_name
        self.padding_idx = padding_idx
        self._init = initializer(config)

    def _initial_value(self, shape, dtype=None):
        table = self._init(shape, dtype=dtype)
        if self.padding_idx is not None:
            rows = ops.arange(shape[0])[:, None]
            table = ops.where(rows == self.padding_idx, ops.zeros_like(table), table)
        return table

    def build(self, input_shape=None):
        self.weight = self.add_weight(name=self.weight_name, shape=(self.num_embeddings, self.embedding_dim),
                                      initializer=self._initial_value)

    def call(self, ids):
        return ops.cast(ops.take(self.weight, ids, axis=0), self.compute_dtype)


def _gelu_python(x):
    return x * 0.5 * (1.0 + ops.erf(x / math.sqrt(2.0)))


def _gelu_fast(x):
    return 0.5 * x * (1.0 + ops.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


ACTIVATIONS = {
    # Keras' gelu defaults to the tanh approximation; DeBERTa's "gelu" is the exact erf form.
    "gelu": lambda x: keras.activations.gelu(x, approximate=False),
    "gelu_python": _gelu_python,
    "gelu_new": lambda x: keras.activations.gelu(x, approximate=True),
    "gelu_fast": _gelu_fast,
    "relu": keras.activations.relu,
    "tanh": keras.activations.tanh,
    "silu": keras.activations.silu,
    "swish": keras.activations.silu,
    "sigmoid": keras.activations.sigmoid,
    "linear": lambda x: x,
}


def get_activation(name: str):
    """The activation function for a config name (the names are validated by the config)."""
    return ACTIVATIONS[name]
