"""Find the pieces a pipeline needs: the framework runner, the model class, the tokenizer.

The runner (deberta_torch.runner / deberta_tf.runner) is the only framework-specific part; it is
imported here on demand, so deberta_core itself never imports torch or keras.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

from ..config import load_config

# The files a tokenizer directory may hold (copied beside a trained or converted checkpoint).
TOKENIZER_FILES = ("spm.model", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json", "added_tokens.json", "bpe_encoder.bin")

FRAMEWORKS = {"pt": "deberta_torch", "tf": "deberta_tf"}
FAMILY_PREFIX = {"deberta": "Deberta", "deberta-v2": "DebertaV2"}
HEAD_SUFFIX = {
    "base": "Model",
    "masked_lm": "ForMaskedLM",
    "sequence_classification": "ForSequenceClassification",
    "token_classification": "ForTokenClassification",
    "question_answering": "ForQuestionAnswering",
}


def _check_framework(framework) -> str:
    aliases = {"pt": "pt", "torch": "pt", "pytorch": "pt", "tf": "tf", "keras": "tf", "tensorflow": "tf"}
    if framework not in aliases:
        raise ValueError(f"framework must be 'pt' or 'tf', got {framework!r}")
    return aliases[framework]


def framework_of(model) -> str | None:
    """'pt' for a torch.nn.Module, 'tf' for a keras.Model (by class ancestry; imports nothing)."""
    for cls in type(model).__mro__:
        module = cls.__module__ or ""
        if module.startswith("torch.") or module == "torch":
            return "pt"
        if module.startswith(("keras.", "keras", "tf_keras", "tensorflow")):
            return "tf"
    return None


def model_class(config, head: str, framework: str):
    """The class for ``head`` in ``framework`` and the config's family (model_type)."""
    prefix = FAMILY_PREFIX.get(config.model_type)
    if prefix is None:
        raise ValueError(f"model_type {config.model_type!r} is not a DeBERTa type ({sorted(FAMILY_PREFIX)})")
    module = importlib.import_module(FRAMEWORKS[framework])
    return getattr(module, ("TF" if framework == "tf" else "") + prefix + HEAD_SUFFIX[head])


def load_runner(model, head: str, framework: str | None, device=None):
    """A runner for ``model`` (a checkpoint directory or a model object) and the framework name.

    A directory is loaded with the framework's class for ``head`` (family from config.json's
    model_type); a model object must be a torch or Keras model whose class name says it has that head.
    """
    if isinstance(model, (str, os.PathLike)):
        framework = _check_framework("pt" if framework is None else framework)
        directory = Path(model)
        if not directory.is_dir():
            raise ValueError(f"model {str(model)!r} is not a directory (expected a checkpoint directory with "
                             "config.json and weights, or a model object)")
        config = load_config(directory)
        model = model_class(config, head, framework).from_pretrained(directory)
    else:
        found = framework_of(model)
        if found is None:
            raise ValueError(f"model must be a checkpoint directory, a torch.nn.Module or a keras.Model; got "
                             f"{type(model).__name__}")
        if framework is not None and _check_framework(framework) != found:
            raise ValueError(f"framework={framework!r} but the model is a {'PyTorch' if found == 'pt' else 'Keras'} "
                             "model")
        framework = found
        if not type(model).__name__.endswith(HEAD_SUFFIX[head]):
            raise ValueError(f"this task needs a ...{HEAD_SUFFIX[head]} model, got {type(model).__name__}")
    runner = importlib.import_module(f"{FRAMEWORKS[framework]}.runner").Runner
    return runner(model, device=device), framework


def load_tokenizer(directory):
    """The fast tokenizer saved in ``directory`` (spm.model: v2/v3; vocab.json + merges.txt: v1)."""
    from ..tokenization import DebertaTokenizerFast, DebertaV2TokenizerFast

    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"tokenizer {str(directory)!r} is not a directory")
    if (directory / "spm.model").is_file():
        return DebertaV2TokenizerFast.from_pretrained(directory)
    if (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file():
        return DebertaTokenizerFast.from_pretrained(directory)
    tokenizer_json = directory / "tokenizer.json"
    if tokenizer_json.is_file():
        kind = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("model", {}).get("type")
        if kind == "Unigram":
            return DebertaV2TokenizerFast.from_pretrained(directory)
        if kind == "BPE":
            return DebertaTokenizerFast.from_pretrained(directory)
    raise ValueError(f"no DeBERTa tokenizer files in {directory} (spm.model, vocab.json + merges.txt, or "
                     "tokenizer.json); pass tokenizer=")
