"""Task metrics, defined exactly as the usual reference implementations compute them.

* :func:`accuracy`, :func:`f1` (binary, macro, micro, weighted; scikit-learn's definitions, 0 where
  a class is never predicted nor present).
* :func:`get_entities` / :func:`entity_scores`: entity-level precision, recall and F1 as ``seqeval``
  computes them by default (``mode=None``): conlleval-style chunking, so IOB2 (``B-`` starts every
  entity), IOB1 (``I-`` after ``O`` or another type starts one, ``B-`` only between two entities of
  the same type) and IOBES tags all read correctly; micro average by default; 0 for an undefined
  precision or recall, as seqeval's ``zero_division="warn"`` gives (without the warning).
* :func:`squad_exact_match`, :func:`squad_f1`, :func:`squad_evaluate`: the official SQuAD v1.1
  evaluation script (normalize_answer: lower case, drop ASCII punctuation, drop the articles a/an/the,
  collapse whitespace; the max over the gold answers; percentages).
* :func:`squad_v2_evaluate`: the official v2.0 script: an empty gold list means the only right
  answer is "" (F1 1 if both are empty), HasAns/NoAns breakdowns, optional no-answer probabilities
  with a threshold, and the best thresholds.
"""

from __future__ import annotations

import re
import string
import warnings
from collections import Counter, defaultdict
from typing import Mapping, Sequence

import numpy as np


# ----------------------------------------------------------------------------- classification
def _as_list(values) -> list:
    if hasattr(values, "tolist"):
        values = values.tolist()
    return list(values)


def accuracy(predictions, references) -> float:
    """Fraction of predictions equal to the references (any hashable labels)."""
    predictions, references = _as_list(predictions), _as_list(references)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("accuracy of an empty set is undefined")
    return sum(p == r for p, r in zip(predictions, references)) / len(references)


def _prf(tp: int, pred: int, true: int) -> tuple[float, float, float]:
    precision = tp / pred if pred else 0.0
    recall = tp / true if true else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f


def f1(predictions, references, *, average: str = "binary", pos_label=1, labels: Sequence | None = None) -> float:
    """F1 of class predictions (scikit-learn's ``f1_score`` definitions).

    average: "binary" (F1 of ``pos_label``), "macro" (unweighted mean over ``labels``, by default
    every label seen in either list), "micro" (from the pooled counts) or "weighted" (mean weighted
    by each label's support).
    """
    predictions, references = _as_list(predictions), _as_list(references)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if average not in ("binary", "macro", "micro", "weighted"):
        raise ValueError(f"average must be 'binary', 'macro', 'micro' or 'weighted', got {average!r}")
    if average == "binary":
        seen = set(predictions) | set(references)
        if len(seen - {pos_label}) > 1:
            raise ValueError(f"average='binary' needs two classes, got {sorted(map(str, seen))}; "
                             "use average='macro'")
        labels = [pos_label]
    elif labels is None:
        labels = sorted(set(predictions) | set(references), key=lambda v: (str(type(v)), v))
    counts = []
    for label in labels:
        tp = sum(p == label and r == label for p, r in zip(predictions, references))
        pred = sum(p == label for p in predictions)
        true = sum(r == label for r in references)
        counts.append((tp, pred, true))
    if average == "micro":
        tp, pred, true = (sum(c[i] for c in counts) for i in range(3))
        return _prf(tp, pred, true)[2]
    scores = [_prf(*c)[2] for c in counts]
    if average == "weighted":
        support = [c[2] for c in counts]
        return float(np.average(scores, weights=support)) if sum(support) else 0.0
    return float(np.mean(scores))


# ----------------------------------------------------------------------------- entities (seqeval)
def _split_tag(chunk: str, suffix: bool) -> tuple[str, str]:
    if suffix:
        return chunk[-1], chunk[:-1].rsplit("-", maxsplit=1)[0] or "_"
    return chunk[0], chunk[1:].split("-", maxsplit=1)[-1] or "_"


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def get_entities(tags: Sequence, suffix: bool = False) -> list[tuple[str, int, int]]:
    """(type, first index, last index) of every entity in a tag sequence, conlleval-style.

    A list of sentences is read as one sequence with an "O" between sentences (so indices run on
    across sentences, as in seqeval). ``suffix=True`` reads tags like "PER-B".
    """
    tags = list(tags)
    if any(isinstance(t, (list, tuple)) for t in tags):
        tags = [t for sentence in tags for t in [*sentence, "O"]]
    chunks = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate([*tags, "O"]):
        if not isinstance(chunk, str) or not chunk:
            raise ValueError(f"tag {i} is {chunk!r}; tags must be non-empty strings")
        tag, type_ = _split_tag(chunk, suffix)
        if _end_of_chunk(prev_tag, tag, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def entity_scores(references: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]], *,
                  average: str | None = "micro", suffix: bool = False) -> dict:
    """Entity-level precision, recall, F1 and support, as ``seqeval``'s defaults compute them.

    references, predictions: lists of sentences of tags (same lengths). An entity counts as found
    only when its type and both boundaries match. average: "micro" (default: pooled counts),
    "macro", "weighted" or None. Returns {"precision", "recall", "f1", "number"} plus, under
    "per_type", the same for each entity type (sorted by name). With average "macro"/"weighted" and
    no entity in either list the averages are nan, as in seqeval.
    """
    references, predictions = list(references), list(predictions)
    if len(references) != len(predictions):
        raise ValueError(f"{len(predictions)} predicted sentences for {len(references)} reference sentences")
    for i, (r, p) in enumerate(zip(references, predictions)):
        if len(r) != len(p):
            raise ValueError(f"sentence {i}: {len(p)} predicted tags for {len(r)} reference tags")
    if average not in (None, "micro", "macro", "weighted"):
        raise ValueError(f"average must be 'micro', 'macro', 'weighted' or None, got {average!r}")
    true, pred = defaultdict(set), defaultdict(set)
    for kind, start, end in get_entities(references, suffix):
        true[kind].add((start, end))
    for kind, start, end in get_entities(predictions, suffix):
        pred[kind].add((start, end))
    per_type = {}
    for kind in sorted(set(true) | set(pred)):
        tp = len(true[kind] & pred[kind])
        p, r, f = _prf(tp, len(pred[kind]), len(true[kind]))
        per_type[kind] = {"precision": p, "recall": r, "f1": f, "number": len(true[kind]),
                          "tp": tp, "predicted": len(pred[kind])}
    number = sum(v["number"] for v in per_type.values())
    if average in ("micro", None):
        tp = sum(v["tp"] for v in per_type.values())
        predicted = sum(v["predicted"] for v in per_type.values())
        p, r, f = _prf(tp, predicted, number)
    else:
        weights = None if average == "macro" else [v["number"] for v in per_type.values()]
        if average == "weighted" and per_type and not number:
            p = r = f = 0.0
        elif not per_type:
            p = r = f = float("nan")
        else:
            p, r, f = (float(np.average([v[k] for v in per_type.values()], weights=weights))
                       for k in ("precision", "recall", "f1"))
    return {"precision": p, "recall": r, "f1": f, "number": number, "per_type": per_type}


# ----------------------------------------------------------------------------- SQuAD
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """The official SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def squad_exact_match(prediction: str, ground_truth: str) -> bool:
    """v1.1 exact match: the normalised strings are equal."""
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def squad_f1(prediction: str, ground_truth: str) -> float:
    """v1.1 token F1 between the normalised answers (0 when nothing is shared)."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _gold_of(examples) -> dict[str, list[str]]:
    """qid -> gold answer texts, from QAExamples, SQuAD JSON (dict or article list) or a mapping."""
    if isinstance(examples, Mapping) and "data" in examples:
        examples = examples["data"]
    if isinstance(examples, Mapping):
        return {k: list(v) for k, v in examples.items()}
    gold: dict[str, list[str]] = {}
    for item in examples:
        if isinstance(item, Mapping) and "paragraphs" in item:  # a SQuAD article
            for paragraph in item["paragraphs"]:
                for qa in paragraph["qas"]:
                    answers = [] if qa.get("is_impossible") else qa.get("answers", [])
                    gold[qa["id"]] = [a["text"] for a in answers]
        else:  # a QAExample
            gold[item.id] = list(item.answer_texts)
    return gold


def squad_evaluate(examples, predictions: Mapping[str, str]) -> dict[str, float]:
    """The official SQuAD v1.1 evaluation: {"exact_match": %, "f1": %} over every question.

    examples: QAExamples (:func:`read_squad`), the SQuAD JSON ``data`` list, or {qid: [gold texts]}.
    predictions: {qid: answer text}. A question without a prediction scores 0 (the script warns).
    """
    gold = _gold_of(examples)
    if not gold:
        raise ValueError("no questions to evaluate")
    exact = f1_total = 0.0
    missing = [qid for qid in gold if qid not in predictions]
    if missing:
        warnings.warn(f"{len(missing)} unanswered question(s) score 0 (first: {missing[0]})")
    for qid, answers in gold.items():
        if qid not in predictions:
            continue
        if not answers:
            raise ValueError(f"question {qid} has no gold answer; SQuAD v1.1 needs one (use squad_v2_evaluate)")
        prediction = predictions[qid]
        exact += max(squad_exact_match(prediction, a) for a in answers)
        f1_total += max(squad_f1(prediction, a) for a in answers)
    return {"exact_match": 100.0 * exact / len(gold), "f1": 100.0 * f1_total / len(gold)}


def _v2_tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def _v2_exact(gold: str, prediction: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(prediction))


def _v2_f1(gold: str, prediction: str) -> float:
    gold_tokens, pred_tokens = _v2_tokens(gold), _v2_tokens(prediction)
    if not gold_tokens or not pred_tokens:
        return float(gold_tokens == pred_tokens)  # no-answer: 1 if both are empty
    same = sum((Counter(gold_tokens) & Counter(pred_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _best_threshold(predictions, scores, na_probs, has_answer):
    score = best = sum(1 for qid in scores if not has_answer[qid])
    threshold = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            diff = scores[qid]
        else:
            diff = -1 if predictions[qid] else 0
        score += diff
        if score > best:
            best, threshold = score, na_probs[qid]
    return 100.0 * best / len(scores), threshold


def squad_v2_evaluate(examples, predictions: Mapping[str, str], no_answer_probs: Mapping[str, float] | None = None,
                      no_answer_threshold: float = 1.0) -> dict[str, float]:
    """The official SQuAD v2.0 evaluation.

    predictions: {qid: answer text}, "" for "no answer". no_answer_probs: {qid: P(no answer)}
    (default all 0); a question whose probability exceeds ``no_answer_threshold`` counts as answered
    with "". Returns exact, f1, total, and HasAns_/NoAns_ exact, f1, total where such questions exist;
    with no_answer_probs also best_exact, best_exact_thresh, best_f1, best_f1_thresh.
    Deviation: the official script crashes on a missing prediction; here it scores 0 (with a warning).
    """
    gold = _gold_of(examples)
    if not gold:
        raise ValueError("no questions to evaluate")
    missing = [qid for qid in gold if qid not in predictions]
    if missing:
        warnings.warn(f"{len(missing)} unanswered question(s) score 0 (first: {missing[0]})")
    predictions = {qid: predictions.get(qid, None) for qid in gold}
    has_answer = {qid: bool([a for a in answers if normalize_answer(a)]) for qid, answers in gold.items()}
    exact_raw, f1_raw = {}, {}
    for qid, answers in gold.items():
        answers = [a for a in answers if normalize_answer(a)] or [""]
        prediction = predictions[qid]
        if prediction is None:
            exact_raw[qid], f1_raw[qid] = 0, 0.0
            continue
        exact_raw[qid] = max(_v2_exact(a, prediction) for a in answers)
        f1_raw[qid] = max(_v2_f1(a, prediction) for a in answers)
    probs = {qid: 0.0 for qid in gold} if no_answer_probs is None else dict(no_answer_probs)
    lacking = [qid for qid in gold if qid not in probs]
    if lacking:
        raise ValueError(f"no_answer_probs lacks {len(lacking)} question(s) (first: {lacking[0]})")

    def thresholded(raw):
        return {qid: float(not has_answer[qid]) if probs[qid] > no_answer_threshold else s for qid, s in raw.items()}

    exact, f1_scores = thresholded(exact_raw), thresholded(f1_raw)

    def summary(ids):
        return (100.0 * sum(exact[k] for k in ids) / len(ids), 100.0 * sum(f1_scores[k] for k in ids) / len(ids),
                len(ids))

    out: dict[str, float] = {}
    out["exact"], out["f1"], out["total"] = summary(list(gold))
    for name, ids in (("HasAns", [k for k in gold if has_answer[k]]), ("NoAns", [k for k in gold if not has_answer[k]])):
        if ids:
            out[f"{name}_exact"], out[f"{name}_f1"], out[f"{name}_total"] = summary(ids)
    if no_answer_probs is not None:
        preds = {k: (v or "") for k, v in predictions.items()}
        out["best_exact"], out["best_exact_thresh"] = _best_threshold(preds, exact_raw, probs, has_answer)
        out["best_f1"], out["best_f1_thresh"] = _best_threshold(preds, f1_raw, probs, has_answer)
    return out


__all__ = ["accuracy", "entity_scores", "f1", "get_entities", "normalize_answer", "squad_evaluate",
           "squad_exact_match", "squad_f1", "squad_v2_evaluate"]
