"""Fine-tuning tools every Keras DeBERTa model has: `resize_token_embeddings` and LoRA.

`resize_token_embeddings` follows transformers 4.57.6 (and deberta_torch): old rows are kept, new rows are
drawn from N(mean, 1e-9 * covariance) of the old rows (`mean_resizing=True`, the default; the mean itself
when that covariance is not positive definite) or N(0, initializer_range); a masked-LM head is resized
with the table (its bias zero-padded where the head reads the word embeddings, the untied `decoder`
resized like an embedding, its bias padded around the old bias mean); `config.vocab_size` follows.

LoRA uses Keras 3's own `Dense.enable_lora` on the attention projections (`Linear` is a keras Dense):
everything else is frozen, including the projections' kernels and biases, so only `lora_kernel_a` and
`lora_kernel_b` train (plus the task head with `train_head=True`). `merge_lora()` folds them into the
kernels. `.keras` files keep LoRA unmerged and reload with it on; `save_pretrained` writes merged kernels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from keras import ops

from deberta_core.resizing import resized_table

from .layers import Embedding, Linear

# The attention projections LoRA goes on by default: v2/v3 query/key/value, v1's fused in_proj.
LORA_TARGETS = ("query_proj", "key_proj", "value_proj", "in_proj")


@dataclass(frozen=True)
class LoraSettings:
    """What `enable_lora` was called with (stored in the Keras config, so `.keras` files re-enable it)."""

    rank: int
    lora_alpha: float
    target_layer_names: tuple[str, ...]
    train_head: bool

    def as_dict(self) -> dict:
        return {**asdict(self), "target_layer_names": list(self.target_layer_names)}


class TrainingToolsMixin:
    """resize_token_embeddings, enable_lora and merge_lora for the Keras models (see the module doc)."""

    # ---------------------------------------------------------------- vocabulary
    def resize_token_embeddings(self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None,
                                mean_resizing: bool = True) -> Embedding:
        """Resize the word embeddings (and a masked-LM head) to `new_num_tokens` rows, as transformers does.

        Rows past the old size are new (see the module doc for their initial values); shrinking drops
        rows from the end. `pad_to_multiple_of` rounds the size up (and, with new_num_tokens None, pads
        the current size). Sets config.vocab_size. Returns the word-embedding layer; with both arguments
        None it only returns it. Call `compile()` again afterwards if the model was already trained
        (the optimizer's slots have the old shapes).
        """
        embeddings = self.get_input_embeddings()
        if new_num_tokens is None and pad_to_multiple_of is None:
            return embeddings
        old_rows = int(embeddings.weight.shape[0])
        if pad_to_multiple_of is not None:
            if not isinstance(pad_to_multiple_of, int) or isinstance(pad_to_multiple_of, bool) or pad_to_multiple_of <= 0:
                raise ValueError(f"pad_to_multiple_of must be a positive integer, got {pad_to_multiple_of!r}")
            if new_num_tokens is None:
                new_num_tokens = old_rows
            new_num_tokens = -(-new_num_tokens // pad_to_multiple_of) * pad_to_multiple_of
        if not isinstance(new_num_tokens, (int, np.integer)) or isinstance(new_num_tokens, bool) or new_num_tokens <= 0:
            raise ValueError(f"new_num_tokens must be a positive integer, got {new_num_tokens!r}")
        new_num_tokens = int(new_num_tokens)
        if new_num_tokens != old_rows:
            table = ops.convert_to_numpy(embeddings.weight)
            embeddings.set_table(resized_table(table, new_num_tokens, mean_resizing, self.config.initializer_range))
            resize_head = getattr(self, "_resize_output_embeddings", None)
            if resize_head is not None:
                resize_head(new_num_tokens, mean_resizing)
            self._reset_compiled_functions()
        self.config.vocab_size = new_num_tokens
        return embeddings

    # ----------------------------------------------------------------------- LoRA
    @property
    def lora_settings(self) -> LoraSettings | None:
        """How LoRA was enabled (rank, alpha, target layer names, train_head), or None when it is off."""
        return getattr(self, "_lora_settings", None)

    def _lora_layers(self) -> list[Linear]:
        return [layer for layer in self._flatten_layers(include_self=False)
                if isinstance(layer, Linear) and layer.lora_enabled]

    def enable_lora(self, rank: int, lora_alpha: float | None = None, target_layer_names=None,
                    train_head: bool = False) -> None:
        """Turn on LoRA (Keras' Dense.enable_lora) in every Linear named in `target_layer_names`.

        Defaults to the attention projections: query_proj, key_proj, value_proj (v2/v3) and in_proj (v1),
        in every layer. Every other weight is frozen, the projections' kernels and biases too, so the
        trainable weights are exactly the lora_kernel_a (in, rank) / lora_kernel_b (rank, out) pairs; with
        `train_head=True` the task head (pooler, classifier, MLM head...) stays trainable as well.
        lora_kernel_b starts at zero, so outputs are unchanged until training; the update is scaled by
        lora_alpha / rank (lora_alpha defaults to rank). Call before `compile()`.
        """
        if self.lora_settings is not None:
            raise ValueError(f"LoRA is already enabled ({self.lora_settings}); merge_lora() first to enable it again")
        if not isinstance(rank, int) or isinstance(rank, bool) or rank <= 0:
            raise ValueError(f"rank must be a positive integer, got {rank!r}")
        targets = tuple(LORA_TARGETS if target_layer_names is None else
                        ([target_layer_names] if isinstance(target_layer_names, str) else target_layer_names))
        layers = [layer for layer in self._flatten_layers(include_self=False)
                  if isinstance(layer, Linear) and layer.name in targets]
        if not layers:
            raise ValueError(f"{type(self).__name__} has no Linear layer named any of {list(targets)}")
        was_trainable = [v.path for v in self.weights if v.trainable]
        for layer in self._flatten_layers(include_self=False):
            layer.trainable = False
        for layer in layers:
            layer.trainable = True
            layer.enable_lora(rank, lora_alpha=lora_alpha)  # freezes the kernel
            if layer.bias is not None:
                layer.bias.trainable = False
        if train_head:
            for layer in getattr(self, "_head_layers", tuple)():
                layer.trainable = True
        trainable_now = {v.path for v in self.weights if v.trainable}
        self._lora_frozen_paths = frozenset(p for p in was_trainable if p not in trainable_now)  # for merge_lora
        self._lora_settings = LoraSettings(rank, float(rank if lora_alpha is None else lora_alpha), targets,
                                           bool(train_head))
        self._reset_compiled_functions()

    def merge_lora(self) -> None:
        """Fold each LoRA update into its kernel (kernel += alpha / rank * a @ b), drop the LoRA weights
        and unfreeze what enable_lora froze: a plain model with the same outputs. No-op without LoRA."""
        if self.lora_settings is None:
            return
        for layer in self._lora_layers():
            layer.merge_lora()
        for layer in self._flatten_layers(include_self=False):
            layer._trainable = True  # the flag only: Layer.trainable's setter would touch every variable
        frozen = getattr(self, "_lora_frozen_paths", frozenset())
        for variable in self.weights:
            if variable.path in frozen:
                variable.trainable = True
        self._lora_frozen_paths = frozenset()
        self._lora_settings = None
        self._reset_compiled_functions()

    def _export_value(self, variable) -> np.ndarray:
        """A variable's value for checkpoints: LoRA kernels merged (the reference has no LoRA weights)."""
        for layer in self._lora_layers():
            if layer._kernel is variable:
                return ops.convert_to_numpy(layer.merged_kernel())
        return ops.convert_to_numpy(variable)

    def _reset_compiled_functions(self) -> None:
        """Drop the traced train/test/predict functions: the variables they captured have changed."""
        for name in ("train_function", "test_function", "predict_function"):
            if hasattr(self, name):
                setattr(self, name, None)
