"""The framework-neutral half of `from_pretrained`: where the checkpoint is, which config it gets, and its
tensors as numpy arrays under PyTorch keys. Each framework then builds the model and copies the arrays
(deberta_torch/pretrained.py, deberta_tf/pretrained.py) under the key plan of deberta_core.weight_names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checkpoint import read_weights, resolve_pretrained_path
from .config import BaseDebertaConfig
from .original import read_original_for
from .weight_names import checkpoint_mlm_layout


@dataclass
class Pretrained:
    """A checkpoint ready to load: its directory, the config to build the model from, and its arrays."""

    directory: Path
    config: BaseDebertaConfig
    state: dict[str, np.ndarray]


def read_pretrained(name_or_path: str | os.PathLike, config_class: type[BaseDebertaConfig], head: str | None,
                    logger, *, config: BaseDebertaConfig | None = None, overrides: dict | None = None,
                    prefer: tuple[str, ...] = ("safetensors", "pytorch", "tf")) -> Pretrained:
    """Find and read a checkpoint for a model of `config_class` carrying `head`.

    A Hugging Face directory (config.json + weights in any format, tried in `prefer` order), or an
    original microsoft/DeBERTa checkpoint in any of its forms (its config read with the original's
    defaults). `config` replaces the directory's config; `overrides` change fields of either
    (`num_labels=3`). A masked-LM head takes the layout the checkpoint holds (`cls.predictions` or
    `lm_predictions`).
    """
    directory = resolve_pretrained_path(name_or_path)
    original = read_original_for(directory, config_class, logger)
    overrides = overrides or {}
    if config is None:
        config = original.config if original is not None else config_class.from_pretrained(directory)
    if overrides:
        config = config.copy(**overrides)
    if not isinstance(config, config_class):
        raise TypeError(f"a {config_class.__name__} is needed, got {type(config).__name__}")
    state = original.state if original is not None else read_weights(directory, config.family, prefer)[1]
    if head == "masked_lm":
        layout = checkpoint_mlm_layout(state)
        if layout is not None and config.legacy != (layout == "legacy"):
            config = config.copy(legacy=(layout == "legacy"))
    return Pretrained(directory, config, state)
