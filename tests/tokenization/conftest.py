"""Data for the tokenizer tests: the repository's real tokenizer files and text (data/), the corpus,
tokenizers. Reference tokenizers come from transformers==4.57.6 (test-only).
"""

from __future__ import annotations

import csv
import json
import os
from functools import lru_cache
from pathlib import Path

import pytest

from .edge_cases import EDGE_CASES

from tests.cases import data_path, reference_transformers


V1_DIR = ("tokenizers", "deberta-v1")
V3_DIR = ("tokenizers", "deberta-v3")


@lru_cache(maxsize=None)
def squad() -> list[dict]:
    """SQuAD v1.1 dev paragraphs: [{"context": str, "qas": [...]}, ...] (2,067 of them)."""
    data = json.loads(data_path("datasets", "squad-v1.1-dev", "dev-v1.1.json").read_text("utf-8"))
    return [p for article in data["data"] for p in article["paragraphs"]]


@lru_cache(maxsize=None)
def corpus() -> dict[str, list[str]]:
    """Real lines by source (SST-2 dev, WikiText-2 valid, SQuAD contexts and questions,
    WNUT-17 dev) plus the hand-written edge cases; about 6,500 lines in all."""
    sst2 = []
    with open(data_path("datasets", "sst2", "glue_sst2_dev.tsv"), encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            sst2.append(row["sentence"])
    # Every second non-empty line of WikiText-2 valid (paragraphs and headings alike).
    wiki = [line.rstrip("\n") for line in
            data_path("datasets", "wikitext-2-valid-test", "valid.txt").read_text("utf-8").split("\n")
            if line.strip()][::2]
    paragraphs = squad()
    contexts = [p["context"] for p in paragraphs]
    questions = [qa["question"] for p in paragraphs for qa in p["qas"]][:1200]
    wnut, words = [], []
    for line in data_path("datasets", "wnut17", "emerging.dev.conll").read_text("utf-8").split("\n"):
        if line.strip():
            words.append(line.split("\t")[0])
        elif words:
            wnut.append(" ".join(words))
            words = []
    return {"sst2": sst2, "wikitext2": wiki, "squad_context": contexts, "squad_question": questions,
            "wnut17": wnut, "edge_cases": list(EDGE_CASES)}


@lru_cache(maxsize=None)
def wnut_words() -> list[list[str]]:
    """WNUT-17 dev sentences as word lists (for is_split_into_words)."""
    sentences, words = [], []
    for line in data_path("datasets", "wnut17", "emerging.dev.conll").read_text("utf-8").split("\n"):
        if line.strip():
            words.append(line.split("\t")[0])
        elif words:
            sentences.append(words)
            words = []
    return sentences


def all_lines() -> list[str]:
    return [line for lines in corpus().values() for line in lines]


@pytest.fixture(scope="session")
def v1_dir() -> Path:
    return data_path(*V1_DIR)


@pytest.fixture(scope="session")
def v3_dir() -> Path:
    return data_path(*V3_DIR)


# ---------------------------------------------------------------------------- tokenizers
# Session-scoped: building them (and the reference ones) once per worker keeps the suite fast.
@pytest.fixture(scope="session")
def ours_v1(v1_dir):
    from deberta_core.tokenization import DebertaTokenizer

    return DebertaTokenizer.from_pretrained(v1_dir)


@pytest.fixture(scope="session")
def ours_v1_fast(v1_dir):
    from deberta_core.tokenization import DebertaTokenizerFast

    return DebertaTokenizerFast.from_pretrained(v1_dir)


@pytest.fixture(scope="session")
def ours_v3(v3_dir):
    from deberta_core.tokenization import DebertaV2Tokenizer

    return DebertaV2Tokenizer.from_pretrained(v3_dir)


@pytest.fixture(scope="session")
def ours_v3_fast(v3_dir):
    from deberta_core.tokenization import DebertaV2TokenizerFast

    return DebertaV2TokenizerFast.from_pretrained(v3_dir)


def _reference():
    return reference_transformers()


@pytest.fixture(scope="session")
def ref_v1(v1_dir):
    return _reference().DebertaTokenizer.from_pretrained(v1_dir)


@pytest.fixture(scope="session")
def ref_v1_fast(v1_dir):
    return _reference().DebertaTokenizerFast.from_pretrained(v1_dir)


@pytest.fixture(scope="session")
def ref_v3(v3_dir):
    return _reference().DebertaV2Tokenizer.from_pretrained(v3_dir)


@pytest.fixture(scope="session")
def ref_v3_fast(v3_dir, tmp_path_factory):
    # Converting spm.model takes the reference several seconds; convert once per test session
    # and let the other xdist workers load the saved result (same tokenizer.json).
    transformers = _reference()
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the folder all workers of this session share
    cache = root / "reference-v3-fast"
    if (cache / "tokenizer.json").is_file():
        return transformers.DebertaV2TokenizerFast.from_pretrained(cache)
    tok = transformers.DebertaV2TokenizerFast.from_pretrained(v3_dir)
    staging = tmp_path_factory.mktemp("reference-v3-fast")
    tok.save_pretrained(staging)
    try:
        staging.rename(cache)
    except OSError:
        pass  # another worker got there first
    return tok


@pytest.fixture(scope="session")
def sentencepiece_v3(v3_dir):
    import sentencepiece

    return sentencepiece.SentencePieceProcessor(model_file=str(v3_dir / "spm.model"))


FAMILIES = ("v1", "v3")


@pytest.fixture(params=FAMILIES)
def family(request):
    """Parametrise a test over both tokenizer families: yields (name, ours slow, ours fast, ref slow)."""
    name = request.param
    if name == "v1":
        return name, request.getfixturevalue("ours_v1"), request.getfixturevalue("ours_v1_fast"), \
            request.getfixturevalue("ref_v1")
    return name, request.getfixturevalue("ours_v3"), request.getfixturevalue("ours_v3_fast"), \
        request.getfixturevalue("ref_v3")


# ---------------------------------------------------------------------------- comparisons
ENCODING_KEYS = ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask")


def mismatches(got, ref, inputs, keys=ENCODING_KEYS, limit: int = 5) -> list[str]:
    """Describe the rows where two BatchEncodings differ (empty list when equal)."""
    out = []
    for key in keys:
        bad = [i for i, (a, b) in enumerate(zip(got[key], ref[key])) if list(a) != list(b)]
        if len(got[key]) != len(ref[key]):
            out.append(f"{key}: {len(got[key])} rows vs {len(ref[key])}")
        out.extend(f"{key} row {i} {inputs[i]!r:.70}: ours {list(got[key][i])[:12]} ref {list(ref[key][i])[:12]}"
                   for i in bad[:limit])
        if len(bad) > limit:
            out.append(f"{key}: {len(bad)} rows differ in all")
    return out
