"""Build ``tokenizers`` (Rust) pipelines for the fast tokenizers, and read/write tokenizer.json.

v1: a byte-level BPE, as the reference converter builds it.

v2/v3: converted from ``spm.model`` here, differently from the reference converter, so that
the ids equal SentencePiece's on every input:

* No ``Precompiled`` normaliser. It applies the nmt_nfkc table per grapheme cluster and picks
  the shortest matching rule ("A\\u0302\\u0300" -> "Â", a combining mark after "½" dropped);
  SentencePiece picks the longest rule at each position. The table is applied in Python
  instead (:mod:`charsmap`), only to texts that contain a character it could change.
* No ``Strip``: it removes every Unicode whitespace character at the ends, but SentencePiece
  only strips what its table maps to a plain space (it keeps U+0085, for one). Splitting on
  " " alone does the stripping and collapsing.
* Byte fallback: SentencePiece turns characters outside the vocabulary into ``<0xNN>`` byte
  pieces; the reference converter disables it and emits [UNK]. Here the Rust model reports
  [UNK] and the fast tokenizer swaps in the byte pieces.
* Pieces SentencePiece never matches in text (control, unknown, byte, unused: [CLS], <0x41>,
  ...) are renamed with a trailing "▁" inside the Rust model. The pre-tokenizer only ever puts
  "▁" at the start of a word, so they cannot match (the reference matches "<0x41>" typed in
  text as one token).
"""

from __future__ import annotations

import base64
from pathlib import Path

from tokenizers import AddedToken as RustAddedToken
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from .files import VocabularyError, read_json
from .special_tokens import AddedToken
from .spm_proto import BYTE, CONTROL, NORMAL, UNIGRAM, UNKNOWN, USER_DEFINED, SpmModel

SPACE_MARK = "\u2581"


def _template(cls_token: str, cls_id: int, sep_token: str, sep_id: int):
    return processors.TemplateProcessing(
        single=f"{cls_token}:0 $A:0 {sep_token}:0",
        pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
        special_tokens=[(cls_token, cls_id), (sep_token, sep_id)])


def _with_added_tokens(backend: Tokenizer, added: dict[int, AddedToken], cls_token: str,
                       sep_token: str) -> Tokenizer:
    """A copy of ``backend`` with added tokens and the [CLS]/[SEP] template, for saving."""
    full = Tokenizer.from_str(backend.to_str())
    full.add_special_tokens([
        RustAddedToken(t.content, single_word=t.single_word, lstrip=t.lstrip, rstrip=t.rstrip,
                       normalized=t.normalized, special=t.special)
        for _, t in sorted(added.items())])
    ids = {t.content: i for i, t in added.items()}
    full.post_processor = _template(cls_token, ids[cls_token], sep_token, ids[sep_token])
    return full


# ---------------------------------------------------------------------------- v1 (BPE)
def bpe_backend(vocab: dict[str, int], merges: list[tuple[str, str]]) -> Tokenizer:
    """The Rust byte-level BPE for DeBERTa v1, without added tokens or templates.

    Added tokens and [CLS]/[SEP] are handled in Python (shared with the slow tokenizer). The
    ByteLevel post-processor trims the space of "Ġ" tokens from their offsets (a token of
    spaces only gets an empty span at its end).
    """
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, unk_token=None,
                                   continuing_subword_prefix="", end_of_word_suffix="",
                                   fuse_unk=False, byte_fallback=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True,
                                                     use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    return backend


def bpe_tokenizer_json(backend: Tokenizer, added: dict[int, AddedToken], cls_token: str,
                       sep_token: str) -> str:
    """tokenizer.json text in the reference layout (added tokens, template, ByteLevel)."""
    return _with_added_tokens(backend, added, cls_token, sep_token).to_str()


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


# ---------------------------------------------------------------------------- v2/v3 (unigram)
def runtime_piece_name(piece: str, kind: int) -> str:
    """The name a piece gets inside the Rust model: unchanged when SentencePiece can match it
    in text (normal and user-defined pieces), else with a trailing "▁" that no pre-tokenized
    word can contain."""
    if kind in (NORMAL, USER_DEFINED):
        return piece
    return piece + SPACE_MARK


def unigram_backend(spm: SpmModel) -> tuple[Tokenizer, Tokenizer]:
    """Rust unigram pipelines for an spm.model, fed with text already mapped by the charsmap.

    Returns (general, plain), two pipelines over one model, with no normaliser (see the
    module docstring) and byte fallback off (the fast tokenizer swaps byte pieces in for
    [UNK]):

    * general: split on plain spaces, dropping them (which also strips and collapses them the
      way SentencePiece does), then Metaspace puts "▁" in front of every word. The "▁" is
      inserted rather than taken from the space, so offsets cover the word and not the space
      before it. Right for every text.
    * plain: Metaspace alone turns each space into "▁" and splits there. Same ids, a little
      faster, but only right for texts without a run of spaces or a trailing space; used for
      ids when offsets are not needed.
    """
    if spm.model_type != UNIGRAM:
        raise NotImplementedError("only unigram SentencePiece models can be converted")
    if spm.treat_whitespace_as_suffix or not (spm.add_dummy_prefix and spm.remove_extra_whitespaces
                                              and spm.escape_whitespaces):
        raise NotImplementedError(
            "the fast converter handles SentencePiece models with add_dummy_prefix, "
            "remove_extra_whitespaces and escape_whitespaces on (as all DeBERTa-v2/v3 models)")
    vocab = [(runtime_piece_name(p, k), s) for p, s, k in zip(spm.pieces, spm.scores, spm.types)]
    names = [name for name, _ in vocab]
    if len(set(names)) != len(names):
        raise VocabularyError("the SentencePiece vocabulary has duplicate pieces")
    model = models.Unigram(vocab, unk_id=spm.unk_id, byte_fallback=False)
    general, plain = Tokenizer(model), Tokenizer(model)
    # CharDelimiterSplit is the cheapest way to split on " " alone (WhitespaceSplit would also
    # split on U+0085, which SentencePiece keeps as a character).
    general.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.CharDelimiterSplit(" "),
        pre_tokenizers.Metaspace(replacement=SPACE_MARK, prepend_scheme="always", split=False)])
    plain.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE_MARK, prepend_scheme="always", split=True)
    for backend in (general, plain):
        backend.decoder = decoders.Metaspace(replacement=SPACE_MARK, prepend_scheme="always", split=True)
    return general, plain


def unigram_tokenizer_json(spm: SpmModel, added: dict[int, AddedToken], cls_token: str,
                           sep_token: str, do_lower_case: bool, split_by_punct: bool) -> str:
    """tokenizer.json text in the reference converter's layout (Precompiled normaliser).

    Written only when there is no spm.model to save. The reference reads it, with its own
    known normalisation differences; our fast tokenizer reads it back exactly.
    """
    norm = []
    if do_lower_case:
        norm.append(normalizers.Lowercase())
    norm.append(normalizers.Strip())
    if spm.precompiled_charsmap:
        norm.append(normalizers.Precompiled(spm.precompiled_charsmap))
    norm.append(normalizers.Replace(Regex(" {2,}"), " "))
    pre = []
    if split_by_punct:
        pre.append(pre_tokenizers.Punctuation("isolated"))
    pre.append(pre_tokenizers.Metaspace(replacement=SPACE_MARK, prepend_scheme="always", split=True))
    tok = Tokenizer(models.Unigram(list(zip(spm.pieces, spm.scores)), unk_id=spm.unk_id,
                                   byte_fallback=spm.byte_fallback))
    tok.normalizer = normalizers.Sequence(norm)
    tok.pre_tokenizer = pre_tokenizers.Sequence(pre)
    tok.decoder = decoders.Metaspace(replacement=SPACE_MARK, prepend_scheme="always", split=True)
    return _with_added_tokens(tok, added, cls_token, sep_token).to_str()


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


def read_unigram_tokenizer_json(path: Path) -> tuple[SpmModel, dict]:
    """Rebuild the SentencePiece fields from a unigram ``tokenizer.json``.

    Piece types are inferred: [PAD]/[CLS]/[SEP] control, the unk piece unknown, ``<0xNN>``
    byte pieces when all 256 are present (a SentencePiece model only has them when trained
    with byte fallback, which the reference converter drops). Returns (model, flags) where
    flags holds do_lower_case and split_by_punct as the file's pipeline implies.
    """
    data = read_json(path, "tokenizer file tokenizer.json")
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type") != "Unigram":
        raise VocabularyError(f"{path}: expected a Unigram model for DeBERTa v2/v3")
    vocab = model.get("vocab")
    if not isinstance(vocab, list) or not vocab:
        raise VocabularyError(f"{path}: the Unigram model has no vocabulary")
    unk_id = model.get("unk_id") or 0
    byte_names = {f"<0x{b:02X}>" for b in range(256)}
    present = {entry[0] for entry in vocab}
    has_bytes = byte_names <= present
    pieces, scores, types = [], [], []
    for index, (piece, score) in enumerate(vocab):
        if index == unk_id:
            kind = UNKNOWN
        elif piece in ("[PAD]", "[CLS]", "[SEP]"):
            kind = CONTROL
        elif has_bytes and piece in byte_names:
            kind = BYTE
        else:
            kind = NORMAL
        pieces.append(piece)
        scores.append(float(score))
        types.append(kind)
    precompiled = _find(data.get("normalizer"), "Precompiled")
    charsmap = base64.b64decode(precompiled["precompiled_charsmap"]) if precompiled else b""
    metaspace = _find(data.get("pre_tokenizer"), "Metaspace")
    spm = SpmModel(pieces=pieces, scores=scores, types=types, unk_id=unk_id,
                   byte_fallback=bool(model.get("byte_fallback")) or has_bytes,
                   normalizer_name="nmt_nfkc" if charsmap else "identity", precompiled_charsmap=charsmap,
                   add_dummy_prefix=(metaspace or {}).get("prepend_scheme", "always") != "never",
                   remove_extra_whitespaces=_find(data.get("normalizer"), "Strip") is not None
                   or _find(data.get("normalizer"), "Replace") is not None)
    flags = {"do_lower_case": _find(data.get("normalizer"), "Lowercase") is not None,
             "split_by_punct": _find(data.get("pre_tokenizer"), "Punctuation") is not None}
    return spm, flags

