"""DeBERTa v1 (GPT-2 byte-level BPE) against the reference slow tokenizer of transformers 4.57.6.

The corpus is real text from data/datasets plus the hand-written edge cases; every
line must give the reference's ids, token types, attention and special-token masks, from the
slow and from the fast tokenizer.
"""

import json

import pytest

from deberta_core.tokenization import DebertaTokenizer, DebertaTokenizerFast
from deberta_core.tokenization.bpe import byte_to_unicode, gpt2_pattern

from .conftest import EDGE_CASES, corpus, mismatches


def test_corpus_matches_reference_slow(ours_v1, ours_v1_fast, ref_v1):
    sources = corpus()
    lines = [line for lines in sources.values() for line in lines]
    assert len(lines) >= 5000
    ref = ref_v1(lines, return_special_tokens_mask=True)
    for tok in (ours_v1, ours_v1_fast):
        got = tok(lines, return_special_tokens_mask=True)
        assert not mismatches(got, ref, lines), f"{type(tok).__name__}: " + "\n".join(mismatches(got, ref, lines))
    # Decoding the reference ids gives the reference's text, with and without special tokens
    # (every eighth line for the latter: the reference is slow at skipping special tokens).
    for skip, step in ((False, 1), (True, 8)):
        sample = ref["input_ids"][::step]
        expected = [ref_v1.decode(ids, skip_special_tokens=skip) for ids in sample]
        for tok in (ours_v1, ours_v1_fast):
            decoded = tok.batch_decode(sample, skip_special_tokens=skip)
            bad = [i for i, (a, b) in enumerate(zip(decoded, expected)) if a != b]
            assert not bad, f"{type(tok).__name__} decode(skip={skip}) differs on {len(bad)} lines, " \
                            f"first {lines[bad[0] * step]!r:.60}"
    # Byte-level BPE loses nothing: decoding without special tokens gives the line back
    # (except for special tokens typed into the text, which are skipped).
    plain = [i for i, line in enumerate(lines) if not any(t in line for t in ours_v1.all_special_tokens)]
    assert [ours_v1_fast.decode(ref["input_ids"][i], skip_special_tokens=True) for i in plain] == \
        [lines[i] for i in plain]


def test_published_ids(ours_v1, ours_v1_fast):
    # Facts from the transformers docstring / tests and issue #15735, quoted in PROVENANCE.md.
    albert = [
        ("ALBERT: A Lite BERT for Self-supervised Learning of Language Representations",
         [1, 2118, 11126, 565, 35, 83, 25191, 163, 18854, 13, 12156, 12, 16101, 25376, 13807, 9, 22205,
          27893, 1635, 2]),
        ("ALBERT incorporates two parameter reduction techniques",
         [1, 2118, 11126, 565, 24536, 80, 43797, 4878, 7373, 2]),
    ]
    for tok in (ours_v1, ours_v1_fast):
        assert tok("Hello world")["input_ids"] == [1, 31414, 232, 2]
        assert tok(" Hello world")["input_ids"] == [1, 20920, 232, 2]
        pair = tok("Hello", "World")
        assert pair["input_ids"] == [1, 31414, 2, 10988, 2]
        assert pair["token_type_ids"] == [0, 0, 0, 1, 1]
        assert tok("The capital of France is [MASK].")["input_ids"] == [1, 133, 812, 9, 1470, 16, 50264, 4, 2]
        for text, ids in albert:
            assert tok(text)["input_ids"] == ids


def test_special_ids_come_from_vocab_json(ours_v1, ours_v1_fast, v1_dir):
    vocab = json.loads((v1_dir / "vocab.json").read_text(encoding="utf-8"))
    for tok in (ours_v1, ours_v1_fast):
        assert (tok.pad_token_id, tok.cls_token_id, tok.sep_token_id, tok.unk_token_id, tok.mask_token_id) == \
            (vocab["[PAD]"], vocab["[CLS]"], vocab["[SEP]"], vocab["[UNK]"], vocab["[MASK]"]) == (0, 1, 2, 3, 50264)
        assert len(tok) == tok.vocab_size == len(vocab) == 50265


def _pairs():
    sources = corpus()
    pairs = []
    for lines in sources.values():
        pairs.extend(zip(lines[0:200:2], lines[1:200:2]))
    paragraphs = sources["squad_context"]
    pairs.extend(zip(sources["squad_question"][:100], paragraphs[:100]))
    return pairs


def test_pairs_match_reference_slow(ours_v1, ours_v1_fast, ref_v1):
    pairs = _pairs()
    firsts, seconds = [a for a, _ in pairs], [b for _, b in pairs]
    ref = ref_v1(firsts, seconds, return_special_tokens_mask=True)
    for tok in (ours_v1, ours_v1_fast):
        got = tok(firsts, seconds, return_special_tokens_mask=True)
        assert not mismatches(got, ref, pairs), "\n".join(mismatches(got, ref, pairs))
    # The same pairs given as a list of tuples.
    assert ours_v1_fast(pairs)["input_ids"] == ref["input_ids"]


def test_add_prefix_space_matches_reference_slow(ours_v1, ref_v1, v1_dir):
    texts = corpus()["sst2"][:200] + EDGE_CASES
    expected = ref_v1(texts, add_prefix_space=True)["input_ids"]
    assert ours_v1(texts, add_prefix_space=True)["input_ids"] == expected
    prefixed = DebertaTokenizerFast.from_pretrained(v1_dir, add_prefix_space=True)
    assert prefixed(texts)["input_ids"] == expected


def test_byte_map_matches_reference():
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    assert byte_to_unicode() == bytes_to_unicode()
    assert len(set(byte_to_unicode().values())) == 256
    assert byte_to_unicode()[ord(" ")] == "\u0120" and byte_to_unicode()[ord("\n")] == "\u010a"


def test_pretokenizer_matches_gpt2_regex():
    # The reference uses the `regex` module with \p{L}/\p{N}; ours spells the classes out for
    # `re`. Compare on the corpus and on every code point that Python's Unicode tables assign
    # (newer characters are a documented difference).
    import unicodedata

    regex = pytest.importorskip("regex")
    reference = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    ours = gpt2_pattern()
    texts = [line for lines in corpus().values() for line in lines]
    # All assigned code points except private use, and every 16th "other letter" (CJK,
    # Hangul, ... all behave alike), to keep the test quick.
    assigned = [chr(cp) for cp in range(0x110000)
                if unicodedata.category(chr(cp)) not in ("Cn", "Cs", "Co")
                and (unicodedata.category(chr(cp)) != "Lo" or cp % 16 == 0)]
    # Each character between letters, digits and spaces exercises every branch.
    texts += ["".join(f"a{c}1 {c}{c}  x" for c in assigned[i:i + 512]) for i in range(0, len(assigned), 512)]
    for text in texts:
        assert ours.findall(text) == reference.findall(text)


def test_bpe_merges_match_reference(ours_v1, ref_v1):
    # The merge loop alone, on every distinct byte-mapped word of the corpus, against the
    # reference's GPT-2 bpe() over the same merges.txt; asked again, a word gives the same symbols.
    words = {word.encode("utf-8").decode("latin-1").translate(ours_v1.byte_encoder)
             for line in corpus()["wikitext2"] + corpus()["wnut17"] + EDGE_CASES
             for word in gpt2_pattern().findall(line)}
    assert len(words) > 10_000
    for word in words:
        assert ours_v1.bpe.encode_word(word) == ref_v1.bpe(word).split(" "), word
        assert "".join(ours_v1.bpe.encode_word(word)) == word


def test_slow_and_fast_classes_are_distinct(ours_v1, ours_v1_fast):
    assert isinstance(ours_v1, DebertaTokenizer) and not ours_v1.is_fast
    assert isinstance(ours_v1_fast, DebertaTokenizerFast) and ours_v1_fast.is_fast
