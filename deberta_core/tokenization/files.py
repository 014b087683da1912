"""Reading and writing the Hugging Face tokenizer folder layout, with clear errors.

A tokenizer folder holds the vocabulary (``vocab.json`` + ``merges.txt`` for v1,
``spm.model`` for v2/v3, and optionally ``tokenizer.json``) next to three small JSON files:
``tokenizer_config.json`` (constructor arguments and ``added_tokens_decoder``),
``special_tokens_map.json`` (role -> token) and ``added_tokens.json`` (token -> id for tokens
outside the vocabulary, e.g. ``{"[MASK]": 128000}``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .special_tokens import SPECIAL_TOKEN_ROLES, AddedToken

TOKENIZER_CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"
ADDED_TOKENS = "added_tokens.json"
TOKENIZER_JSON = "tokenizer.json"


class VocabularyError(ValueError):
    """A vocabulary or configuration file exists but cannot be used."""


def read_json(path: Path, what: str) -> Any:
    """Load JSON from ``path``; ``what`` names the file's role in error messages."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise VocabularyError(f"{what} {path} is not valid JSON ({err})") from None


def write_json(path: Path, obj: Any, indent: int | None = 2) -> str:
    """Write ``obj`` as UTF-8 JSON (non-ASCII kept) and return the path as a string."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")
    return str(path)


def require_dir(directory) -> Path:
    """Return ``directory`` as a Path, raising a clear error when it is not a folder."""
    path = Path(directory)
    if not path.is_dir():
        raise FileNotFoundError(
            f"tokenizer folder not found: {path} (from_pretrained reads local folders only)")
    return path


def load_bpe_files(vocab_path: Path, merges_path: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Read ``vocab.json`` (token -> id) and ``merges.txt`` (ranked pairs) and check them.

    Returns (vocab, merges). Raises FileNotFoundError for a missing file and VocabularyError
    when a file is malformed (not a str->int map, duplicate ids, a merge line that is not two
    symbols, or a merge whose parts are not in the vocabulary).
    """
    vocab = read_json(vocab_path, "vocabulary file vocab.json")
    if not isinstance(vocab, dict) or not vocab:
        raise VocabularyError(f"{vocab_path} must be a non-empty JSON object mapping tokens to ids")
    for token, index in vocab.items():
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise VocabularyError(f"{vocab_path}: id of {token!r} must be a non-negative integer, got {index!r}")
    if len(set(vocab.values())) != len(vocab):
        raise VocabularyError(f"{vocab_path}: several tokens share one id")
    if not Path(merges_path).is_file():
        raise FileNotFoundError(f"merges file merges.txt not found: {merges_path}")
    try:
        lines = Path(merges_path).read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as err:
        raise VocabularyError(f"{merges_path} is not UTF-8 text ({err})") from None
    merges = []
    for number, line in enumerate(lines, start=1):
        if not line or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise VocabularyError(f"{merges_path} line {number}: expected two symbols separated by "
                                  f"one space, got {line!r}")
        if parts[0] not in vocab or parts[1] not in vocab or parts[0] + parts[1] not in vocab:
            raise VocabularyError(f"{merges_path} line {number}: merge {line!r} uses symbols missing "
                                  "from vocab.json")
        merges.append((parts[0], parts[1]))
    return vocab, merges


def load_folder_config(directory: Path) -> dict[str, Any]:
    """Collect constructor arguments from the three JSON files of a tokenizer folder.

    Precedence follows the reference: ``tokenizer_config.json`` first, then roles from
    ``special_tokens_map.json``. Token flags (lstrip, ...) come from ``added_tokens_decoder``
    when the role is given as a plain string. Returned extras: ``"added_tokens_decoder"``
    (id -> AddedToken) and ``"added_tokens_ids"`` (``added_tokens.json``, token -> id).
    Missing files are simply absent; broken ones raise.
    """
    config: dict[str, Any] = {}
    path = directory / TOKENIZER_CONFIG
    if path.is_file():
        config = read_json(path, "tokenizer config")
        if not isinstance(config, dict):
            raise VocabularyError(f"{path} must hold a JSON object")
    decoder: dict[int, AddedToken] = {}
    for key, value in (config.pop("added_tokens_decoder", None) or {}).items():
        try:
            decoder[int(key)] = AddedToken.coerce(value)
        except (TypeError, ValueError):
            raise VocabularyError(f"{path}: bad added_tokens_decoder entry {key!r}: {value!r}") from None
    path = directory / SPECIAL_TOKENS_MAP
    if path.is_file():
        special_map = read_json(path, "special tokens map")
        if not isinstance(special_map, dict):
            raise VocabularyError(f"{path} must hold a JSON object")
        for role in (*SPECIAL_TOKEN_ROLES, "additional_special_tokens"):
            if special_map.get(role) is not None:
                config[role] = special_map[role]
    by_content = {token.content: token for token in decoder.values()}
    for role in SPECIAL_TOKEN_ROLES:
        value = config.get(role)
        if isinstance(value, dict):
            config[role] = AddedToken.coerce(value)
        elif isinstance(value, str) and value in by_content:
            config[role] = by_content[value]
    added_ids: dict[str, int] = {}
    path = directory / ADDED_TOKENS
    if path.is_file():
        added = read_json(path, "added tokens file")
        if not isinstance(added, dict) or not all(isinstance(v, int) for v in added.values()):
            raise VocabularyError(f"{path} must map token strings to integer ids")
        added_ids.update(added)
    config["added_tokens_ids"] = added_ids
    config["added_tokens_decoder"] = decoder
    return config
