"""Reading a checkpoint in any supported layout into canonical form: a config and a dict of numpy
arrays keyed by the Hugging Face PyTorch state-dict keys (deberta_core.weight_names), plus a log of every
rename, transpose and drop done on the way.

Layouts:
  hf-torch   config.json + model.safetensors (sharded too) or pytorch_model.bin
  hf-tf      config.json + tf_model.h5 (the reference TF classes' file, or ours)
  original   microsoft/DeBERTa: pytorch.model.bin (+ a config json without model_type); keys may lack the
             `deberta.` prefix or use LayerNorm gamma/beta; carries `lm_predictions` / `mask_predictions`
             heads and an absolute position table the released models never use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deberta_core.checkpoint import PT_WEIGHTS, SAFE_INDEX, SAFE_WEIGHTS, TF_WEIGHTS, PT_INDEX
from deberta_core.config import CONFIG_CLASSES, CONFIG_NAME, BaseDebertaConfig, DebertaConfig, DebertaV2Config

ORIGINAL_WEIGHTS = "pytorch.model.bin"
ORIGINAL_CONFIGS = ("config.json", "model_config.json", "bert_config.json")
TOKENIZER_FILES = ("spm.model", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json", "added_tokens.json", "bpe_encoder.bin")


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


def detect_layout(src: Path) -> str:
    """Name the layout of `src` (a directory, or an original pytorch.model.bin file)."""
    if src.is_file():
        if src.suffix in (".bin", ".pt", ".pth"):
            return "original"
        raise ValueError(f"{src}: not a checkpoint directory or an original pytorch.model.bin")
    if not src.is_dir():
        raise FileNotFoundError(f"source {src} does not exist")
    names = {p.name for p in src.iterdir()}
    if names & {SAFE_WEIGHTS, SAFE_INDEX, PT_WEIGHTS, PT_INDEX}:
        return "hf-torch"
    if TF_WEIGHTS in names:
        return "hf-tf"
    if ORIGINAL_WEIGHTS in names:
        return "original"
    raise FileNotFoundError(f"no checkpoint in {src}: looked for {SAFE_WEIGHTS}, {PT_WEIGHTS}, {TF_WEIGHTS}, "
                            f"{ORIGINAL_WEIGHTS}")


def _to_numpy(tensors) -> dict[str, np.ndarray]:
    import torch

    out = {}
    for key, value in tensors.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor")
        if value.dtype == torch.bfloat16:  # numpy has no bfloat16: keep its exact values in float32
            value = value.float()
        out[key] = value.detach().cpu().numpy()
    return out


def _read_torch_files(directory: Path) -> dict[str, np.ndarray]:
    from deberta_torch.pretrained import read_state_dict

    return _to_numpy(read_state_dict(directory))


def _family_from_keys(keys) -> str | None:
    keys = list(keys)
    if any(".attention.self.in_proj." in k for k in keys):
        return "v1"
    if any(".attention.self.query_proj." in k for k in keys):
        return "v2"
    return None


def _architecture(config_dict: dict) -> str | None:
    for name in config_dict.get("architectures") or []:
        stem = name.removeprefix("TF").removeprefix("DebertaV2").removeprefix("Deberta")
        if stem in ("Model", "ForMaskedLM", "ForSequenceClassification", "ForTokenClassification",
                    "ForQuestionAnswering", "ForMultipleChoice"):
            return stem
    return None


def _load_config_dict(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object")
    return data


def read_hf_torch(src: Path) -> Checkpoint:
    config_dict = _load_config_dict(src / CONFIG_NAME)
    config = _config_from_dict(config_dict, None, src / CONFIG_NAME)
    return Checkpoint(config, _read_torch_files(src), "hf-torch", src, _architecture(config_dict))


def read_hf_tf(src: Path) -> Checkpoint:
    from deberta_core.tf_names import read_tf_h5, state_dict_from_tf

    config_dict = _load_config_dict(src / CONFIG_NAME)
    config = _config_from_dict(config_dict, None, src / CONFIG_NAME)
    try:
        named = read_tf_h5(src / TF_WEIGHTS)
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"corrupt TF checkpoint {src / TF_WEIGHTS}: {err}") from None
    state = state_dict_from_tf(named, config.family)
    ckpt = Checkpoint(config, state, "hf-tf", src, _architecture(config_dict))
    for key, value in state.items():
        if value.ndim >= 2 and not key.endswith("embeddings.weight"):
            ckpt.report.add("transposed", f"{key} {tuple(value.shape)} (from the Keras kernel layout)")
    return ckpt


def _config_from_dict(data: dict, family: str | None, where: Path) -> BaseDebertaConfig:
    model_type = data.get("model_type")
    if model_type is None:
        if family is None:
            raise ValueError(f"{where}: no model_type and the weights do not say whether this is DeBERTa v1 or v2")
        cls = DebertaConfig if family == "v1" else DebertaV2Config
    elif model_type in CONFIG_CLASSES:
        cls = CONFIG_CLASSES[model_type]
    else:
        raise ValueError(f"{where}: model_type {model_type!r} is not a DeBERTa type")
    data = {k: v for k, v in data.items() if k != "pooling"}  # original-only; same as the pooler_* defaults
    return cls.from_dict({**data, "model_type": cls.model_type})


def read_original(src: Path, config_path: Path | None = None) -> Checkpoint:
    """microsoft/DeBERTa checkpoint: the weights file, and a config json beside it (or `config_path`)."""
    import torch

    weights = src if src.is_file() else src / ORIGINAL_WEIGHTS
    directory = weights.parent
    if config_path is None:
        config_path = next((directory / n for n in ORIGINAL_CONFIGS if (directory / n).exists()), None)
        if config_path is None:
            raise FileNotFoundError(f"no config beside {weights}: looked for {', '.join(ORIGINAL_CONFIGS)} "
                                    "(pass --config)")
    try:
        raw = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged pickle/zip
        raise ValueError(f"corrupt checkpoint file {weights}: {err}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"corrupt checkpoint file {weights}: expected a dict of tensors")
    # Keys stay as stored; renames (gamma/beta, the `deberta.` prefix) happen once, when the destination's
    # keys are matched, so each tensor is reported once.
    state = _to_numpy(raw)
    family = _family_from_keys(state)
    config_dict = _load_config_dict(config_path)
    config = _config_from_dict(config_dict, family, config_path)
    if family is not None and family != config.family:
        raise ValueError(f"{config_path} describes DeBERTa {config.family} but the weights are {family}")
    return Checkpoint(config, state, "original", directory, _architecture(config_dict))


def read_checkpoint(src: str | Path, config_path: str | Path | None = None) -> Checkpoint:
    """Read `src` in whichever layout it is (see the module docstring)."""
    src = Path(src)
    layout = detect_layout(src)
    if layout == "hf-torch":
        return read_hf_torch(src)
    if layout == "hf-tf":
        return read_hf_tf(src)
    return read_original(src, Path(config_path) if config_path else None)
