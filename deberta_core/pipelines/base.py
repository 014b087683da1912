"""What every pipeline shares: parameter defaults, batching with padding, the progress bar.

A task pipeline turns its inputs into rows (one tokenized sequence each, as lists of ids), calls
:meth:`Pipeline._forward_rows`, and post-processes the per-row numpy outputs. Rows are sorted by
length, cut into batches of ``batch_size``, right-padded to the longest row of their batch, run
through the framework runner, and put back in their original order with padding removed from
token-level outputs; the models give padded and unpadded inputs the same numbers, so batching does
not change results.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

logger = logging.getLogger("deberta_core.pipelines")

# Inputs with at least this many batches show a progress bar unless progress_bar=False.
PROGRESS_MIN_BATCHES = 16


class Pipeline:
    """Base class: holds the runner, the tokenizer, batching settings and default call parameters.

    Subclasses set ``task``, ``head`` and ``_token_outputs`` (outputs with a token axis) and
    implement ``__call__``; ``_check_parameters`` validates call parameters (also the defaults given
    to :func:`deberta_core.pipelines.pipeline`).
    """

    task = ""
    head = ""
    _token_outputs: tuple[str, ...] = ()
    _parameters: tuple[str, ...] = ()

    def __init__(self, runner, tokenizer, *, framework: str, batch_size: int = 8, progress_bar: bool | None = None,
                 **defaults):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.runner = runner
        self.model = runner.model
        self.config = runner.config
        self.tokenizer = tokenizer
        self.framework = framework
        self.batch_size = batch_size
        self.progress_bar = progress_bar
        unknown = sorted(set(defaults) - set(self._parameters))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for the {self.task} pipeline "
                             f"(it takes {sorted(self._parameters)})")
        self._check_parameters(dict(defaults))
        self._defaults = defaults

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(model={type(self.model).__name__}, framework={self.framework!r}, "
                f"batch_size={self.batch_size})")

    # ------------------------------------------------------------------ parameters
    def _params(self, kwargs: dict) -> dict:
        unknown = sorted(set(kwargs) - set(self._parameters))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown} for the {self.task} pipeline "
                             f"(it takes {sorted(self._parameters)})")
        params = {**self._defaults, **kwargs}
        self._check_parameters(params)
        return params

    def _check_parameters(self, params: dict) -> None:
        """Raise ValueError for a bad parameter value (subclasses)."""

    # ------------------------------------------------------------------ running
    def _pad_batch(self, rows: Sequence[dict[str, list[int]]]) -> dict[str, np.ndarray]:
        width = max(len(r["input_ids"]) for r in rows)
        fills = {"input_ids": self.tokenizer.pad_token_id, "attention_mask": 0,
                 "token_type_ids": getattr(self.tokenizer, "pad_token_type_id", 0)}
        batch = {}
        for key in rows[0]:
            if key not in fills:
                continue
            array = np.full((len(rows), width), fills[key], dtype=np.int64)
            for i, row in enumerate(rows):
                array[i, :len(row[key])] = row[key]
            batch[key] = array
        if "attention_mask" not in batch:
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for i, row in enumerate(rows):
                mask[i, :len(row["input_ids"])] = 1
            batch["attention_mask"] = mask
        return batch

    def _forward_rows(self, rows: Sequence[dict[str, list[int]]]) -> list[dict[str, np.ndarray]]:
        """Run the model on every row; one dict of numpy outputs per row, in the rows' order."""
        if not rows:
            return []
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]), reverse=True)
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        show = self.progress_bar if self.progress_bar is not None else len(batches) >= PROGRESS_MIN_BATCHES
        results: list[dict[str, np.ndarray] | None] = [None] * len(rows)
        progress = None
        if show:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(rows), desc=self.task, unit="seq")
        try:
            for indices in batches:
                outputs = self.runner(self._pad_batch([rows[i] for i in indices]))
                for position, index in enumerate(indices):
                    length = len(rows[index]["input_ids"])
                    results[index] = {name: value[position, :length] if name in self._token_outputs else value[position]
                                      for name, value in outputs.items()}
                if progress is not None:
                    progress.update(len(indices))
        finally:
            if progress is not None:
                progress.close()
        return results  # type: ignore[return-value]

    def _model_row(self, encoding: dict, index: int | None = None) -> dict[str, list[int]]:
        """The model inputs of one tokenizer row (``index`` into batched outputs)."""
        names = [n for n in ("input_ids", "token_type_ids", "attention_mask") if n in encoding]
        if index is None:
            return {n: list(encoding[n]) for n in names}
        return {n: list(encoding[n][index]) for n in names}

    @staticmethod
    def _check_text(text: Any, what: str = "input") -> str:
        if not isinstance(text, str):
            raise ValueError(f"{what} must be a string, got {type(text).__name__}")
        if not text.strip():
            raise ValueError(f"{what} is an empty string")
        return text
