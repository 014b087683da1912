"""Read the parts of a SentencePiece ``ModelProto`` (``spm.model``) that tokenization needs.

SentencePiece ships its schema as ``sentencepiece_model_pb2``, which needs the ``protobuf``
package at runtime. The few fields used here are easy to read straight from the protobuf wire
format, so this module does that and the package needs no protobuf dependency. Field numbers
follow ``sentencepiece_model.proto`` (checked against the pb2 descriptor in the tests).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

# SentencePiece.Type values.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
# TrainerSpec.ModelType values.
UNIGRAM, BPE, WORD, CHAR = 1, 2, 3, 4


class SpmModelError(ValueError):
    """Raised when bytes are not a readable SentencePiece model."""


@dataclass
class SpmModel:
    """The fields of an ``spm.model`` that encoding and decoding depend on.

    ``pieces[i]``, ``scores[i]`` and ``types[i]`` describe the piece with id ``i`` (kept as
    three flat lists: 128,000 small objects would slow every garbage collection down). The
    normalizer fields mirror ``NormalizerSpec``
    (``precompiled_charsmap`` is the compiled nmt_nfkc rule table). ``serialized`` keeps the
    original file bytes so that saving writes back exactly what was read.
    """

    pieces: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    types: list[int] = field(default_factory=list)
    model_type: int = UNIGRAM
    byte_fallback: bool = False
    treat_whitespace_as_suffix: bool = False
    unk_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = -1
    unk_surface: str = " \u2047 "
    normalizer_name: str = ""
    precompiled_charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True
    serialized: bytes = b""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode one base-128 varint at ``pos``; return (value, next position)."""
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise SpmModelError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise SpmModelError("varint too long")


def _fields(buf: bytes):
    """Yield (field number, wire type, value) for every field of one protobuf message.

    Length-delimited values come back as bytes, varints as int, fixed32/64 as raw bytes.
    """
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise SpmModelError("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise SpmModelError(f"unsupported wire type {wire}")
        if pos > end:
            raise SpmModelError("message is truncated")
        yield number, wire, value


def _int32(value: int) -> int:
    # int32 fields are varint-encoded as 64-bit two's complement when negative (pad_id = -1).
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpmModelError(f"string field is not UTF-8: {err}") from None


def _parse_piece(value: bytes) -> tuple[str, float, int]:
    """One ``SentencePiece`` message: piece (1, string), score (2, float), type (3, enum)."""
    # Fast path for the usual layout 0x0A len piece | 0x15 float | [0x18 type].
    if value[:1] == b"\x0a" and len(value) > 1 and value[1] < 0x80:
        end = 2 + value[1]
        if value[end:end + 1] == b"\x15" and len(value) >= end + 5:
            rest = value[end + 5:]
            if not rest or (len(rest) == 2 and rest[0] == 0x18 and rest[1] < 0x80):
                return (_text(value[2:end]), struct.unpack_from("<f", value, end + 1)[0],
                        rest[1] if rest else NORMAL)
    piece, score, kind = "", 0.0, NORMAL
    for n, w, v in _fields(value):
        if n == 1 and w == 2:
            piece = _text(v)
        elif n == 2 and w == 5:
            score = struct.unpack("<f", v)[0]
        elif n == 3 and w == 0:
            kind = v
    return piece, score, kind


def parse_spm_model(data: bytes) -> SpmModel:
    """Parse serialized ``ModelProto`` bytes into an :class:`SpmModel`.

    Raises :class:`SpmModelError` if the bytes are not a SentencePiece model with pieces.
    """
    model = SpmModel(serialized=bytes(data))
    for number, wire, value in _fields(data):
        if number == 1 and wire == 2:
            piece, score, kind = _parse_piece(value)
            model.pieces.append(piece)
            model.scores.append(score)
            model.types.append(kind)
        elif number == 2 and wire == 2:
            for n, w, v in _fields(value):
                if w == 0:
                    if n == 3:
                        model.model_type = v
                    elif n == 35:
                        model.byte_fallback = bool(v)
                    elif n == 24:
                        model.treat_whitespace_as_suffix = bool(v)
                    elif n == 40:
                        model.unk_id = _int32(v)
                    elif n == 41:
                        model.bos_id = _int32(v)
                    elif n == 42:
                        model.eos_id = _int32(v)
                    elif n == 43:
                        model.pad_id = _int32(v)
                elif w == 2 and n == 44:
                    model.unk_surface = _text(v)
        elif number == 3 and wire == 2:
            for n, w, v in _fields(value):
                if n == 1 and w == 2:
                    model.normalizer_name = _text(v)
                elif n == 2 and w == 2:
                    model.precompiled_charsmap = bytes(v)
                elif n == 3 and w == 0:
                    model.add_dummy_prefix = bool(v)
                elif n == 4 and w == 0:
                    model.remove_extra_whitespaces = bool(v)
                elif n == 5 and w == 0:
                    model.escape_whitespaces = bool(v)
    if not model.pieces:
        raise SpmModelError("no vocabulary pieces found")
    if not 0 <= model.unk_id < len(model.pieces):
        raise SpmModelError(f"unk_id {model.unk_id} is outside the vocabulary")
    return model


def load_spm_model(path: str | Path) -> SpmModel:
    """Read and parse an ``spm.model`` file, with a clear error naming the file on failure."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SentencePiece model file not found: {path}")
    try:
        return parse_spm_model(path.read_bytes())
    except SpmModelError as err:
        raise SpmModelError(f"{path} is not a valid SentencePiece model ({err})") from None
