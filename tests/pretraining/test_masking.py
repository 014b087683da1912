"""Dynamic masking and packing (deberta_core.pretraining) on real text: WikiText-2 test, v3 SentencePiece."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from deberta_core.losses import IGNORE_INDEX
from deberta_core.pretraining import (ORIGINAL_RTD_MASKING, MaskingRule, mask_tokens, pack_blocks,
                                      word_starts_from_tokens)
from deberta_core.tokenization import DebertaV2TokenizerFast
from tests.cases import data_path

BLOCK = 128


@functools.lru_cache(maxsize=None)
def _corpus(lines: int = 600):
    """Token ids and word starts of the first `lines` non-empty lines of WikiText-2 test, and the tokenizer."""
    tokenizer = DebertaV2TokenizerFast.from_pretrained(data_path("tokenizers", "deberta-v3"))
    text = data_path("datasets", "wikitext-2-valid-test", "test.txt").read_text(encoding="utf-8").splitlines()
    text = [line.strip() for line in text if line.strip()][:lines]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    starts = [word_starts_from_tokens(tokenizer.convert_ids_to_tokens(row)).tolist() for row in ids]
    return tokenizer, ids, starts


@functools.lru_cache(maxsize=None)
def _blocks():
    tokenizer, ids, starts = _corpus()
    return pack_blocks(ids, BLOCK, cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id,
                       pad_id=tokenizer.pad_token_id, word_starts=starts)


def _mask(rule, seed=0):
    tokenizer, _, _ = _corpus()
    blocks = _blocks()
    masked, labels = mask_tokens(blocks["input_ids"], np.random.default_rng(seed),
                                 mask_token_id=tokenizer.mask_token_id, vocab_size=len(tokenizer),
                                 special_ids=tokenizer.all_special_ids,
                                 attention_mask=blocks["attention_mask"], word_starts=blocks["word_starts"], rule=rule)
    return tokenizer, blocks, masked, labels


def test_packing_keeps_every_token_in_order():
    tokenizer, ids, starts = _corpus()
    blocks = _blocks()
    stream = [t for row in ids for t in row]
    x, mask = blocks["input_ids"], blocks["attention_mask"]
    assert x.shape == (-(-len(stream) // (BLOCK - 2)), BLOCK) and x.dtype == np.int64
    assert (x[:, 0] == tokenizer.cls_token_id).all()
    lengths = mask.sum(axis=1)
    assert (lengths[:-1] == BLOCK).all() and 2 < lengths[-1] <= BLOCK
    assert all(x[b, lengths[b] - 1] == tokenizer.sep_token_id for b in range(len(x)))
    assert (x[mask == 0] == tokenizer.pad_token_id).all()
    body = np.concatenate([x[b, 1:lengths[b] - 1] for b in range(len(x))])
    assert body.tolist() == stream
    flags = np.concatenate([blocks["word_starts"][b, 1:lengths[b] - 1] for b in range(len(x))])
    expected = np.concatenate([np.asarray(s) for s in starts])
    cut = np.arange(0, len(stream), BLOCK - 2)  # every block opens a word
    expected[cut] = True
    assert (flags == expected).all()
    assert not blocks["word_starts"][:, 0].any()
    dropped = pack_blocks(ids, BLOCK, cls_id=1, sep_id=2, pad_id=0, drop_last=True)
    assert len(dropped["input_ids"]) == len(stream) // (BLOCK - 2) and dropped["attention_mask"].all()


def test_word_starts_follow_the_boundary_marks():
    tokenizer, _, _ = _corpus()
    tokens = tokenizer.convert_ids_to_tokens(tokenizer("Robert Boulter is an unlikeable actor",
                                                       add_special_tokens=False)["input_ids"])
    starts = word_starts_from_tokens(tokens)
    words = [[tokens[i]] for i in range(len(tokens)) if starts[i]]
    assert len(words) == 6 and starts[0]
    assert word_starts_from_tokens(["Hello", "Ġworld", "!", "Ġagain"]).tolist() == [True, True, False, True]


def test_dynamic_masking_statistics():
    tokenizer, blocks, masked, labels = _mask(MaskingRule())
    x, mask = blocks["input_ids"], blocks["attention_mask"]
    special = np.isin(x, tokenizer.all_special_ids)
    candidates = (mask != 0) & ~special
    chosen = labels != IGNORE_INDEX
    assert not (chosen & ~candidates).any(), "special tokens and padding are never chosen"
    assert (labels[chosen] == x[chosen]).all() and (masked[~chosen] == x[~chosen]).all()
    per_row = chosen.sum(1) / candidates.sum(1)
    assert abs(chosen.sum() / candidates.sum() - 0.15) < 0.003 and (np.abs(per_row - 0.15) < 0.01).all()
    n = chosen.sum()
    as_mask = (masked[chosen] == tokenizer.mask_token_id).sum() / n
    kept = (masked[chosen] == x[chosen]).sum() / n
    randomised = 1 - as_mask - kept
    tolerance = 4 * np.sqrt(0.8 * 0.2 / n)
    assert abs(as_mask - 0.8) < tolerance and abs(kept - 0.1) < tolerance and abs(randomised - 0.1) < tolerance
    replaced = masked[chosen & (masked != x) & (masked != tokenizer.mask_token_id)]
    assert not np.isin(replaced, tokenizer.all_special_ids).any() and (replaced < len(tokenizer)).all()
    again = _mask(MaskingRule(), seed=0)[2:]
    assert all(np.array_equal(a, b) for a, b in zip(again, (masked, labels)))
    other = _mask(MaskingRule(), seed=1)[3]
    assert not np.array_equal(other, labels)


def test_whole_word_masking_takes_words_together():
    tokenizer, blocks, masked, labels = _mask(MaskingRule(whole_word=True))
    x, starts = blocks["input_ids"], blocks["word_starts"]
    candidates = (blocks["attention_mask"] != 0) & ~np.isin(x, tokenizer.all_special_ids)
    chosen = labels != IGNORE_INDEX
    assert not (chosen & ~candidates).any()
    multi_piece_words = 0
    for row in range(len(x)):
        positions = np.flatnonzero(candidates[row])
        new = np.ones(len(positions), dtype=bool)
        new[1:] = starts[row][positions[1:]] | (np.diff(positions) != 1)
        for word in np.split(positions, np.flatnonzero(new)[1:]):
            assert chosen[row, word].all() or not chosen[row, word].any(), f"row {row}: word {word} split"
            multi_piece_words += len(word) > 1 and chosen[row, word].all()
    assert multi_piece_words > 100
    rate = chosen.sum() / candidates.sum()
    assert 0.15 <= rate < 0.17  # whole words may overshoot round(0.15 x count) by part of a word


def test_original_rtd_masking_writes_mask_everywhere():
    tokenizer, _, masked, labels = _mask(ORIGINAL_RTD_MASKING)
    chosen = labels != IGNORE_INDEX
    assert (masked[chosen] == tokenizer.mask_token_id).all() and chosen.any()


def test_small_cases_by_hand():
    x = np.array([[1, 10, 11, 12, 2, 0, 0]])
    masked, labels = mask_tokens(x, np.random.default_rng(0), mask_token_id=3, vocab_size=20,
                                 special_ids=[0, 1, 2, 3], attention_mask=(x != 0).astype(int),
                                 rule=MaskingRule(mask_replace_prob=1.0, random_replace_prob=0.0))
    assert (labels != IGNORE_INDEX).sum() == 1  # round(0.15 x 3) = 0, at least one
    assert masked[labels != IGNORE_INDEX].tolist() == [3]
    masked, labels = mask_tokens(np.array([[1, 2, 0]]), np.random.default_rng(0), mask_token_id=3, vocab_size=20,
                                 special_ids=[0, 1, 2, 3])
    assert (labels == IGNORE_INDEX).all() and masked.tolist() == [[1, 2, 0]]
    with pytest.raises(ValueError, match="mlm_probability"):
        MaskingRule(mlm_probability=1.5)
    with pytest.raises(ValueError, match="sum to at most 1"):
        MaskingRule(mask_replace_prob=0.9, random_replace_prob=0.2)
    with pytest.raises(ValueError, match="word_starts"):
        mask_tokens(x, np.random.default_rng(0), mask_token_id=3, vocab_size=20, special_ids=[0],
                    rule=MaskingRule(whole_word=True))
    with pytest.raises(ValueError, match="block_size"):
        pack_blocks([[5]], 2, cls_id=1, sep_id=2, pad_id=0)
