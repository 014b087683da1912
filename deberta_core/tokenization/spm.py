"""DeBERTa v2/v3 tokenizers, slow and fast: the SentencePiece model run by ``sentencepiece``.

SentencePiece does everything between raw text and pieces: nmt_nfkc normalisation, space
collapsing, the "▁" word prefix, the unigram search and, for the v3 model, byte fallback
(characters outside the vocabulary become ``<0xNN>`` byte pieces instead of [UNK]). Batches are
encoded in its C++ threads. Ids are the model's piece ids ([PAD]=0, [CLS]=1, [SEP]=2, [UNK]=3);
[MASK] is added after the model's pieces (128000 for the v2/v3 model, ``len(tokenizer) == 128001``).

The fast class gives the same ids (the same SentencePiece call) plus character offsets and word
ids, read off ``SentencePieceProcessor.normalize(text, with_offsets=True)``. It does not go
through the ``tokenizers`` library: its ``Precompiled`` normaliser applies the nmt_nfkc table
per grapheme cluster, shortest rule first ("A\\u0302\\u0300" -> "Â" where SentencePiece gives
"Ầ"), and the reference converter drops byte fallback, so the reference fast tokenizer emits
other pieces or [UNK] where SentencePiece is right (SPEC 5.2, DECISIONS 3).
"""

from __future__ import annotations

import base64
import os
import unicodedata
from pathlib import Path
from typing import Any

import sentencepiece

from .base import DebertaTokenizerBase
from .files import TOKENIZER_JSON, VocabularyError, read_json
from .packing import Encoded

MODEL_FILE = "spm.model"
SPACE_MARK = "\u2581"


class SpmModelError(ValueError):
    """Raised when a file is not a SentencePiece model that ``sentencepiece`` can load."""


def is_punctuation(char: str) -> bool:
    """The reference's punctuation test for ``split_by_punct``: ASCII symbols or Unicode P*."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def split_on_punctuation(text: str) -> list[tuple[int, str]]:
    """Cut ``text`` so that every punctuation character stands alone; (start, chunk) pairs."""
    chunks: list[tuple[int, str]] = []
    start = 0
    for i, char in enumerate(text):
        if is_punctuation(char):
            if start < i:
                chunks.append((start, text[start:i]))
            chunks.append((i, char))
            start = i + 1
    if start < len(text):
        chunks.append((start, text[start:]))
    return chunks


def decode_with_specials(tokens: list[str], specials: set[str], decode_run) -> str:
    """The reference's v2 decode: runs of pieces decoded as a whole, special tokens in between.

    A special token is preceded by a space unless it follows another special token, and the
    result is stripped.
    """
    out, run, prev_special = "", [], False
    for token in tokens:
        if token in specials:
            if not prev_special:
                out += " "
            out += decode_run(run) + token
            prev_special, run = True, []
        else:
            run.append(token)
            prev_special = False
    out += decode_run(run)
    return out.strip()


def encode_threads() -> int:
    """SentencePiece threads for one batch call, set by the ``tokenizers`` library's knobs:
    ``TOKENIZERS_PARALLELISM=false`` gives 1, ``RAYON_NUM_THREADS=n`` gives n, else all cores (-1)."""
    if os.environ.get("TOKENIZERS_PARALLELISM", "").lower() in ("0", "false", "no", "off"):
        return 1
    count = os.environ.get("RAYON_NUM_THREADS", "")
    return int(count) if count.isdigit() and int(count) > 0 else -1


def read_model_file(path) -> bytes:
    """The bytes of an ``spm.model`` file, with a clear error when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SentencePiece model file not found: {path}")
    return path.read_bytes()


def _find(node, kind: str):
    """The first component of type ``kind`` in a (possibly Sequence) tokenizer.json node."""
    if not isinstance(node, dict):
        return None
    if node.get("type") == kind:
        return node
    for child in node.get("normalizers") or node.get("pretokenizers") or []:
        found = _find(child, kind)
        if found is not None:
            return found
    return None


def model_from_tokenizer_json(path: Path) -> tuple[bytes, dict[str, bool]]:
    """A serialized SentencePiece model rebuilt from a unigram ``tokenizer.json``.

    For folders that have a reference-converted tokenizer.json but no spm.model. Piece types
    are inferred: [PAD]/[CLS]/[SEP] control, the unk piece unknown, ``<0xNN>`` byte pieces (and
    byte fallback) when all 256 are present, which the reference converter keeps as pieces but
    stops using. The charsmap comes from the ``Precompiled`` normaliser. Returns (model bytes,
    {"do_lower_case", "split_by_punct"} as the file's pipeline implies). Needs ``protobuf``.
    """
    from sentencepiece import sentencepiece_model_pb2 as pb2  # protobuf, only on this path

    data = read_json(path, "tokenizer file tokenizer.json")
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type") != "Unigram":
        raise VocabularyError(f"{path}: expected a Unigram model for DeBERTa v2/v3")
    vocab = model.get("vocab")
    if not isinstance(vocab, list) or not vocab:
        raise VocabularyError(f"{path}: the Unigram model has no vocabulary")
    unk_id = model.get("unk_id") or 0
    byte_names = {f"<0x{b:02X}>" for b in range(256)}
    has_bytes = byte_names <= {piece for piece, _ in vocab}
    kinds = pb2.ModelProto.SentencePiece
    proto = pb2.ModelProto()
    for index, (piece, score) in enumerate(vocab):
        kind = (kinds.UNKNOWN if index == unk_id else kinds.CONTROL if piece in ("[PAD]", "[CLS]", "[SEP]")
                else kinds.BYTE if has_bytes and piece in byte_names else kinds.NORMAL)
        proto.pieces.add(piece=piece, score=score, type=kind)
    trainer = proto.trainer_spec
    trainer.model_type = pb2.TrainerSpec.UNIGRAM
    trainer.unk_id, trainer.bos_id, trainer.eos_id, trainer.pad_id = unk_id, -1, -1, -1
    trainer.byte_fallback = has_bytes
    normalizer, pre_tokenizer = data.get("normalizer"), data.get("pre_tokenizer")
    precompiled = _find(normalizer, "Precompiled")
    spec = proto.normalizer_spec
    spec.name = "nmt_nfkc" if precompiled else "identity"
    if precompiled:
        spec.precompiled_charsmap = base64.b64decode(precompiled["precompiled_charsmap"])
    spec.add_dummy_prefix = (_find(pre_tokenizer, "Metaspace") or {}).get("prepend_scheme", "always") != "never"
    spec.remove_extra_whitespaces = _find(normalizer, "Strip") is not None or _find(normalizer, "Replace") is not None
    spec.escape_whitespaces = True
    flags = {"do_lower_case": _find(normalizer, "Lowercase") is not None,
             "split_by_punct": _find(pre_tokenizer, "Punctuation") is not None}
    return proto.SerializeToString(), flags


def lower(text: str) -> str:
    """Lower-case one character at a time, as the reference does: a final "Σ" gives "σ"
    (``str.lower`` alone would give "ς")."""
    return "".join(map(str.lower, text)) if "\u03a3" in text else text.lower()


def _lowered(text: str) -> tuple[str, list[int] | None]:
    """``lower(text)`` and, when lower-casing changed the length ("İ" -> "i̇"), the index in
    ``text`` of each lowered character (None when they align one to one)."""
    lowered = lower(text)
    if len(lowered) == len(text):
        return lowered, None
    return lowered, [i for i, char in enumerate(text) for _ in char.lower()]


class SentencePieceTokenizer(DebertaTokenizerBase):
    """What the slow and fast v2/v3 tokenizers share: the model, vocabulary, ids, decoding, files.

    Subclasses call ``_load`` with the serialized model; ``_encode_texts`` gives the ids.
    """

    tokenizer_class_name = "DebertaV2Tokenizer"

    def _load(self, model: bytes, source, do_lower_case: bool, split_by_punct: bool, **kwargs) -> None:
        self.sp = sentencepiece.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(model)
        except RuntimeError as err:
            raise SpmModelError(f"{source} is not a valid SentencePiece model ({err})") from None
        self._model = model
        self.do_lower_case = bool(do_lower_case)
        self.split_by_punct = bool(split_by_punct)
        self._pieces = self.sp.id_to_piece(list(range(self.sp.get_piece_size())))
        self._vocab = {piece: i for i, piece in enumerate(self._pieces)}
        kwargs.pop("sp_model_kwargs", None)  # sampling options are not supported
        self._init_common(**kwargs)

    def _base_vocab(self) -> dict[str, int]:
        return self._vocab

    def _base_id_to_token(self, index: int) -> str:
        if 0 <= index < len(self._pieces):
            return self._pieces[index]
        # The embedding has reserved rows past the vocabulary (128100 > 128001); the
        # reference names them [UNK], which keeps decoding model predictions safe.
        return self.unk_token

    def _prefix_for(self, text: str, is_split_into_words: bool, add_prefix_space: bool) -> str:
        return " " if (is_split_into_words or add_prefix_space) else ""

    def _extra_config(self) -> dict[str, Any]:
        return {"do_lower_case": self.do_lower_case, "split_by_punct": self.split_by_punct,
                "vocab_type": "spm"}

    def _inputs(self, texts: list[str]) -> list[str]:
        return [lower(text) for text in texts] if self.do_lower_case else texts

    def _encode_texts(self, texts: list[str], need_detail: bool) -> list[Encoded]:
        return [Encoded(ids) for ids in self.sp.encode(self._inputs(texts), num_threads=encode_threads())]

    def _encode_segments(self, texts: list[str], need_detail: bool = False) -> list[Encoded]:
        if not self.split_by_punct:
            return self._encode_texts(texts, need_detail)
        # Each punctuation chunk is encoded on its own (own "▁" prefix), as the reference does.
        layout = [split_on_punctuation(text) for text in texts]
        encoded = iter(self._encode_texts([chunk for parts in layout for _, chunk in parts], need_detail))
        return [self._join([(next(encoded), start, None) for start, _ in parts]) if parts
                else Encoded([], [], []) for parts in layout]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """SentencePiece-decode runs of pieces; special tokens are kept, spaced as the reference."""
        return decode_with_specials(tokens, set(self.all_special_tokens), self.sp.decode_pieces)

    def save_vocabulary(self, save_directory, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write ``spm.model``: the bytes that were read (or rebuilt from tokenizer.json)."""
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        path = Path(save_directory) / f"{prefix}{MODEL_FILE}"
        path.write_bytes(self._model)
        return (str(path),)


class DebertaV2Tokenizer(SentencePieceTokenizer):
    """DeBERTa v2/v3 tokenizer (slow): SentencePiece via the ``sentencepiece`` package.

    vocab_file: path to ``spm.model``.
    do_lower_case: lower-case text before SentencePiece (False for the released models).
    split_by_punct: cut text at every punctuation character first, each chunk then encoded
    on its own (False for the released models).
    Special tokens default to [CLS]/[SEP]/[UNK]/[PAD]/[MASK]; [MASK] gets the id after the
    SentencePiece vocabulary.
    """

    vocab_files_names = {"vocab_file": MODEL_FILE}

    def __init__(self, vocab_file, do_lower_case: bool = False, split_by_punct: bool = False, **kwargs):
        self.vocab_file = str(vocab_file)
        self._load(read_model_file(vocab_file), vocab_file, do_lower_case, split_by_punct, **kwargs)

    @classmethod
    def _from_folder(cls, directory: Path, config: dict[str, Any]):
        return cls(directory / MODEL_FILE, **config)


class DebertaV2TokenizerFast(SentencePieceTokenizer):
    """DeBERTa v2/v3 fast tokenizer: the ids of :class:`DebertaV2Tokenizer`, plus offsets and word ids.

    vocab_file: ``spm.model`` (preferred), or tokenizer_file: a unigram ``tokenizer.json`` (as the
    reference converter writes it), rebuilt into a SentencePiece model. do_lower_case /
    split_by_punct: as the slow class.

    Offsets point at the characters a token stands for: a "▁" token's span starts at its word,
    not at the spaces before it, and a lone "▁" gets an empty span where the next word begins;
    byte pieces get the span of their character. Word ids count the "▁" that start words.
    """

    is_fast = True
    vocab_files_names = {"vocab_file": MODEL_FILE, "tokenizer_file": TOKENIZER_JSON}

    def __init__(self, vocab_file=None, tokenizer_file=None, do_lower_case: bool = False,
                 split_by_punct: bool = False, **kwargs):
        if vocab_file is not None:
            model, source = read_model_file(vocab_file), vocab_file
        elif tokenizer_file is not None:
            model, flags = model_from_tokenizer_json(Path(tokenizer_file))
            source = tokenizer_file
            do_lower_case = do_lower_case or flags["do_lower_case"]
            split_by_punct = split_by_punct or flags["split_by_punct"]
        else:
            raise ValueError("DebertaV2TokenizerFast needs vocab_file (spm.model) or tokenizer_file")
        self.vocab_file = None if vocab_file is None else str(vocab_file)
        self._load(model, source, do_lower_case, split_by_punct, **kwargs)
        # Normalised characters each piece spells: 0 for byte pieces (a character is spelled by
        # the run of its UTF-8 bytes), -1 for the unknown piece (whatever run it replaced).
        self._sizes = [len(piece) for piece in self._pieces]
        for index, piece in enumerate(self._pieces):
            if piece.startswith("<0x") and self.sp.is_byte(index):
                self._sizes[index] = 0
        self._unk_id = self.sp.unk_id()
        self._sizes[self._unk_id] = -1
        self._silent: dict[str, bool] = {}

    def _encode_texts(self, texts: list[str], need_detail: bool) -> list[Encoded]:
        inputs = self._inputs(texts)
        all_ids = self.sp.encode(inputs, num_threads=encode_threads())
        if not need_detail:  # offsets and word ids when first asked for
            return [Encoded(ids, detail=self._spans, detail_arg=(text, ids, None)) for text, ids in zip(texts, all_ids)]
        normalized = self.sp.normalize(inputs, with_offsets=True)
        return [Encoded(ids, *self._spans((text, ids, n))) for text, ids, n in zip(texts, all_ids, normalized)]

    def _spans(self, job) -> tuple[list[tuple[int, int]], list[int]]:
        """(offsets, word ids) of ``ids``, SentencePiece's encoding of ``text`` (job: text, ids,
        and ``normalize(text, with_offsets=True)`` if already made).

        That gives the normalised text, which the pieces spell in order, and where in ``text``
        each normalised character comes from. (SentencePiece's own ``offset_mapping`` output
        gives a "▁" token the spaces before its word and leaves all but the last token of a
        character empty; it also measured 3x slower than ``normalize``.)
        """
        text, ids, normalized = job
        source, origin_of = _lowered(text) if self.do_lower_case else (text, None)
        norm, origin = normalized or self.sp.normalize(source, with_offsets=True)
        sizes = self._sizes
        surfaces = self.sp.encode(source, out_type=str) if self._unk_id in ids else None
        offsets: list[tuple[int, int]] = []
        words: list[int] = []
        pos, word, bytes_left, span = 0, -1, 0, (0, 0)
        for k, token in enumerate(ids):
            size = sizes[token]
            if size == 0:  # one of the UTF-8 bytes of norm[pos]
                if not bytes_left:
                    bytes_left = len(norm[pos].encode("utf-8"))
                    span = (origin[pos], self._end(source, origin, pos))
                bytes_left -= 1
                pos += not bytes_left
            else:
                first = pos
                if norm[pos] == SPACE_MARK:
                    word += 1
                    first += 1
                pos += size if size > 0 else len(surfaces[k])
                start = origin[first]
                if first == pos:  # a lone "▁" spells no character
                    span = (start, start)
                else:
                    end = origin[pos]
                    if end != origin[pos - 1] + 1:
                        end = self._end(source, origin, pos - 1)
                    span = (start, end)
            offsets.append(span)
            words.append(word)
        if origin_of is not None:
            size = len(text)
            offsets = [(origin_of[s], origin_of[e - 1] + 1) if e > s else
                       ((origin_of[s], origin_of[s]) if s < len(origin_of) else (size, size))
                       for s, e in offsets]
        return offsets, words

    def _end(self, text: str, origin: list[int], k: int) -> int:
        """Where the characters of ``text`` that became normalised character ``k`` end.

        That is the start of the next character from another rule, less the characters just
        before it that normalise to nothing (deleted controls, spaces).
        """
        start, k = origin[k], k + 1
        while origin[k] == start:
            k += 1
        stop = origin[k]
        while stop > start + 1 and self._is_silent(text[stop - 1]):
            stop -= 1
        return stop

    def _is_silent(self, char: str) -> bool:
        silent = self._silent.get(char)
        if silent is None:
            silent = self._silent[char] = not self.sp.normalize(char)
        return silent

    @classmethod
    def _from_folder(cls, directory: Path, config: dict[str, Any]):
        model_file = directory / MODEL_FILE
        if model_file.is_file() or not (directory / TOKENIZER_JSON).is_file():
            return cls(model_file, **config)
        return cls(tokenizer_file=directory / TOKENIZER_JSON, **config)


__all__ = ["DebertaV2Tokenizer", "DebertaV2TokenizerFast"]
