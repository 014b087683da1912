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

    # LoRA: Keras' own Dense.enable_lora(rank, lora_alpha) freezes the kernel and adds float32
    # `lora_kernel_a` (in, rank, he_uniform) and `lora_kernel_b` (rank, out, zeros), so outputs start
    # unchanged; `kernel` then reads kernel + (alpha / rank) * a @ b. Keras' Dense saves the merged kernel
    # and drops a and b; a LoRA Linear here saves all four (kernel, bias, a, b) unmerged instead, so a
    # `.keras` file reloads with LoRA still on (the model's config re-enables it) and training resumes.
    def _lora_state(self) -> list:
        return [self._kernel, *([self.bias] if self.bias is not None else []), self.lora_kernel_a,
                self.lora_kernel_b]

    def save_own_variables(self, store):
        if not self.lora_enabled:
            return super().save_own_variables(store)
        for i, variable in enumerate(self._lora_state()):
            store[str(i)] = variable

    def load_own_variables(self, store):
        if not self.lora_enabled:
            return super().load_own_variables(store)
        variables = self._lora_state()
        if len(store.keys()) != len(variables):
            raise ValueError(f"layer {self.path!r} has LoRA on and expects {len(variables)} saved variables "
                             f"(kernel, bias, lora_kernel_a, lora_kernel_b), got {len(store.keys())}")
        for i, variable in enumerate(variables):
            variable.assign(store[str(i)])

    def merged_kernel(self):
        """kernel + (alpha / rank) * lora_kernel_a @ lora_kernel_b in the variable dtype (the kernel when
        LoRA is off). Dense's `kernel` property returns the same sum cast to the compute dtype."""
        if not self.lora_enabled:
            return ops.convert_to_tensor(self._kernel)
        delta = (self.lora_alpha / self.lora_rank) * ops.matmul(self.lora_kernel_a, self.lora_kernel_b)
        return ops.cast(ops.add(ops.cast(self._kernel, "float32"), delta), self._kernel.dtype)

    def merge_lora(self) -> None:
        """Fold the LoRA product into the kernel and drop lora_kernel_a/b: a plain, trainable Dense again."""
        if not self.lora_enabled:
            return
        self._kernel.assign(self.merged_kernel())
        del self.lora_kernel_a  # Layer.__delattr__ untracks the variables
        del self.lora_kernel_b
        self.lora_enabled = False
        self.lora_rank = self.lora_alpha = None
        self._kernel.trainable = True


def replace_variable(layer: keras.layers.Layer, attribute: str, value, name: str):
    """Swap `layer.<attribute>` for a new variable holding `value` (numpy), of a new shape if need be.

    Keras variables cannot change shape, so resizing makes a new one: same name (and so the same path,
    under the layer's remembered name scope), dtype and trainable flag; the old one is untracked.
    """
    old = getattr(layer, attribute)
    trainable, dtype = old.trainable, old.dtype
    delattr(layer, attribute)
    was_locked = layer._tracker.locked
    layer._tracker.unlock()
    try:
        new = layer.add_weight(name=name, shape=tuple(value.shape), dtype=dtype,
                               initializer=lambda shape, dtype=None: ops.convert_to_tensor(value, dtype=dtype))
        setattr(layer, attribute, new)
    finally:
        if was_locked:
            layer._tracker.lock()
    new.trainable = trainable
    return new


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

    def set_table(self, table) -> None:
        """Replace the table with `table` (numpy, (rows, embedding_dim)); rows may differ (resizing).
        A padding_idx the new table no longer has is dropped, as torch's resize does."""
        replace_variable(self, "weight", table, self.weight_name)
        self.num_embeddings = int(table.shape[0])
        if self.padding_idx is not None and self.padding_idx >= self.num_embeddings:
            self.padding_idx = None


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
