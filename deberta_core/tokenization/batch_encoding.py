"""``BatchEncoding``: the dict a tokenizer call returns, plus per-token alignment helpers.

It behaves like the reference's class of the same name: a dict of model inputs
(``input_ids``, ``token_type_ids``, ``attention_mask``, ...) with attribute access, optional
conversion to PyTorch, TensorFlow or numpy tensors, and, for fast tokenizers, ``word_ids()``,
``sequence_ids()``, ``char_to_token()`` and friends. Frameworks are imported only when a tensor
of that kind is requested.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TENSOR_TYPES = ("pt", "tf", "np")


def check_tensor_type(tensor_type) -> str | None:
    """Validate a ``return_tensors`` value; return it as a short name or None."""
    if tensor_type is None:
        return None
    name = getattr(tensor_type, "value", tensor_type)  # accept enums whose value is the name
    if name not in TENSOR_TYPES:
        raise ValueError(f"return_tensors must be one of 'pt', 'tf', 'np' or None, got {tensor_type!r}")
    return name


def _check_rectangular(key: str, value) -> None:
    # A clear message instead of the framework's own (numpy: "inhomogeneous shape" ...).
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple)):
        lengths = {len(v) for v in value}
        if len(lengths) > 1:
            raise ValueError(
                f"cannot make a tensor of {key!r}: rows have different lengths {sorted(lengths)}; "
                "pass padding=True (and truncation=True if inputs can be longer than max_length)")


def to_tensor(key: str, value, tensor_type: str):
    """Convert a (nested) list to a tensor of ``tensor_type`` ("pt", "tf" or "np")."""
    _check_rectangular(key, value)
    if tensor_type == "np":
        return np.asarray(value)
    if tensor_type == "pt":
        import torch  # only when PyTorch tensors are asked for

        return torch.tensor(value)
    import tensorflow as tf  # only when TensorFlow tensors are asked for

    return tf.constant(value)


class BatchEncoding(dict):
    """Model inputs for one call, as a dict, with alignment helpers for fast tokenizers.

    Keys hold one list per output sequence (or a single list when the input was one text and
    no batch axis was asked for). ``rows`` are the packed sequences from
    :mod:`deberta_core.tokenization.packing`, used for ``word_ids()`` and the like.
    """

    def __init__(self, data: dict[str, Any] | None = None, *, rows=None, id_to_token=None,
                 is_fast: bool = False, tensor_type=None, prepend_batch_axis: bool = False):
        super().__init__(data or {})
        self._rows = rows or []
        self._id_to_token = id_to_token
        self._is_fast = is_fast
        self._has_batch_axis = True
        if tensor_type is not None:
            self.convert_to_tensors(tensor_type, prepend_batch_axis=prepend_batch_axis)

    # ---------------------------------------------------------------- dict-like access
    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getstate__(self):
        # Rows (lazy offsets/word ids) hold tokenizer references; they are not pickled.
        return {"data": dict(self), "is_fast": self._is_fast}

    def __setstate__(self, state):
        self.update(state["data"])
        self._rows, self._is_fast, self._id_to_token = [], state["is_fast"], None
        self._has_batch_axis = True

    @property
    def data(self) -> dict[str, Any]:
        """The plain dict of model inputs."""
        return dict(self)

    @property
    def is_fast(self) -> bool:
        """True when produced by a fast tokenizer (offsets and word ids available)."""
        return self._is_fast

    @property
    def n_sequences(self) -> int | None:
        """1 or 2: how many texts (single or pair) built the first sequence."""
        if not self._rows:
            return None
        return 1 if self._rows[0].b is None else 2

    # ---------------------------------------------------------------- tensors
    def convert_to_tensors(self, tensor_type=None, prepend_batch_axis: bool = False) -> "BatchEncoding":
        """Convert every value to tensors of ``tensor_type`` ("pt", "tf" or "np") in place."""
        tensor_type = check_tensor_type(tensor_type)
        if tensor_type is None:
            return self
        for key, value in list(self.items()):
            if prepend_batch_axis:
                value = [value]
            self[key] = to_tensor(key, value, tensor_type)
        return self

    def to(self, device) -> "BatchEncoding":
        """Move PyTorch tensors to ``device`` (a string, int or torch.device); returns self."""
        for key, value in list(self.items()):
            if hasattr(value, "to") and callable(value.to):
                self[key] = value.to(device=device)
        return self

    # ---------------------------------------------------------------- alignment (fast only)
    def _row(self, batch_index: int):
        if not self._is_fast:
            raise ValueError(
                "word_ids(), sequence_ids(), tokens() and the char/token/word mappings are only "
                "available from fast tokenizers (DebertaTokenizerFast, DebertaV2TokenizerFast)")
        if not self._rows:
            raise ValueError("this BatchEncoding holds no sequences")
        return self._rows[batch_index]

    def _split_index(self, batch_or_index: int, index: int | None) -> tuple[int, int]:
        if index is None:
            if len(self._rows) > 1:
                raise ValueError("this BatchEncoding holds several sequences: pass the batch index too")
            return 0, batch_or_index
        return batch_or_index, index

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        """Word index of every token of sequence ``batch_index`` (None for special and pad tokens)."""
        return self._row(batch_index).word_ids()

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        """0/1 (first/second text) for every token (None for special and pad tokens)."""
        return self._row(batch_index).sequence_ids()

    def tokens(self, batch_index: int = 0) -> list[str]:
        """The token strings of sequence ``batch_index``, padding included."""
        row = self._row(batch_index)
        return [self._id_to_token(i) for i in row.input_ids]

    def offsets(self, batch_index: int = 0) -> list[tuple[int, int]]:
        """(start, end) character span of every token ((0, 0) for special and pad tokens)."""
        return self._row(batch_index).offsets()

    def token_to_sequence(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        """Which text (0 or 1) a token comes from; None for special and pad tokens."""
        b, t = self._split_index(batch_or_token_index, token_index)
        return self.sequence_ids(b)[t]

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        """The word index of a token; None for special and pad tokens."""
        b, t = self._split_index(batch_or_token_index, token_index)
        return self.word_ids(b)[t]

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None):
        """The (start, end) character span of a token, or None for special and pad tokens."""
        b, t = self._split_index(batch_or_token_index, token_index)
        if self.sequence_ids(b)[t] is None:
            return None
        return self.offsets(b)[t]

    def char_to_token(self, batch_or_char_index: int, char_index: int | None = None,
                      sequence_index: int = 0) -> int | None:
        """Index of the token covering character ``char_index`` of text ``sequence_index``.

        Returns None when that character belongs to no token (e.g. a space).
        """
        b, c = self._split_index(batch_or_char_index, char_index)
        for t, (seq, (start, end)) in enumerate(zip(self.sequence_ids(b), self.offsets(b))):
            if seq == sequence_index and start <= c < end:
                return t
        return None

    def word_to_tokens(self, batch_or_word_index: int, word_index: int | None = None,
                       sequence_index: int = 0) -> tuple[int, int] | None:
        """[start, end) token span of a word of text ``sequence_index``, or None if absent."""
        b, w = self._split_index(batch_or_word_index, word_index)
        hits = [t for t, (seq, word) in enumerate(zip(self.sequence_ids(b), self.word_ids(b)))
                if seq == sequence_index and word == w]
        return (hits[0], hits[-1] + 1) if hits else None
