"""The call API users know from transformers, checked against the reference tokenizers.

Slow ours vs slow reference for ids, special-token helpers and vocabulary; fast ours vs fast
reference for the fast-only outputs (overflow windows, word ids), restricted to inputs where
the reference fast tokenizer agrees with the reference slow one.
"""

import subprocess
import sys

import numpy as np
import pytest

from deberta_core.tokenization import BatchEncoding

from .conftest import EDGE_CASES, corpus, mismatches, squad, wnut_words


@pytest.fixture
def fast_family(request, family):
    name = family[0]
    ref_fast = request.getfixturevalue("ref_v1_fast" if name == "v1" else "ref_v3_fast")
    return (*family, ref_fast)


def test_special_token_attributes_match_reference(family):
    name, slow, fast, ref = family
    for tok in (slow, fast):
        for role in ("bos", "eos", "unk", "sep", "pad", "cls", "mask"):
            assert getattr(tok, f"{role}_token") == getattr(ref, f"{role}_token")
            assert getattr(tok, f"{role}_token_id") == getattr(ref, f"{role}_token_id")
        assert tok.all_special_tokens == ref.all_special_tokens
        assert tok.all_special_ids == ref.all_special_ids
        assert tok.special_tokens_map == ref.special_tokens_map
        assert len(tok) == len(ref) and tok.vocab_size == ref.vocab_size
        assert tok.get_vocab() == ref.get_vocab()
        assert tok.model_input_names == ref.model_input_names


def test_mask_token_ids(family):
    name, slow, fast, ref = family
    expected = 50264 if name == "v1" else 128000
    for tok in (slow, fast):
        assert tok.mask_token_id == expected == ref.mask_token_id
        assert tok.convert_tokens_to_ids("[MASK]") == expected
        assert tok.convert_ids_to_tokens(expected) == "[MASK]"


def test_mask_absorbs_the_space_before_it_in_v1_only(family):
    name, slow, fast, ref = family
    texts = ["a [MASK] b", "a[MASK]b", "a  [MASK]", "\t[MASK]", "[MASK] b", "a [MASK][MASK] b"]
    for tok in (slow, fast):
        assert [tok.tokenize(t) for t in texts] == [ref.tokenize(t) for t in texts]
        assert tok.added_tokens_decoder[tok.mask_token_id].lstrip == (name == "v1")
    if name == "v1":
        assert slow.tokenize("a [MASK]") == ["a", "[MASK]"]  # no "Ġ" token left before it


def test_helpers_match_reference(family):
    name, slow, fast, ref = family
    a, b = slow.encode("Hello world", add_special_tokens=False), slow.encode("How are you?", add_special_tokens=False)
    for tok in (slow, fast):
        assert tok.build_inputs_with_special_tokens(a) == ref.build_inputs_with_special_tokens(a)
        assert tok.build_inputs_with_special_tokens(a, b) == ref.build_inputs_with_special_tokens(a, b)
        assert tok.get_special_tokens_mask(a) == ref.get_special_tokens_mask(a)
        assert tok.get_special_tokens_mask(a, b) == ref.get_special_tokens_mask(a, b)
        full = ref.build_inputs_with_special_tokens(a + [ref.mask_token_id], b)
        assert tok.get_special_tokens_mask(full, already_has_special_tokens=True) == \
            ref.get_special_tokens_mask(full, already_has_special_tokens=True)
        assert tok.create_token_type_ids_from_sequences(a) == ref.create_token_type_ids_from_sequences(a)
        assert tok.create_token_type_ids_from_sequences(a, b) == ref.create_token_type_ids_from_sequences(a, b)
        assert tok.num_special_tokens_to_add() == ref.num_special_tokens_to_add()
        assert tok.num_special_tokens_to_add(pair=True) == ref.num_special_tokens_to_add(pair=True)


def test_encode_decode_and_conversions_match_reference(family):
    name, slow, fast, ref = family
    texts = EDGE_CASES[20:60] + corpus()["squad_question"][:50]
    for tok in (slow, fast):
        for text in texts:
            ids = ref.encode(text)
            assert tok.encode(text) == ids
            assert tok.encode(text, "second text") == ref.encode(text, "second text")
            tokens = ref.convert_ids_to_tokens(ids)
            assert tok.convert_ids_to_tokens(ids) == tokens
            assert tok.convert_ids_to_tokens(ids, skip_special_tokens=True) == \
                ref.convert_ids_to_tokens(ids, skip_special_tokens=True)
            assert tok.convert_tokens_to_ids(tokens) == ids
            assert tok.decode(ids) == ref.decode(ids)
            assert tok.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True)
            assert tok.decode(ids, clean_up_tokenization_spaces=not tok.clean_up_tokenization_spaces) == \
                ref.decode(ids, clean_up_tokenization_spaces=not tok.clean_up_tokenization_spaces)
        unknown = "certainly-not-a-token-§"
        assert tok.convert_tokens_to_ids(unknown) == ref.convert_tokens_to_ids(unknown) == ref.unk_token_id
        assert tok.batch_decode(np.array([ref.encode("Hello world")])) == ref.batch_decode([ref.encode("Hello world")])


@pytest.mark.parametrize("kind", ["pt", "np", "tf"])
def test_return_tensors(kind, ours_v1, ours_v1_fast, ours_v3, ours_v3_fast, ref_v1, ref_v3):
    # One test per framework (not per family) so that each worker imports TensorFlow once.
    texts = ["Hello world", "A somewhat longer sentence, with punctuation."]
    module = pytest.importorskip({"pt": "torch", "np": "numpy", "tf": "tensorflow"}[kind])
    for tok, ref in ((ours_v1, ref_v1), (ours_v1_fast, ref_v1), (ours_v3, ref_v3), (ours_v3_fast, ref_v3)):
        batch = tok(texts, padding=True, return_tensors=kind)
        expected = ref(texts, padding=True)
        for key in ("input_ids", "token_type_ids", "attention_mask"):
            value = batch[key]
            assert tuple(value.shape) == (2, len(expected[key][0]))
            assert np.asarray(value).tolist() == expected[key]
        single = tok("Hello world", return_tensors=kind)
        assert tuple(single["input_ids"].shape) == (1, len(ref("Hello world")["input_ids"]))
        assert tok.encode("Hello world", return_tensors=kind).shape[0] == 1
        if kind == "pt":
            assert isinstance(batch["input_ids"], module.Tensor) and batch["input_ids"].dtype == module.int64
            assert batch.to("cpu") is batch
        elif kind == "np":
            assert isinstance(batch["input_ids"], np.ndarray)
        else:
            assert isinstance(batch["input_ids"], module.Tensor)


def test_frameworks_are_imported_only_when_asked():
    code = (
        "import sys\n"
        "from deberta_core.tokenization import DebertaTokenizerFast\n"
        f"tok = DebertaTokenizerFast.from_pretrained({str(_v1())!r})\n"
        "tok(['a b', 'c'], padding=True, return_tensors='np')\n"
        "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules, 'imported too early'\n"
        "tok(['a b', 'c'], padding=True, return_tensors='pt')\n"
        "assert 'torch' in sys.modules and 'tensorflow' not in sys.modules\n"
        "assert 'transformers' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def _v1():
    from .conftest import V1_DIR, data_path

    return data_path(*V1_DIR)


def test_batch_encoding_behaves_like_a_dict(family):
    name, slow, fast, ref = family
    enc = fast(["Hello world", "Bye"], padding=True, return_length=True, return_special_tokens_mask=True)
    assert isinstance(enc, BatchEncoding) and isinstance(enc, dict)
    assert enc.input_ids == enc["input_ids"] and enc.is_fast and not slow("x").is_fast
    assert enc["length"] == [len(ref.encode("Hello world")), len(ref.encode("Bye"))]
    assert enc["special_tokens_mask"] == ref(["Hello world", "Bye"], padding=True,
                                             return_special_tokens_mask=True)["special_tokens_mask"]
    assert set(enc.keys()) >= {"input_ids", "token_type_ids", "attention_mask"}
    with pytest.raises(AttributeError):
        _ = enc.not_a_key


def test_pad_matches_reference(family):
    # The way DataCollatorWithPadding calls it: a list of dicts of different lengths.
    name, slow, fast, ref = family
    texts = corpus()["sst2"][:16]
    features = [dict(ref(t), label=i % 2) for i, t in enumerate(texts)]
    expected = ref.pad(features, padding=True, pad_to_multiple_of=8)
    for tok in (slow, fast):
        got = tok.pad(features, padding=True, pad_to_multiple_of=8)
        for key in ("input_ids", "token_type_ids", "attention_mask", "label"):
            assert got[key] == expected[key]
        tensors = tok.pad(features, padding="max_length", max_length=96, return_tensors="np")
        assert tensors["input_ids"].shape == (16, 96)


def test_truncation_defaults_to_model_max_length(family):
    name, slow, fast, _ = family
    long_text = " ".join(corpus()["squad_context"][:15])
    for tok in (slow, fast):
        assert tok.model_max_length == 512
        assert len(tok(long_text, truncation=True)["input_ids"]) == 512
        assert len(tok(long_text, padding="max_length", truncation=True)["input_ids"]) == 512
        assert len(tok("short", padding="max_length")["input_ids"]) == 512
        assert len(tok(long_text)["input_ids"]) > 512  # no truncation unless asked, as the reference


def _agreeing_pairs(ref, ref_fast, count):
    """SQuAD (question, context) pairs on which the reference fast tokenizer is right."""
    pairs = [(qa["question"], p["context"]) for p in squad()[:400] for qa in p["qas"][:1]][:count]
    slow_ids = ref([q for q, _ in pairs], [c for _, c in pairs])["input_ids"]
    fast_ids = ref_fast([q for q, _ in pairs], [c for _, c in pairs])["input_ids"]
    return [pair for pair, a, b in zip(pairs, slow_ids, fast_ids) if a == b]


def test_question_answering_windows_match_reference_fast(fast_family):
    name, slow, fast, ref, ref_fast = fast_family
    pairs = _agreeing_pairs(ref, ref_fast, 300)
    assert len(pairs) > 250
    questions, contexts = [q for q, _ in pairs], [c for _, c in pairs]
    options = dict(truncation="only_second", max_length=128, stride=32, return_overflowing_tokens=True,
                   padding="max_length", return_offsets_mapping=True)
    expected = ref_fast(questions, contexts, **options)
    got = fast(questions, contexts, **options)
    assert got["overflow_to_sample_mapping"] == expected["overflow_to_sample_mapping"]
    assert len(set(got["overflow_to_sample_mapping"])) < len(got["input_ids"])  # windows happened
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert got[key] == expected[key], key
    for row in range(len(got["input_ids"])):
        assert got.sequence_ids(row) == expected.sequence_ids(row)
    # The slow tokenizer builds the same windows (shared packing code).
    slow_rows = slow(questions, contexts, **{k: v for k, v in options.items() if k != "return_offsets_mapping"})
    assert slow_rows["input_ids"] == got["input_ids"]


def test_word_ids_match_reference_fast(fast_family):
    name, slow, fast, ref, ref_fast = fast_family
    texts = corpus()["wnut17"][:300] + corpus()["sst2"][:100] + [t for t in EDGE_CASES if "[" not in t]
    ref_ids = ref(texts)["input_ids"]
    expected = ref_fast(texts)
    got = fast(texts)
    checked = 0
    for i, ids in enumerate(ref_ids):
        if expected["input_ids"][i] != ids:
            continue  # the reference fast tokenizer is wrong on this line (NFKC, bytes)
        assert got.word_ids(i) == expected.word_ids(i), texts[i]
        checked += 1
    assert checked > 350
    # Words of pre-split input are the given words.
    words = ["Hello", "wonderful", "world", "!"]
    enc = fast(words, is_split_into_words=True)
    assert [w for w in enc.word_ids() if w is not None] == sorted(w for w in enc.word_ids() if w is not None)
    assert set(w for w in enc.word_ids() if w is not None) == {0, 1, 2, 3}


def test_mappings_between_characters_tokens_and_words(fast_family):
    name, slow, fast, ref, ref_fast = fast_family
    text = "The quick brown fox jumps over the lazy dog."
    enc, expected = fast(text, "Second sentence."), ref_fast(text, "Second sentence.")
    for token in range(len(enc["input_ids"])):
        assert enc.token_to_word(token) == expected.token_to_word(token)
        assert enc.token_to_sequence(token) == expected.token_to_sequence(token)
    for char in range(len(text)):
        if text[char] == " ":
            # Our offsets leave out the space in front of a word, so a space maps to no token;
            # the reference counts it into the next word's token (#14418).
            assert enc.char_to_token(char) is None
        else:
            assert enc.char_to_token(char) == expected.char_to_token(char), char
    assert enc.word_to_tokens(3) == tuple(expected.word_to_tokens(3))
    assert enc.tokens() == expected.tokens()


def test_single_example_split_into_words(family):
    name, slow, fast, ref = family
    words = ["Split", "into", "words", ",", "one", "example"]
    for tok in (slow, fast):
        assert tok(words, is_split_into_words=True)["input_ids"] == ref(words, is_split_into_words=True)["input_ids"]
        assert tok(words, words[::-1], is_split_into_words=True)["input_ids"] == \
            ref(words, words[::-1], is_split_into_words=True)["input_ids"]


def test_split_special_tokens_option(family):
    name, slow, fast, ref = family
    text = "the [MASK] token"
    for tok in (slow, fast):
        assert tok(text, split_special_tokens=True)["input_ids"] == ref(text, split_special_tokens=True)["input_ids"]
        assert tok.mask_token_id not in tok(text, split_special_tokens=True)["input_ids"]


def test_pad_accepts_tensors(ours_v3_fast, ref_v3):
    torch = pytest.importorskip("torch")
    features = [{"input_ids": torch.tensor(ref_v3(t)["input_ids"])} for t in ("a b c", "a much longer text here")]
    padded = ours_v3_fast.pad(features, return_tensors="pt")
    assert padded["input_ids"].tolist() == ref_v3.pad(features, return_tensors="pt")["input_ids"].tolist()
    assert padded["attention_mask"].tolist() == ref_v3.pad(features, return_tensors="pt")["attention_mask"].tolist()


@pytest.mark.parametrize("options", [
    dict(padding=True, truncation=True, max_length=48),
    dict(padding="max_length", truncation="longest_first", max_length=40),
    dict(padding=True, truncation="only_second", max_length=64, pad_to_multiple_of=8),
    dict(padding="longest", pad_to_multiple_of=16),
    dict(truncation=True, max_length=33, add_special_tokens=False),
    dict(max_length=20),  # max_length alone switches truncation on (reference behaviour)
])
def test_truncation_and_padding_match_reference_slow(options, family):
    name, slow, fast, ref_tok = family
    sources = corpus()
    questions, contexts = sources["squad_question"][:150], sources["squad_context"][:150]
    ref = ref_tok(questions, contexts, return_special_tokens_mask=True, **options)
    for tok in (slow, fast):
        got = tok(questions, contexts, return_special_tokens_mask=True, **options)
        assert not mismatches(got, ref, questions), "\n".join(mismatches(got, ref, questions))


@pytest.mark.parametrize("side", ["left", "right"])
def test_sides_match_reference_slow(side, family, request):
    name, _, fast, ref_tok = family
    directory = request.getfixturevalue(f"{name}_dir")
    sources = corpus()
    texts = sources["sst2"][:100] + sources["wnut17"][:100]
    ours = type(fast).from_pretrained(directory, padding_side=side, truncation_side=side)
    ref = type(ref_tok).from_pretrained(directory, padding_side=side, truncation_side=side)
    options = dict(padding=True, truncation=True, max_length=24, return_special_tokens_mask=True)
    assert not mismatches(ours(texts, **options), ref(texts, **options), texts)


def test_tokenize_matches_reference_slow(family):
    name, slow, fast, ref = family
    texts = EDGE_CASES + corpus()["wnut17"][:300]
    expected = [ref.tokenize(t) for t in texts]
    for tok in (slow, fast):
        assert [tok.tokenize(t) for t in texts] == expected


def test_split_into_words_matches_reference_slow(family):
    name, slow, fast, ref_tok = family
    sentences = wnut_words()
    ref = ref_tok(sentences, is_split_into_words=True, return_special_tokens_mask=True)
    for tok in (slow, fast):
        got = tok(sentences, is_split_into_words=True, return_special_tokens_mask=True)
        assert not mismatches(got, ref, sentences)
