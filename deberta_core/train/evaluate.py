"""Evaluation for deberta-train: run a framework's predict function over the eval split, score with
deberta_core.tasks (metrics and SQuAD post-processing), and the trivial baselines quoted beside it.

* classification: accuracy and macro F1 (scikit-learn's definitions) of the argmax class;
* NER: entity-level precision / recall / F1 as seqeval computes them (micro average), from the label of
  each word's first sub-token (words cut off by --max-length count as "O");
* QA: SQuAD v1.1 exact match / F1 (v2.0 exact / f1 when the data has unanswerable questions) of the
  answers :func:`deberta_core.tasks.squad_predictions` decodes from the windows' logits.

Each also reports ``loss``: the head's loss on the eval split (the same rules as training), in numpy.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from typing import Callable

import numpy as np

from ..tasks import accuracy, entity_scores, f1, squad_evaluate, squad_predictions, squad_v2_evaluate
from ..tasks.features import IGNORE_INDEX
from .data import TaskData, eval_batches

OUTPUT_NAMES = {"classification": ("logits",), "ner": ("logits",), "qa": ("start_logits", "end_logits")}


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def predict_split(data: TaskData, predict: Callable[[dict], dict], batch_size: int) -> dict[str, list[np.ndarray]]:
    """Per-row outputs (token axes cut to the row's length) of ``predict`` over the eval split, in row order."""
    split = data.eval
    names = OUTPUT_NAMES[data.task]
    out = {name: [None] * len(split) for name in names}
    inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in split.features]
    for rows, batch in eval_batches(split, batch_size, data.pad_token_id):
        outputs = predict({k: batch[k] for k in inputs})
        for name in names:
            values = np.asarray(outputs[name], dtype=np.float32)
            for j, row in enumerate(rows):
                n = len(split.features["input_ids"][row])
                out[name][row] = values[j] if data.task == "classification" else values[j, :n]
    return out


def score(data: TaskData, outputs: dict[str, list[np.ndarray]]) -> dict[str, float]:
    """The task's metrics (and eval loss) from per-row outputs."""
    split = data.eval
    if data.task == "classification":
        logits = np.stack(outputs["logits"])
        labels = np.asarray(split.features["labels"])
        predictions = logits.argmax(-1)
        loss = float(-_log_softmax(logits)[np.arange(len(labels)), labels].mean())
        return {"accuracy": accuracy(predictions, labels), "macro_f1": f1(predictions, labels, average="macro"),
                "loss": loss}
    if data.task == "ner":
        total, count = 0.0, 0
        references, predictions = [], []
        for row, (logits, example) in enumerate(zip(outputs["logits"], split.examples)):
            labels = np.asarray(split.features["labels"][row])
            keep = labels != IGNORE_INDEX
            if keep.any():
                total += float(-_log_softmax(logits[keep])[np.arange(keep.sum()), labels[keep]].sum())
                count += int(keep.sum())
            words = ["O"] * len(example.words)
            seen = set()
            for position, word in enumerate(split.extra[row][:len(logits)]):
                if word is not None and word not in seen:
                    seen.add(word)
                    words[word] = data.id2label[int(logits[position].argmax())]
            references.append(list(example.tags))
            predictions.append(words)
        scores = entity_scores(references, predictions)
        return {"precision": scores["precision"], "recall": scores["recall"], "f1": scores["f1"],
                "loss": total / max(count, 1)}
    features = split.extra
    width = max(len(s) for s in outputs["start_logits"])
    start = np.full((len(features), width), -1e4, dtype=np.float32)
    end = np.full((len(features), width), -1e4, dtype=np.float32)
    for row, (s, e) in enumerate(zip(outputs["start_logits"], outputs["end_logits"])):
        start[row, :len(s)], end[row, :len(e)] = s, e
    positions = (np.asarray(features.start_positions), np.asarray(features.end_positions))
    rows = np.arange(len(features))
    loss = float((-_log_softmax(start)[rows, positions[0]] - _log_softmax(end)[rows, positions[1]]).mean() / 2)
    predictions, _ = squad_predictions(split.examples, features, start, end, version_2=data.version_2)
    if data.version_2:
        result = squad_v2_evaluate(split.examples, predictions)
        return {"exact_match": result["exact"], "f1": result["f1"], "loss": loss}
    result = squad_evaluate(split.examples, predictions)
    return {"exact_match": result["exact_match"], "f1": result["f1"], "loss": loss}


def evaluate(data: TaskData, predict: Callable[[dict], dict], batch_size: int) -> dict[str, float]:
    return score(data, predict_split(data, predict, batch_size))


# ----------------------------------------------------------------------------- baselines
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def first_sentence(context: str) -> str:
    return _SENTENCE_END.split(context.strip(), maxsplit=1)[0]


def baselines(data: TaskData) -> dict[str, dict[str, float]]:
    """Trivial predictors on the eval split, scored like the model."""
    split = data.eval
    if data.task == "classification":
        majority = Counter(data.train.features["labels"]).most_common(1)[0][0]
        labels = list(split.features["labels"])
        predictions = [majority] * len(labels)
        return {f"majority class ({data.id2label[majority]})": {
            "accuracy": accuracy(predictions, labels), "macro_f1": f1(predictions, labels, average="macro")}}
    if data.task == "ner":
        references = [list(e.tags) for e in split.examples]
        scores = entity_scores(references, [["O"] * len(t) for t in references])
        return {"all O": {"precision": scores["precision"], "recall": scores["recall"], "f1": scores["f1"]}}
    out = {}
    evaluate_fn = squad_v2_evaluate if data.version_2 else squad_evaluate
    for name, answer in (("empty answer", lambda e: ""), ("first sentence", lambda e: first_sentence(e.context))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = evaluate_fn(split.examples, {e.id: answer(e) for e in split.examples})
        out[name] = {"exact_match": result.get("exact_match", result.get("exact")), "f1": result["f1"]}
    return out


__all__ = ["baselines", "evaluate", "first_sentence", "predict_split", "score"]
