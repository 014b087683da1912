"""Metrics: hand-checked values on fixed inputs (IOB1/IOB2/IOBES edge cases, SQuAD EM/F1 as the
official scripts define them), and agreement with seqeval / scikit-learn (test-only dependencies)."""

from __future__ import annotations

import importlib
import math
import random
import warnings

import pytest

from deberta_core.tasks import (accuracy, entity_scores, f1, get_entities, normalize_answer, read_squad,
                                squad_evaluate, squad_exact_match, squad_f1, squad_v2_evaluate)

from .conftest import SQUAD_DEV, WNUT_LABELS, data_path, wnut_dev


# ---------------------------------------------------------------------------- classification
def test_accuracy_and_f1_by_hand():
    refs = [1, 0, 1, 1, 0, 2]
    preds = [1, 1, 1, 0, 0, 2]
    assert accuracy(preds, refs) == pytest.approx(4 / 6)
    # class 1: tp 2, predicted 3, true 3 -> 2/3; class 0: tp 1, pred 2, true 2 -> 1/2; class 2: 1
    assert f1(preds, refs, average="macro") == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert f1(preds, refs, average="micro") == pytest.approx(4 / 6)
    assert f1(preds, refs, average="weighted") == pytest.approx((2 / 3 * 3 + 1 / 2 * 2 + 1) / 6)
    assert f1([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)
    assert f1(["pos", "neg"], ["pos", "pos"], pos_label="pos") == pytest.approx(2 / 3)
    assert f1([0, 0], [0, 0]) == 0.0  # the positive class never appears
    with pytest.raises(ValueError, match="binary"):
        f1(preds, refs)
    with pytest.raises(ValueError, match="predictions for"):
        accuracy([1], [1, 0])


def test_f1_equals_scikit_learn():
    sklearn = importlib.import_module("sklearn.metrics")
    rng = random.Random(0)
    refs = [rng.randrange(4) for _ in range(300)]
    preds = [r if rng.random() < 0.6 else rng.randrange(4) for r in refs]
    for average in ("macro", "micro", "weighted"):
        assert f1(preds, refs, average=average) == pytest.approx(sklearn.f1_score(refs, preds, average=average))
    binary_refs, binary_preds = [r % 2 for r in refs], [p % 2 for p in preds]
    assert f1(binary_preds, binary_refs) == pytest.approx(sklearn.f1_score(binary_refs, binary_preds))


# ---------------------------------------------------------------------------- entities
@pytest.mark.parametrize("tags,entities", [
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 1), ("LOC", 3, 3)]),  # IOB2
    (["I-PER", "I-PER", "B-PER", "O", "I-LOC"], [("PER", 0, 1), ("PER", 2, 2), ("LOC", 4, 4)]),  # IOB1
    (["O", "I-PER", "I-LOC", "I-LOC"], [("PER", 1, 1), ("LOC", 2, 3)]),  # I- of another type starts one
    (["B-PER", "I-LOC", "O"], [("PER", 0, 0), ("LOC", 1, 1)]),  # IOB2 with an inconsistent I-
    (["B-PER", "B-PER", "I-PER"], [("PER", 0, 0), ("PER", 1, 2)]),
    (["S-PER", "B-LOC", "E-LOC", "E-LOC"], [("PER", 0, 0), ("LOC", 1, 2), ("LOC", 3, 3)]),  # IOBES
    (["O", "O"], []),
    (["B-creative-work", "I-creative-work"], [("creative-work", 0, 1)]),  # hyphen in the type
])
def test_get_entities_by_hand(tags, entities):
    assert get_entities(tags) == entities


def test_get_entities_sentences_and_suffix():
    assert get_entities([["B-PER", "I-PER"], ["I-PER", "O"]]) == [("PER", 0, 1), ("PER", 3, 3)]
    assert get_entities(["PER-B", "PER-I", "O"], suffix=True) == [("PER", 0, 1)]


def test_entity_scores_by_hand():
    # seqeval's documented example: one MISC boundary wrong, one PER right.
    true = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]]
    scores = entity_scores(true, pred)
    assert (scores["precision"], scores["recall"], scores["f1"], scores["number"]) == (0.5, 0.5, 0.5, 2)
    assert scores["per_type"]["PER"]["f1"] == 1.0 and scores["per_type"]["MISC"]["f1"] == 0.0
    # IOB1 gold read the conlleval way: I-X after O starts an entity. 3 gold, 2 predicted, 1 right.
    true = [["I-LOC", "I-LOC", "O", "I-PER", "B-PER"]]
    pred = [["B-LOC", "I-LOC", "O", "I-PER", "I-PER"]]
    scores = entity_scores(true, pred)
    assert (scores["precision"], scores["recall"]) == (0.5, pytest.approx(1 / 3))
    assert scores["f1"] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    macro = entity_scores(true, pred, average="macro")
    assert macro["f1"] == pytest.approx((1.0 + 0.0) / 2)
    assert entity_scores([["O"]], [["O"]])["f1"] == 0.0  # no entities anywhere: 0, as seqeval
    with pytest.raises(ValueError, match="sentence 0"):
        entity_scores([["O", "O"]], [["O"]])


def _random_tags(rng, n, types=("PER", "LOC", "creative-work")):
    out = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.5:
            out.append("O")
        else:
            prefix = rng.choice("BIIES") if roll > 0.95 else rng.choice("BI")
            out.append(f"{prefix}-{rng.choice(types)}")
    return out


def _seqeval_all(seqeval_metrics, true, pred, average):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (seqeval_metrics.precision_score(true, pred, average=average),
                seqeval_metrics.recall_score(true, pred, average=average),
                seqeval_metrics.f1_score(true, pred, average=average))


def test_entity_scores_equal_seqeval_random_tags():
    seqeval_metrics = importlib.import_module("seqeval.metrics")
    rng = random.Random(1)
    for trial in range(40):
        true = [_random_tags(rng, rng.randrange(1, 12)) for _ in range(rng.randrange(1, 8))]
        pred = [[t if rng.random() < 0.7 else _random_tags(rng, 1)[0] for t in sentence] for sentence in true]
        for average in ("micro", "macro", "weighted"):
            ours = entity_scores(true, pred, average=average)
            theirs = _seqeval_all(seqeval_metrics, true, pred, average)
            for got, want in zip((ours["precision"], ours["recall"], ours["f1"]), theirs):
                assert got == pytest.approx(float(want)) or (math.isnan(got) and math.isnan(want)), (trial, average)


def test_entity_scores_equal_seqeval_on_wnut():
    seqeval_metrics = importlib.import_module("seqeval.metrics")
    rng = random.Random(2)
    true = [e.tags for e in wnut_dev()]
    # Predictions: gold with 15% of the tags replaced (boundary and type errors, IOB1-style I- starts).
    pred = [[t if rng.random() < 0.85 else rng.choice(WNUT_LABELS) for t in sentence] for sentence in true]
    ours = entity_scores(true, pred)
    assert ours["number"] == 836
    assert (ours["precision"], ours["recall"], ours["f1"]) == pytest.approx(
        _seqeval_all(seqeval_metrics, true, pred, "micro"))
    report = seqeval_metrics.classification_report(true, pred, output_dict=True)
    for kind, scores in ours["per_type"].items():
        assert scores["f1"] == pytest.approx(report[kind]["f1-score"])
        assert scores["number"] == report[kind]["support"]
    assert entity_scores(true, true)["f1"] == 1.0


# ---------------------------------------------------------------------------- SQuAD
@pytest.mark.parametrize("text,normalized", [
    ("The Denver Broncos!", "denver broncos"),
    ("an apple, a day", "apple day"),
    ("  Theatre   and   anthem ", "theatre and anthem"),  # articles only as whole words
    ("U.S.A.", "usa"),
    ("“Curly” quotes – dash", "“curly” quotes – dash"),  # only ASCII punctuation goes
])
def test_normalize_answer(text, normalized):
    assert normalize_answer(text) == normalized


def test_squad_em_f1_by_hand():
    assert squad_exact_match("the Denver Broncos", "Denver Broncos.")
    assert not squad_exact_match("Denver", "Denver Broncos")
    assert squad_f1("Denver", "Denver Broncos") == pytest.approx(2 / 3)  # p 1, r 1/2
    assert squad_f1("Denver Broncos team", "Denver Broncos") == pytest.approx(0.8)  # p 2/3, r 1
    assert squad_f1("a the", "Denver") == 0.0
    assert squad_f1("x x y", "x y y") == pytest.approx(2 / 3)  # shared counts are a multiset minimum


def test_squad_evaluate_on_dev(tmp_path):
    examples = read_squad(data_path(*SQUAD_DEV))
    gold = {e.id: e.answer_texts for e in examples}
    perfect = {e.id: e.answers[0].text for e in examples}
    assert squad_evaluate(examples, perfect) == {"exact_match": 100.0, "f1": 100.0}
    q0, q1, q2, q3 = examples[:4]
    assert gold[q0.id] == ["Denver Broncos"] * 3
    assert gold[q1.id] == ["Carolina Panthers"] * 3
    assert gold[q2.id] == ["Santa Clara, California", "Levi's Stadium", "Levi's Stadium in the San Francisco Bay Area at Santa Clara, California."]
    predictions = {q0.id: "the Denver Broncos",  # EM 1, F1 1
                   q1.id: "Panthers",  # EM 0, F1 2/3
                   q2.id: "Levi's Stadium in Santa Clara",  # EM 0, F1 10/16 (below)
                   }  # q3 unanswered: 0
    subset = {k: gold[k] for k in (q0.id, q1.id, q2.id, q3.id)}
    # q2 vs "Santa Clara, California": common santa, clara -> p 2/5, r 2/3 -> 1/2;
    # vs "Levi's Stadium": common levis, stadium -> p 2/5, r 1 -> 4/7;
    # vs the long answer (levis stadium in san francisco bay area at santa clara california, 11 tokens):
    # common levis stadium in santa clara -> p 5/5, r 5/11 -> 10/16.
    with pytest.warns(UserWarning, match="1 unanswered"):
        result = squad_evaluate(subset, predictions)
    assert result["exact_match"] == pytest.approx(25.0)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3 + 10 / 16 + 0) / 4)
    # the raw JSON data list is accepted too
    import json

    raw = json.loads(data_path(*SQUAD_DEV).read_text("utf-8"))
    assert squad_evaluate(raw["data"], perfect)["exact_match"] == 100.0


def test_squad_v2_by_hand():
    gold = {"has1": ["Paris"], "has2": ["the river Seine", "Seine"], "no1": [], "no2": []}
    predictions = {"has1": "Paris", "has2": "river", "no1": "", "no2": "Lyon"}
    result = squad_v2_evaluate(gold, predictions)
    # has1 1/1; has2 EM 0, F1 max(2/3 vs "river seine", 0) ; no1 1/1; no2 0/0
    assert result["exact"] == pytest.approx(50.0)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 0) / 4)
    assert (result["HasAns_total"], result["NoAns_total"], result["total"]) == (2, 2, 4)
    assert result["HasAns_exact"] == 50.0 and result["HasAns_f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)
    assert result["NoAns_exact"] == 50.0 and result["NoAns_f1"] == 50.0
    # A no-answer probability above the threshold turns the prediction into "".
    probs = {"has1": 0.1, "has2": 0.2, "no1": 0.3, "no2": 0.9}
    thresholded = squad_v2_evaluate(gold, predictions, no_answer_probs=probs, no_answer_threshold=0.5)
    assert thresholded["exact"] == pytest.approx(75.0)  # no2 now right
    # Best threshold: start from all-"" (2 right), walk up by probability: has1 +1 (3), has2 +0 (EM),
    # no1 0 (pred ""), no2 -1 -> best 3/4 at 0.1 for EM.
    assert thresholded["best_exact"] == pytest.approx(75.0) and thresholded["best_exact_thresh"] == 0.1
    assert thresholded["best_f1"] == pytest.approx(100 * (2 + 1 + 2 / 3) / 4)
    assert thresholded["best_f1_thresh"] == 0.2
