"""DeBERTa v1 tokenizer: GPT-2 byte-level BPE, in pure Python.

Text is split into GPT-2 "words" (contractions, letter runs, digit runs, other symbols,
whitespace), each word's UTF-8 bytes are mapped to printable characters (the GPT-2 byte map,
so every byte has a symbol and nothing is ever unknown), and the BPE merges join symbols,
lowest rank first. Ids come from ``vocab.json`` (RoBERTa order with DeBERTa's special names:
[PAD]=0, [CLS]=1, [SEP]=2, [UNK]=3, [MASK]=50264).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .base import DebertaTokenizerBase
from .files import load_bpe_files
from .packing import Encoded

VOCAB_FILES = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """The GPT-2 byte map: byte value -> one printable character.

    Bytes that are printable Latin-1 characters ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
    themselves; the other 68 (controls, space, soft hyphen, ...) take the code points 256,
    257, ... in byte order, so a space becomes 'Ġ' (U+0120) and a newline 'Ċ' (U+010A).
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


# Unicode White_Space, the set that the reference's regex engine uses for \s (Python's \s also
# matches U+001C..U+001F, which are not White_Space).
_WHITESPACE = ("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000")


@lru_cache(maxsize=1)
def _major_categories() -> np.ndarray:
    """The first letter of the general category of every code point, as uint8 codes."""
    first = "".join(cat[0] for cat in map(unicodedata.category, map(chr, range(0x110000))))
    return np.frombuffer(first.encode("ascii"), dtype=np.uint8)


def _ranges(major: str) -> str:
    """A regex class body listing the code points whose category starts with ``major``."""
    mask = np.concatenate([[False], _major_categories() == ord(major), [False]])
    edges = np.flatnonzero(mask[1:] != mask[:-1])
    parts = []
    for start, stop in zip(edges[0::2].tolist(), (edges[1::2] - 1).tolist()):
        lo, hi = re.escape(chr(start)), re.escape(chr(stop))
        parts.append(lo if start == stop else f"{lo}-{hi}")
    return "".join(parts)


@lru_cache(maxsize=1)
def gpt2_pattern() -> re.Pattern:
    """The GPT-2 pre-tokenisation pattern, written for the standard ``re`` module.

    GPT-2 splits with ``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``.
    ``re`` has no \\p{..} classes, so letters (categories L*) and numbers (N*) are spelled out
    from ``unicodedata``. Characters assigned after Python's Unicode version count as "other".
    """
    letters = _ranges("L")
    numbers = _ranges("N")
    ws = _WHITESPACE
    return re.compile(
        rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{letters}]+| ?[{numbers}]+| ?[^{ws}{letters}{numbers}]+"
        rf"|[{ws}]+(?![^{ws}])|[{ws}]+")


class BytePairEncoder:
    """Apply ranked BPE merges to byte-mapped words, caching each word's result.

    merges: pairs in rank order (rank 0 merges first). ``encode_word`` takes a word already
    mapped through :func:`byte_to_unicode` and returns its sub-word symbols.
    """

    def __init__(self, merges: list[tuple[str, str]]):
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.cache: dict[str, list[str]] = {}

    def encode_word(self, word: str) -> list[str]:
        """Merge the symbols of ``word`` until no ranked pair is left."""
        cached = self.cache.get(word)
        if cached is not None:
            return cached
        symbols = list(word)
        ranks = self.ranks
        while len(symbols) > 1:
            best, best_rank = None, None
            for pair in zip(symbols, symbols[1:]):
                rank = ranks.get(pair)
                if rank is not None and (best_rank is None or rank < best_rank):
                    best, best_rank = pair, rank
            if best is None:
                break
            # Merge every occurrence of the best pair, left to right, without overlaps.
            first, second = best
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        self.cache[word] = symbols
        return symbols


class ByteLevelVocabulary:
    """What the slow and fast v1 tokenizers share: the vocabulary, byte-level decoding, files.

    Needs ``encoder``/``decoder`` (token <-> id), ``merges``, ``byte_decoder``, ``errors`` and
    ``add_prefix_space`` on the instance.
    """

    def _base_vocab(self) -> dict[str, int]:
        return self.encoder

    def _base_id_to_token(self, index: int) -> str:
        try:
            return self.decoder[index]
        except KeyError:
            raise IndexError(f"token id {index} is outside the vocabulary (0..{len(self.decoder) - 1})") from None

    def _prefix_for(self, text: str, is_split_into_words: bool, add_prefix_space: bool) -> str:
        # Reference rule: one space, only if the text is non-empty and does not start with one.
        if (is_split_into_words or add_prefix_space) and text and not text[0].isspace():
            return " "
        return ""

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Map byte symbols back to bytes and decode UTF-8 (``errors`` for broken sequences)."""
        decoder = self.byte_decoder
        data = bytearray()
        for char in "".join(tokens):
            byte = decoder.get(char)
            if byte is None:
                data.extend(char.encode("utf-8"))  # e.g. an added token's own text
            else:
                data.append(byte)
        return data.decode("utf-8", errors=self.errors)

    def save_vocabulary(self, save_directory, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write vocab.json and merges.txt (with the "#version: 0.2" header)."""
        return save_bpe_vocabulary(self.encoder, self.merges, save_directory, filename_prefix)

    def _extra_config(self) -> dict[str, Any]:
        return {"add_prefix_space": self.add_prefix_space, "errors": self.errors,
                "do_lower_case": False, "vocab_type": "gpt2"}


class DebertaTokenizer(ByteLevelVocabulary, DebertaTokenizerBase):
    """DeBERTa v1 tokenizer (slow, pure Python): GPT-2 byte-level BPE.

    vocab_file / merges_file: paths to ``vocab.json`` and ``merges.txt``.
    add_prefix_space: prepend a space so the first word is tokenized like any other (False by
    default, as the model was trained; forced per word with ``is_split_into_words``).
    errors: how invalid UTF-8 is handled on decode (``bytes.decode`` errors, "replace").
    Special tokens default to [CLS]/[SEP]/[UNK]/[PAD]/[MASK]; a plain-string mask token
    absorbs the whitespace before it ("a [MASK]" -> "a", "[MASK]"), as in the reference.
    """

    vocab_files_names = VOCAB_FILES
    model_input_names = ["input_ids", "attention_mask", "token_type_ids"]
    tokenizer_class_name = "DebertaTokenizer"
    _mask_lstrip_default = True

    def __init__(self, vocab_file, merges_file, errors: str = "replace", add_prefix_space: bool = False,
                 **kwargs):
        self.vocab_file, self.merges_file = str(vocab_file), str(merges_file)
        self.encoder, merges = load_bpe_files(Path(vocab_file), Path(merges_file))
        self.decoder = {i: t for t, i in self.encoder.items()}
        self.errors = errors
        self.add_prefix_space = bool(add_prefix_space)
        self.bpe = BytePairEncoder(merges)
        self.merges = merges
        self.byte_encoder = byte_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        self.pattern = gpt2_pattern()
        kwargs.pop("do_lower_case", None)  # v1 never lower-cases; the key is kept in configs
        self._init_common(**kwargs)

    # ------------------------------------------------------------------ encoding
    def bpe_tokens(self, text: str) -> list[str]:
        """Byte-level BPE symbols of plain text (no added-token handling)."""
        out: list[str] = []
        table = self.byte_encoder
        for word in self.pattern.findall(text):
            # Byte-map the whole word at once: its UTF-8 bytes, read as Latin-1, translated.
            mapped = word.encode("utf-8").decode("latin-1").translate(table)
            out.extend(self.bpe.encode_word(mapped))
        return out

    def _encode_segments(self, texts: list[str], need_detail: bool = False) -> list[Encoded]:
        encoder, unk = self.encoder, self.unk_token_id
        return [Encoded([encoder.get(t, unk) for t in self.bpe_tokens(text)]) for text in texts]

    @classmethod
    def _from_folder(cls, directory: Path, config: dict[str, Any]):
        return cls(directory / VOCAB_FILES["vocab_file"], directory / VOCAB_FILES["merges_file"], **config)


def save_bpe_vocabulary(encoder: dict[str, int], merges: list[tuple[str, str]], save_directory,
                        filename_prefix: str | None) -> tuple[str, str]:
    """Write ``vocab.json`` (id order) and ``merges.txt``; return both paths."""
    import json

    directory = Path(save_directory)
    prefix = f"{filename_prefix}-" if filename_prefix else ""
    vocab_path = directory / f"{prefix}{VOCAB_FILES['vocab_file']}"
    merges_path = directory / f"{prefix}{VOCAB_FILES['merges_file']}"
    ordered = dict(sorted(encoder.items(), key=lambda kv: kv[1]))
    vocab_path.write_text(json.dumps(ordered, ensure_ascii=False), encoding="utf-8")
    merges_path.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return str(vocab_path), str(merges_path)
