"""Model configurations for DeBERTa v1 (`DebertaConfig`) and DeBERTa-v2/v3 (`DebertaV2Config`).

Both read and write the Hugging Face ``config.json`` layout. Every knob the reference modeling code
reads, declared or not (``share_att_key``, ``position_buckets``, ``norm_rel_ebd``, ``conv_*``,
``attention_head_size``, ``embedding_size``, ``talking_head``, ``cls_dropout``), is a declared
attribute here with the reference's fallback as its default, so model code never guesses. Keys we do
not model (``architectures``, ``torch_dtype``, ``transformers_version``, ...) are kept and written back.

Derived quantities (head size, relative span, scale factor) are properties, computed in one place.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from .io import atomic_write_text, read_json_object

CONFIG_NAME = "config.json"

# Activation names the models understand, shared by both frameworks (SPEC §1.1: "gelu" is exact erf GELU).
ACTIVATIONS = ("gelu", "gelu_new", "gelu_python", "gelu_fast", "relu", "tanh", "silu", "swish", "sigmoid", "linear")
POS_ATT_TYPES = ("c2p", "p2c", "p2p")

# HF PretrainedConfig keys that change nothing in a DeBERTa encoder; they are accepted, kept and written back.
_RUNTIME_FLAGS = {"output_attentions": False, "output_hidden_states": False, "return_dict": True}


def _parse_pos_att_type(value) -> list[str]:
    """`pos_att_type` arrives as None, a list, or the legacy string "c2p|p2c" (lower-cased, stripped)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.lower().split("|") if part.strip()]
    if isinstance(value, (list, tuple)):
        return [str(part).strip().lower() for part in value]
    raise ValueError(f"pos_att_type must be a list or a '|'-separated string, got {type(value).__name__}")


def _parse_norm_rel_ebd(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        value = "|".join(value)
    return str(value)


class BaseDebertaConfig:
    """Fields and behaviour shared by the two families; use `DebertaConfig` or `DebertaV2Config`.

    Constructor arguments mirror `transformers.DebertaConfig`/`DebertaV2Config` (SPEC §1.1-1.2).
    Invalid values raise `ValueError` at construction, naming the field.
    """

    model_type: str = ""
    family: str = ""  # "v1" or "v2": which attention layout and weight names the model uses
    _size_defaults: dict[str, int] = {}

    def __init__(
        self,
        vocab_size: int | None = None,
        hidden_size: int | None = None,
        num_hidden_layers: int | None = None,
        num_attention_heads: int | None = None,
        intermediate_size: int | None = None,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 0,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-7,
        relative_attention: bool = False,
        max_relative_positions: int = -1,
        pad_token_id: int = 0,
        position_biased_input: bool = True,
        pos_att_type: list[str] | str | None = None,
        pooler_dropout: float = 0.0,
        pooler_hidden_act: str = "gelu",
        legacy: bool = True,
        # Read with fallbacks by the reference modeling code (SPEC §1.2).
        share_att_key: bool = False,
        position_buckets: int = -1,
        norm_rel_ebd: str = "none",
        conv_kernel_size: int = 0,
        conv_act: str = "tanh",
        conv_groups: int = 1,
        attention_head_size: int | None = None,
        embedding_size: int | None = None,
        talking_head: bool = False,
        cls_dropout: float | None = None,
        pooler_hidden_size: int | None = None,
        # The original's pre-training MLM decoder (deberta_core/pretraining.py, docs/pretraining.md).
        use_emd: bool = False,
        # Task heads.
        num_labels: int | None = None,
        id2label: dict | None = None,
        label2id: dict | None = None,
        problem_type: str | None = None,
        tie_word_embeddings: bool = True,
        **kwargs: Any,
    ):
        d = self._size_defaults
        self.vocab_size = d["vocab_size"] if vocab_size is None else vocab_size
        self.hidden_size = d["hidden_size"] if hidden_size is None else hidden_size
        self.num_hidden_layers = d["num_hidden_layers"] if num_hidden_layers is None else num_hidden_layers
        self.num_attention_heads = d["num_attention_heads"] if num_attention_heads is None else num_attention_heads
        self.intermediate_size = d["intermediate_size"] if intermediate_size is None else intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.relative_attention = bool(relative_attention)
        self.max_relative_positions = max_relative_positions
        self.pad_token_id = pad_token_id
        self.position_biased_input = bool(position_biased_input)
        self.pos_att_type = _parse_pos_att_type(pos_att_type)
        self.pooler_dropout = pooler_dropout
        self.pooler_hidden_act = pooler_hidden_act
        self.legacy = bool(legacy)
        self.share_att_key = bool(share_att_key)
        self.position_buckets = position_buckets
        self.norm_rel_ebd = _parse_norm_rel_ebd(norm_rel_ebd)
        self.conv_kernel_size = conv_kernel_size
        self.conv_act = conv_act
        self.conv_groups = conv_groups
        self.attention_head_size = attention_head_size
        self.embedding_size = embedding_size
        self.talking_head = bool(talking_head)
        self.cls_dropout = cls_dropout
        self.pooler_hidden_size = self.hidden_size if pooler_hidden_size is None else pooler_hidden_size
        self.use_emd = bool(use_emd)
        self.problem_type = problem_type
        self.tie_word_embeddings = bool(tie_word_embeddings)
        for flag, default in _RUNTIME_FLAGS.items():
            setattr(self, flag, bool(kwargs.pop(flag, default)))
        kwargs.pop("model_type", None)
        kwargs.pop("use_return_dict", None)
        self._set_labels(num_labels, id2label, label2id)
        # Everything else in a config.json is kept verbatim and written back.
        self.extra: dict[str, Any] = kwargs
        self.validate()

    # ------------------------------------------------------------------ labels
    def _set_labels(self, num_labels, id2label, label2id) -> None:
        if id2label is not None:
            id2label = {int(k): v for k, v in dict(id2label).items()}
            if num_labels is not None and num_labels != len(id2label):
                raise ValueError(f"num_labels={num_labels} disagrees with id2label, which has {len(id2label)} entries")
        else:
            n = 2 if num_labels is None else num_labels
            if not isinstance(n, int) or n < 1:
                raise ValueError(f"num_labels must be a positive integer, got {num_labels!r}")
            id2label = {i: f"LABEL_{i}" for i in range(n)}
        self.id2label = id2label
        if label2id is None:
            label2id = {v: k for k, v in id2label.items()}
        self.label2id = {k: int(v) for k, v in dict(label2id).items()}

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, value: int) -> None:
        self._set_labels(value, None, None)

    # ------------------------------------------------------------ derived values
    @property
    def head_dim(self) -> int:
        """Per-head width d: H / A, or `attention_head_size` (honoured by v2 only, as in the reference)."""
        if self.family == "v2" and self.attention_head_size is not None:
            return self.attention_head_size
        return self.hidden_size // self.num_attention_heads

    @property
    def embedding_dim(self) -> int:
        """Width of word/position/type embeddings; `embed_proj` maps it to hidden_size when they differ."""
        return self.hidden_size if self.embedding_size is None else self.embedding_size

    @property
    def relative_span(self) -> int:
        """K: `max_relative_positions`, falling back to `max_position_embeddings` when below 1 (SPEC §1.4)."""
        return self.max_relative_positions if self.max_relative_positions >= 1 else self.max_position_embeddings

    @property
    def scale_factor(self) -> int:
        """1 + the relative terms counted in the score scale sqrt(d * sf) (SPEC §1.4).

        v1 counts every entry of pos_att_type (p2p included); v2 counts only c2p and p2c. Both count them
        even when relative_attention is False, as the reference does.
        """
        if self.family == "v1":
            return 1 + len(self.pos_att_type)
        return 1 + ("c2p" in self.pos_att_type) + ("p2c" in self.pos_att_type)

    @property
    def uses_c2p(self) -> bool:
        return self.relative_attention and "c2p" in self.pos_att_type

    @property
    def uses_p2c(self) -> bool:
        return self.relative_attention and "p2c" in self.pos_att_type

    @property
    def rel_embeddings_size(self) -> int:
        """Rows of `encoder.rel_embeddings`: 2K (v1, v2 without buckets) or 2B (v2 with buckets)."""
        if self.family == "v2" and self.position_buckets > 0:
            return 2 * self.position_buckets
        return 2 * self.relative_span

    @property
    def norm_rel_embeddings(self) -> bool:
        """Whether the relative table is LayerNorm'd once per forward (v2 `norm_rel_ebd` contains layer_norm)."""
        parts = [p.strip() for p in self.norm_rel_ebd.lower().split("|")]
        return self.family == "v2" and "layer_norm" in parts

    @property
    def classifier_dropout(self) -> float:
        return self.hidden_dropout_prob if self.cls_dropout is None else self.cls_dropout

    @property
    def use_return_dict(self) -> bool:
        return self.return_dict

    # --------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise `ValueError` naming the first field that makes the model unbuildable or ambiguous."""

        def positive(name):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

        def probability(name):
            value = getattr(self, name)
            if value is None:
                return
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")

        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "pooler_hidden_size"):
            positive(name)
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "pooler_dropout", "cls_dropout"):
            probability(name)
        if not isinstance(self.type_vocab_size, int) or self.type_vocab_size < 0:
            raise ValueError(f"type_vocab_size must be a non-negative integer, got {self.type_vocab_size!r}")
        if self.embedding_size is not None:
            positive("embedding_size")
        if self.attention_head_size is not None:
            positive("attention_head_size")
        if self.family == "v2" and self.attention_head_size is not None:
            if self.attention_head_size * self.num_attention_heads != self.hidden_size:
                raise ValueError(
                    f"attention_head_size ({self.attention_head_size}) x num_attention_heads "
                    f"({self.num_attention_heads}) must equal hidden_size ({self.hidden_size})"
                )
        elif self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) is not divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.pooler_hidden_size != self.hidden_size:
            raise ValueError(
                f"pooler_hidden_size ({self.pooler_hidden_size}) must equal hidden_size ({self.hidden_size}): "
                "the classifier reads the pooler output"
            )
        if not self.layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps must be positive, got {self.layer_norm_eps!r}")
        for name in ("hidden_act", "pooler_hidden_act", "conv_act"):
            if getattr(self, name) not in ACTIVATIONS:
                raise ValueError(f"{name} {getattr(self, name)!r} is not supported; choose one of {ACTIVATIONS}")
        unknown = [p for p in self.pos_att_type if p not in POS_ATT_TYPES]
        if unknown:
            raise ValueError(f"unknown attention type(s) {unknown} in pos_att_type; allowed: {list(POS_ATT_TYPES)}")
        if not isinstance(self.position_buckets, int) or isinstance(self.position_buckets, bool):
            raise ValueError(f"position_buckets must be an integer (<= 0 means off), got {self.position_buckets!r}")
        if self.family == "v2" and self.position_buckets > 0:
            if self.position_buckets < 2:
                raise ValueError(f"position_buckets must be at least 2 when used, got {self.position_buckets}")
            if self.relative_span <= self.position_buckets // 2 + 1:
                raise ValueError(
                    f"max_relative_positions ({self.relative_span}) must exceed position_buckets // 2 + 1 "
                    f"({self.position_buckets // 2 + 1}) for the log buckets to be defined"
                )
        if not isinstance(self.conv_kernel_size, int) or self.conv_kernel_size < 0:
            raise ValueError(f"conv_kernel_size must be a non-negative integer, got {self.conv_kernel_size!r}")
        if self.conv_kernel_size > 0 and self.conv_kernel_size % 2 == 0:
            raise ValueError(f"conv_kernel_size must be odd so the sequence length is kept, got {self.conv_kernel_size}")
        if not isinstance(self.conv_groups, int) or self.conv_groups < 1 or self.hidden_size % self.conv_groups:
            raise ValueError(f"conv_groups ({self.conv_groups!r}) must be a positive divisor of hidden_size ({self.hidden_size})")
        parts = [p.strip() for p in self.norm_rel_ebd.lower().split("|")]
        if any(p not in ("none", "layer_norm", "") for p in parts):
            raise ValueError(f"norm_rel_ebd must be 'none' or 'layer_norm', got {self.norm_rel_ebd!r}")
        if self.problem_type not in (None, "regression", "single_label_classification", "multi_label_classification"):
            raise ValueError(f"unknown problem_type {self.problem_type!r}")
        if self.pad_token_id is not None and not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"pad_token_id ({self.pad_token_id}) must be inside the vocabulary (size {self.vocab_size})")
        if self.talking_head and self.family != "v1":
            raise ValueError("talking_head is a DeBERTa v1 option; DebertaV2Config does not support it")
        if self.use_emd and self.position_biased_input:
            raise ValueError("use_emd needs position_biased_input=False: the original adds the absolute positions "
                             "in its enhanced mask decoder only when the input has none (with them it uses the "
                             "last layer as is, which use_emd=False computes)")
        if self.use_emd and self.embedding_dim != self.hidden_size:
            raise ValueError(f"use_emd needs embedding_size == hidden_size (the decoder adds the position table, "
                             f"width {self.embedding_dim}, to hidden states of width {self.hidden_size})")

    # ----------------------------------------------------------------- dict I/O
    _EXTENDED = ("share_att_key", "position_buckets", "norm_rel_ebd", "conv_kernel_size", "conv_act",
                 "conv_groups", "attention_head_size", "embedding_size", "talking_head", "cls_dropout", "use_emd")
    _DECLARED = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                 "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                 "type_vocab_size", "initializer_range", "layer_norm_eps", "relative_attention",
                 "max_relative_positions", "pad_token_id", "position_biased_input", "pos_att_type",
                 "pooler_dropout", "pooler_hidden_act", "pooler_hidden_size", "legacy", "problem_type",
                 "tie_word_embeddings")

    def to_dict(self) -> dict[str, Any]:
        """The Hugging Face `config.json` content: declared fields, the extended knobs, labels, extras.

        Extended knobs are written only when they differ from the reference fallback, so a config read
        from a hub `config.json` is written back with the same keys it had.
        """
        out: dict[str, Any] = {"model_type": self.model_type}
        for key in self._DECLARED:
            out[key] = copy.deepcopy(getattr(self, key))
        defaults = type(self)._extended_defaults()
        for key in self._EXTENDED:
            value = getattr(self, key)
            if key in self._given_extended or value != defaults[key]:
                out[key] = value
        out["id2label"] = {str(k): v for k, v in self.id2label.items()}
        out["label2id"] = dict(self.label2id)
        for flag, default in _RUNTIME_FLAGS.items():
            if getattr(self, flag) != default:
                out[flag] = getattr(self, flag)
        for key, value in self.extra.items():
            out.setdefault(key, copy.deepcopy(value))
        return out

    @classmethod
    def _extended_defaults(cls) -> dict[str, Any]:
        return {"share_att_key": False, "position_buckets": -1, "norm_rel_ebd": "none", "conv_kernel_size": 0,
                "conv_act": "tanh", "conv_groups": 1, "attention_head_size": None, "embedding_size": None,
                "talking_head": False, "cls_dropout": None, "use_emd": False}

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **overrides: Any) -> "BaseDebertaConfig":
        """Build from a `config.json` dict; `overrides` win over its values (e.g. `num_labels=3`)."""
        data = dict(config_dict)
        model_type = data.get("model_type")
        if model_type is not None and model_type != cls.model_type:
            hint = {"deberta": "DebertaConfig", "deberta-v2": "DebertaV2Config"}.get(model_type)
            raise ValueError(
                f"config has model_type {model_type!r} but {cls.__name__} reads {cls.model_type!r}"
                + (f"; use {hint}" if hint else "")
            )
        if "num_labels" in overrides and "id2label" not in overrides:
            data.pop("id2label", None)
            data.pop("label2id", None)
        data.update(overrides)
        config = cls(**data)
        config._given_extended = {k for k in cls._EXTENDED if k in data}
        return config

    _given_extended: set = frozenset()

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "BaseDebertaConfig":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no config file at {path}")
        return cls.from_dict(read_json_object(path))

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **overrides: Any) -> "BaseDebertaConfig":
        """Read `config.json` from a directory (or the file itself); `overrides` replace fields."""
        path = Path(path)
        file = path / CONFIG_NAME if path.is_dir() else path
        config = cls.from_json_file(file)
        if overrides:
            config = cls.from_dict(config.to_dict(), **overrides)
        return config

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write `config.json` into `save_directory` (created if needed), atomically."""
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"{directory} exists and is not a directory")
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / CONFIG_NAME
        atomic_write_text(target, self.to_json_string())
        return target

    # ------------------------------------------------------------------- misc
    def get_text_config(self, decoder: bool = False) -> "BaseDebertaConfig":
        """The config of the text model: this one (transformers' API for multimodal configs; PEFT calls it)."""
        return self

    def __contains__(self, key: str) -> bool:
        """`"hidden_size" in config`, as on transformers configs."""
        return key in self.to_dict()

    def copy(self, **changes: Any) -> "BaseDebertaConfig":
        return type(self).from_dict(self.to_dict(), **changes)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"


class DebertaConfig(BaseDebertaConfig):
    """Configuration of DeBERTa v1 (`model_type` "deberta"). Defaults are microsoft/deberta-base sizes."""

    model_type = "deberta"
    family = "v1"
    _size_defaults = {"vocab_size": 50265, "hidden_size": 768, "num_hidden_layers": 12,
                      "num_attention_heads": 12, "intermediate_size": 3072}


class DebertaV2Config(BaseDebertaConfig):
    """Configuration of DeBERTa-v2 and v3 (`model_type` "deberta-v2"). Size defaults are v2-xlarge's.

    Note that the defaults do not describe a released model (relative attention, buckets, key sharing
    and the conv layer are off): build configs from a real `config.json` or set them explicitly.
    """

    model_type = "deberta-v2"
    family = "v2"
    _size_defaults = {"vocab_size": 128100, "hidden_size": 1536, "num_hidden_layers": 24,
                      "num_attention_heads": 24, "intermediate_size": 6144}


CONFIG_CLASSES = {cls.model_type: cls for cls in (DebertaConfig, DebertaV2Config)}


def load_config(path: str | os.PathLike, **overrides: Any) -> BaseDebertaConfig:
    """Read a `config.json` (or a directory holding one) into the class its `model_type` names."""
    path = Path(path)
    file = path / CONFIG_NAME if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no config file at {file}")
    data = read_json_object(file)
    model_type = data.get("model_type")
    if model_type not in CONFIG_CLASSES:
        raise ValueError(f"{file}: model_type {model_type!r} is not a DeBERTa type ({sorted(CONFIG_CLASSES)})")
    return CONFIG_CLASSES[model_type].from_dict(data, **overrides)
