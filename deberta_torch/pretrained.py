"""Base classes for every PyTorch DeBERTa model: weight init, `from_pretrained`, `save_pretrained`."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from deberta_core import outputs as core_outputs
from deberta_core.checkpoint import SAFE_WEIGHTS, find_weight_files, resolve_pretrained_path
from deberta_core.config import BaseDebertaConfig, DebertaConfig, DebertaV2Config
from deberta_core.io import atomic_path
from deberta_core.original import read_original_for
from deberta_core.weight_names import LoadingInfo, checkpoint_mlm_layout, log_loading, plan_load

logger = logging.getLogger("deberta_torch")


def register_output_classes(classes) -> None:
    """Make the output dataclasses pytrees of their non-None fields, as transformers does for its own.

    torch.export, torch.onnx.export (dynamo) and torch.compile then accept models returning them, so
    `return_dict=False` is not needed to export.
    """
    from torch.utils import _pytree as pytree

    def flatten(obj):
        names = tuple(obj.keys())
        return [getattr(obj, n) for n in names], names

    def flatten_with_keys(obj):
        children, names = flatten(obj)
        return [(pytree.GetAttrKey(n), c) for n, c in zip(names, children)], names

    for cls in classes:
        def unflatten(children, names, cls=cls):
            return cls(**dict(zip(names, children)))

        try:
            pytree.register_pytree_node(cls, flatten, unflatten, flatten_with_keys_fn=flatten_with_keys,
                                        serialized_type_name=f"{cls.__module__}.{cls.__name__}")
        except ValueError:
            pass  # already registered (module re-import)


register_output_classes(core_outputs.OUTPUT_CLASSES)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
           "float64": torch.float64, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _as_dtype(dtype, config: BaseDebertaConfig) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        name = config.extra.get("torch_dtype") or config.extra.get("dtype") or "float32"
        return _DTYPES[name]
    if dtype in _DTYPES:
        return _DTYPES[dtype]
    raise ValueError(f"unknown dtype {dtype!r}; use a torch.dtype, 'auto', or one of {sorted(_DTYPES)}")


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype | None):
    """Create parameters directly in `dtype`, so no weight is ever built in float32 and cast."""
    if dtype is None:
        yield
        return
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def read_state_dict(directory: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint in `directory` (safetensors, sharded or not, or pytorch_model.bin)."""
    found = find_weight_files(directory, prefer=("safetensors", "pytorch", "tf"))
    if found.format == "tf":
        raise ValueError(
            f"{directory} holds only TensorFlow weights ({found.files[0].name}); convert them with "
            "`deberta-convert SRC DST --to torch` or load them with deberta_tf"
        )
    state: dict[str, torch.Tensor] = {}
    for file in found.files:
        try:
            if found.format == "safetensors":
                part = load_file(str(file))
            else:
                part = torch.load(file, map_location="cpu", weights_only=True)
        except (SafetensorError, RuntimeError, EOFError, OSError, ValueError) as err:
            raise ValueError(f"corrupt checkpoint file {file}: {err}") from None
        if not isinstance(part, dict):
            raise ValueError(f"corrupt checkpoint file {file}: expected a dict of tensors, got {type(part).__name__}")
        state.update(part)
    return state


class _PreTrained(nn.Module):
    """Shared machinery; use DebertaPreTrainedModel or DebertaV2PreTrainedModel."""

    config_class: type[BaseDebertaConfig] = BaseDebertaConfig
    base_model_prefix = "deberta"
    head: str | None = None  # which weight_names head this class carries (None: the base model)
    supports_gradient_checkpointing = True

    def __init__(self, config: BaseDebertaConfig):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config

    # ----------------------------------------------------------------- init
    def post_init(self) -> None:
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """Reference init (SPEC §3.7): N(0, initializer_range) for Linear/Embedding, zero biases and pad row."""
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        for name in ("q_bias", "v_bias", "bias"):
            param = module._parameters.get(name)
            if param is not None and not isinstance(module, (nn.Linear, nn.Conv1d, nn.LayerNorm)):
                nn.init.zeros_(param)

    # ----------------------------------------------------------- properties
    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def num_parameters(self, only_trainable: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    def get_input_embeddings(self) -> nn.Embedding:
        base = getattr(self, self.base_model_prefix, self)
        return base.embeddings.word_embeddings

    def set_input_embeddings(self, embeddings: nn.Embedding) -> None:
        base = getattr(self, self.base_model_prefix, self)
        base.embeddings.word_embeddings = embeddings

    def set_attn_implementation(self, name: str) -> None:
        """Choose the attention code path for every layer: one of `ATTN_IMPLEMENTATIONS`.

        "eager" is the plain reference-shaped computation; all paths give the same numbers (fp32 1e-5).
        """
        from .attention import ATTN_IMPLEMENTATIONS

        if name not in ATTN_IMPLEMENTATIONS:
            raise ValueError(f"unknown attn_implementation {name!r}; choose one of {ATTN_IMPLEMENTATIONS}")
        for module in self.modules():
            if hasattr(module, "attn_implementation"):
                module.attn_implementation = name

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None) -> None:
        """Recompute each layer in the backward pass instead of storing its activations."""
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = False

    # ---------------------------------------------------------------- saving
    def save_pretrained(self, save_directory: str | os.PathLike, safe_serialization: bool = True) -> Path:
        """Write `config.json` and `model.safetensors` into `save_directory`, each atomically.

        The reference and deberta_tf load the result. Tied tensors are stored once, as the reference does.
        """
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"{directory} exists and is not a directory")
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        with atomic_path(directory / SAFE_WEIGHTS) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
        config = self.config.copy()
        config.extra["architectures"] = [type(self).__name__]
        config.extra["torch_dtype"] = str(self.dtype).removeprefix("torch.")
        config.save_pretrained(directory)
        return directory

    # --------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *, config: BaseDebertaConfig | None = None,
                        torch_dtype=None, dtype=None, strict: bool = False, ignore_mismatched_sizes: bool = False,
                        output_loading_info: bool = False, device: str | torch.device | None = None,
                        attn_implementation: str | None = None, **config_overrides):
        """Load a model from a directory holding `config.json` and weights (or a hub name, when
        huggingface_hub is installed).

        Accepts `model.safetensors` (sharded too) or `pytorch_model.bin`; keys with or without the
        `deberta.` prefix; legacy `LayerNorm.gamma/beta`; both masked-LM layouts, picked from the keys.
        Missing and unexpected keys are logged by name; `strict=True` refuses them. A shape mismatch is
        an error unless `ignore_mismatched_sizes=True` (e.g. a new `num_labels`).
        `torch_dtype` ("auto", "bfloat16", torch.bfloat16, ...) builds the model in that dtype.
        Extra keyword arguments override config fields (`num_labels=3`). Returns the model in eval mode,
        and a `LoadingInfo` too when `output_loading_info=True`.
        """
        directory = resolve_pretrained_path(pretrained_model_name_or_path)
        original = read_original_for(directory, cls.config_class, logger)
        if config is None and original is not None:
            config = original.config.copy(**config_overrides) if config_overrides else original.config
        elif config is None:
            config = cls.config_class.from_pretrained(directory, **config_overrides)
        elif config_overrides:
            config = config.copy(**config_overrides)
        if original is not None:
            state = {k: torch.from_numpy(v) for k, v in original.state.items()}
        else:
            state = read_state_dict(directory)
        if cls.head == "masked_lm":
            layout = checkpoint_mlm_layout(state)
            if layout is not None and config.legacy != (layout == "legacy"):
                config = config.copy(legacy=(layout == "legacy"))
        target_dtype = _as_dtype(torch_dtype if torch_dtype is not None else dtype, config)
        with _default_dtype(target_dtype):
            model = cls(config)
        info = model.load_checkpoint_state(state, strict=strict, ignore_mismatched_sizes=ignore_mismatched_sizes)
        if attn_implementation is not None:
            model.set_attn_implementation(attn_implementation)
        if device is not None:
            model.to(device)
        model.eval()
        return (model, info) if output_loading_info else model

    def load_checkpoint_state(self, state: dict[str, torch.Tensor], strict: bool = False,
                              ignore_mismatched_sizes: bool = False) -> LoadingInfo:
        """Copy a checkpoint's tensors into this model, applying the key rules of deberta_core.weight_names."""
        own = self.state_dict()
        name = type(self).__name__
        info = plan_load({k: tuple(v.shape) for k, v in state.items()}, {k: tuple(v.shape) for k, v in own.items()},
                         self.config.position_biased_input, name, strict, ignore_mismatched_sizes)
        self.load_state_dict({t: state[s].to(own[t].dtype) for t, s in info.mapping.items()}, strict=False)
        log_loading(info, name, logger)
        return info


class DebertaPreTrainedModel(_PreTrained):
    """Base of every DeBERTa v1 model (takes a `DebertaConfig`)."""

    config_class = DebertaConfig


class DebertaV2PreTrainedModel(_PreTrained):
    """Base of every DeBERTa-v2/v3 model (takes a `DebertaV2Config`)."""

    config_class = DebertaV2Config
