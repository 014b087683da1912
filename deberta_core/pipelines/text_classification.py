"""``pipeline("text-classification")`` (alias "sentiment-analysis"): labels for texts and text pairs."""

from __future__ import annotations

import numpy as np

from ..tasks.postprocess import sigmoid, softmax
from .base import Pipeline

FUNCTIONS = ("softmax", "sigmoid", "none")


def default_function(config) -> str:
    """transformers' rule: regression -> none; multi-label or one label -> sigmoid; else softmax."""
    problem = getattr(config, "problem_type", None)
    if problem == "regression":
        return "none"
    if problem == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    return "softmax"


def apply_function(logits: np.ndarray, function: str) -> np.ndarray:
    if function == "softmax":
        return softmax(logits)
    if function == "sigmoid":
        return sigmoid(logits)
    return logits


def check_function(function) -> str | None:
    if function is None:
        return None
    name = getattr(function, "value", function)
    if not isinstance(name, str) or name.lower() not in FUNCTIONS:
        raise ValueError(f"unknown function_to_apply {function!r}: expected one of {list(FUNCTIONS)}")
    return name.lower()


class TextClassificationPipeline(Pipeline):
    """Classify texts with a ``...ForSequenceClassification`` model.

    Inputs: a string, a pair as {"text": ..., "text_pair": ...}, or a list of either. Without
    ``top_k`` each input gives {"label", "score"} of the best class (a single string gives a list
    holding it, as in transformers); with ``top_k=k`` (None: all classes) a list of the k best,
    sorted. ``function_to_apply``: "softmax", "sigmoid" or "none" (default by the config: see
    :func:`default_function`). Other keyword arguments go to the tokenizer (e.g. truncation=True).
    """

    task = "text-classification"
    head = "sequence_classification"
    _parameters = ("top_k", "function_to_apply", "truncation", "max_length", "padding", "add_special_tokens")

    def _check_parameters(self, params):
        check_function(params.get("function_to_apply"))
        top_k = params.get("top_k", None)
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")

    def _pair(self, item, index: int) -> tuple[str, str | None]:
        if isinstance(item, str):
            return self._check_text(item, f"input {index}"), None
        if isinstance(item, dict):
            unknown = sorted(set(item) - {"text", "text_pair"})
            if "text" not in item or unknown:
                raise ValueError(f"input {index}: a text pair is a dict with the keys 'text' and 'text_pair', "
                                 f"got keys {sorted(item)}")
            pair = item.get("text_pair")
            return (self._check_text(item["text"], f"input {index} 'text'"),
                    None if pair is None else self._check_text(pair, f"input {index} 'text_pair'"))
        raise ValueError(f"input {index}: expected a string or a dict {{'text': ..., 'text_pair': ...}} "
                         f"(a text pair), got {type(item).__name__}")

    def __call__(self, inputs, **kwargs):
        legacy = "top_k" not in kwargs and "top_k" not in self._defaults
        params = self._params(kwargs)
        top_k = params.get("top_k", 1)
        function = check_function(params.get("function_to_apply")) or default_function(self.config)
        batched = isinstance(inputs, (list, tuple))
        items = list(inputs) if batched else [inputs]
        if not items:
            return []
        pairs = [self._pair(item, i) for i, item in enumerate(items)]
        tokenizer_kwargs = {k: params[k] for k in ("truncation", "max_length", "padding", "add_special_tokens")
                            if k in params}
        tokenizer_kwargs.pop("padding", None)  # rows are padded per batch
        rows: list = [None] * len(pairs)  # one tokenizer call per kind: singles and pairs may be mixed
        singles = [i for i, (_, p) in enumerate(pairs) if p is None]
        doubles = [i for i, (_, p) in enumerate(pairs) if p is not None]
        if singles:
            enc = self.tokenizer([pairs[i][0] for i in singles], **tokenizer_kwargs)
            for k, i in enumerate(singles):
                rows[i] = self._model_row(enc, k)
        if doubles:
            enc = self.tokenizer([pairs[i][0] for i in doubles], [pairs[i][1] for i in doubles], **tokenizer_kwargs)
            for k, i in enumerate(doubles):
                rows[i] = self._model_row(enc, k)
        outputs = self._forward_rows(rows)
        results = [self._postprocess(out["logits"], function, top_k, legacy) for out in outputs]
        if not batched:
            return [results[0]] if isinstance(inputs, str) and legacy else results[0]
        return results

    def _postprocess(self, logits, function, top_k, legacy):
        scores = apply_function(np.asarray(logits), function)
        id2label = self.config.id2label
        if legacy and top_k == 1:
            best = int(scores.argmax())
            return {"label": id2label[best], "score": float(scores[best])}
        out = [{"label": id2label[i], "score": float(s)} for i, s in enumerate(scores)]
        if not legacy:
            out.sort(key=lambda x: x["score"], reverse=True)
            if top_k is not None:
                out = out[:top_k]
        return out
