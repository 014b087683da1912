"""Reading a checkpoint in any supported layout into canonical form: a config and a dict of numpy
arrays keyed by the Hugging Face PyTorch state-dict keys (deberta_core.weight_names), plus a log of every
rename, transpose and drop done on the way.

Layouts:
  hf-torch   config.json + model.safetensors (sharded too) or pytorch_model.bin
  hf-tf      config.json + tf_model.h5 (the reference TF classes' file, or ours)
  original   microsoft/DeBERTa, in any of its on-disk forms (deberta_core.original): the release
             pytorch.model.bin, the cache's pytorch_model.bin + model_config.json, or a state dict with its
             config inside; the config is read with the original's defaults, each defaulted key reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deberta_core.checkpoint import PT_INDEX, PT_WEIGHTS, SAFE_INDEX, SAFE_WEIGHTS, TF_WEIGHTS, read_weights
from deberta_core.config import CONFIG_CLASSES, CONFIG_NAME, BaseDebertaConfig
from deberta_core.io import read_json_object
from deberta_core.original import RELEASE_WEIGHTS, describe_defaults, find_original, read_original_checkpoint
from deberta_core.pipelines.loading import TOKENIZER_FILES


@dataclass
class Report:
    """Plain-language record of what conversion did to each tensor."""

    lines: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, action: str, text: str) -> None:
        self.counts[action] = self.counts.get(action, 0) + 1
        self.lines.append(f"{action:<11} {text}")

    def count(self, action: str) -> None:
        """Count a tensor without a line of its own (e.g. copied unchanged)."""
        self.counts[action] = self.counts.get(action, 0) + 1

    def summary(self) -> str:
        parts = [f"{n} {action}" for action, n in sorted(self.counts.items())]
        return "tensors: " + (", ".join(parts) if parts else "nothing to report")

    def text(self) -> str:
        return "\n".join([self.summary(), *self.lines]) + "\n"


@dataclass
class Checkpoint:
    """A checkpoint in canonical form."""

    config: BaseDebertaConfig
    state: dict[str, np.ndarray]
    layout: str
    source: Path
    architecture: str | None = None  # class name stem from the config, e.g. "ForSequenceClassification"
    report: Report = field(default_factory=Report)
    defaulted: dict = field(default_factory=dict)  # original configs: keys that took the original's default


def detect_layout(src: Path) -> str:
    """Name the layout of `src` (a directory, or an original weights file)."""
    if not src.exists():
        raise FileNotFoundError(f"source {src} does not exist")
    if find_original(src) is not None:
        return "original"
    if src.is_file():
        raise ValueError(f"{src}: not a checkpoint directory or an original pytorch.model.bin")
    names = {p.name for p in src.iterdir()}
    if names & {SAFE_WEIGHTS, SAFE_INDEX, PT_WEIGHTS, PT_INDEX}:
        if CONFIG_NAME not in names:
            raise FileNotFoundError(f"{src} holds weights but no {CONFIG_NAME} (nor an original model_config.json)")
        return "hf-torch"
    if TF_WEIGHTS in names:
        return "hf-tf"
    raise FileNotFoundError(f"no checkpoint in {src}: looked for {SAFE_WEIGHTS}, {PT_WEIGHTS}, {TF_WEIGHTS}, "
                            f"{RELEASE_WEIGHTS}")


def _architecture(config_dict: dict) -> str | None:
    for name in config_dict.get("architectures") or []:
        stem = name.removeprefix("TF").removeprefix("DebertaV2").removeprefix("Deberta")
        if stem in ("Model", "ForMaskedLM", "ForSequenceClassification", "ForTokenClassification",
                    "ForQuestionAnswering", "ForMultipleChoice"):
            return stem
    return None


def read_hf_torch(src: Path) -> Checkpoint:
    config_dict = read_json_object(src / CONFIG_NAME)
    config = _config_from_dict(config_dict, src / CONFIG_NAME)
    _, state = read_weights(src, config.family, prefer=("safetensors", "pytorch"))
    return Checkpoint(config, state, "hf-torch", src, _architecture(config_dict))


def read_hf_tf(src: Path) -> Checkpoint:
    config_dict = read_json_object(src / CONFIG_NAME)
    config = _config_from_dict(config_dict, src / CONFIG_NAME)
    _, state = read_weights(src, config.family, prefer=("tf",))
    ckpt = Checkpoint(config, state, "hf-tf", src, _architecture(config_dict))
    for key, value in state.items():
        if value.ndim >= 2 and not key.endswith("embeddings.weight"):
            ckpt.report.add("transposed", f"{key} {tuple(value.shape)} (from the Keras kernel layout)")
    return ckpt


def _config_from_dict(data: dict, where: Path) -> BaseDebertaConfig:
    model_type = data.get("model_type")
    if model_type not in CONFIG_CLASSES:
        raise ValueError(f"{where}: model_type {model_type!r} is not a DeBERTa type")
    return CONFIG_CLASSES[model_type].from_dict(data)


def read_original(src: Path, config_path: Path | None = None) -> Checkpoint:
    """microsoft/DeBERTa checkpoint in any of its forms, its config read with the original's defaults."""
    found = read_original_checkpoint(src, config_path)
    # Keys stay as stored; renames (gamma/beta, the `deberta.` prefix) happen once, when the destination's
    # keys are matched, so each tensor is reported once.
    ckpt = Checkpoint(found.config, found.state, "original", found.weights.parent,
                      _architecture(found.config.extra), defaulted=found.defaulted)
    for line in describe_defaults(found.defaulted):
        ckpt.report.add("defaulted", line)
    return ckpt


def read_checkpoint(src: str | Path, config_path: str | Path | None = None) -> Checkpoint:
    """Read `src` in whichever layout it is (see the module docstring)."""
    src = Path(src)
    layout = detect_layout(src)
    if layout == "hf-torch":
        return read_hf_torch(src)
    if layout == "hf-tf":
        return read_hf_tf(src)
    return read_original(src, Path(config_path) if config_path else None)
