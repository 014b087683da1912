"""SentencePiece's character normalisation (``precompiled_charsmap``), reproduced exactly.

An ``spm.model`` trained with the ``nmt_nfkc`` rule set stores its normaliser as a compiled
double-array trie (darts-clone layout): ``u32 trie_size | trie units | NUL-separated outputs``.
SentencePiece walks the input left to right and, at each position, replaces the *longest* key
of the trie that starts there by its output; where no key starts, one character is copied.

The ``Precompiled`` normaliser of the ``tokenizers`` library reads the same table but applies
it per grapheme cluster and takes the *shortest* matching key, replacing the whole cluster with
it. That is why the reference fast DeBERTa-v2 tokenizer turns ``"A\\u0302\\u0300"`` into
``"Â"`` (dropping the grave accent) where SentencePiece gives ``"Ầ"``. This module decodes the
trie into a plain mapping and applies SentencePiece's rule, so the fast tokenizer can feed
already-mapped text to the Rust pipeline.
"""

from __future__ import annotations

import re

import numpy as np


class CharsmapError(ValueError):
    """Raised when a precompiled charsmap cannot be decoded."""


def decode_charsmap(blob: bytes) -> dict[str, str]:
    """Decode a ``precompiled_charsmap`` into ``{key: replacement}`` with every trie key.

    The double array is walked breadth-first with numpy: for all nodes of one depth at once,
    the child for byte ``c`` sits at ``pos ^ c`` and exists when that unit's label equals ``c``.
    Returns an empty dict for an empty blob (an identity normaliser).
    """
    if not blob:
        return {}
    if len(blob) < 4:
        raise CharsmapError("charsmap shorter than its 4-byte header")
    trie_size = int.from_bytes(blob[:4], "little")
    if trie_size % 4 or 4 + trie_size > len(blob):
        raise CharsmapError(f"bad trie size {trie_size} for a {len(blob)}-byte charsmap")
    units = np.frombuffer(blob, dtype="<u4", count=trie_size // 4, offset=4).astype(np.int64)
    pool = blob[4 + trie_size:]

    def offset(u):
        return (u >> 10) << ((u & (1 << 9)) >> 6)

    # NUL terminators of the output pool: an output starting at s ends at the first NUL >= s.
    pool_arr = np.frombuffer(pool, dtype=np.uint8)
    nuls = np.append(np.flatnonzero(pool_arr == 0), len(pool))

    # In a double array the child of the node with base b for byte c sits at b ^ c and carries
    # label c, so every labelled unit i belongs to base i ^ label(i). Index children by base once,
    # then walk all key paths breadth-first (darts-clone shares subtrees, so paths >> units).
    label = units & ((1 << 31) | 0xFF)
    node_idx = np.flatnonzero((label >= 1) & (label <= 255))
    node_base = node_idx ^ label[node_idx]
    order = np.argsort(node_base, kind="stable")
    node_idx, node_base = node_idx[order], node_base[order]

    frontier = np.array([offset(units[0])], dtype=np.int64)
    paths = np.zeros((1, 0), dtype=np.uint8)  # the key bytes leading to each frontier node
    keys: list[str] = []
    values: list[str] = []
    while frontier.size:
        lo = np.searchsorted(node_base, frontier, side="left")
        hi = np.searchsorted(node_base, frontier, side="right")
        counts = hi - lo
        parent = np.repeat(np.arange(frontier.size), counts)
        # Index of each child within its parent's block, to gather node_idx[lo + k].
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        child_pos = node_idx[np.repeat(lo, counts) + within]
        hit_units = units[child_pos]
        frontier = child_pos ^ offset(hit_units)
        paths = np.concatenate([paths[parent], label[child_pos].astype(np.uint8)[:, None]], axis=1)
        leaf = ((hit_units >> 8) & 1).astype(bool)
        if not leaf.any():
            continue
        width = paths.shape[1]
        blob = paths[leaf].tobytes()
        starts = (units[frontier[leaf]] & 0x7FFFFFFF).astype(np.int64)
        if starts.size and starts.max() >= len(pool):
            raise CharsmapError("charsmap output offset is outside its string pool")
        ends = nuls[np.searchsorted(nuls, starts)]
        try:
            keys.extend(blob[i:i + width].decode("utf-8") for i in range(0, len(blob), width))
            values.extend(pool[s:e].decode("utf-8") for s, e in zip(starts.tolist(), ends.tolist()))
        except UnicodeDecodeError:
            raise CharsmapError("charsmap holds an entry that is not UTF-8") from None
    return dict(zip(keys, values))


def _char_class(chars) -> str:
    """A regex character class matching exactly ``chars`` (ranges merged, all escaped)."""
    cps = sorted({ord(c) for c in chars})
    parts, i = [], 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        lo, hi = re.escape(chr(cps[i])), re.escape(chr(cps[j]))
        parts.append(lo if i == j else f"{lo}-{hi}")
        i = j + 1
    return "[" + "".join(parts) + "]"


class CharsmapNormalizer:
    """Apply a decoded charsmap the way SentencePiece does (leftmost, longest key first).

    Only the character mapping is done here; collapsing and stripping spaces and the ``▁``
    prefix are left to the caller, which is equivalent because SentencePiece only ever treats
    the plain space ``" "`` (after mapping) as whitespace.
    """

    def __init__(self, table: dict[str, str]):
        self.table = table
        self.max_key = max((len(k) for k in table), default=0)
        # A key can only match where the text holds one of its characters after the first, or
        # where it is a single character: those "trigger" characters are the only places that
        # need a look. Text without any of them is returned untouched (the common case).
        triggers = {k[0] for k in table if len(k) == 1} | {c for k in table for c in k[1:]}
        self._triggers = frozenset(triggers)
        self._trigger = re.compile(_char_class(triggers)) if triggers else None
        # Quick screen: the trigger characters of the Basic Multilingual Plane (a bitmap test
        # per character in `re`) plus any astral character, which the exact set test settles.
        bmp = [c for c in triggers if ord(c) <= 0xFFFF]
        self._screen = re.compile(_char_class(bmp)[:-1] + "\U00010000-\U0010ffff]") if triggers else None

    def needs_mapping(self, text: str) -> bool:
        """True when at least one rule could apply to ``text``."""
        if self._screen is None or self._screen.search(text) is None:
            return False
        return not self._triggers.isdisjoint(text)

    def map(self, text: str) -> tuple[str, list[int] | None, list[int] | None]:
        """Map ``text``; return (mapped, starts, ends).

        ``starts[i]``/``ends[i]`` give the span of original characters that produced mapped
        character ``i``. Both are None when nothing changed, so callers can skip realignment.
        """
        if not self.needs_mapping(text):
            return text, None, None
        triggers = [m.start() for m in self._trigger.finditer(text)]
        if not triggers:
            return text, None, None
        table, longest, n = self.table, self.max_key, len(text)
        out: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        copied = 0  # text[copied:cur] is still to be copied unchanged
        cur = 0  # positions before cur are decided
        changed = False
        for q in triggers:
            if q < cur:
                continue
            # A match containing q starts at most longest-1 characters before it; positions
            # before that (and after the previous trigger) cannot start any match.
            p = max(cur, q - longest + 1)
            while p <= q:
                for size in range(min(longest, n - p), 0, -1):
                    value = table.get(text[p:p + size])
                    if value is not None:
                        break
                else:
                    p += 1
                    continue
                if text[p:p + size] != value:
                    changed = True
                if copied < p:
                    out.append(text[copied:p])
                    starts.extend(range(copied, p))
                    ends.extend(range(copied + 1, p + 1))
                out.append(value)
                starts.extend([p] * len(value))
                ends.extend([p + size] * len(value))
                p = cur = copied = p + size
            cur = p
        if not changed:
            return text, None, None
        out.append(text[copied:])
        starts.extend(range(copied, n))
        ends.extend(range(copied + 1, n + 1))
        return "".join(out), starts, ends
