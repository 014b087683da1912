"""Finding weight files in a Hugging Face-style model directory, independent of the framework."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
PT_WEIGHTS = "pytorch_model.bin"
PT_INDEX = "pytorch_model.bin.index.json"
TF_WEIGHTS = "tf_model.h5"


@dataclass
class WeightFiles:
    """The files holding one checkpoint: `format` is "safetensors", "pytorch" or "tf"."""

    format: str
    files: list[Path]


def _shards(index_path: Path) -> list[Path]:
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        weight_map = index["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"corrupt shard index {index_path}: {err}") from None
    names = sorted(set(weight_map.values()))
    files = [index_path.parent / name for name in names]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(f"shard index {index_path.name} names files that are missing: {missing}")
    return files


def find_weight_files(directory: str | os.PathLike, prefer: tuple[str, ...] = ("safetensors", "pytorch", "tf")) -> WeightFiles:
    """Locate the checkpoint in `directory`, trying formats in `prefer` order.

    Looks for model.safetensors (or its sharded index), pytorch_model.bin (or its index), tf_model.h5.
    Raises FileNotFoundError naming what was looked for when none is there.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    for fmt in prefer:
        if fmt == "safetensors":
            if (directory / SAFE_WEIGHTS).exists():
                return WeightFiles("safetensors", [directory / SAFE_WEIGHTS])
            if (directory / SAFE_INDEX).exists():
                return WeightFiles("safetensors", _shards(directory / SAFE_INDEX))
        elif fmt == "pytorch":
            if (directory / PT_WEIGHTS).exists():
                return WeightFiles("pytorch", [directory / PT_WEIGHTS])
            if (directory / PT_INDEX).exists():
                return WeightFiles("pytorch", _shards(directory / PT_INDEX))
        elif fmt == "tf":
            if (directory / TF_WEIGHTS).exists():
                return WeightFiles("tf", [directory / TF_WEIGHTS])
    wanted = {"safetensors": [SAFE_WEIGHTS, SAFE_INDEX], "pytorch": [PT_WEIGHTS, PT_INDEX], "tf": [TF_WEIGHTS]}
    names = [n for fmt in prefer for n in wanted[fmt]]
    raise FileNotFoundError(f"no weights in {directory}: looked for {', '.join(names)}")


def resolve_pretrained_path(name_or_path: str | os.PathLike) -> Path:
    """A local directory as is; otherwise a hub model name fetched with huggingface_hub when installed."""
    path = Path(name_or_path)
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"{path} is a file; from_pretrained expects a model directory")
    text = str(name_or_path)
    if text.startswith(("/", "./", "../", "~")) or text.count("/") > 1 or os.sep != "/" and os.sep in text:
        raise FileNotFoundError(f"no model directory at {text}")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise FileNotFoundError(
            f"{name_or_path!s} is not a local directory, and huggingface_hub is not installed to fetch it"
        ) from None
    return Path(snapshot_download(str(name_or_path),
                                  allow_patterns=["*.json", "*.safetensors", "*.bin", "*.h5", "*.model", "*.txt"]))
