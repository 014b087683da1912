"""Finding and reading the weight files of a Hugging Face-style model directory, independent of the
framework: every format is read into numpy arrays under PyTorch state-dict keys and layouts.

  model.safetensors (sharded too)   read with safetensors' numpy API; bfloat16 widened to float32 exactly
                                    (files saved by the reference TF classes, metadata format "tf", hold
                                    TF names and are mapped back)
  pytorch_model.bin (sharded too)   torch.load(weights_only=True); needs torch, and says so
  tf_model.h5                       h5py (deberta_core.tf_names)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


def _bfloat16_as_float32(raw: bytes, shape) -> np.ndarray:
    """bfloat16 is the top half of a float32: shifting its bits up gives the same value exactly."""
    bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
    return bits.view(np.float32).reshape(shape)


def read_safetensors(file: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, metadata) of a .safetensors file; bfloat16 tensors, which numpy cannot hold, come back as
    float32 with the same values (read from the raw bytes: 8-byte header length, JSON header, data)."""
    from safetensors import SafetensorError, safe_open

    arrays, bfloat16 = {}, []
    try:
        with safe_open(str(file), framework="np") as handle:
            metadata = handle.metadata() or {}
            for key in handle.keys():
                try:
                    arrays[key] = handle.get_tensor(key)
                except TypeError:
                    bfloat16.append(key)
        if bfloat16:
            with open(file, "rb") as raw:
                size = int.from_bytes(raw.read(8), "little")
                header = json.loads(raw.read(size))
                for key in bfloat16:
                    begin, end = header[key]["data_offsets"]
                    raw.seek(8 + size + begin)
                    arrays[key] = _bfloat16_as_float32(raw.read(end - begin), header[key]["shape"])
    except (SafetensorError, OSError, json.JSONDecodeError, KeyError, ValueError) as err:
        raise ValueError(f"corrupt checkpoint file {file}: {err}") from None
    return arrays, metadata


def read_torch_pickle(file: str | os.PathLike) -> dict:
    """The dict a pickled PyTorch checkpoint holds (`torch.load(weights_only=True)`: no code runs),
    values as stored (tensors, and whatever else the file has, for the caller to judge)."""
    try:
        import torch
    except ImportError:
        raise ValueError(f"{Path(file).name} is a pickled PyTorch checkpoint and reading it needs torch; "
                         "install torch, or convert it to model.safetensors") from None
    try:
        raw = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged pickle/zip
        raise ValueError(f"corrupt checkpoint file {file}: {err}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"corrupt checkpoint file {file}: expected a dict of tensors, got {type(raw).__name__}")
    return raw


def tensors_to_numpy(raw: dict, where) -> dict[str, np.ndarray]:
    """torch tensors -> numpy (bfloat16 widened to float32 exactly); a non-tensor entry is an error."""
    import torch

    out = {}
    for key, value in raw.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{where}: entry {key!r} is a {type(value).__name__}, not a tensor")
        if value.dtype == torch.bfloat16:
            value = value.float()
        out[key] = value.detach().cpu().numpy()
    return out


def read_weights(directory: str | os.PathLike, family: str,
                 prefer: tuple[str, ...] = ("safetensors", "pytorch", "tf")) -> tuple[str, dict[str, np.ndarray]]:
    """(format, arrays) of the checkpoint in `directory`: PyTorch keys and layouts, whatever the file.

    `prefer` orders the formats tried (see `find_weight_files`); `family` ("v1"/"v2") is needed to map
    TF names back to keys.
    """
    from .tf_names import read_tf_h5, state_dict_from_tf

    found = find_weight_files(directory, prefer=prefer)
    if found.format == "tf":
        try:
            named = read_tf_h5(found.files[0])
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f"corrupt TF checkpoint {found.files[0]}: {err}") from None
        return "tf", state_dict_from_tf(named, family)
    state: dict[str, np.ndarray] = {}
    for file in found.files:
        if found.format == "safetensors":
            part, metadata = read_safetensors(file)
            # transformers' TF classes save safetensors with TF names (metadata format "tf")
            state.update(state_dict_from_tf(part, family) if metadata.get("format") == "tf" else part)
        else:
            state.update(tensors_to_numpy(read_torch_pickle(file), file))
    return found.format, state
