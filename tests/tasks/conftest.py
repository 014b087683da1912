"""Fixtures for the task-layer and pipeline tests: real data, real tokenizers, tiny random models.

The models are random DeBERTa-v3 and v1 heads with the real vocabularies (hidden 32, 2 layers), made
and saved by transformers==4.57.6 (`save_pretrained`) with the real tokenizer files copied next to
them, so our pipelines and the reference pipelines load the same weights and vocabulary.
"""

from __future__ import annotations

import csv
import os
import shutil
from functools import lru_cache

import pytest

from tests.cases import data_path, reference_transformers, variant_config_kwargs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

WNUT_LABELS = ["O", "B-corporation", "I-corporation", "B-creative-work", "I-creative-work", "B-group", "I-group",
               "B-location", "I-location", "B-person", "I-person", "B-product", "I-product"]
NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}
SST_LABELS = {0: "NEGATIVE", 1: "POSITIVE"}
TOKENIZER_FILES = ("spm.model", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json")


SST2_DEV = ("datasets", "sst2", "glue_sst2_dev.tsv")
WNUT_DEV = ("datasets", "wnut17", "emerging.dev.conll")
SQUAD_DEV = ("datasets", "squad-v1.1-dev", "dev-v1.1.json")


@lru_cache(maxsize=None)
def sst2_sentences() -> list[str]:
    with open(data_path(*SST2_DEV), encoding="utf-8") as f:
        return [row["sentence"].strip() for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]


@lru_cache(maxsize=None)
def wnut_dev():
    from deberta_core.tasks import read_conll

    return read_conll(data_path(*WNUT_DEV))


@lru_cache(maxsize=None)
def squad_dev():
    from deberta_core.tasks import read_squad

    return read_squad(data_path(*SQUAD_DEV))


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """The reference pipelines run one sequence per call; on a shared 2-core machine two torch threads
    per call are many times slower than one. Restored after each module."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def reference():
    return reference_transformers()


# ---------------------------------------------------------------------------- tokenizers
@pytest.fixture(scope="session")
def ours_v3():
    from deberta_core.tokenization import DebertaV2TokenizerFast

    return DebertaV2TokenizerFast.from_pretrained(data_path("tokenizers", "deberta-v3"))


@pytest.fixture(scope="session")
def ours_v1():
    from deberta_core.tokenization import DebertaTokenizerFast

    return DebertaTokenizerFast.from_pretrained(data_path("tokenizers", "deberta-v1"))


@pytest.fixture(scope="session")
def ref_tokenizers():
    """family -> the reference fast tokenizer (the pipelines' offsets need a fast one)."""
    transformers = reference()
    return {"v3": transformers.DebertaV2TokenizerFast.from_pretrained(data_path("tokenizers", "deberta-v3")),
            "v1": transformers.DebertaTokenizerFast.from_pretrained(data_path("tokenizers", "deberta-v1"))}


# ---------------------------------------------------------------------------- models
# name -> (family, head, extra config)
MODELS = {
    "v3-mlm": ("v3", "MaskedLM", {}),
    "v3-nli": ("v3", "SequenceClassification", {"id2label": NLI_LABELS}),
    "v3-ner": ("v3", "TokenClassification", {"id2label": dict(enumerate(WNUT_LABELS))}),
    "v3-qa": ("v3", "QuestionAnswering", {}),
    "v1-mlm": ("v1", "MaskedLM", {}),
    "v1-sst": ("v1", "SequenceClassification", {"id2label": SST_LABELS}),
    "v1-ner": ("v1", "TokenClassification", {"id2label": dict(enumerate(WNUT_LABELS))}),
    "v1-qa": ("v1", "QuestionAnswering", {}),
}


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    """name -> a directory with config.json + model.safetensors (saved by transformers) + tokenizer files."""
    transformers = reference()
    import torch

    root = tmp_path_factory.mktemp("task-models")
    vocab = {"v3": 128001, "v1": 50265}
    dirs = {}
    for seed, (name, (family, head, extra)) in enumerate(MODELS.items()):
        variant = "v3_buckets_shared" if family == "v3" else "v1_rel"
        _, kwargs = variant_config_kwargs(variant)
        # A wide initialisation keeps the random models' scores apart (no near-ties to flip).
        kwargs.update(vocab_size=vocab[family], max_position_embeddings=512, initializer_range=0.3)
        prefix = "DebertaV2" if family == "v3" else "Deberta"
        config = getattr(transformers, f"{prefix}Config")(**kwargs, **extra)
        if "id2label" in extra:
            config.label2id = {v: k for k, v in extra["id2label"].items()}
        torch.manual_seed(seed)
        model = getattr(transformers, f"{prefix}For{head}")(config).eval()
        directory = root / name
        model.save_pretrained(directory)
        source = data_path("tokenizers", "deberta-v3" if family == "v3" else "deberta-v1")
        for file in TOKENIZER_FILES:
            if (source / file).is_file():
                shutil.copy(source / file, directory / file)
        dirs[name] = directory
    return dirs


@pytest.fixture(scope="session")
def reference_pipeline(model_dirs, ref_tokenizers):
    """(task, model name) -> the transformers pipeline on that model (built once)."""
    transformers = reference()
    cache = {}

    def get(task: str, name: str):
        if (task, name) not in cache:
            family, head, _ = MODELS[name]
            prefix = "DebertaV2" if family == "v3" else "Deberta"
            model = getattr(transformers, f"{prefix}For{head}").from_pretrained(model_dirs[name]).eval()
            cache[task, name] = transformers.pipeline(task, model=model, tokenizer=ref_tokenizers[family],
                                                      framework="pt", device="cpu")
        return cache[task, name]

    return get


@pytest.fixture(scope="session")
def our_pipeline(model_dirs):
    """(task, model name, framework) -> our pipeline on that model directory (built once)."""
    from deberta_core.pipelines import pipeline

    cache = {}

    def get(task: str, name: str, framework: str = "pt", **kwargs):
        key = (task, name, framework, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = pipeline(task, model=str(model_dirs[name]), framework=framework, **kwargs)
        return cache[key]

    return get


def same_ids(ref_tokenizer, ours_tokenizer, texts):
    """The texts both tokenizers encode to the same ids (the reference fast v3 emits [UNK] for some
    characters ours encodes as bytes; those inputs cannot give the same model outputs)."""
    return [t for t in texts if ref_tokenizer(t)["input_ids"] == ours_tokenizer(t)["input_ids"]]
