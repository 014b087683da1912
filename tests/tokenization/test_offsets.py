"""Offsets of the fast tokenizers point at the right characters of the input.

Checked three ways on SQuAD v1.1 dev: every token's span against what the token spells
(decoded bytes for v1, SentencePiece's normalisation for v2/v3), every answer span recovered
from token offsets, and the usual question-answering labelling over overflow windows.
"""

import pytest

from .conftest import squad

SPACE_MARK = "\u2581"


@pytest.fixture(scope="module")
def contexts():
    return [p["context"] for p in squad()]


@pytest.fixture(scope="module")
def encoded(request, contexts):
    """Offsets of every SQuAD context for both fast tokenizers (computed once per module)."""
    out = {}
    for name in ("v1", "v3"):
        tok = request.getfixturevalue(f"ours_{name}_fast")
        out[name] = tok(contexts, add_special_tokens=False, return_offsets_mapping=True)
    return out


def test_v1_token_spans_spell_the_token(ours_v1_fast, contexts, encoded):
    enc = encoded["v1"]
    byte_of = ours_v1_fast.byte_decoder
    checked = 0
    for text, ids, offsets in zip(contexts, enc["input_ids"], enc["offset_mapping"]):
        for token, (start, end) in zip(ids, offsets):
            data = bytes(byte_of[c] for c in ours_v1_fast.convert_ids_to_tokens(token))
            if not data.strip(b" "):
                assert start == end  # a token of spaces only gets an empty span
                continue
            data = data.lstrip(b" ")
            spelled = data.decode("utf-8", errors="replace")
            if "\ufffd" in spelled:
                # Part of a multi-byte character: the span covers the characters it touches.
                assert data in text[start:end].encode("utf-8")
            else:
                assert text[start:end] == spelled, (text[start - 5:end + 5], spelled)
            checked += 1
    assert checked > 300_000


def test_v3_token_spans_spell_the_piece(ours_v3_fast, sentencepiece_v3, contexts, encoded):
    enc = encoded["v3"]
    checked = 0
    for text, ids, offsets in zip(contexts, enc["input_ids"], enc["offset_mapping"]):
        shared = {span for span in offsets if offsets.count(span) > 1} if len(set(offsets)) < len(offsets) else set()
        for token, span in zip(ids, offsets):
            piece = sentencepiece_v3.id_to_piece(token)
            if span in shared or sentencepiece_v3.is_byte(token):
                continue  # several tokens from one character (½ -> 1 ⁄ 2, byte pieces)
            start, end = span
            if start == end:
                assert piece == SPACE_MARK  # a lone "▁" spells no character
                continue
            assert not text[start:end].startswith(" ")
            assert sentencepiece_v3.normalize(text[start:end]) == SPACE_MARK + piece.lstrip(SPACE_MARK), \
                (text[start:end], piece)
            checked += 1
    assert checked > 250_000


@pytest.mark.parametrize("name", ["v1", "v3"])
def test_answers_are_recovered_from_offsets(name, encoded):
    enc = encoded[name]
    exact = total = 0
    for paragraph, offsets in zip(squad(), enc["offset_mapping"]):
        context = paragraph["context"]
        for qa in paragraph["qas"]:
            for answer in qa["answers"]:
                start_char = answer["answer_start"]
                end_char = start_char + len(answer["text"])
                assert context[start_char:end_char] == answer["text"]
                inside = [i for i, (s, e) in enumerate(offsets) if s < end_char and e > start_char and e > s]
                assert inside, answer
                span = context[offsets[inside[0]][0]:offsets[inside[-1]][1]]
                # The covering tokens hold the answer, and stop at its words (no extra spaces).
                assert answer["text"] in span and span == span.strip()
                exact += span == answer["text"]
                total += 1
    assert total > 30_000
    assert exact / total > 0.97, f"{exact}/{total} answers are exactly a token span"


def test_v1_offsets_are_the_reference_without_the_leading_space(ours_v1_fast, ref_v1_fast, contexts):
    texts = contexts[:300]
    ours = ours_v1_fast(texts, return_offsets_mapping=True)
    ref = ref_v1_fast(texts, return_offsets_mapping=True)
    assert ours["input_ids"] == ref["input_ids"]
    for text, a, b in zip(texts, ours["offset_mapping"], ref["offset_mapping"]):
        for (s, e), (rs, re_) in zip(a, b):
            piece = text[rs:re_]
            if piece.strip(" ") and piece.startswith(" "):
                assert (s, e) == (rs + len(piece) - len(piece.lstrip(" ")), re_)
            elif not piece.strip(" ") and piece:
                assert s == e == re_
            else:
                assert (s, e) == (rs, re_)


@pytest.mark.parametrize("name", ["v1", "v3"])
def test_question_answering_labels_from_windows(name, request):
    # The standard preprocessing for extractive QA: long contexts are cut into windows; each
    # answer is located with offsets and sequence ids, and must read back from the context.
    tok = request.getfixturevalue(f"ours_{name}_fast")
    paragraphs = squad()[:300]
    pairs = [(qa["question"], p["context"], qa["answers"][0]) for p in paragraphs for qa in p["qas"]]
    enc = tok([q for q, _, _ in pairs], [c for _, c, _ in pairs], truncation="only_second", max_length=96,
              stride=32, return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length")
    found = 0
    for row, sample in enumerate(enc["overflow_to_sample_mapping"]):
        _, context, answer = pairs[sample]
        start_char = answer["answer_start"]
        end_char = start_char + len(answer["text"])
        sequence_ids = enc.sequence_ids(row)
        offsets = enc["offset_mapping"][row]
        context_tokens = [i for i, s in enumerate(sequence_ids) if s == 1]
        first, last = context_tokens[0], context_tokens[-1]
        if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
            continue  # the answer is not fully inside this window
        token_start = next(i for i in context_tokens if offsets[i][1] > start_char)
        token_end = max(i for i in context_tokens if offsets[i][0] < end_char)
        span = context[offsets[token_start][0]:offsets[token_end][1]]
        assert answer["text"] in span
        found += 1
    assert found > len(pairs) * 0.9


@pytest.mark.parametrize("name", ["v1", "v3"])
def test_lazy_offsets_equal_eager_offsets(name, request, contexts):
    # Without return_offsets_mapping the fast tokenizers take a cheaper path and work offsets
    # and word ids out only when asked (BatchEncoding.offsets / word_ids): same answers.
    tok = request.getfixturevalue(f"ours_{name}_fast")
    texts = contexts[:200] + ["  two  spaces  ", "trailing ", "x 𩸽 y", "½ and ⅓", "", " "]
    lazy = tok(texts)
    eager = tok(texts, return_offsets_mapping=True)
    for i in range(len(texts)):
        assert lazy.offsets(i) == eager["offset_mapping"][i], texts[i]
        assert lazy.word_ids(i) == eager.word_ids(i), texts[i]
