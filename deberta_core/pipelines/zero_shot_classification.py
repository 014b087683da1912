"""``pipeline("zero-shot-classification")``: rank candidate labels by NLI entailment."""

from __future__ import annotations

import numpy as np

from ..tasks.postprocess import softmax
from .base import Pipeline, logger


def entailment_id(config) -> int:
    """The class id whose label starts with "entail" (any case), or -1 (as transformers)."""
    for label, index in config.label2id.items():
        if label.lower().startswith("entail"):
            return int(index)
    return -1


def parse_labels(labels) -> list[str]:
    if isinstance(labels, str):
        labels = [label.strip() for label in labels.split(",") if label.strip()]
    if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) for x in labels):
        raise ValueError(f"candidate_labels must be a string (comma-separated) or a list of strings, got {labels!r}")
    labels = list(labels)
    for label in labels:
        if not label.strip():
            raise ValueError("a candidate label is an empty string")
    return labels


class ZeroShotClassificationPipeline(Pipeline):
    """Zero-shot classification with an NLI ``...ForSequenceClassification`` model.

    Each (sequence, hypothesis_template.format(label)) pair is classified; the entailment logit
    (the class whose config label starts with "entail") ranks the labels. ``multi_label=False``:
    softmax of the entailment logits over the labels; ``multi_label=True`` (or one label): each
    label on its own, softmax of entailment against contradiction. Returns {"sequence", "labels",
    "scores"} per sequence, labels sorted by score.
    """

    task = "zero-shot-classification"
    head = "sequence_classification"
    _parameters = ("candidate_labels", "hypothesis_template", "multi_label")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.entailment_id = entailment_id(self.config)
        if self.entailment_id == -1:
            logger.warning("no label of the model config starts with 'entail'; using the last class as entailment. "
                           "Set label2id in config.json to be sure.")

    def _check_parameters(self, params):
        template = params.get("hypothesis_template", "This example is {}.")
        if not isinstance(template, str) or template.format("x") == template:
            raise ValueError(f"hypothesis_template {template!r} must contain {{}} where the label goes")
        if "candidate_labels" in params:
            parse_labels(params["candidate_labels"])

    def __call__(self, sequences, *args, **kwargs):
        if args:
            if len(args) == 1 and "candidate_labels" not in kwargs:
                kwargs["candidate_labels"] = args[0]
            else:
                raise ValueError(f"unexpected positional arguments {args}; pass candidate_labels=")
        params = self._params(kwargs)
        labels = parse_labels(params.get("candidate_labels", []))
        if not labels:
            raise ValueError("zero-shot classification needs at least one candidate label")
        template = params.get("hypothesis_template", "This example is {}.")
        multi_label = bool(params.get("multi_label", False))
        single = isinstance(sequences, str)
        items = [sequences] if single else sequences
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"zero-shot-classification takes a string or a list of strings, got "
                             f"{type(sequences).__name__}")
        if not items:
            raise ValueError("zero-shot classification needs at least one sequence")
        items = [self._check_text(s, f"sequence {i}") for i, s in enumerate(items)]
        hypotheses = [template.format(label) for label in labels]
        firsts = [s for s in items for _ in labels]
        seconds = hypotheses * len(items)
        try:
            encoded = self.tokenizer(firsts, seconds, truncation="only_first")
        except ValueError as e:
            if "cannot truncate" not in str(e):
                raise
            encoded = self.tokenizer(firsts, seconds, truncation=False)
        rows = [self._model_row(encoded, r) for r in range(len(firsts))]
        outputs = self._forward_rows(rows)
        logits = np.stack([o["logits"] for o in outputs]).reshape(len(items), len(labels), -1)
        results = []
        for sequence, seq_logits in zip(items, logits):
            results.append(self._postprocess(sequence, labels, seq_logits, multi_label))
        return results[0] if single else results

    def _postprocess(self, sequence, labels, logits, multi_label):
        entail = self.entailment_id
        if multi_label or len(labels) == 1:
            contradiction = -1 if entail == 0 else 0
            scores = softmax(logits[:, [contradiction, entail]])[:, 1]
        else:
            scores = softmax(logits[:, entail])
        order = list(reversed(scores.argsort()))
        return {"sequence": sequence, "labels": [labels[i] for i in order],
                "scores": [float(scores[i]) for i in order]}
