"""DeBERTa v2/v3 tokenizer (slow): the SentencePiece model run by ``sentencepiece`` itself.

SentencePiece does everything between raw text and pieces: nmt_nfkc normalisation, space
collapsing, the "▁" word prefix, the unigram search and, for the v3 model, byte fallback
(characters outside the vocabulary become ``<0xNN>`` byte pieces instead of [UNK]). Ids are
the model's piece ids ([PAD]=0, [CLS]=1, [SEP]=2, [UNK]=3); [MASK] is added after the model's
pieces (128000 for the v2/v3 model, so ``len(tokenizer) == 128001``).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import sentencepiece

from .base import DebertaTokenizerBase
from .packing import Encoded
from .spm_proto import SpmModelError, load_spm_model

VOCAB_FILES = {"vocab_file": "spm.model"}


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


class SpmPieceDecoder:
    """Turn SentencePiece pieces back into text exactly as ``sentencepiece`` decodes them.

    Used by the fast tokenizer, which has no SentencePiece processor: "▁" becomes a space,
    the space that the first piece carries is dropped, runs of ``<0xNN>`` byte pieces are
    decoded as UTF-8 (each invalid byte becoming U+FFFD), and the unknown piece becomes
    ``unk_surface`` (" ⁇ ").
    """

    def __init__(self, byte_pieces: dict[str, int], unk_piece: str, unk_surface: str,
                 control_pieces: set[str], add_dummy_prefix: bool = True):
        self.byte_pieces = byte_pieces
        self.unk_piece = unk_piece
        self.unk_surface = unk_surface
        self.control = control_pieces
        self.add_dummy_prefix = add_dummy_prefix

    @staticmethod
    def _decode_bytes(data: bytes) -> str:
        # SentencePiece decodes one character at a time and replaces each byte that does not
        # start a valid UTF-8 character with U+FFFD (Python's "replace" can merge several).
        out, i = [], 0
        while i < len(data):
            for size in (1, 2, 3, 4):
                try:
                    out.append(data[i:i + size].decode("utf-8"))
                    i += size
                    break
                except UnicodeDecodeError:
                    continue
            else:
                out.append("\ufffd")
                i += 1
        return "".join(out)

    def decode(self, pieces: list[str]) -> str:
        """Decode one run of pieces (no added tokens among them)."""
        text: list[str] = []
        pending = bytearray()
        first = True
        for piece in pieces:
            byte = self.byte_pieces.get(piece)
            if byte is not None:
                pending.append(byte)
                continue
            if pending:
                text.append(self._decode_bytes(bytes(pending)))
                pending.clear()
                first = False
            if piece in self.control:
                continue
            surface = self.unk_surface if piece == self.unk_piece else piece.replace("\u2581", " ")
            if first and self.add_dummy_prefix and surface.startswith(" ") and piece != self.unk_piece:
                surface = surface[1:]
            first = False
            text.append(surface)
        if pending:
            text.append(self._decode_bytes(bytes(pending)))
        return "".join(text)


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


class SentencePieceVocabulary:
    """What the slow and fast v2/v3 tokenizers share: the piece vocabulary and saved options.

    Needs ``_pieces`` (id -> piece), ``_vocab`` (piece -> id), ``do_lower_case`` and
    ``split_by_punct`` on the instance.
    """

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


class DebertaV2Tokenizer(SentencePieceVocabulary, DebertaTokenizerBase):
    """DeBERTa v2/v3 tokenizer (slow): SentencePiece via the ``sentencepiece`` package.

    vocab_file: path to ``spm.model``.
    do_lower_case: lower-case text before SentencePiece (False for the released models).
    split_by_punct: cut text at every punctuation character first, each chunk then encoded
    on its own (False for the released models).
    Special tokens default to [CLS]/[SEP]/[UNK]/[PAD]/[MASK]; [MASK] gets the id after the
    SentencePiece vocabulary.
    """

    vocab_files_names = VOCAB_FILES
    tokenizer_class_name = "DebertaV2Tokenizer"

    def __init__(self, vocab_file, do_lower_case: bool = False, split_by_punct: bool = False, **kwargs):
        self.vocab_file = str(vocab_file)
        # Parse it ourselves first: a clear error for a missing/corrupt file, and the piece
        # types (sentencepiece does not expose the serialized proto's fields directly).
        self.spm_model = load_spm_model(vocab_file)
        self.sp = sentencepiece.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(self.spm_model.serialized)
        except (RuntimeError, OSError) as err:
            raise SpmModelError(f"{vocab_file}: sentencepiece cannot load it ({err})") from None
        self.do_lower_case = bool(do_lower_case)
        self.split_by_punct = bool(split_by_punct)
        self._pieces = self.spm_model.pieces
        self._vocab = {piece: i for i, piece in enumerate(self._pieces)}
        kwargs.pop("sp_model_kwargs", None)  # sampling options are not supported
        self._init_common(**kwargs)

    def _chunks(self, text: str) -> list[str]:
        if self.do_lower_case:
            text = text.lower()
        if self.split_by_punct:
            return [chunk for _, chunk in split_on_punctuation(text)]
        return [text]

    def _encode_segments(self, texts: list[str], need_detail: bool = False) -> list[Encoded]:
        if not self.do_lower_case and not self.split_by_punct:
            return [Encoded(ids) for ids in self.sp.encode(texts)]
        out = []
        for text in texts:
            ids: list[int] = []
            for chunk_ids in self.sp.encode(self._chunks(text)):
                ids.extend(chunk_ids)
            out.append(Encoded(ids))
        return out

    def _tokens_of(self, encoded: Encoded) -> list[str]:
        return [self._id_to_token(i) for i in encoded.ids]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """SentencePiece-decode runs of pieces; special tokens are kept, spaced as the reference."""
        return decode_with_specials(tokens, set(self.all_special_tokens),
                                    lambda run: self.sp.decode_pieces(run))

    def save_vocabulary(self, save_directory, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write ``spm.model`` byte for byte as it was read."""
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        path = Path(save_directory) / f"{prefix}{VOCAB_FILES['vocab_file']}"
        path.write_bytes(self.spm_model.serialized)
        return (str(path),)

    @classmethod
    def _from_folder(cls, directory: Path, config: dict[str, Any]):
        return cls(directory / VOCAB_FILES["vocab_file"], **config)
