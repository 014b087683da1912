"""Slow and fast tokenizers give the same output on random and adversarial input.

The real-text corpus is compared in test_bpe_reference.py / test_spm_reference.py; here the
input is generated (seeded) from character pools chosen to hit normalisation, byte fallback,
whitespace handling and added tokens, and the comparison covers the whole call API.
"""

import random

import pytest

from .conftest import EDGE_CASES, corpus, mismatches

POOLS = [
    "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " " * 8, "\t\n\r\u3000\u00a0\x85",
    ".,;:!?'\"()[]{}-_/\\@#$%^&*", "éèêëàâäôöûüçñßøåæœ", "\u0300\u0301\u0302\u0308\u0323\u0327",
    "½⅓¼″′ﬁﬂＡＢＣａｂｃ１２３①②㎏㈱", "αβγδεζηθλμπσω", "абвгдежзийклмн", "中文字日本語漢字한국어글자",
    "ابتثجحخدذرزسشصضطظعغفقكلمنهوي", "אבגדהוזחטיכלמנסעפצקרשת", "😀😂🤔👍🏽❤️✨🇫🇷👨‍👩‍👧",
    "𩸽𠀀𪚲𝔘𝔫𝔦𝐁𝐨", "\u200b\u200c\u200d\ufeff\u00ad\u2060", "\x00\x01\x07\x1b\x7f", "▁",
]
WORDS = ["[MASK]", "[CLS]", "[SEP]", "[PAD]", "[UNK]", "<0x41>", "SSSSSSSS", "hahaha", "1,000,000", "...", "  "]


def random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.15:
                parts.append(rng.choice(WORDS))
            else:
                pool = rng.choice(POOLS)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 8))))
        texts.append(rng.choice(["", " "]).join(parts))
    return texts


@pytest.fixture(scope="module")
def texts():
    return random_texts(1500, seed=1234)


def test_random_text_same_ids(family, texts):
    name, slow, fast, ref = family
    options = dict(return_special_tokens_mask=True)
    expected = slow(texts, **options)
    assert not mismatches(fast(texts, **options), expected, texts)
    # And both equal the reference slow tokenizer on the same strings.
    assert not mismatches(expected, ref(texts, **options), texts)


def test_random_pairs_with_overflow_same_rows(family, texts):
    name, slow, fast, _ = family
    # Short questions (at most 12 characters, i.e. at most 48 byte-level tokens), long contexts.
    firsts, seconds = [t[:12] for t in texts[:300]], [a + " " + b for a, b in zip(texts[300:600], texts[600:900])]
    options = dict(truncation="only_second", max_length=64, stride=8, return_overflowing_tokens=True,
                   padding=True, return_special_tokens_mask=True)
    got, expected = fast(firsts, seconds, **options), slow(firsts, seconds, **options)
    assert got["overflow_to_sample_mapping"] == expected["overflow_to_sample_mapping"]
    assert not mismatches(got, expected, got["overflow_to_sample_mapping"])


def test_tokenize_and_decode_agree(family, texts):
    name, slow, fast, _ = family
    assert [fast.tokenize(t) for t in texts[:400]] == [slow.tokenize(t) for t in texts[:400]]
    ids = slow(texts)["input_ids"]
    for skip in (False, True):
        assert fast.batch_decode(ids, skip_special_tokens=skip) == slow.batch_decode(ids, skip_special_tokens=skip)


def test_decode_of_random_ids_agrees(family):
    # Arbitrary id sequences, including byte pieces that do not form valid UTF-8 and
    # control pieces, decode identically (v2: our SentencePiece decoder vs sentencepiece's).
    name, slow, fast, _ = family
    rng = random.Random(7)
    size = slow.vocab_size
    sequences = [[rng.randrange(size) for _ in range(rng.randint(0, 30))] for _ in range(500)]
    sequences += [[rng.randrange(300) for _ in range(rng.randint(1, 30))] for _ in range(500)]
    assert fast.batch_decode(sequences) == slow.batch_decode(sequences)
    assert fast.batch_decode(sequences, skip_special_tokens=True) == \
        slow.batch_decode(sequences, skip_special_tokens=True)


def test_split_into_words_same(family):
    name, slow, fast, _ = family
    words = [line.split(" ") for line in EDGE_CASES + corpus()["sst2"][:200]]
    options = dict(is_split_into_words=True, return_special_tokens_mask=True)
    assert not mismatches(fast(words, **options), slow(words, **options), words)
