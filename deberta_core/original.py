"""Checkpoints written by the original microsoft/DeBERTa package, read as that package reads them.

The original code keeps no `model_type` and reads most architecture knobs with `getattr(config, key,
default)`, so a config that leaves a key out means the original's default, not the Hugging Face one.
The two disagree where it matters: a config without `pos_att_type` is content-to-position attention in
the original (`disentangled_attention.py`) and no relative term at all in Hugging Face. Reading such a
config with Hugging Face defaults converts a model with its relative projections silently thrown away.

On-disk forms (all handled by `find_original` / `read_original_checkpoint`):
  release   `pytorch.model.bin` (+ `model_config.json` or another config json beside it); v1 releases keep
            W_q/W_k/W_v in one per-head interleaved `in_proj` (the v1 layout), later ones the v2 layout
  cache     `pytorch_model.bin` + `model_config.json`, the layout of the original's download cache
  embedded  a state dict holding its config as a dict under the `config` entry (the original's loader
            takes it before any file)
Keys may lack the `deberta.` prefix or use LayerNorm `gamma`/`beta`; deberta_core.weight_names maps them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checkpoint import PT_WEIGHTS, read_torch_pickle, tensors_to_numpy
from .config import CONFIG_CLASSES, CONFIG_NAME, BaseDebertaConfig, DebertaConfig, DebertaV2Config
from .io import read_json_object

RELEASE_WEIGHTS = "pytorch.model.bin"
CACHE_WEIGHTS = PT_WEIGHTS  # the original download cache names its weights as Hugging Face does
ORIGINAL_CONFIGS = ("model_config.json", CONFIG_NAME, "bert_config.json")
EMBEDDED_CONFIG = "config"

# What the original (PyPI DeBERTa==0.1.12) uses for a key its config leaves out, and where it says so.
# Keys are the original's spellings; `_HF_NAMES` renames the two that Hugging Face spells differently.
ORIGINAL_DEFAULTS: dict[str, object] = {
    # deberta/config.py, ModelConfig.__init__ (every config starts from these before its json is read)
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "hidden_act": "gelu",
    "intermediate_size": 3072,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 0,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-7,
    "padding_idx": 0,
    # deberta/disentangled_attention.py and deberta/bert.py (BertEncoder, BertEmbeddings, ConvLayer): getattr
    "relative_attention": False,
    "pos_att_type": "c2p",
    "max_relative_positions": -1,
    "position_buckets": -1,
    "share_att_key": False,
    "norm_rel_ebd": "none",
    "conv_kernel_size": 0,  # BertEncoder builds the conv layer only when this is > 0
    "conv_groups": 1,
    "conv_act": "tanh",
    "position_biased_input": True,
}
# deberta/pooling.py, PoolConfig: the pooler reads config["pooling"] with these defaults.
POOLING_DEFAULTS = {"dropout": 0, "hidden_act": "gelu"}
_HF_NAMES = {"padding_idx": "pad_token_id"}


@dataclass
class OriginalCheckpoint:
    """An original checkpoint in canonical form: numpy arrays under the keys as stored, the config as the
    original reads it, and the config keys that took the original's default (`defaulted`: key -> value)."""

    state: dict[str, np.ndarray]
    config: BaseDebertaConfig
    weights: Path
    config_source: str
    defaulted: dict[str, object] = field(default_factory=dict)


def family_from_keys(keys) -> str | None:
    """"v1" (interleaved `in_proj`), "v2" (separate query/key/value projections) or None (no attention)."""
    keys = list(keys)
    if any(".attention.self.in_proj." in k for k in keys):
        return "v1"
    if any(".attention.self.query_proj." in k for k in keys):
        return "v2"
    return None


def is_hf_directory(directory: Path) -> bool:
    """A Hugging Face model directory: its config.json names a DeBERTa model_type."""
    config = directory / CONFIG_NAME
    return config.is_file() and "model_type" in read_json_object(config)


def find_original(src: str | Path) -> tuple[Path, Path | None] | None:
    """(weights file, config file or None) when `src` is an original checkpoint, else None.

    `src` is a weights file, or a directory with `pytorch.model.bin`, or one with `pytorch_model.bin`
    and no Hugging Face config (the original's cache). The config file is None when only the state dict
    can hold it (the embedded form), or when none is beside the weights (an error at read time).
    """
    src = Path(src)
    if src.is_file():
        if src.suffix not in (".bin", ".pt", ".pth"):
            return None
        weights = src
    elif src.is_dir():
        if (src / RELEASE_WEIGHTS).is_file():
            weights = src / RELEASE_WEIGHTS
        elif (src / CACHE_WEIGHTS).is_file() and not is_hf_directory(src):
            weights = src / CACHE_WEIGHTS
        else:
            return None
    else:
        return None
    directory = weights.parent
    config = next((directory / n for n in ORIGINAL_CONFIGS if (directory / n).is_file()), None)
    return weights, config


def hf_config_dict(original: dict, state: dict[str, np.ndarray]) -> tuple[dict, dict[str, object]]:
    """The Hugging Face config dict that computes what the original computes from `original`, and the
    keys that took the original's default (key -> value).

    `vocab_size` has no usable default in the original (-1), and `num_labels` is an argument of its
    task classes, not a config key: when absent, both are read off the weights (the word embedding
    table, the classifier) and reported like defaults.
    """
    data = dict(original)
    defaulted: dict[str, object] = {}
    for key, value in ORIGINAL_DEFAULTS.items():
        if key not in data:
            data[key] = value
            defaulted[key] = value
    if "vocab_size" not in data or data["vocab_size"] in (None, -1):
        table = next((v for k, v in state.items() if k.endswith("embeddings.word_embeddings.weight")), None)
        if table is None:
            raise ValueError("the config gives no vocab_size and the weights hold no word embedding table")
        data["vocab_size"] = defaulted["vocab_size"] = int(table.shape[0])
    classifier = next((v for k, v in state.items() if k.split(".")[-2:] == ["classifier", "weight"]), None)
    if classifier is not None and "num_labels" not in data and "id2label" not in data:
        data["num_labels"] = defaulted["num_labels"] = int(classifier.shape[0])  # the original passes it in code
    pooling = data.pop("pooling", None) or {}
    if not isinstance(pooling, dict):
        raise ValueError(f"config 'pooling' must be an object, got {type(pooling).__name__}")
    for key, value in POOLING_DEFAULTS.items():
        if key not in pooling:
            defaulted[f"pooling.{key}"] = value
    data["pooler_dropout"] = pooling.get("dropout", POOLING_DEFAULTS["dropout"])
    data["pooler_hidden_act"] = pooling.get("hidden_act", POOLING_DEFAULTS["hidden_act"])
    if "hidden_size" in pooling and pooling["hidden_size"] != data["hidden_size"]:
        data["pooler_hidden_size"] = pooling["hidden_size"]
    for theirs, ours in _HF_NAMES.items():
        if theirs in data:
            data.setdefault(ours, data.pop(theirs))
    return data, defaulted


def config_from_original(original: dict, state: dict[str, np.ndarray], family: str | None,
                         where: str) -> tuple[BaseDebertaConfig, dict[str, object]]:
    """Our config for an original config dict (see `hf_config_dict`), in the family the weights are in."""
    if "model_type" in original:
        model_type = original["model_type"]
        if model_type not in CONFIG_CLASSES:
            raise ValueError(f"{where}: model_type {model_type!r} is not a DeBERTa type")
        cls = CONFIG_CLASSES[model_type]
        if family is not None and cls.family != family:
            raise ValueError(f"{where} describes DeBERTa {cls.family} but the weights are {family}")
        return cls.from_dict({k: v for k, v in original.items() if k != "pooling"}), {}
    if family is None:
        raise ValueError(f"{where}: no model_type, and the weights do not say whether this is DeBERTa v1 or v2")
    data, defaulted = hf_config_dict(original, state)
    cls = DebertaConfig if family == "v1" else DebertaV2Config
    return cls.from_dict({**data, "model_type": cls.model_type}), defaulted


def read_original_checkpoint(src: str | Path, config_path: str | Path | None = None) -> OriginalCheckpoint:
    """Read an original checkpoint (any form in the module docstring) as the original package does.

    The config comes from `config_path` when given, else from the state dict's `config` entry, else from
    a config json beside the weights (the original's order after an explicit file).
    """
    found = find_original(src)
    if found is None:
        raise FileNotFoundError(f"no original DeBERTa checkpoint at {src}: looked for {RELEASE_WEIGHTS}, or "
                                f"{CACHE_WEIGHTS} without a Hugging Face config.json")
    weights, beside = found
    raw = read_torch_pickle(weights)
    embedded = raw.pop(EMBEDDED_CONFIG, None)
    if embedded is not None and not isinstance(embedded, dict):
        raise ValueError(f"{weights}: entry 'config' is a {type(embedded).__name__}, expected the model config dict")
    state = tensors_to_numpy(raw, weights)
    if config_path is not None:
        original, source = read_json_object(Path(config_path)), str(config_path)
    elif embedded is not None:
        original, source = embedded, f"{weights} ['config']"
    elif beside is not None:
        original, source = read_json_object(beside), str(beside)
    else:
        raise FileNotFoundError(f"no config for {weights}: none inside the state dict and none beside it "
                                f"(looked for {', '.join(ORIGINAL_CONFIGS)}); pass one explicitly")
    config, defaulted = config_from_original(original, state, family_from_keys(state), source)
    return OriginalCheckpoint(state, config, weights, source, defaulted)


def describe_defaults(defaulted: dict[str, object]) -> list[str]:
    """One line per defaulted key, for reports and logs."""
    return [f"{key} = {value!r} (not in the config: the original's default)" for key, value in defaulted.items()]


def read_original_for(directory: str | Path, config_class: type[BaseDebertaConfig], logger):
    """For `from_pretrained`: the checkpoint in `directory` when it is in an original form (its config
    read with the original's defaults, each defaulted key logged), else None (a Hugging Face directory)."""
    if find_original(directory) is None:
        return None
    found = read_original_checkpoint(directory)
    if not isinstance(found.config, config_class):
        raise ValueError(f"{found.weights} holds DeBERTa {found.config.family} weights, which "
                         f"{config_class.__name__} models cannot load"
                         + ("; re-express them with `deberta-convert SRC DST --to torch --family v2`"
                            if found.config.family == "v1" else ""))
    for line in describe_defaults(found.defaulted):
        logger.info("%s: %s", found.config_source, line)
    return found
