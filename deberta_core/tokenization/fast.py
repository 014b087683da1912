"""Fast DeBERTa tokenizers: the ``tokenizers`` Rust library does the sub-word work.

Both classes share everything else with the slow ones (:mod:`base`): added-token splitting,
templates, truncation, padding and decoding run in the same Python code, so slow and fast
give the same ids by construction wherever their sub-word models agree. On top they provide
character offsets (``return_offsets_mapping``) and ``word_ids()``.

Offsets point at the characters a token stands for, without the space that a "Ġ"/"▁" token
carries in front of its word (the reference v1 fast tokenizer includes that space, #14418).
A token that stands only for spaces gets an empty span: a v1 "Ġ"/"ĠĠ" where its spaces
end, a lone v2 "▁" where the next word begins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import DebertaTokenizerBase
from .bpe import VOCAB_FILES as BPE_FILES
from .bpe import ByteLevelVocabulary, byte_to_unicode
from .charsmap import CharsmapNormalizer, decode_charsmap
from .convert import (
    SPACE_MARK,
    bpe_backend,
    bpe_tokenizer_json,
    read_bpe_tokenizer_json,
    read_unigram_tokenizer_json,
    unigram_backend,
    unigram_tokenizer_json,
)
from .files import TOKENIZER_JSON, load_bpe_files
from .packing import Encoded
from .spm import SentencePieceVocabulary, SpmPieceDecoder, decode_with_specials, split_on_punctuation
from .spm_proto import BYTE, CONTROL, SpmModel, load_spm_model
from .unigram import SpmUnigram, TieDetector, spm_spacing


def _offsets_and_words(encoding):
    return encoding.offsets, encoding.word_ids


class DebertaTokenizerFast(ByteLevelVocabulary, DebertaTokenizerBase):
    """DeBERTa v1 fast tokenizer: Rust byte-level BPE, same ids as :class:`DebertaTokenizer`.

    vocab_file / merges_file: ``vocab.json`` and ``merges.txt``; or tokenizer_file: a
    ``tokenizer.json`` with a byte-level BPE model. Other arguments as the slow class.
    """

    is_fast = True
    vocab_files_names = {**BPE_FILES, "tokenizer_file": TOKENIZER_JSON}
    model_input_names = ["input_ids", "attention_mask", "token_type_ids"]
    tokenizer_class_name = "DebertaTokenizer"
    _mask_lstrip_default = True

    def __init__(self, vocab_file=None, merges_file=None, tokenizer_file=None, errors: str = "replace",
                 add_prefix_space: bool = False, **kwargs):
        if vocab_file is not None and merges_file is not None:
            self.encoder, self.merges = load_bpe_files(Path(vocab_file), Path(merges_file))
        elif tokenizer_file is not None:
            self.encoder, self.merges = read_bpe_tokenizer_json(Path(tokenizer_file))
        else:
            raise ValueError("DebertaTokenizerFast needs vocab_file and merges_file, or tokenizer_file")
        self.decoder = {i: t for t, i in self.encoder.items()}
        self._backend = bpe_backend(self.encoder, self.merges)
        self.errors = errors
        self.add_prefix_space = bool(add_prefix_space)
        self.byte_decoder = {c: b for b, c in byte_to_unicode().items()}
        kwargs.pop("do_lower_case", None)
        self._init_common(**kwargs)

    @property
    def backend_tokenizer(self):
        """The underlying ``tokenizers.Tokenizer`` (sub-word model only)."""
        return self._backend

    def _encode_segments(self, texts: list[str], need_detail: bool = False) -> list[Encoded]:
        # Offsets and word ids are read from the Rust encodings only when asked for.
        # (encode_batch rather than encode_batch_fast: the latter measured slower.)
        encodings = self._backend.encode_batch(texts, add_special_tokens=False)
        return [Encoded(e.ids, detail=_offsets_and_words, detail_arg=e) for e in encodings]

    def _save_extra(self, directory: Path, filename_prefix: str | None) -> tuple[str, ...]:
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        path = directory / f"{prefix}{TOKENIZER_JSON}"
        path.write_text(bpe_tokenizer_json(self._backend, self._added_decoder, self.cls_token,
                                           self.sep_token), encoding="utf-8")
        return (str(path),)

    @classmethod
    def _from_folder(cls, directory: Path, config: dict[str, Any]):
        vocab, merges = directory / BPE_FILES["vocab_file"], directory / BPE_FILES["merges_file"]
        if vocab.is_file() or merges.is_file() or not (directory / TOKENIZER_JSON).is_file():
            return cls(vocab, merges, **config)
        return cls(tokenizer_file=directory / TOKENIZER_JSON, **config)


class _Chunk:
    """One piece of text as the Rust model sees it: ``mapped`` after lower-casing and the
    charsmap, with the original character span of each mapped character. Texts that neither
    change are passed around as plain strings instead (see ``_mapped``/``_original``)."""

    __slots__ = ("mapped", "starts", "ends")

    def __init__(self, mapped: str, starts, ends):
        self.mapped, self.starts, self.ends = mapped, starts, ends

    def to_original(self, offsets):
        if self.starts is None:
            return offsets
        starts, ends, n = self.starts, self.ends, len(self.mapped)
        out = []
        for s, e in offsets:
            if e > s:
                out.append((starts[s], ends[e - 1]))
            else:
                pos = starts[s] if s < n else (ends[-1] if n else 0)
                out.append((pos, pos))
        return out


def _mapped(chunk) -> str:
    return chunk if type(chunk) is str else chunk.mapped


def _original(chunk, offsets):
    return offsets if type(chunk) is str else chunk.to_original(offsets)


def _lowercase(text: str) -> tuple[str, list[int] | None, list[int] | None]:
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered, None, None
    # Some characters lower-case to two ("İ" -> "i̇"): keep track of where each came from.
    out, starts, ends = [], [], []
    for i, char in enumerate(text):
        low = char.lower()
        out.append(low)
        starts.extend([i] * len(low))
        ends.extend([i + 1] * len(low))
    return "".join(out), starts, ends


class DebertaV2TokenizerFast(SentencePieceVocabulary, DebertaTokenizerBase):
    """DeBERTa v2/v3 fast tokenizer: same ids as :class:`DebertaV2Tokenizer` (SentencePiece).

    vocab_file: ``spm.model`` (preferred), or tokenizer_file: a unigram ``tokenizer.json``.
    do_lower_case / split_by_punct: as the slow class. See :mod:`convert` for how the
    SentencePiece model is turned into a Rust pipeline that matches SentencePiece exactly.
    """

    is_fast = True
    vocab_files_names = {"vocab_file": "spm.model", "tokenizer_file": TOKENIZER_JSON}
    tokenizer_class_name = "DebertaV2Tokenizer"

    def __init__(self, vocab_file=None, tokenizer_file=None, do_lower_case: bool = False,
                 split_by_punct: bool = False, **kwargs):
        if vocab_file is not None:
            self.spm_model: SpmModel = load_spm_model(vocab_file)
        elif tokenizer_file is not None:
            self.spm_model, flags = read_unigram_tokenizer_json(Path(tokenizer_file))
            do_lower_case = do_lower_case or flags["do_lower_case"]
            split_by_punct = split_by_punct or flags["split_by_punct"]
        else:
            raise ValueError("DebertaV2TokenizerFast needs vocab_file (spm.model) or tokenizer_file")
        self.vocab_file = None if vocab_file is None else str(vocab_file)
        spm = self.spm_model
        self.do_lower_case = bool(do_lower_case)
        self.split_by_punct = bool(split_by_punct)
        self._pieces = spm.pieces
        self._vocab = {piece: i for i, piece in enumerate(self._pieces)}
        self._backend, self._backend_plain = unigram_backend(spm)
        # Exact SentencePiece search for the rare texts where float32 ties decide (unigram.py).
        self._ties = TieDetector(spm)
        self._exact_model: SpmUnigram | None = None
        self._space_id = self._vocab.get(SPACE_MARK)
        self._charsmap = CharsmapNormalizer(decode_charsmap(spm.precompiled_charsmap))
        self._unk_id = spm.unk_id
        # Byte value -> id of its <0xNN> piece, when the model falls back to bytes.
        self._byte_ids: list[int] | None = None
        if spm.byte_fallback:
            byte_ids = {int(p[3:5], 16): i for i, (p, k) in enumerate(zip(spm.pieces, spm.types))
                        if k == BYTE and len(p) == 6}
            if len(byte_ids) == 256:
                self._byte_ids = [byte_ids[b] for b in range(256)]
        self._piece_decoder = SpmPieceDecoder(
            {p: int(p[3:5], 16) for p, k in zip(spm.pieces, spm.types) if k == BYTE},
            spm.pieces[spm.unk_id], spm.unk_surface,
            {p for p, k in zip(spm.pieces, spm.types) if k == CONTROL}, spm.add_dummy_prefix)
        kwargs.pop("sp_model_kwargs", None)
        self._init_common(**kwargs)

    @property
    def backend_tokenizer(self):
        """The underlying ``tokenizers.Tokenizer`` (unigram model on charsmap-mapped text)."""
        return self._backend

    # ------------------------------------------------------------------ encoding
    def _chunk(self, text: str):
        """``text`` as the Rust model gets it: a _Chunk, or the text itself when unchanged."""
        starts = ends = None
        if self.do_lower_case:
            text, starts, ends = _lowercase(text)
        elif not self._charsmap.needs_mapping(text):
            return text
        mapped, m_starts, m_ends = self._charsmap.map(text)
        if m_starts is not None:
            if starts is not None:
                m_starts = [starts[i] for i in m_starts]
                m_ends = [ends[i - 1] for i in m_ends]
            starts, ends = m_starts, m_ends
        return _Chunk(mapped, starts, ends) if starts is not None else mapped

    def _expand_bytes(self, chunk: _Chunk, ids, offsets, words):
        """Replace each [UNK] by the byte pieces of the characters it covers (byte fallback)."""
        new_ids, new_offsets, new_words = [], [], []
        text = _mapped(chunk)
        for token, (s, e), word in zip(ids, offsets, words):
            if token != self._unk_id:
                new_ids.append(token)
                new_offsets.append((s, e))
                new_words.append(word)
                continue
            for pos in range(s, e):
                for byte in text[pos].encode("utf-8"):
                    new_ids.append(self._byte_ids[byte])
                    new_offsets.append((pos, pos + 1))
                    new_words.append(word)
        return new_ids, new_offsets, new_words

    def _finish(self, chunk, encoding, plain: bool = False):
        """(ids, offsets in the original text, word ids) of one chunk's Rust encoding.

        plain: the encoding comes from the plain pipeline, whose "▁" replaces the space before
        a word, so the span of a word's first token starts at that space and is moved past it.
        """
        ids, offsets, words = encoding.ids, encoding.offsets, encoding.word_ids
        if plain:
            text = _mapped(chunk)
            offsets = [(s + 1, e) if e > s and text[s] == " " else (s, e) for s, e in offsets]
        if self._byte_ids is not None and self._unk_id in ids:
            ids, offsets, words = self._expand_bytes(chunk, ids, offsets, words)
        return ids, _original(chunk, self._empty_spaces(ids, offsets)), words

    def _empty_spaces(self, ids, offsets):
        # A lone "▁" stands for the space before a word and spells no character of it.
        space = self._space_id
        if space is None or space not in ids:
            return offsets
        return [(s, s) if token == space else (s, e) for token, (s, e) in zip(ids, offsets)]

    def _detail(self, source):
        """(offsets, word ids) of a chunk from its stored encoding, made when first asked for."""
        chunk, encoding, plain = source
        return self._finish(chunk, encoding, plain)[1:]

    def _run(self, texts: list[str], with_offsets: bool) -> tuple[list, list[bool]]:
        """Rust encodings of mapped texts, one batch call per pipeline; and which were plain.

        The plain pipeline (see convert.unigram_backend) is used when offsets are not asked
        for up front and the text has no run of spaces, trailing space or literal "▁".
        ``encode_batch`` is used rather than ``encode_batch_fast``, which measured slower.
        """
        if with_offsets:
            return self._backend.encode_batch(texts, add_special_tokens=False), [False] * len(texts)
        plain = [not ("  " in t or t[-1:] == " " or not t or SPACE_MARK in t) for t in texts]
        if all(plain):
            return self._backend_plain.encode_batch(texts, add_special_tokens=False), plain
        results = [None] * len(texts)
        for flag, backend in ((True, self._backend_plain), (False, self._backend)):
            indices = [i for i, p in enumerate(plain) if p is flag]
            if indices:
                encodings = backend.encode_batch([texts[i] for i in indices], add_special_tokens=False)
                for i, encoding in zip(indices, encodings):
                    results[i] = encoding
        return results, plain

    def _exact(self, chunk: _Chunk) -> Encoded:
        """Encode one chunk with SentencePiece's own float32 search (see unigram.py)."""
        if self._exact_model is None:
            self._exact_model = SpmUnigram(self.spm_model)
        text, n_starts, n_ends = spm_spacing(_mapped(chunk))
        ids, offsets, words = [], [], []
        word = -1 if text.startswith(SPACE_MARK) else 0
        for index, s, e in self._exact_model.best_path(text):
            if text[s] == SPACE_MARK:
                word += 1
            if index == self._unk_id and self._byte_ids is not None:
                for pos in range(s, e):
                    for byte in text[pos].encode("utf-8"):
                        ids.append(self._byte_ids[byte])
                        offsets.append((n_starts[pos], n_ends[pos]))
                        words.append(word)
                continue
            ids.append(index)
            offsets.append((n_starts[s], n_ends[e - 1]))
            words.append(word)
        return Encoded(ids, _original(chunk, self._empty_spaces(ids, offsets)), words)

    def _encode_chunks(self, chunks: list, need_detail: bool, exact: bool = False) -> list[Encoded]:
        """Encode mapped chunks; one Encoded per chunk (offsets lazily unless asked for).

        exact: use the Python SentencePiece search for every chunk (for tests).
        """
        if exact:
            return [self._exact(chunk) for chunk in chunks]
        encodings, plain = self._run([_mapped(c) for c in chunks], with_offsets=need_detail)
        all_ids = [e.ids for e in encodings]
        risky = self._ties.risky(all_ids)
        byte_ids, unk, detail = self._byte_ids, self._unk_id, self._detail
        out = []
        for index, (chunk, encoding, ids) in enumerate(zip(chunks, encodings, all_ids)):
            if risky and index in risky:
                out.append(self._exact(chunk))
            elif need_detail or (byte_ids is not None and unk in ids):
                out.append(Encoded(*self._finish(chunk, encoding, plain[index])))
            else:
                out.append(Encoded(ids, detail=detail, detail_arg=(chunk, encoding, plain[index])))
        return out

    def _encode_segments(self, texts: list[str], need_detail: bool = False) -> list[Encoded]:
        if not self.split_by_punct:
            return self._encode_chunks([self._chunk(t) for t in texts], need_detail)
        # Each punctuation chunk is encoded on its own (own "▁" prefix), as the slow one does.
        layout = [split_on_punctuation(t) for t in texts]
        encoded = iter(self._encode_chunks([self._chunk(c) for parts in layout for _, c in parts],
                                           need_detail))
        out = []
        for parts in layout:
            pieces = [(next(encoded), start, None) for start, _ in parts]
            out.append(self._join(pieces) if pieces else Encoded([], [], []))
        return out

    # ------------------------------------------------------------------ decoding and files
    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Decode like SentencePiece, keeping special tokens as the slow tokenizer does."""
        return decode_with_specials(tokens, set(self.all_special_tokens), self._piece_decoder.decode)

    def save_vocabulary(self, save_directory, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write ``spm.model`` (or, when built from tokenizer.json alone, that file)."""
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        if self.spm_model.serialized:
            path = Path(save_directory) / f"{prefix}spm.model"
            path.write_bytes(self.spm_model.serialized)
            return (str(path),)
        path = Path(save_directory) / f"{prefix}{TOKENIZER_JSON}"
        path.write_text(unigram_tokenizer_json(self.spm_model, self._added_decoder, self.cls_token,
                                               self.sep_token, self.do_lower_case, self.split_by_punct),
                        encoding="utf-8")
        return (str(path),)

    @classmethod
    def _from_folder(cls, directory: Path, config: dict[str, Any]):
        spm_file = directory / "spm.model"
        if spm_file.is_file() or not (directory / TOKENIZER_JSON).is_file():
            return cls(spm_file, **config)
        return cls(tokenizer_file=directory / TOKENIZER_JSON, **config)


__all__ = ["DebertaTokenizerFast", "DebertaV2TokenizerFast"]
