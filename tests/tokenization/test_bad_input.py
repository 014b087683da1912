"""Bad input gives a clear error, raised before any work is done."""

import shutil

import pytest

from deberta_core.tokenization import DebertaTokenizer, DebertaTokenizerFast, DebertaV2Tokenizer, DebertaV2TokenizerFast
from deberta_core.tokenization.files import VocabularyError
from deberta_core.tokenization.spm import SpmModelError

V1_CLASSES = [DebertaTokenizer, DebertaTokenizerFast]
V3_CLASSES = [DebertaV2Tokenizer, DebertaV2TokenizerFast]


@pytest.fixture(params=["slow", "fast"])
def tokenizer(request, family):
    name, slow, fast, _ = family
    return slow if request.param == "slow" else fast


@pytest.mark.parametrize("bad", [
    123, None, 4.5, b"bytes", {"text": "x"}, [1, 2, 3], ["ok", 3], [["three", "words", "here"]], [[1, 2]], [None],
])
def test_non_string_input(tokenizer, bad):
    with pytest.raises(ValueError, match=r"text input must be of type `str`|no input"):
        tokenizer(bad)


def test_non_string_pair_and_encode(tokenizer):
    with pytest.raises(ValueError, match=r"text input must be of type `str`"):
        tokenizer("fine", 42)
    with pytest.raises(ValueError, match=r"text input must be of type `str`"):
        tokenizer.encode(["a", "batch"])
    with pytest.raises(ValueError, match=r"text input must be of type `str`"):
        tokenizer.tokenize(3.14)
    with pytest.raises(ValueError, match=r"text has 2 examples but text_pair has 1"):
        tokenizer(["a", "b"], ["c"])


def test_max_length_smaller_than_special_tokens(tokenizer):
    with pytest.raises(ValueError, match=r"max_length=1 is smaller than the 2 special tokens"):
        tokenizer("Hello world", truncation=True, max_length=1)
    with pytest.raises(ValueError, match=r"max_length=2 is smaller than the 3 special tokens"):
        tokenizer("Hello", "world", truncation="only_second", max_length=2)


def test_sequences_too_short_to_truncate(tokenizer):
    long = "word " * 50
    with pytest.raises(ValueError, match=r"the second sequence has only"):
        tokenizer(long, "short", truncation="only_second", max_length=10)
    with pytest.raises(ValueError, match=r"the first sequence has only"):
        tokenizer("short", long, truncation="only_first", max_length=10)
    with pytest.raises(ValueError, match=r"needs a second sequence"):
        tokenizer(long, truncation="only_second", max_length=10)


def test_overflow_arguments(tokenizer):
    # max_length 10 leaves 8 tokens per window after [CLS] and [SEP]: a stride of 8 cannot advance.
    with pytest.raises(ValueError, match=r"stride=8 must be smaller than the 8 tokens left for the first"):
        tokenizer("word " * 40, truncation=True, max_length=10, stride=8, return_overflowing_tokens=True)
    with pytest.raises(ValueError, match=r"needs truncation='only_first' or 'only_second'"):
        tokenizer("a", "b", truncation=True, max_length=10, return_overflowing_tokens=True)
    with pytest.raises(ValueError, match=r"stride must be a non-negative integer"):
        tokenizer("a", stride=-1)


@pytest.mark.parametrize("kind", ["jax", "torch", "PT", 1])
def test_unknown_return_tensors(tokenizer, kind):
    with pytest.raises(ValueError, match=r"return_tensors must be one of 'pt', 'tf', 'np' or None"):
        tokenizer("Hello", return_tensors=kind)
    with pytest.raises(ValueError, match=r"return_tensors must be one of"):
        tokenizer.pad({"input_ids": [[1, 2]]}, return_tensors=kind)


def test_ragged_tensors(tokenizer):
    with pytest.raises(ValueError, match=r"rows have different lengths .* pass padding=True"):
        tokenizer(["short", "a much longer sentence here"], return_tensors="np")


@pytest.mark.parametrize("options, message", [
    (dict(padding="sideways"), r"padding must be True, False, 'longest', 'max_length'"),
    (dict(truncation="middle"), r"truncation must be True, False or one of"),
    (dict(max_length=-3), r"max_length must be a non-negative integer"),
    (dict(pad_to_multiple_of=0, padding=True), r"pad_to_multiple_of must be a positive integer"),
    (dict(padding="max_length", truncation=True, max_length=30, pad_to_multiple_of=8),
     r"max_length \(30\) is not a multiple of pad_to_multiple_of \(8\)"),
    (dict(padding_side="middle"), r"padding_side must be 'right' or 'left'"),
    (dict(text_target="label"), r"text_target is for sequence-to-sequence models"),
])
def test_bad_options(tokenizer, options, message):
    with pytest.raises(ValueError, match=message):
        tokenizer("Hello world", **options)


def test_fast_only_features_on_slow(family):
    name, slow, fast, _ = family
    with pytest.raises(NotImplementedError, match=r"return_offsets_mapping is only available from the fast"):
        slow("Hello", return_offsets_mapping=True)
    with pytest.raises(ValueError, match=r"only available from fast tokenizers"):
        slow("Hello").word_ids()
    assert fast("Hello").word_ids() == [None, 0, None]


def test_v1_out_of_range_id(ours_v1, ours_v1_fast):
    for tok in (ours_v1, ours_v1_fast):
        with pytest.raises(IndexError, match=r"token id 50265 is outside the vocabulary \(0..50264\)"):
            tok.decode([1, 50265])


# ---------------------------------------------------------------------------- files
@pytest.fixture
def v1_copy(v1_dir, tmp_path):
    target = tmp_path / "v1"
    shutil.copytree(v1_dir, target)
    return target


@pytest.fixture
def v3_copy(v3_dir, tmp_path):
    target = tmp_path / "v3"
    shutil.copytree(v3_dir, target)
    return target


@pytest.mark.parametrize("cls", V1_CLASSES + V3_CLASSES)
def test_missing_folder(cls, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"tokenizer folder not found: .*nowhere .*local folders only"):
        cls.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"local folders only"):
        cls.from_pretrained("microsoft/deberta-v3-base")


@pytest.mark.parametrize("cls", V1_CLASSES)
@pytest.mark.parametrize("missing, message", [("vocab.json", r"vocabulary file vocab.json not found"),
                                              ("merges.txt", r"merges file merges.txt not found")])
def test_missing_v1_vocabulary(cls, missing, message, v1_copy):
    (v1_copy / missing).unlink()
    with pytest.raises(FileNotFoundError, match=message):
        cls.from_pretrained(v1_copy)


@pytest.mark.parametrize("cls", V3_CLASSES)
def test_missing_v3_vocabulary(cls, v3_copy):
    (v3_copy / "spm.model").unlink()
    with pytest.raises(FileNotFoundError, match=r"SentencePiece model file not found: .*spm.model"):
        cls.from_pretrained(v3_copy)


@pytest.mark.parametrize("cls", V1_CLASSES)
@pytest.mark.parametrize("file, content, message", [
    ("vocab.json", '{"a": 0, "b": ', r"vocab.json is not valid JSON"),
    ("vocab.json", '["a", "b"]', r"must be a non-empty JSON object mapping tokens to ids"),
    ("vocab.json", '{"a": "zero"}', r"id of 'a' must be a non-negative integer"),
    ("vocab.json", '{"a": 0, "b": 0}', r"several tokens share one id"),
    ("merges.txt", "#version: 0.2\nĠ t\nthree parts here\n", r"merges.txt line 3: expected two symbols"),
    ("merges.txt", "#version: 0.2\nĠ t\nzz qq\n", r"merges.txt line 3: merge 'zz qq' uses symbols missing"),
])
def test_corrupt_v1_vocabulary(cls, file, content, message, v1_copy):
    (v1_copy / file).write_text(content, encoding="utf-8")
    with pytest.raises(VocabularyError, match=message):
        cls.from_pretrained(v1_copy)


@pytest.mark.parametrize("cls", V3_CLASSES)
@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_v3_vocabulary(cls, damage, v3_copy):
    path = v3_copy / "spm.model"
    data = path.read_bytes()
    path.write_bytes({"garbage": b"\x0f\xff\xff\xffnot a model" * 10, "truncated": data[:1000],
                      "empty": b""}[damage])
    with pytest.raises(SpmModelError, match=r"spm.model is not a valid SentencePiece model"):
        cls.from_pretrained(v3_copy)


@pytest.mark.parametrize("cls", V1_CLASSES + V3_CLASSES)
def test_corrupt_config(cls, v1_copy, v3_copy):
    folder = v1_copy if cls in V1_CLASSES else v3_copy
    (folder / "tokenizer_config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(VocabularyError, match=r"tokenizer config .*tokenizer_config.json is not valid JSON"):
        cls.from_pretrained(folder)


def test_fast_without_any_vocabulary():
    with pytest.raises(ValueError, match=r"needs vocab_file and merges_file, or tokenizer_file"):
        DebertaTokenizerFast()
    with pytest.raises(ValueError, match=r"needs vocab_file \(spm.model\) or tokenizer_file"):
        DebertaV2TokenizerFast()
