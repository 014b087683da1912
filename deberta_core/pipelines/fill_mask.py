"""``pipeline("fill-mask")``: the most likely tokens for each [MASK] of a text."""

from __future__ import annotations

import numpy as np

from ..tasks.postprocess import softmax
from .base import Pipeline, logger


class FillMaskPipeline(Pipeline):
    """Predict the masked token(s) with a ``...ForMaskedLM`` model.

    ``pipe("Paris is the [MASK] of France.", top_k=5, targets=None)`` returns, per text, a list of
    {"score", "token", "token_str", "sequence"} (best first); a text with several masks gives one
    such list per mask. ``targets`` (a string or a list) restricts the candidates; a target that is
    not a vocabulary token is replaced by the first token it tokenizes to. A list of texts gives a
    list of results (a list of one text gives that text's result, as in transformers).
    """

    task = "fill-mask"
    head = "masked_lm"
    _token_outputs = ("logits",)
    _parameters = ("top_k", "targets", "tokenizer_kwargs")

    def _check_parameters(self, params):
        top_k = params.get("top_k", 5)
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        if self.tokenizer.mask_token_id is None:
            raise ValueError("the tokenizer defines no mask token; fill-mask needs one")

    def _target_ids(self, targets) -> np.ndarray:
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, (list, tuple)) or not all(isinstance(t, str) for t in targets):
            raise ValueError(f"targets must be a string or a list of strings, got {targets!r}")
        vocab = self.tokenizer.get_vocab()
        ids = []
        for target in targets:
            index = vocab.get(target)
            if index is None:
                pieces = self.tokenizer(target, add_special_tokens=False, return_attention_mask=False,
                                        return_token_type_ids=False, max_length=1, truncation=True)["input_ids"]
                if not pieces:
                    logger.warning("target %r tokenizes to nothing; ignoring it", target)
                    continue
                index = pieces[0]
                logger.warning("target %r is not in the vocabulary; using %r", target,
                               self.tokenizer.convert_ids_to_tokens(index))
            ids.append(index)
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise ValueError("none of the targets maps to a token; pass at least one usable target")
        return np.array(ids)

    def __call__(self, inputs, **kwargs):
        params = self._params(kwargs)
        top_k = params.get("top_k", 5)
        target_ids = self._target_ids(params["targets"]) if params.get("targets") is not None else None
        single = isinstance(inputs, str)
        texts = [inputs] if single else inputs
        if not isinstance(texts, (list, tuple)):
            raise ValueError(f"fill-mask takes a string or a list of strings, got {type(inputs).__name__}")
        if not texts:
            return []
        texts = [self._check_text(t, f"input {i}") for i, t in enumerate(texts)]
        encoded = self.tokenizer(list(texts), **(params.get("tokenizer_kwargs") or {}))
        mask_id = self.tokenizer.mask_token_id
        rows = [self._model_row(encoded, i) for i in range(len(texts))]
        for text, row in zip(texts, rows):
            if mask_id not in row["input_ids"]:
                raise ValueError(f"no mask token ({self.tokenizer.mask_token}) in the input {text!r}")
        outputs = self._forward_rows(rows)
        results = [self._postprocess(row["input_ids"], out["logits"], top_k, target_ids)
                   for row, out in zip(rows, outputs)]
        if single or len(results) == 1:
            return results[0]
        return results

    def _postprocess(self, input_ids, logits, top_k, target_ids):
        input_ids = np.asarray(input_ids)
        if target_ids is not None:
            top_k = min(top_k, len(target_ids))
        masked = np.nonzero(input_ids == self.tokenizer.mask_token_id)[0]
        probs = softmax(logits[masked])
        if target_ids is not None:
            probs = probs[:, target_ids]
        single_mask = len(masked) == 1
        out = []
        for i, row in enumerate(probs):
            best = np.argsort(-row, kind="stable")[:top_k]
            proposals = []
            for p in best.tolist():
                token = int(target_ids[p]) if target_ids is not None else p
                tokens = input_ids.copy()
                tokens[masked[i]] = token
                tokens = tokens[tokens != self.tokenizer.pad_token_id]
                proposals.append({"score": float(row[p]), "token": token,
                                  "token_str": self.tokenizer.decode([token]),
                                  "sequence": self.tokenizer.decode(tokens, skip_special_tokens=single_mask)})
            out.append(proposals)
        return out[0] if single_mask else out
