"""``pipeline("token-classification")`` (alias "ner"): a label for each token, or grouped entities."""

from __future__ import annotations

from ..tasks.postprocess import (aggregate_entities, check_aggregation_strategy, gather_pre_entities,
                                 merge_overlapping_entities, softmax)
from .base import Pipeline


def _plain(entity: dict) -> dict:
    """numpy scalars -> Python numbers (the results are JSON-serialisable)."""
    out = {}
    for key, value in entity.items():
        if key == "score":
            value = float(value)
        elif key in ("start", "end", "index") and value is not None:
            value = int(value)
        out[key] = value
    return out


class TokenClassificationPipeline(Pipeline):
    """Tag tokens with a ``...ForTokenClassification`` model.

    ``pipe(text, aggregation_strategy="none", ignore_labels=["O"], stride=None)`` returns a list of
    entities per text: with "none" one per token {"entity", "score", "index", "word", "start",
    "end"}; with "simple", "first", "average" or "max" grouped ones {"entity_group", "score",
    "word", "start", "end"} (see deberta_core.tasks.postprocess). start/end are character offsets
    into the text; they never include the space before a word. Texts longer than the tokenizer's
    ``model_max_length`` are truncated, or with ``stride`` cut into overlapping windows whose
    entities are merged (needs an aggregation strategy other than "none"). ``is_split_into_words``
    takes a list of words (joined with ``delimiter``, default " ", for the offsets), or a list of such
    lists; either way the result is a list with one entity list per sentence (as in transformers).
    """

    task = "token-classification"
    head = "token_classification"
    _token_outputs = ("logits",)
    _parameters = ("aggregation_strategy", "ignore_labels", "stride", "is_split_into_words", "delimiter")

    def _check_parameters(self, params):
        strategy = check_aggregation_strategy(params.get("aggregation_strategy"))
        if strategy in ("first", "average", "max") and not self.tokenizer.is_fast:
            raise ValueError(f"aggregation_strategy={strategy!r} needs a fast tokenizer (word boundaries)")
        stride = params.get("stride")
        if stride is not None:
            if not isinstance(stride, int) or isinstance(stride, bool) or stride < 0:
                raise ValueError(f"stride must be a non-negative integer, got {stride!r}")
            if stride >= self.tokenizer.model_max_length:
                raise ValueError(f"stride ({stride}) must be smaller than the tokenizer's model_max_length "
                                 f"({self.tokenizer.model_max_length})")
            if strategy == "none":
                raise ValueError("stride splits long texts into windows, whose entities are merged; that needs an "
                                 "aggregation_strategy other than 'none'")
        labels = params.get("ignore_labels")
        if labels is not None and (isinstance(labels, str) or not all(isinstance(x, str) for x in labels)):
            raise ValueError(f"ignore_labels must be a list of label strings, got {labels!r}")

    def __call__(self, inputs, **kwargs):
        params = self._params(kwargs)
        strategy = check_aggregation_strategy(params.get("aggregation_strategy"))
        ignore = params.get("ignore_labels")
        ignore = ["O"] if ignore is None else list(ignore)
        stride = params.get("stride")
        split = bool(params.get("is_split_into_words", False))
        delimiter = params.get("delimiter") or " "
        if split:
            single = isinstance(inputs, (list, tuple)) and all(isinstance(w, str) for w in inputs)
            items = [list(inputs)] if single else list(inputs)
            for i, words in enumerate(items):
                if not isinstance(words, (list, tuple)) or not words or not all(isinstance(w, str) for w in words):
                    raise ValueError(f"input {i}: with is_split_into_words=True an input is a non-empty list of words")
                for w in words:
                    self._check_text(w, f"input {i}: a word")
        else:
            single = isinstance(inputs, str)
            items = [inputs] if single else inputs
            if not isinstance(items, (list, tuple)):
                raise ValueError(f"token-classification takes a string or a list of strings, got "
                                 f"{type(inputs).__name__}")
            items = [self._check_text(t, f"input {i}") for i, t in enumerate(items)]
        if not items:
            return []
        options = dict(truncation=True, return_special_tokens_mask=True, return_offsets_mapping=self.tokenizer.is_fast)
        if stride is not None:
            options.update(return_overflowing_tokens=True, stride=stride)
        encoded = self.tokenizer([list(w) for w in items] if split else list(items), is_split_into_words=split,
                                 **options)
        n_rows = len(encoded["input_ids"])
        samples = encoded["overflow_to_sample_mapping"] if stride is not None else list(range(n_rows))
        rows = [self._model_row(encoded, r) for r in range(n_rows)]
        outputs = self._forward_rows(rows)
        sentences, word_spans = [], []
        for words in items:
            if split:
                spans, position = [], 0
                for w in words:
                    spans.append((position, position + len(w)))
                    position += len(w) + len(delimiter)
                sentences.append(delimiter.join(words))
                word_spans.append(spans)
            else:
                sentences.append(words)
                word_spans.append(None)
        per_sample: list[list[dict]] = [[] for _ in items]
        windows = [0] * len(items)
        id2label = self.config.id2label
        for r, (row, out) in enumerate(zip(rows, outputs)):
            sample = samples[r]
            windows[sample] += 1
            scores = softmax(out["logits"])
            offsets = encoded["offset_mapping"][r] if "offset_mapping" in encoded else None
            pre = gather_pre_entities(
                sentences[sample], row["input_ids"], scores, offsets, encoded["special_tokens_mask"][r],
                self.tokenizer.convert_ids_to_tokens, unk_token_id=self.tokenizer.unk_token_id,
                word_ids=encoded.word_ids(r) if split else None, word_to_chars=word_spans[sample])
            entities = aggregate_entities(pre, strategy, id2label, self.tokenizer.convert_tokens_to_string)
            per_sample[sample].extend(e for e in entities
                                      if e.get("entity") not in ignore and e.get("entity_group") not in ignore)
        results = []
        for sample, entities in enumerate(per_sample):
            if windows[sample] > 1:
                entities = merge_overlapping_entities(entities)
            results.append([_plain(e) for e in entities])
        if split:
            return results  # one list of words is a batch of one, as in transformers
        return results[0] if single else results
