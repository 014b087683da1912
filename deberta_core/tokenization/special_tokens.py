"""Special and added tokens: their flags, and splitting raw text around them.

Text such as ``"The capital is [MASK]."`` must keep ``[MASK]`` whole instead of handing it to the
sub-word model. Both the slow and the fast tokenizers split text here, in Python, before any
model sees it, so they agree by construction. The rules follow the reference slow tokenizers:
matching is on the raw text (leftmost, longest token first); a token with ``lstrip`` removes the
whitespace before it from the preceding text, one with ``rstrip`` the whitespace after it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

# Attribute names of the special-token roles, in the order the reference writes them.
SPECIAL_TOKEN_ROLES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)


@dataclass(frozen=True)
class AddedToken:
    """A token matched whole in raw text, with the reference's flags.

    content: the literal text, e.g. ``"[MASK]"``.
    lstrip / rstrip: absorb the whitespace on that side (DeBERTa v1 ``[MASK]`` has lstrip).
    single_word: accepted for file compatibility; only False is supported.
    normalized: recorded for file compatibility (matching is always on raw text).
    special: skipped by ``decode(skip_special_tokens=True)``.
    """

    content: str
    lstrip: bool = False
    rstrip: bool = False
    single_word: bool = False
    normalized: bool = False
    special: bool = True

    def __str__(self) -> str:
        return self.content

    def to_dict(self) -> dict:
        """The JSON form used in tokenizer_config.json and special_tokens_map.json."""
        return asdict(self)

    @classmethod
    def coerce(cls, value, **defaults) -> "AddedToken":
        """Build from a string, a JSON dict (``{"content": ..., ...}``) or another AddedToken.

        ``defaults`` set the flags for plain strings (e.g. ``lstrip=True`` for the v1 mask).
        """
        if isinstance(value, AddedToken):
            return value
        if isinstance(value, str):
            return cls(value, **defaults)
        if isinstance(value, dict) and isinstance(value.get("content"), str):
            known = {k: bool(value[k]) for k in ("lstrip", "rstrip", "single_word", "normalized", "special")
                     if k in value}
            return cls(value["content"], **{**defaults, **known})
        # Objects from other libraries with the same attributes (e.g. tokenizers.AddedToken).
        if hasattr(value, "content"):
            return cls(str(value.content), **{k: bool(getattr(value, k)) for k in
                                               ("lstrip", "rstrip", "single_word", "normalized", "special")
                                               if hasattr(value, k)})
        raise TypeError(f"cannot make a token from {value!r}; pass a string or an AddedToken")


class AddedTokenSplitter:
    """Split raw text into plain segments and added tokens.

    ``tokens`` maps content to AddedToken. ``split`` returns a list whose items are either
    ``(start, text)`` for a plain segment (start = its character offset in the input) or an
    AddedToken together with its span, as ``(start, stop, token)``.
    """

    def __init__(self, tokens: dict[str, AddedToken]):
        for token in tokens.values():
            if token.single_word:
                raise ValueError(f"added token {token.content!r}: single_word=True is not supported")
        self.tokens = dict(tokens)
        # Longest first, so that at one position the longest token wins (as in the reference).
        contents = sorted(self.tokens, key=lambda c: (-len(c), c))
        self._pattern = re.compile("|".join(map(re.escape, contents))) if contents else None

    def contains_token(self, text: str) -> bool:
        """True when ``text`` holds at least one added token."""
        return self._pattern is not None and self._pattern.search(text) is not None

    def split(self, text: str) -> list:
        """Return the segments of ``text`` (see the class docstring); plain text only if none match."""
        if not self.contains_token(text):
            return [(0, text)]
        matches = list(self._pattern.finditer(text))
        pieces: list = []
        cursor = 0
        for m in matches:
            pieces.append([cursor, text[cursor:m.start()]])
            pieces.append((m.start(), m.end(), self.tokens[m.group()]))
            cursor = m.end()
        pieces.append([cursor, text[cursor:]])
        # Apply lstrip/rstrip to the neighbouring plain segments, as the reference slow
        # tokenizer does (str.rstrip()/lstrip(), i.e. any Unicode whitespace).
        for i, piece in enumerate(pieces):
            if isinstance(piece, tuple):
                token = piece[2]
                if token.lstrip:
                    left = pieces[i - 1]
                    left[1] = left[1].rstrip()
                if token.rstrip:
                    right = pieces[i + 1]
                    stripped = right[1].lstrip()
                    right[0] += len(right[1]) - len(stripped)
                    right[1] = stripped
        return [tuple(p) if isinstance(p, list) else p for p in pieces if isinstance(p, tuple) or p[1]]
