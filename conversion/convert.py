"""Convert a canonical checkpoint into our PyTorch or Keras layout, writing the destination atomically.

The tensors are mapped by name through deberta_core.weight_names (and deberta_core.tf_names for Keras),
so conversion needs no model to be built: every tensor is copied bit for bit, transposed where the
Keras layout asks for it, or cast when a dtype is requested.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from deberta_core.config import CONFIG_NAME
from deberta_core.weight_names import (checkpoint_mlm_layout, match_keys, model_weights, unused_error,
                                       uses_position_table)

from .sources import TOKENIZER_FILES, Checkpoint

HEAD_OF_STEM = {"Model": None, "ForMaskedLM": "masked_lm", "ForSequenceClassification": "sequence_classification",
                "ForTokenClassification": "token_classification", "ForQuestionAnswering": "question_answering",
                "ForMultipleChoice": "multiple_choice"}
STEM_OF_HEAD = {v: k for k, v in HEAD_OF_STEM.items()}


def detect_head(ckpt: Checkpoint, model_class: str | None = None) -> str | None:
    """Which task head the destination carries: `model_class` (e.g. "ForMaskedLM"), else the source
    config's architectures, else the head tensors present."""
    stem = model_class or ckpt.architecture
    if stem is not None:
        stem = stem.removeprefix("TF").removeprefix("DebertaV2").removeprefix("Deberta")
        if stem not in HEAD_OF_STEM:
            raise ValueError(f"unknown model class {model_class!r}; choose one of {sorted(HEAD_OF_STEM)}")
        return HEAD_OF_STEM[stem]
    keys = ckpt.state.keys()
    if checkpoint_mlm_layout(keys):
        return "masked_lm"
    if any(k.startswith("qa_outputs.") for k in keys):
        return "question_answering"
    if any(k.startswith("classifier.") for k in keys):
        return "sequence_classification" if any(k.startswith("pooler.") for k in keys) else "token_classification"
    return None


def class_name(ckpt: Checkpoint, head: str | None, framework: str) -> str:
    prefix = "Deberta" if ckpt.config.family == "v1" else "DebertaV2"
    return ("TF" if framework == "tf" else "") + prefix + STEM_OF_HEAD[head]


def destination_match(ckpt: Checkpoint, head: str | None, config=None):
    """(weight spec, KeyMatch) of the source tensors against the destination class built from `config`
    (default: the checkpoint's; a masked-LM head takes the layout the source holds, set on `config`)."""
    config = ckpt.config if config is None else config
    if head == "masked_lm":
        layout = checkpoint_mlm_layout(ckpt.state)
        if layout is not None:
            config.legacy = layout == "legacy"
    spec = model_weights(config, head)
    return spec, match_keys(ckpt.state.keys(), spec.keys(), uses_position_table=uses_position_table(config, head))


def target_state(ckpt: Checkpoint, head: str | None, strict: bool = True) -> dict[str, np.ndarray]:
    """The tensors the destination class holds, keyed as its state dict, with the drops reported."""
    if head == "multiple_choice" and ckpt.config.family == "v1":
        raise ValueError("DeBERTa v1 has no multiple-choice class (as in the reference)")
    spec, match = destination_match(ckpt, head)
    for key in match.ignored:
        ckpt.report.add("dropped", f"{key} (never used by the model, as in the reference)")
    if match.unexplained:
        hint = (f"the config left out {sorted(ckpt.defaulted)}, read with the original's defaults"
                if ckpt.defaulted else "")
        raise unused_error(match.unexplained, class_name(ckpt, head, "torch"), hint)
    for key, part in match.left_out.items():
        ckpt.report.add("left out", f"{key} ({part}, not part of {STEM_OF_HEAD[head]})")
    for key in match.missing:
        ckpt.report.add("missing", f"{key} (not in the source; the model will initialise it)")
    if strict and match.missing:
        raise ValueError(f"the source lacks tensors the destination needs: {match.missing} "
                         "(pick another --model-class, or pass --allow-missing)")
    out = {}
    for target, source in match.mapping.items():
        value = ckpt.state[source]
        if tuple(value.shape) != spec[target].shape:
            raise ValueError(f"config does not fit the weights: {source} has shape {tuple(value.shape)}, the config "
                             f"implies {spec[target].shape}")
        if source != target:
            ckpt.report.add("renamed", f"{source} -> {target}")
        else:
            ckpt.report.count("copied")
        out[target] = value
    return out


def _cast(state: dict[str, np.ndarray], dtype: str | None) -> dict:
    if dtype is None:
        return state
    if dtype in ("float32", "float16"):
        return {k: v.astype(dtype) if np.issubdtype(v.dtype, np.floating) else v for k, v in state.items()}
    raise ValueError(f"unsupported dtype {dtype!r} for this destination")


def write_torch(ckpt: Checkpoint, head: str | None, state: dict[str, np.ndarray], directory: Path,
                dtype: str | None) -> None:
    import torch
    from safetensors.torch import save_file

    tensors = {}
    for key, value in tqdm(state.items(), desc="writing torch", unit="tensor", leave=False):
        tensor = torch.from_numpy(np.ascontiguousarray(value))
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(getattr(torch, dtype))
        tensors[key] = tensor
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    config = ckpt.config.copy()
    config.extra["architectures"] = [class_name(ckpt, head, "torch")]
    config.extra["torch_dtype"] = dtype or str(next(iter(state.values())).dtype)
    config.save_pretrained(directory)


def write_tf(ckpt: Checkpoint, head: str | None, state: dict[str, np.ndarray], directory: Path,
             dtype: str | None) -> None:
    from deberta_core.tf_names import h5_name, model_scope, tf_weights, to_tf_layout, write_tf_h5

    state = _cast(state, dtype)
    names = tf_weights(ckpt.config, head)
    arrays = {}
    for key, value in tqdm(state.items(), desc="writing tf", unit="tensor", leave=False):
        weight = names[key]
        array = to_tf_layout(value, weight.kind)
        if weight.kind in ("linear", "conv1d"):
            ckpt.report.add("transposed", f"{key} {tuple(value.shape)} -> {weight.name} {tuple(array.shape)}")
        arrays[h5_name(weight.name, ckpt.config.family)] = array
    write_tf_h5(directory / "tf_model.h5", arrays, model_scope=model_scope(class_name(ckpt, head, "tf")))
    config = ckpt.config.copy()
    # The reference TF classes record the PyTorch class name, so both frameworks read the same config.
    config.extra["architectures"] = [class_name(ckpt, head, "torch")]
    config.save_pretrained(directory)


def copy_tokenizer_files(src_dir: Path, dst_dir: Path) -> list[str]:
    copied = []
    for name in TOKENIZER_FILES:
        if (src_dir / name).is_file():
            shutil.copy2(src_dir / name, dst_dir / name)
            copied.append(name)
    return copied


@dataclass
class Converted:
    """Where a conversion wrote, which head it carries, and the tensors it wrote (before any cast)."""

    path: Path
    head: str | None
    state: dict[str, np.ndarray]


def convert(ckpt: Checkpoint, dst: str | os.PathLike, to: str, *, model_class: str | None = None,
            dtype: str | None = None, force: bool = False, allow_missing: bool = False) -> Converted:
    """Write `ckpt` to `dst` for framework `to` ("torch" or "tf").

    Everything is written into a temporary directory beside `dst` and renamed at the end, so an error or
    an interrupt never leaves a half-written destination. An existing `dst` is replaced only with `force`.
    """
    if to not in ("torch", "tf"):
        raise ValueError(f"--to must be 'torch' or 'tf', got {to!r}")
    dst = Path(dst)
    if dst.exists() and not force:
        raise FileExistsError(f"destination {dst} exists; pass --force to replace it")
    head = detect_head(ckpt, model_class)
    state = target_state(ckpt, head, strict=not allow_missing)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        (write_torch if to == "torch" else write_tf)(ckpt, head, state, tmp, dtype)
        copied = copy_tokenizer_files(ckpt.source if ckpt.source.is_dir() else ckpt.source.parent, tmp)
        (tmp / "conversion_report.txt").write_text(
            f"source: {ckpt.source} ({ckpt.layout})\ndestination class: {class_name(ckpt, head, to)}\n"
            f"tokenizer files copied: {copied or 'none'}\n" + ckpt.report.text(), encoding="utf-8")
        if dst.exists():
            old = dst.with_name(f".{dst.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            dst.rename(old)
            tmp.rename(dst)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Converted(dst, head, state)


def config_json(directory: Path) -> dict:
    return json.loads((directory / CONFIG_NAME).read_text(encoding="utf-8"))
