"""Turn encoded texts into model inputs: special tokens, truncation, overflow windows, padding.

This is the one place where ``[CLS] A [SEP] B [SEP]``, token types, special-token masks,
truncation and padding are decided; the slow and the fast tokenizers both call it, so they
cannot drift apart. The rules follow the reference slow tokenizers (transformers 4.57):

* single ``[CLS] A [SEP]`` with types 0; pair ``[CLS] A [SEP] B [SEP]`` with types 0 for
  ``[CLS] A [SEP]`` and 1 for ``B [SEP]``; without special tokens all types are 0.
* ``longest_first`` on a pair removes tokens from the longer sequence until both are equal,
  then alternately, the second sequence losing the odd one (the reference's arithmetic).
* With ``return_overflowing_tokens`` the truncated sequence is cut into windows that overlap by
  ``stride`` tokens, one output row per window (the fast reference's layout, which is what
  question answering on long contexts needs); ``overflow_to_sample_mapping`` says which input
  each row came from.
"""

from __future__ import annotations

TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")
PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")


class Encoded:
    """The tokens of one input text (or one pre-split word list) before special tokens.

    ids: token ids. ``offsets()`` gives (start, end) character spans in the input text and
    ``words()`` the word index of each token; fast tokenizers fill them, lazily where possible
    (``detail(detail_arg)`` is called once to return both; a function and its argument rather
    than a closure keep large batches cheap), slow tokenizers leave them unavailable.
    """

    __slots__ = ("ids", "_offsets", "_words", "_detail", "_detail_arg")

    def __init__(self, ids, offsets=None, words=None, detail=None, detail_arg=None):
        self.ids = ids
        self._offsets = offsets
        self._words = words
        self._detail = detail
        self._detail_arg = detail_arg

    def _load(self):
        if self._offsets is None and self._detail is not None:
            self._offsets, self._words = self._detail(self._detail_arg)
            self._detail = self._detail_arg = None

    def offsets(self) -> list[tuple[int, int]] | None:
        """Character spans of the tokens, or None for a slow tokenizer."""
        self._load()
        return self._offsets

    def words(self) -> list[int | None] | None:
        """Word index of each token, or None for a slow tokenizer."""
        self._load()
        return self._words


class Row:
    """One output sequence: its ids, plus what is needed to rebuild everything else on demand.

    ``a``/``b`` are the Encoded texts it was cut from (``b`` None for a single text), with the
    spans ``[a0, a1)``/``[b0, b1)`` it took; ``special`` says whether [CLS]/[SEP] were added,
    ``pad_left``/``pad_right`` count padding. Masks, token types, offsets, word ids and
    sequence ids are built only when asked for, which keeps large batches cheap.
    """

    __slots__ = ("input_ids", "a", "a0", "a1", "b", "b0", "b1", "special", "sample", "pad_left", "pad_right")

    def __init__(self, input_ids, a, a0, a1, b, b0, b1, special, sample):
        self.input_ids = input_ids
        self.a, self.a0, self.a1, self.b, self.b0, self.b1 = a, a0, a1, b, b0, b1
        self.special, self.sample = special, sample
        self.pad_left = self.pad_right = 0

    @property
    def n_a(self) -> int:
        return self.a1 - self.a0

    @property
    def n_b(self) -> int | None:
        return None if self.b is None else self.b1 - self.b0

    @property
    def parts(self) -> list[tuple]:
        """(encoded, start, stop, sequence index, position in the row) per text slice."""
        pos = self.pad_left + self.special
        parts = [(self.a, self.a0, self.a1, 0, pos)]
        if self.b is not None:
            parts.append((self.b, self.b0, self.b1, 1, pos + self.a1 - self.a0 + self.special))
        return parts

    def __len__(self) -> int:
        return len(self.input_ids)

    def _padded(self, body: list, fill) -> list:
        if self.pad_left:
            body[:0] = [fill] * self.pad_left
        if self.pad_right:
            body.extend([fill] * self.pad_right)
        return body

    def token_type_ids(self, pad_type_id: int = 0) -> list[int]:
        """0 for ``[CLS] A [SEP]``, 1 for ``B [SEP]``; all 0 without special tokens."""
        if self.n_b is None:
            body = [0] * (self.n_a + 2 * self.special)
        elif self.special:
            body = [0] * (self.n_a + 2) + [1] * (self.n_b + 1)
        else:
            body = [0] * (self.n_a + self.n_b)
        return self._padded(body, pad_type_id)

    def special_tokens_mask(self) -> list[int]:
        """1 for template special tokens and padding, 0 for text tokens."""
        if not self.special:
            body = [0] * (self.n_a + (self.n_b or 0))
        elif self.n_b is None:
            body = [1] + [0] * self.n_a + [1]
        else:
            body = [1] + [0] * self.n_a + [1] + [0] * self.n_b + [1]
        return self._padded(body, 1)

    def attention_mask(self) -> list[int]:
        """1 for real tokens, 0 for padding."""
        return self._padded([1] * (len(self.input_ids) - self.pad_left - self.pad_right), 0)

    def _spread(self, fill, getter):
        out = [fill] * len(self.input_ids)
        for enc, start, stop, seq, pos in self.parts:
            values = getter(enc, seq)
            if values is None:
                return None
            out[pos:pos + stop - start] = values[start:stop]
        return out

    def offsets(self):
        """(start, end) per token; (0, 0) for special and pad tokens. None for slow tokenizers."""
        return self._spread((0, 0), lambda enc, seq: enc.offsets())

    def word_ids(self):
        """Word index per token; None for special and pad tokens."""
        return self._spread(None, lambda enc, seq: enc.words())

    def sequence_ids(self):
        """0 or 1 (first or second text) per token; None for special and pad tokens."""
        return self._spread(None, lambda enc, seq: [seq] * len(enc.ids))


def truncate_pair(n_a: int, n_b: int | None, to_remove: int, strategy: str) -> tuple[int, int]:
    """How many tokens to remove from A and from B (B's count is 0 when there is no B).

    Raises ValueError when the chosen sequence is too short to lose ``to_remove`` tokens.
    """
    if strategy == "longest_first" and n_b is not None:
        # Remove from the longer one until both are equal, then split what is left; on an odd
        # count the second sequence loses one more (same arithmetic as the reference slow).
        first = min(abs(n_b - n_a), to_remove)
        second = to_remove - first
        if n_a > n_b:
            return first + second // 2, second - second // 2
        return second // 2, first + second - second // 2
    if strategy in ("longest_first", "only_first"):
        if n_a <= to_remove:
            raise ValueError(
                f"cannot truncate: {to_remove} tokens must go but the first sequence has only {n_a}; "
                "raise max_length or pick another truncation strategy (e.g. 'only_second')")
        return to_remove, 0
    if strategy == "only_second":
        if n_b is None:
            raise ValueError("truncation='only_second' needs a second sequence (text_pair)")
        if n_b <= to_remove:
            raise ValueError(
                f"cannot truncate: {to_remove} tokens must go but the second sequence has only {n_b}; "
                "raise max_length or pick another truncation strategy (e.g. 'only_first')")
        return 0, to_remove
    raise ValueError(f"unknown truncation strategy {strategy!r}")


def windows(n: int, room: int, stride: int, side: str) -> list[tuple[int, int]]:
    """Spans [start, stop) covering ``n`` tokens with at most ``room`` each, overlapping by ``stride``.

    The first span is the one ordinary truncation keeps (the head for side "right", the tail
    for "left"); later spans step by ``room - stride`` until the sequence is covered.
    """
    if n <= room:
        return [(0, n)]
    step = room - stride
    spans = []
    if side == "right":
        start = 0
        while True:
            stop = min(start + room, n)
            spans.append((start, stop))
            if stop == n:
                return spans
            start += step
    stop = n
    while True:
        start = max(stop - room, 0)
        spans.append((start, stop))
        if start == 0:
            return spans
        stop -= step


def _row(sample, a, span_a, b, span_b, add_special, cls_id, sep_id) -> Row:
    a0, a1 = span_a
    ids_a = a.ids if (a0 == 0 and a1 == len(a.ids)) else a.ids[a0:a1]
    if b is None:
        ids = [cls_id, *ids_a, sep_id] if add_special else list(ids_a)
        return Row(ids, a, a0, a1, None, 0, 0, add_special, sample)
    b0, b1 = span_b
    ids_b = b.ids[b0:b1]
    ids = [cls_id, *ids_a, sep_id, *ids_b, sep_id] if add_special else [*ids_a, *ids_b]
    return Row(ids, a, a0, a1, b, b0, b1, add_special, sample)


def build_rows(sample: int, a: Encoded, b: Encoded | None, *, add_special: bool, cls_id: int,
               sep_id: int, strategy: str, max_length: int | None, stride: int,
               overflow: bool, side: str) -> list[Row]:
    """All output rows for one input (one row unless overflow windows are requested).

    strategy: one of TRUNCATION_STRATEGIES; ``max_length`` counts special tokens.
    side: truncation side, "right" (drop the end) or "left" (drop the start).
    """
    n_a, n_b = len(a.ids), (None if b is None else len(b.ids))
    full_b = (0, n_b) if b is not None else None
    if strategy == "do_not_truncate" or max_length is None:
        return [_row(sample, a, (0, n_a), b, full_b, add_special, cls_id, sep_id)]
    n_special = (3 if b is not None else 2) if add_special else 0
    if max_length < n_special:
        raise ValueError(
            f"max_length={max_length} is smaller than the {n_special} special tokens this input needs "
            f"({'[CLS] A [SEP] B [SEP]' if b is not None else '[CLS] A [SEP]'})")
    to_remove = n_a + (n_b or 0) + n_special - max_length
    if to_remove <= 0:
        return [_row(sample, a, (0, n_a), b, full_b, add_special, cls_id, sep_id)]
    cut_a, cut_b = truncate_pair(n_a, n_b, to_remove, strategy)
    if not overflow:
        span_a = (0, n_a - cut_a) if side == "right" else (cut_a, n_a)
        span_b = None if b is None else ((0, n_b - cut_b) if side == "right" else (cut_b, n_b))
        return [_row(sample, a, span_a, b, span_b, add_special, cls_id, sep_id)]
    # Overflow: window the sequence being truncated (only one of them, checked by the caller).
    if cut_b:
        room = n_b - cut_b
        if stride >= room:
            raise ValueError(f"stride={stride} must be smaller than the {room} tokens left for the "
                             "second sequence in each window; lower stride or raise max_length")
        return [_row(sample, a, (0, n_a), b, span, add_special, cls_id, sep_id)
                for span in windows(n_b, room, stride, side)]
    room = n_a - cut_a
    if stride >= room:
        raise ValueError(f"stride={stride} must be smaller than the {room} tokens left for the "
                         "first sequence in each window; lower stride or raise max_length")
    return [_row(sample, a, span, b, full_b, add_special, cls_id, sep_id)
            for span in windows(n_a, room, stride, side)]


def pad_rows(rows: list[Row], target: int, pad_id: int, side: str) -> None:
    """Pad every row shorter than ``target`` in place (masks and types follow the counts)."""
    for row in rows:
        missing = target - len(row.input_ids)
        if missing <= 0:
            continue
        if side == "right":
            row.input_ids.extend([pad_id] * missing)
            row.pad_right += missing
        else:
            row.input_ids[:0] = [pad_id] * missing
            row.pad_left += missing
