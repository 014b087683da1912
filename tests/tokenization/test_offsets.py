"""Offsets of the fast tokenizers point at the right characters of the input.

Checked three ways on SQuAD v1.1 dev: every token's span against what the token spells
(decoded bytes for v1, SentencePiece's normalisation for v2/v3), every answer span recovered
from token offsets, and the usual question-answering labelling over overflow windows.
"""

import pytest

from .conftest import EDGE_CASES, corpus, squad

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


def test_v3_offsets_are_sentencepieces_less_what_normalises_to_nothing(ours_v3_fast, sentencepiece_v3, contexts):
    # SentencePiece's own offsets (encode(out_type="offset_mapping"), another code path than the
    # normalize(with_offsets=True) that ours reads) run from where the previous token ended, so a
    # "▁" token gets the spaces before its word. Ours start there too, past the characters that
    # normalise to nothing (spaces, deleted controls), and end where SentencePiece ends, less such
    # characters; except that tokens spelling parts of one character ("⅓" -> "▁1" "⁄" "3", byte
    # pieces) all span that character, where SentencePiece gives it to the last of them.
    from .test_random_text import random_texts

    texts = contexts[:500] + EDGE_CASES + [line for lines in corpus().values() for line in lines][::4] + \
        random_texts(500, seed=99) + ["word\x07 x", "del\x7fchar", "a ¨b", "x 𩸽𠀀 y", "½\u0301 ⅓"]
    try:
        expected = sentencepiece_v3.encode(texts, out_type="offset_mapping")
    except ValueError:
        pytest.skip("this sentencepiece has no offset_mapping output (0.2.1+)")
    silent = {}

    def nothing(span: str) -> bool:
        return all(silent.setdefault(c, not sentencepiece_v3.normalize(c)) for c in span)

    got = ours_v3_fast(texts, add_special_tokens=False, return_offsets_mapping=True, split_special_tokens=True)
    checked = 0
    for row, (text, truth) in enumerate(zip(texts, expected)):
        assert got["input_ids"][row] == truth["ids"], text
        ours = got["offset_mapping"][row]
        for k, ((s, e), (b, t), piece) in enumerate(zip(ours, truth["offsets"], truth["pieces"])):
            where = (text, piece, (s, e), (b, t))
            assert b <= s < len(text) and nothing(text[b:s]) and not nothing(text[s]), where
            if piece == SPACE_MARK:
                assert s == e, where  # a lone "▁" spells no character
            elif k + 1 < len(ours) and ours[k + 1][0] < e:
                assert t <= e <= ours[k + 1][1], where  # the next token spells part of our last character
            else:
                assert s < e <= t and nothing(text[e:t]) and not nothing(text[e - 1]), where
            checked += 1
    assert checked > 120_000


def test_v3_unknown_runs_without_byte_fallback(v3_dir, tmp_path):
    # A SentencePiece model without byte fallback: a run of characters outside the vocabulary
    # becomes one [UNK], which spans the whole run.
    from sentencepiece import sentencepiece_model_pb2 as pb2

    from deberta_core.tokenization import DebertaV2TokenizerFast

    proto = pb2.ModelProto()
    proto.ParseFromString((v3_dir / "spm.model").read_bytes())
    proto.trainer_spec.byte_fallback = False
    for piece in proto.pieces:
        if piece.type == piece.BYTE:
            piece.type = piece.NORMAL
    (tmp_path / "spm.model").write_bytes(proto.SerializeToString())
    tok = DebertaV2TokenizerFast(tmp_path / "spm.model")
    text = "a 𩸽𠀀 b x𩸽 ½𪚲"
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    assert enc.tokens() == ["▁a", "▁", "[UNK]", "▁b", "▁x", "[UNK]", "▁1⁄2", "[UNK]"]
    assert [text[s:e] for s, e in enc["offset_mapping"]] == ["a", "", "𩸽𠀀", "b", "x", "𩸽", "½", "𪚲"]
    assert enc.word_ids() == [0, 1, 1, 2, 3, 3, 4, 4]
    assert tok.sp.encode(text) == enc["input_ids"]


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
