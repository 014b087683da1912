"""Post-processing rules on small hand-made inputs whose answers can be worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from deberta_core.tasks import (QAExample, aggregate_entities, decode_spans, group_entities,
                                merge_overlapping_entities, prepare_qa_features, qa_answers, sigmoid, softmax,
                                squad_predictions)


def test_softmax_sigmoid():
    x = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 1000.0]], dtype=np.float32)
    p = softmax(x)
    assert p.dtype == np.float32
    np.testing.assert_allclose(p[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum(), rtol=1e-6)
    np.testing.assert_allclose(p[1], [1 / 3] * 3, rtol=1e-6)  # no overflow
    np.testing.assert_allclose(sigmoid(np.array([0.0, 2.0])), [0.5, 1 / (1 + np.exp(-2))])


def test_decode_spans_by_hand():
    start = np.array([0.0, 0.6, 0.3, 0.1])
    end = np.array([0.0, 0.2, 0.7, 0.1])
    allowed = np.array([0, 1, 1, 1])
    s, e, scores = decode_spans(start, end, 1, 15, allowed)
    assert (s.tolist(), e.tolist()) == ([1], [2]) and scores[0] == pytest.approx(0.42)
    s, e, scores = decode_spans(start, end, 1, 1, allowed)  # one-token answers only: .3*.7 beats .6*.2
    assert (s.tolist(), e.tolist()) == ([2], [2]) and scores[0] == pytest.approx(0.21)
    s, e, scores = decode_spans(start, end, 3, 15, allowed)
    assert list(zip(s.tolist(), e.tolist())) == [(1, 2), (2, 2), (1, 1)]
    s, e, _ = decode_spans(start, end, 1, 15, np.array([0, 0, 1, 1]))  # the best pair is not allowed
    assert s.tolist() == []


def _window(offsets, start_logits, end_logits, word_ids=None):
    return {"offsets": offsets, "start_logits": np.array(start_logits, dtype=np.float32),
            "end_logits": np.array(end_logits, dtype=np.float32), "word_ids": word_ids}


def test_qa_answers_merge_windows_and_null():
    context = "Paris is in France."
    # [CLS] q [SEP] Paris is in France . [SEP]: two windows that both see "France"
    offsets = [None, None, None, (0, 5), (6, 8), (9, 11), (12, 18), (18, 19), None]
    hi = [0, 0, 0, 0, 0, 0, 5, 0, 0]
    a = _window(offsets, hi, hi)
    b = _window(offsets, hi, hi)
    one = qa_answers([a], context)
    assert one[0]["answer"] == "France"
    both = qa_answers([a, b], context, top_k=1)
    assert both[0]["answer"] == "France" and both[0]["score"] == pytest.approx(2 * one[0]["score"])
    assert (both[0]["start"], both[0]["end"]) == (12, 18)
    # a confident [CLS] wins with handle_impossible_answer
    null = _window(offsets, [9] + hi[1:], [9] + hi[1:])
    best = qa_answers([null], context, handle_impossible_answer=True)[0]
    assert best == {"score": pytest.approx(best["score"]), "start": 0, "end": 0, "answer": ""}
    assert best["score"] > 0.5
    # align_to_words widens a sub-word span to its word
    split = [None, (0, 3), (3, 5), (6, 8)]
    w = _window(split, [0, 0, 6, 0], [0, 0, 6, 0], word_ids=[None, 0, 0, 1])
    assert qa_answers([w], "Paris is")[0]["answer"] == "Paris"
    assert qa_answers([w], "Paris is", align_to_words=False)[0]["answer"] == "is"
    with pytest.raises(ValueError, match="top_k"):
        qa_answers([w], "Paris is", top_k=0)


def test_squad_predictions(ours_v3):
    examples = [QAExample("q1", "Where is Paris?", "Paris is in France.", [], True)]
    features = prepare_qa_features(ours_v3, examples)
    n = len(features.input_ids[0])
    tokens = ours_v3.convert_ids_to_tokens(features.input_ids[0])
    france = tokens.index("▁France")
    start = np.zeros((1, n), dtype=np.float32)
    end = np.zeros((1, n), dtype=np.float32)
    start[0, france] = end[0, france] = 4.0
    predictions, nbest = squad_predictions(examples, features, start, end)
    assert predictions == {"q1": "France"}
    assert nbest["q1"][0]["score"] == 8.0 and sum(c["probability"] for c in nbest["q1"]) == pytest.approx(1.0)
    start[0, 0] = end[0, 0] = 5.0  # the null score (10) beats the best span (8)
    assert squad_predictions(examples, features, start, end, version_2=True)[0] == {"q1": ""}
    assert squad_predictions(examples, features, start, end, version_2=True,
                             null_score_diff_threshold=3.0)[0] == {"q1": "France"}


def _token(label, score, word, start, end, index=0, subword=False):
    scores = np.full(4, (1 - score) / 3, dtype=np.float32)
    labels = ["O", "B-PER", "I-PER", "B-LOC"]
    scores[labels.index(label)] = score
    return {"word": word, "scores": scores, "start": start, "end": end, "index": index, "is_subword": subword}


ID2LABEL = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC"}


def _join(tokens):
    return "".join(tokens).replace("▁", " ").strip()


def test_entity_grouping_by_hand():
    # "John Smith Paris": B-PER I-PER B-LOC; "Jo|hn" split in two tokens.
    pre = [_token("B-PER", 0.9, "▁Jo", 0, 2), _token("I-PER", 0.5, "hn", 2, 4, subword=True),
           _token("I-PER", 0.7, "▁Smith", 5, 10), _token("B-LOC", 0.8, "▁Paris", 11, 16)]
    simple = aggregate_entities(pre, "simple", ID2LABEL, _join)
    assert [(e["entity_group"], e["word"], e["start"], e["end"]) for e in simple] == [
        ("PER", "John Smith", 0, 10), ("LOC", "Paris", 11, 16)]
    assert simple[0]["score"] == pytest.approx((0.9 + 0.5 + 0.7) / 3)
    none = aggregate_entities(pre, "none", ID2LABEL, _join)
    assert [e["entity"] for e in none] == ["B-PER", "I-PER", "I-PER", "B-LOC"]
    # word strategies: "hn" is predicted O -> with first, the word takes B-PER from "Jo"
    pre[1] = _token("O", 0.95, "hn", 2, 4, subword=True)
    first = aggregate_entities(pre, "first", ID2LABEL, _join)
    # (the words are joined again with tokens_to_string, which no longer sees their "▁": transformers
    # gives "JohnSmith" too; start/end give the text)
    assert [(e["entity_group"], e["word"], e["start"], e["end"]) for e in first] == [
        ("PER", "JohnSmith", 0, 10), ("LOC", "Paris", 11, 16)]
    assert first[0]["score"] == pytest.approx((0.9 + 0.7) / 2)
    maximum = aggregate_entities(pre, "max", ID2LABEL, _join)  # "hn" (0.95, O) is the surest token of John
    assert [(e["entity_group"], e["word"]) for e in maximum] == [("O", "John"), ("PER", "Smith"), ("LOC", "Paris")]
    average = aggregate_entities(pre, "average", ID2LABEL, _join)
    # John: mean of B-PER .9 / O .95 scores -> O (.95 + .1/3)/2 = .4917 vs B-PER (.9 + .05/3)/2 = .4583
    assert average[0]["entity_group"] == "O" and average[0]["score"] == pytest.approx((0.95 + 0.1 / 3) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="unknown aggregation_strategy"):
        aggregate_entities(pre, "longest", ID2LABEL, _join)


def test_group_entities_prefix_rules():
    def e(label, word):
        return {"entity": label, "score": 1.0, "word": word, "start": 0, "end": 1}

    groups = group_entities([e("B-PER", "a"), e("B-PER", "b"), e("I-PER", "c"), e("I-LOC", "d"), e("PER", "f"),
                             e("PER", "g")], " ".join)
    assert [(g["entity_group"], g["word"]) for g in groups] == [("PER", "a"), ("PER", "b c"), ("LOC", "d"),
                                                                  ("PER", "f g")]


def test_merge_overlapping_entities():
    entities = [{"start": 0, "end": 4, "score": 0.5}, {"start": 2, "end": 9, "score": 0.1},
                {"start": 10, "end": 12, "score": 0.3}, {"start": 10, "end": 12, "score": 0.7}]
    assert merge_overlapping_entities(entities) == [{"start": 2, "end": 9, "score": 0.1},
                                                    {"start": 10, "end": 12, "score": 0.7}]
