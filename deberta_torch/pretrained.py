"""Base classes for every PyTorch DeBERTa model: weight init, `from_pretrained`, `save_pretrained`."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from deberta_core import outputs as core_outputs
from deberta_core.checkpoint import PT_INDEX, PT_WEIGHTS, SAFE_INDEX, SAFE_WEIGHTS
from deberta_core.config import BaseDebertaConfig, DebertaConfig, DebertaV2Config
from deberta_core.io import atomic_path
from deberta_core.pretrained import read_pretrained
from deberta_core.weight_names import LoadingInfo, log_loading, plan_load, uses_position_table

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


def _resize_rows(model: nn.Module, module: nn.Module, new_rows: int, mean_resizing: bool,
                 old_bias: torch.Tensor | None = None) -> torch.Tensor | None:
    """Resize `module.weight` (one row per token) in place, as transformers 4.57 does in
    `_get_resized_embeddings` (an Embedding) and `_get_resized_lm_head` (a Linear whose bias is
    `old_bias`; the new bias is returned, for the caller to install).

    The fresh tensors come from the constructor the reference uses, so the random stream advances
    exactly as there; added rows are then initialised and the old rows copied.
    """
    weight = module.weight
    old_rows, dim = weight.shape
    kw = dict(device=weight.device, dtype=weight.dtype)
    linear = isinstance(module, nn.Linear)
    fresh = nn.Linear(dim, new_rows, bias=old_bias is not None, **kw) if linear else nn.Embedding(new_rows, dim, **kw)
    added = new_rows - old_rows
    if added > 0 and not mean_resizing:
        model._init_weights(fresh)
    elif added > 0:
        fresh.weight.data[-added:] = _mean_rows(weight.data, added)
        if old_bias is not None:
            mean = torch.mean(old_bias.data, dim=0, dtype=torch.float32)
            std = torch.std(old_bias.data, dim=0).to(torch.float32)
            fresh.bias.data[-added:].normal_(mean=float(mean), std=float(1e-9 * std))
    n = min(old_rows, new_rows)
    fresh.weight.data[:n] = weight.data[:n]
    weight.data = fresh.weight.data
    if not linear:
        return None
    module.out_features = new_rows
    if old_bias is None:
        return None
    fresh.bias.data[:n] = old_bias.data[:n]
    return fresh.bias.data


def _mean_rows(old: torch.Tensor, count: int) -> torch.Tensor:
    """`count` rows drawn from N(mean, 1e-9 * covariance) of `old`'s rows (their mean if that covariance
    is not positive definite), computed in float32: the reference's mean resizing."""
    from torch.distributions import constraints
    from torch.distributions.multivariate_normal import MultivariateNormal

    rows = old.to(torch.float32)
    mean = rows.mean(dim=0)
    centered = rows - mean
    covariance = 1e-9 * (centered.T @ centered / rows.shape[0])
    if constraints.positive_definite.check(covariance).all():
        return MultivariateNormal(mean, covariance_matrix=covariance).sample((count,)).to(old.dtype)
    return mean[None, :].repeat(count, 1).to(old.dtype)


def _pad_bias(bias: nn.Parameter, new_rows: int) -> None:
    """Cut or zero-extend a vocabulary bias in place (the reference's `_tie_or_clone_weights` rule)."""
    bias.data = nn.functional.pad(bias.data, (0, new_rows - bias.shape[0]), "constant", 0)


_SIZE_UNITS = {"KIB": 2 ** 10, "MIB": 2 ** 20, "GIB": 2 ** 30, "TIB": 2 ** 40,
               "KB": 10 ** 3, "MB": 10 ** 6, "GB": 10 ** 9, "TB": 10 ** 12, "B": 1}


def _shard_bytes(size: int | str) -> int:
    """`max_shard_size` in bytes: an int, or a string such as "5GB", "500MB", "2GiB"."""
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size
    text = str(size).strip().upper().replace(" ", "")
    for unit, factor in _SIZE_UNITS.items():
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return int(float(text[: -len(unit)]) * factor)
    raise ValueError(f"max_shard_size must be a positive byte count or a size like '5GB', got {size!r}")


def _write_weights(directory: Path, state: dict[str, torch.Tensor], safe: bool, max_shard_size) -> None:
    """Write `state` as model.safetensors (or pytorch_model.bin), sharded with an index past
    `max_shard_size`; each file atomically, then remove weight files of an earlier save that would
    shadow these (from_pretrained prefers a single file over an index)."""
    import json

    limit = _shard_bytes(max_shard_size)
    seen: set[int] = set()
    tensors: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        value = value.detach().contiguous()
        storage = value.untyped_storage().data_ptr()
        if storage in seen and value.numel():  # tied tensors: safetensors refuses shared storage
            value = value.clone()
        seen.add(storage)
        tensors[key] = value
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, value in tensors.items():
        nbytes = value.numel() * value.element_size()
        if shards[-1] and size + nbytes > limit:
            shards.append({})
            size = 0
        shards[-1][key] = value
        size += nbytes
    single, index_name = (SAFE_WEIGHTS, SAFE_INDEX) if safe else (PT_WEIGHTS, PT_INDEX)
    stem, ext = single.rsplit(".", 1)
    names = [single] if len(shards) == 1 else \
        [f"{stem}-{i + 1:05d}-of-{len(shards):05d}.{ext}" for i in range(len(shards))]
    for name, shard in zip(names, shards):
        with atomic_path(directory / name) as tmp:
            if safe:
                save_file(shard, str(tmp), metadata={"format": "pt"})
            else:
                torch.save(shard, tmp)
    if len(shards) > 1:
        index = {"metadata": {"total_size": sum(v.numel() * v.element_size() for v in tensors.values())},
                 "weight_map": {key: name for name, shard in zip(names, shards) for key in shard}}
        with atomic_path(directory / index_name) as tmp:
            tmp.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    keep = set(names) | ({index_name} if len(shards) > 1 else set())
    stale = re.compile(r"(model|pytorch_model)(-\d{5}-of-\d{5})?\.(safetensors|bin)(\.index\.json)?")
    for old in directory.iterdir():
        if old.is_file() and old.name not in keep and stale.fullmatch(old.name):
            old.unlink()


class _PreTrained(nn.Module):
    """Shared machinery; use DebertaPreTrainedModel or DebertaV2PreTrainedModel."""

    config_class: type[BaseDebertaConfig] = BaseDebertaConfig
    base_model_prefix = "deberta"
    head: str | None = None  # which weight_names head this class carries (None: the base model)
    supports_gradient_checkpointing = True
    # The rest of the `transformers.PreTrainedModel` surface that training tools (Trainer, PEFT,
    # accelerate) read: which input counts tokens, what to skip on save/load, how to split for
    # device maps. Values follow the reference DeBERTa classes, except that ours names the layer
    # accelerate must keep on one device (the reference's None refuses device_map="auto").
    main_input_name = "input_ids"
    is_parallelizable = False
    _no_split_modules = ["DebertaLayer"]
    _keys_to_ignore_on_save = None
    _keys_to_ignore_on_load_missing = None
    _keys_to_ignore_on_load_unexpected = ["position_embeddings"]
    _tied_weights_keys = None

    def __init__(self, config: BaseDebertaConfig):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        self.name_or_path = str(config.extra.get("_name_or_path", ""))  # PEFT reads it from __dict__
        self.warnings_issued: dict = {}
        self.model_tags: list[str] | None = None

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

    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """Parameter count (each shared tensor once); `exclude_embeddings` leaves out every nn.Embedding
        weight (word, position, token-type and relative tables), as the reference counts."""
        skip = {f"{name}.weight" for name, module in self.named_modules() if isinstance(module, nn.Embedding)} \
            if exclude_embeddings else set()
        return sum(p.numel() for name, p in self.named_parameters()
                   if name not in skip and (p.requires_grad or not only_trainable))

    def estimate_tokens(self, input_dict) -> int:
        """Tokens in a batch (the element count of `input_ids`), 0 when it has none."""
        if self.main_input_name in input_dict:
            return input_dict[self.main_input_name].numel()
        if "estimate_tokens" not in self.warnings_issued:
            logger.warning("no %s in the inputs: floating-point operations are not counted", self.main_input_name)
            self.warnings_issued["estimate_tokens"] = True
        return 0

    def floating_point_ops(self, input_dict, exclude_embeddings: bool = True) -> int:
        """Forward + backward FLOPs of a batch, 6 x tokens x parameters (the reference's estimate)."""
        return 6 * self.estimate_tokens(input_dict) * self.num_parameters(exclude_embeddings=exclude_embeddings)

    @classmethod
    def can_generate(cls) -> bool:
        return False

    def add_model_tags(self, tags: list[str] | str) -> None:
        """Tags for a model card (Trainer and PEFT add theirs); existing ones are kept."""
        if self.model_tags is None:
            self.model_tags = []
        for tag in [tags] if isinstance(tags, str) else tags:
            if tag not in self.model_tags:
                self.model_tags.append(tag)

    def enable_input_require_grads(self) -> None:
        """Make the word-embedding output require grad, so frozen-base adapters (PEFT) still get
        gradients through reentrant checkpointing."""
        def make_inputs_require_grads(module, inputs, output):
            output.requires_grad_(True)

        self._require_grads_hook = self.get_input_embeddings().register_forward_hook(make_inputs_require_grads)

    def disable_input_require_grads(self) -> None:
        self._require_grads_hook.remove()

    def get_output_embeddings(self) -> nn.Module | None:
        """The vocabulary projection of a masked-LM head; None for the other models."""
        return None

    def set_output_embeddings(self, new_embeddings: nn.Module) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no output embeddings")

    def tie_weights(self) -> None:
        """Re-establish the input/output embedding tie (masked LM with tie_word_embeddings); else nothing."""

    def resize_token_embeddings(self, new_num_tokens: int | None = None, pad_to_multiple_of: int | None = None,
                                mean_resizing: bool = True) -> nn.Embedding:
        """Grow or shrink the vocabulary to `new_num_tokens` rows (rounded up to `pad_to_multiple_of`).

        Old rows are kept; the word-embedding module and Parameter are resized in place, so ties and
        references stay valid. New rows, as the reference (transformers 4.57) fills them: with
        `mean_resizing` a sample of N(mean, 1e-9 * covariance) of the old rows (so, in effect, their
        mean), else N(0, initializer_range). A masked-LM head is resized with it: its bias gets zeros
        (tied head) or the old biases' mean (untied), an untied decoder like the embeddings. The random
        numbers are drawn in the reference's order, so the same seed gives the same weights.
        Updates `config.vocab_size` and returns the word-embedding module.
        """
        embeddings = self.get_input_embeddings()
        if pad_to_multiple_of is not None:
            if isinstance(pad_to_multiple_of, bool) or not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of < 1:
                raise ValueError(f"pad_to_multiple_of must be a positive int, got {pad_to_multiple_of!r}")
            if new_num_tokens is None:
                new_num_tokens = embeddings.weight.shape[0]
            new_num_tokens = -(-new_num_tokens // pad_to_multiple_of) * pad_to_multiple_of
        if new_num_tokens is None:
            return embeddings
        if isinstance(new_num_tokens, bool) or not isinstance(new_num_tokens, int) or new_num_tokens < 1:
            raise ValueError(f"new_num_tokens must be a positive int, got {new_num_tokens!r}")
        if new_num_tokens != embeddings.weight.shape[0]:
            _resize_rows(self, embeddings, new_num_tokens, mean_resizing)
            embeddings.num_embeddings = new_num_tokens
            if embeddings.padding_idx is not None and embeddings.padding_idx >= new_num_tokens:
                embeddings.padding_idx = None
            self._resize_output_head(new_num_tokens, mean_resizing)
        self.config.vocab_size = new_num_tokens
        self.tie_weights()
        return embeddings

    def _resize_output_head(self, new_num_tokens: int, mean_resizing: bool) -> None:
        """Task heads with a vocabulary-sized part resize it here (see `resize_token_embeddings`)."""

    @property
    def base_model(self) -> nn.Module:
        """The backbone (`self.deberta` in task models; the model itself for DebertaModel)."""
        return getattr(self, self.base_model_prefix, self)

    @property
    def is_gradient_checkpointing(self) -> bool:
        return any(getattr(m, "gradient_checkpointing", False) for m in self.modules())

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
    def save_pretrained(self, save_directory: str | os.PathLike, is_main_process: bool = True,
                        state_dict: dict[str, torch.Tensor] | None = None, safe_serialization: bool = True,
                        max_shard_size: int | str = "5GB", **kwargs) -> Path:
        """Write `config.json` and `model.safetensors` into `save_directory`, each atomically.

        The reference and deberta_tf load the result. Tied tensors are stored once, as the reference does.
        Takes the arguments Trainer, PEFT and accelerate pass: `state_dict` (saved instead of this
        model's), `safe_serialization=False` (pytorch_model.bin), `max_shard_size` (bytes or "500MB";
        larger checkpoints are split into shards with an index), `is_main_process=False` (write nothing).
        `save_function` and `token` are ignored; `push_to_hub` and `variant` are refused.
        """
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"{directory} exists and is not a directory")
        if not is_main_process:
            return directory
        if kwargs.get("push_to_hub") or kwargs.get("variant"):
            raise NotImplementedError("push_to_hub and variant are not supported by deberta_torch's save_pretrained")
        directory.mkdir(parents=True, exist_ok=True)
        state = self.state_dict() if state_dict is None else state_dict
        _write_weights(directory, state, safe_serialization, max_shard_size)
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
        found = read_pretrained(pretrained_model_name_or_path, cls.config_class, cls.head, logger, config=config,
                                overrides=config_overrides)
        config = found.config
        target_dtype = _as_dtype(torch_dtype if torch_dtype is not None else dtype, config)
        with _default_dtype(target_dtype):
            model = cls(config)
        info = model.load_checkpoint_state(found.state, strict=strict, ignore_mismatched_sizes=ignore_mismatched_sizes)
        if attn_implementation is not None:
            model.set_attn_implementation(attn_implementation)
        if device is not None:
            model.to(device)
        model.name_or_path = str(pretrained_model_name_or_path)
        model.eval()
        return (model, info) if output_loading_info else model

    def load_checkpoint_state(self, state: dict, strict: bool = False,
                              ignore_mismatched_sizes: bool = False) -> LoadingInfo:
        """Copy a checkpoint's tensors (torch tensors or numpy arrays, PyTorch keys) into this model, applying
        the key rules of deberta_core.weight_names; each is cast to the dtype of the parameter it fills."""
        own = self.state_dict()
        name = type(self).__name__
        info = plan_load({k: tuple(v.shape) for k, v in state.items()}, {k: tuple(v.shape) for k, v in own.items()},
                         uses_position_table(self.config, self.head), name, strict, ignore_mismatched_sizes)
        self.load_state_dict({t: torch.as_tensor(state[s]).to(own[t].dtype) for t, s in info.mapping.items()},
                             strict=False)
        log_loading(info, name, logger)
        return info


class DebertaPreTrainedModel(_PreTrained):
    """Base of every DeBERTa v1 model (takes a `DebertaConfig`)."""

    config_class = DebertaConfig


class DebertaV2PreTrainedModel(_PreTrained):
    """Base of every DeBERTa-v2/v3 model (takes a `DebertaV2Config`)."""

    config_class = DebertaV2Config
