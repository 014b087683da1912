"""DeBERTa v1 fast tokenizer: the byte-level BPE run by the ``tokenizers`` (Rust) library.

Added-token splitting, templates, truncation, padding and decoding are the Python code the slow
class uses (:mod:`base`); the Rust pipeline (ByteLevel pre-tokenizer, BPE, ByteLevel decoder, as
the reference converter builds it) turns plain text into ids, offsets and word ids, in batches.

Offsets point at the characters a token stands for, without the space that a "Ġ" token carries
in front of its word (the reference fast tokenizer includes that space, #14418); a token of
spaces only gets an empty span where its spaces end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenizers import AddedToken as RustAddedToken
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

from .base import DebertaTokenizerBase
from .bpe import VOCAB_FILES, ByteLevelVocabulary, byte_to_unicode
from .files import TOKENIZER_JSON, VocabularyError, load_bpe_files, read_json
from .packing import Encoded


def bpe_pipeline(vocab: dict[str, int], merges: list[tuple[str, str]]) -> Tokenizer:
    """The Rust byte-level BPE for DeBERTa v1, without added tokens or templates.

    The ByteLevel post-processor trims the space of "Ġ" tokens from their offsets.
    """
    pipeline = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, unk_token=None,
                                    continuing_subword_prefix="", end_of_word_suffix="",
                                    fuse_unk=False, byte_fallback=False))
    pipeline.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    pipeline.decoder = decoders.ByteLevel()
    pipeline.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    return pipeline


def read_bpe_tokenizer_json(path: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary and merges of a byte-level BPE ``tokenizer.json``."""
    data = read_json(path, "tokenizer file tokenizer.json")
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        raise VocabularyError(f"{path}: expected a BPE model for DeBERTa v1")
    merges = []
    for merge in model.get("merges", []):
        pair = merge.split(" ") if isinstance(merge, str) else merge
        if len(pair) != 2:
            raise VocabularyError(f"{path}: bad merge {merge!r}")
        merges.append((pair[0], pair[1]))
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not vocab:
        raise VocabularyError(f"{path}: the BPE model has no vocabulary")
    for token in (data.get("added_tokens") or []):
        vocab.setdefault(token["content"], token["id"])
    return vocab, merges


def _offsets_and_words(encoding):
    return encoding.offsets, encoding.word_ids


class DebertaTokenizerFast(ByteLevelVocabulary, DebertaTokenizerBase):
    """DeBERTa v1 fast tokenizer: Rust byte-level BPE, same ids as :class:`DebertaTokenizer`.

    vocab_file / merges_file: ``vocab.json`` and ``merges.txt``; or tokenizer_file: a
    ``tokenizer.json`` with a byte-level BPE model. Other arguments as the slow class.
    """

    is_fast = True
    vocab_files_names = {**VOCAB_FILES, "tokenizer_file": TOKENIZER_JSON}
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
        self._pipeline = bpe_pipeline(self.encoder, self.merges)
        self.errors = errors
        self.add_prefix_space = bool(add_prefix_space)
        self.byte_decoder = {c: b for b, c in byte_to_unicode().items()}
        kwargs.pop("do_lower_case", None)
        self._init_common(**kwargs)

    @property
    def backend_tokenizer(self) -> Tokenizer:
        """The underlying ``tokenizers.Tokenizer`` (sub-word model only)."""
        return self._pipeline

    def _encode_segments(self, texts: list[str], need_detail: bool = False) -> list[Encoded]:
        # Offsets and word ids are read from the Rust encodings only when asked for.
        # (encode_batch rather than encode_batch_fast: the latter measured slower.)
        encodings = self._pipeline.encode_batch(texts, add_special_tokens=False)
        return [Encoded(e.ids, detail=_offsets_and_words, detail_arg=e) for e in encodings]

    def _save_extra(self, directory: Path, filename_prefix: str | None) -> tuple[str, ...]:
        """tokenizer.json in the reference layout: added tokens and the [CLS]/[SEP] template."""
        full = Tokenizer.from_str(self._pipeline.to_str())
        added = self._added_decoder
        full.add_special_tokens([
            RustAddedToken(t.content, single_word=t.single_word, lstrip=t.lstrip, rstrip=t.rstrip,
                           normalized=t.normalized, special=t.special) for _, t in sorted(added.items())])
        cls, sep = self.cls_token, self.sep_token
        full.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, self._added_encoder[cls]), (sep, self._added_encoder[sep])])
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        path = directory / f"{prefix}{TOKENIZER_JSON}"
        path.write_text(full.to_str(), encoding="utf-8")
        return (str(path),)

    @classmethod
    def _from_folder(cls, directory: Path, config: dict[str, Any]):
        vocab, merges = directory / VOCAB_FILES["vocab_file"], directory / VOCAB_FILES["merges_file"]
        if vocab.is_file() or merges.is_file() or not (directory / TOKENIZER_JSON).is_file():
            return cls(vocab, merges, **config)
        return cls(tokenizer_file=directory / TOKENIZER_JSON, **config)


__all__ = ["DebertaTokenizerFast"]
