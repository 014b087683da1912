"""SentencePiece's unigram search, reproduced in Python for the few texts where it matters.

The Rust unigram model and SentencePiece run the same dynamic programme (best segmentation,
left to right, first strictly better candidate wins), but SentencePiece sums scores in float32
over the whole sentence while the Rust model sums in float64 word by word. The two agree
except on exact ties, and exact ties happen in one structural way: a periodic run
("SSSSSSS", "hahahaha", "xoxoxoxo") can be covered by the same pieces in different orders
("SSS|S|SSS" vs "SSS|SSS|S"), whose scores are equal; SentencePiece's float32 rounding of the
running total then decides, differently from place to place.

:class:`TieDetector` spots a Rust segmentation where such a reordering is possible (two
different pieces of one period class side by side) from the ids alone; :class:`SpmUnigram` then redoes
the search exactly as SentencePiece does (float32, whole text).
"""

from __future__ import annotations

from itertools import chain

import numpy as np

from .spm_proto import NORMAL, USER_DEFINED, SpmModel

SPACE_MARK = "\u2581"
_UNK_PENALTY = np.float32(10.0)


def primitive_root(piece: str) -> str:
    """The shortest unit u with piece == u * k ("SSS" -> "S", "haha" -> "ha", "abc" -> "abc")."""
    period = (piece + piece).find(piece, 1)
    return piece[:period] if len(piece) % period == 0 else piece


def reorderable(pieces: list[str]) -> bool:
    """True when the same pieces, in another order, also spell ``"".join(pieces)``.

    Such a reordering has exactly the same score, so it is a tie ("d|abc|dab|cd" and
    "dab|cd|abc|d" both spell "dabcdabcd"). Depth-first search over the multiset.
    """
    text = "".join(pieces)
    # Another order must start and end with a different piece (else the tie is in a shorter
    # window, checked separately): a cheap test that rejects nearly every window.
    first, last = pieces[0], pieces[-1]
    if not any(p != first and text.startswith(p) for p in pieces) or \
            not any(p != last and text.endswith(p) for p in pieces):
        return False
    original = tuple(pieces)
    left: dict[str, int] = {}
    for piece in pieces:
        left[piece] = left.get(piece, 0) + 1
    chosen: list[str] = []

    def search(pos: int) -> bool:
        if pos == len(text):
            return tuple(chosen) != original
        for piece, count in left.items():
            if count and text.startswith(piece, pos):
                left[piece] = count - 1
                chosen.append(piece)
                if search(pos + len(piece)):
                    return True
                chosen.pop()
                left[piece] = count
        return False

    return search(0)


class TieDetector:
    """Finds Rust segmentations in which a run of pieces could be reordered at equal score.

    Two patterns, read off the ids of a whole batch at once with numpy: different powers of one
    unit side by side ("S|SSS", "ha|haha": two pieces spell the same text in both orders only
    when they are powers of one unit), and a window of three to ``WINDOW`` pieces that spells
    the same text in another order ("oxo|x|ox" and "ox|oxo|x", "d|abc|dab|cd"). Pieces that start with "▁" begin a word
    and never take part (no piece has "▁" inside, so ties cannot cross a word start).
    """

    WINDOW = 8

    def __init__(self, spm: SpmModel):
        size = len(spm.pieces)
        self.pieces = spm.pieces
        word_piece = np.array([k == NORMAL and p != "" and not p.startswith(SPACE_MARK)
                               for p, k in zip(spm.pieces, spm.types)])
        by_class: dict[str, list[int]] = {}
        for index in np.flatnonzero(word_piece).tolist():
            by_class.setdefault(primitive_root(self.pieces[index]), []).append(index)
        # Pieces that are powers of one unit ("S", "SSS") can swap places; number those classes
        # (-1 for "▁" pieces, special pieces and units with a single power in the vocabulary).
        self.class_of = np.full(size + 1, -1, dtype=np.int64)
        for number, ids in enumerate(ids for ids in by_class.values() if len(ids) > 1):
            self.class_of[ids] = number
        self.word_piece = np.append(word_piece, False)
        # First and last character of each word piece: another order of a window must begin
        # (end) with a different piece that has the same first (last) character.
        self.first = np.array([ord(p[0]) if w else -1 for p, w in zip(self.pieces, word_piece)] + [-1])
        self.last = np.array([ord(p[-1]) if w else -1 for p, w in zip(self.pieces, word_piece)] + [-1])

    def risky(self, batch: list[list[int]]) -> set[int]:
        """Indices of the id lists in ``batch`` that may differ from SentencePiece on a tie."""
        lengths = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch))
        total = int(lengths.sum())
        if total < 2:
            return set()
        flat = np.fromiter(chain.from_iterable(batch), dtype=np.int64, count=total)
        row = np.repeat(np.arange(len(batch)), lengths)
        same_row = row[1:] == row[:-1]
        cls = self.class_of[flat]
        pairs = (cls[1:] >= 0) & (cls[1:] == cls[:-1]) & (flat[1:] != flat[:-1]) & same_row
        found = set(row[1:][pairs].tolist())
        # Runs of word pieces: number them, then look for two different pieces of one run, at
        # most WINDOW - 1 apart, with the same first character and two with the same last one.
        # Work on the word pieces only (tokens of one run stay adjacent there).
        word = self.word_piece[flat]
        starts_run = word & ~np.append(False, word[:-1] & same_row)
        run_all = np.cumsum(starts_run)
        keep = np.flatnonzero(word)
        run = run_all[keep]
        ids = flat[keep]
        first, last = self.first[ids], self.last[ids]
        first_ok = np.zeros(keep.size, dtype=bool)
        last_ok = np.zeros(keep.size, dtype=bool)
        for gap in range(1, self.WINDOW):
            if gap >= keep.size:
                break
            together = (run[gap:] == run[:-gap]) & (ids[gap:] != ids[:-gap])
            first_ok[:-gap] |= together & (first[gap:] == first[:-gap])
            last_ok[:-gap] |= together & (last[gap:] == last[:-gap])
        candidates = np.intersect1d(run[first_ok], run[last_ok])
        if candidates.size:
            run_start = np.flatnonzero(starts_run)
            for number in candidates.tolist():
                start = int(run_start[number - 1])
                r = int(row[start])
                if r in found:
                    continue
                stop = start
                while stop < total and word[stop] and run_all[stop] == number:
                    stop += 1
                pieces = [self.pieces[i] for i in flat[start:stop].tolist()]
                if any(reorderable(pieces[i:j]) for i in range(len(pieces))
                       for j in range(i + 3, min(i + self.WINDOW, len(pieces)) + 1)):
                    found.add(r)
        return found


class SpmUnigram:
    """SentencePiece's optimized unigram Viterbi (``EncodeOptimized``), in float32.

    ``best_path(text)`` takes SentencePiece-normalised text (spaces already "▁", dummy prefix
    added) and returns (id, start, end) character spans; characters with no single-character
    piece get the unknown id (the caller applies byte fallback).
    """

    def __init__(self, spm: SpmModel):
        normal = [s for s, k in zip(spm.scores, spm.types) if k == NORMAL]
        max_score = np.float32(max(normal, default=0.0))
        self.pieces: dict[str, tuple[int, np.float32]] = {}
        for index, (piece, score, kind) in enumerate(zip(spm.pieces, spm.scores, spm.types)):
            if kind == NORMAL:
                self.pieces[piece] = (index, np.float32(score))
            elif kind == USER_DEFINED:
                # SentencePiece gives user-defined symbols a bonus so they always win.
                self.pieces[piece] = (index, np.float32(len(piece) * max_score - np.float32(0.1)))
        self.max_len = max((len(p) for p in self.pieces), default=1)
        self.unk_id = spm.unk_id
        self.unk_score = np.float32(np.float32(min(normal, default=0.0)) - _UNK_PENALTY)

    def best_path(self, text: str) -> list[tuple[int, int, int]]:
        """Best segmentation of ``text`` as (piece id, start, end), in order."""
        n = len(text)
        score = [np.float32(0.0)] * (n + 1)
        start = [-1] * (n + 1)
        ident = [-1] * (n + 1)
        pieces, max_len = self.pieces, self.max_len
        # No piece has "▁" after its first character, so a piece starting at s ends at the
        # next "▁" at the latest: that bounds the lengths worth looking up.
        word_end = n
        ends = [n] * n
        for s in range(n - 1, -1, -1):
            ends[s] = word_end
            if text[s] == SPACE_MARK:
                word_end = s
        for s in range(n):
            base = score[s]
            has_single = False
            for length in range(1, min(max_len, ends[s] - s) + 1):
                entry = pieces.get(text[s:s + length])
                if entry is None:
                    continue
                candidate = entry[1] + base  # float32 + float32, as SentencePiece
                e = s + length
                if start[e] == -1 or candidate > score[e]:
                    score[e], start[e], ident[e] = candidate, s, entry[0]
                if length == 1:
                    has_single = True
            if not has_single:
                candidate = self.unk_score + base
                if start[s + 1] == -1 or candidate > score[s + 1]:
                    score[s + 1], start[s + 1], ident[s + 1] = candidate, s, self.unk_id
        path = []
        e = n
        while e > 0:
            path.append((ident[e], start[e], e))
            e = start[e]
        return path[::-1]


def spm_spacing(text: str) -> tuple[str, list[int], list[int]]:
    """SentencePiece's whitespace step on charsmap-mapped text.

    Returns (normalised, starts, ends): leading and trailing spaces go, each run of spaces
    becomes one "▁", a "▁" goes in front of the first word; starts/ends give each character's
    span in ``text``. A "▁" takes the span of the character after it (the Rust pipeline
    inserts it there), so a token's span starts at its word, not at the space.
    """
    out, starts, ends = [], [], []
    pending = True  # a "▁" is due before the next non-space character
    for i, char in enumerate(text):
        if char == " ":
            pending = True
            continue
        if pending:
            out.append(SPACE_MARK)
            starts.append(i)
            ends.append(i + 1)
            pending = False
        out.append(char)
        starts.append(i)
        ends.append(i + 1)
    return "".join(out), starts, ends
