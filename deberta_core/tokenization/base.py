"""The call API shared by all four DeBERTa tokenizers.

Subclasses only say how a plain piece of text becomes token ids (``_encode_segments``), how
tokens become text again (``convert_tokens_to_string``) and how their vocabulary is stored.
Everything users call lives here, once, for slow and fast alike: input checking, added-token
splitting, batching, pairs, truncation and overflow windows, padding, tensors, decoding,
special-token helpers, and ``from_pretrained``/``save_pretrained``. The behaviour follows the
slow tokenizers of transformers 4.57 (``DebertaTokenizer``/``DebertaV2Tokenizer``); where the
fast reference differs, the docstrings say which one is followed.
"""

from __future__ import annotations

import gc
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .batch_encoding import BatchEncoding, check_tensor_type
from .files import ADDED_TOKENS, SPECIAL_TOKENS_MAP, TOKENIZER_CONFIG, load_folder_config, require_dir, write_json
from .packing import PADDING_STRATEGIES, TRUNCATION_STRATEGIES, Encoded, build_rows, pad_rows
from .special_tokens import SPECIAL_TOKEN_ROLES, AddedToken, AddedTokenSplitter

logger = logging.getLogger(__name__)

# transformers writes int(1e30) as model_max_length when a checkpoint sets none (deberta-v3).
_UNSET_MAX_LENGTH = int(1e29)
DEFAULT_MODEL_MAX_LENGTH = 512

_INPUT_ERROR = ("text input must be of type `str` (single example), `list[str]` (batch, or one "
                "example split into words with is_split_into_words=True) or `list[list[str]]` "
                "(batch of examples split into words)")

# Constructor arguments that are ours to write on save; everything else read from
# tokenizer_config.json is written back unchanged.
_MANAGED_KEYS = {
    "model_max_length", "padding_side", "truncation_side", "clean_up_tokenization_spaces",
    "model_input_names", "split_special_tokens", "tokenizer_class", "added_tokens_decoder",
    "added_tokens_ids", "name_or_path", "tokenizer_file", "vocab_file", "merges_file",
    "additional_special_tokens",
    *SPECIAL_TOKEN_ROLES,
}


def _is_str_list(value) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)


def _clean_up_tokenization(text: str) -> str:
    # The reference's English clean-up of spaces before punctuation and contractions.
    for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
                          (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"),
                          (" 're", "'re")):
        text = text.replace(before, after)
    return text


def _to_id_list(token_ids) -> list[int]:
    """Accept an int, a list, a numpy array or a framework tensor of token ids."""
    if hasattr(token_ids, "tolist"):  # numpy arrays, torch tensors (any device)
        token_ids = token_ids.tolist()
    elif hasattr(token_ids, "numpy"):  # TensorFlow tensors
        token_ids = token_ids.numpy().tolist()
    if isinstance(token_ids, int):
        return [token_ids]
    return [int(i) for i in token_ids]


# Batches at least this large are built with the cyclic garbage collector paused (see below).
_GC_PAUSE_MIN = 64


@contextmanager
def _gc_paused(active: bool):
    """Pause Python's cyclic garbage collector while one large batch is built.

    A batch call allocates a few lists per text and creates no reference cycles, yet with the
    collector running it re-scans the growing set of young objects again and again; on 10,000
    texts that costs about a tenth of the call. The collector is re-enabled afterwards (left
    alone if the caller had already disabled it), and anything cyclic is collected then.
    """
    if not active or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _joined_detail(parts: list):
    """Offsets and word ids of a joined input (see ``DebertaTokenizerBase._join``)."""
    offsets: list = []
    words: list = []
    next_word = 0
    for piece, where, word in parts:
        if isinstance(piece, Encoded):
            seg_offsets, seg_words = piece.offsets(), piece.words()
            if seg_offsets is None:
                return None, None
            offsets.extend((max(s + where, 0), max(e + where, 0)) for s, e in seg_offsets)
            if word is not None:
                words.extend([word] * len(piece.ids))
            else:
                words.extend(None if w is None else w + next_word for w in seg_words)
                next_word += max((w for w in seg_words if w is not None), default=-1) + 1
        else:
            offsets.append(where)
            words.append(word if word is not None else next_word)
            next_word += word is None
    return offsets, words


class DebertaTokenizerBase:
    """Shared implementation of the reference tokenizer API (see the module docstring).

    Subclasses set ``vocab_files_names`` and implement ``_base_vocab`` (token -> id of the
    model vocabulary), ``_base_id_to_token``, ``_encode_segments``,
    ``convert_tokens_to_string``, ``save_vocabulary`` and ``_from_folder``.
    """

    vocab_files_names: dict[str, str] = {}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    is_fast = False
    tokenizer_class_name = ""
    # The v1 tokenizers make a plain-string mask token absorb the space before it.
    _mask_lstrip_default = False

    def _init_common(self, *, bos_token="[CLS]", eos_token="[SEP]", unk_token="[UNK]",
                     sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
                     model_max_length=None, padding_side="right", truncation_side="right",
                     clean_up_tokenization_spaces=False, model_input_names=None,
                     split_special_tokens=False, added_tokens_ids=None, added_tokens_decoder=None,
                     additional_special_tokens=None, **config):
        """Set up special tokens, added-token ids and call defaults.

        Call this after the vocabulary is loaded (ids of special tokens are looked up in it).
        Unknown keyword arguments are kept and written back by ``save_pretrained``.
        """
        if padding_side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        if truncation_side not in ("right", "left"):
            raise ValueError(f"truncation_side must be 'right' or 'left', got {truncation_side!r}")
        self.padding_side = padding_side
        self.truncation_side = truncation_side
        if model_max_length is None or model_max_length >= _UNSET_MAX_LENGTH:
            # The v3 checkpoints set no limit; the model has 512 positions, so cap there.
            model_max_length = DEFAULT_MODEL_MAX_LENGTH
        self.model_max_length = int(model_max_length)
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        self.split_special_tokens = bool(split_special_tokens)
        if model_input_names is not None:
            self.model_input_names = list(model_input_names)
        self.init_kwargs = {k: v for k, v in config.items() if k not in _MANAGED_KEYS}

        defaults = {"mask_token": {"lstrip": self._mask_lstrip_default}}
        values = dict(bos_token=bos_token, eos_token=eos_token, unk_token=unk_token,
                      sep_token=sep_token, pad_token=pad_token, cls_token=cls_token,
                      mask_token=mask_token)
        self._special: dict[str, AddedToken | None] = {}
        for role in SPECIAL_TOKEN_ROLES:
            value = values[role]
            self._special[role] = None if value is None else AddedToken.coerce(
                value, **defaults.get(role, {}), special=True)
        decoder = {int(i): AddedToken.coerce(t) for i, t in (added_tokens_decoder or {}).items()}
        by_content = {t.content: t for t in decoder.values()}
        self._additional = [AddedToken.coerce(by_content.get(t, t) if isinstance(t, str) else t, special=True)
                            for t in (additional_special_tokens or [])]
        self._register_added_tokens(added_tokens_ids or {}, decoder)

    def _register_added_tokens(self, added_ids: dict[str, int], decoder: dict[int, AddedToken]) -> None:
        # Special tokens, extra special tokens, then any other token the files list (from
        # added_tokens_decoder or added_tokens.json) are all matched whole in raw text. An id
        # comes from the vocabulary, else from the files, else it is the next free one.
        vocab = self._base_vocab()
        file_ids = {**added_ids, **{t.content: i for i, t in decoder.items()}}
        self._added_encoder: dict[str, int] = {}
        self._added_decoder: dict[int, AddedToken] = {}
        next_id = max(self._base_vocab_size(), max(file_ids.values(), default=-1) + 1)
        candidates = [t for t in self._special.values() if t is not None] + self._additional
        candidates += [t for _, t in sorted(decoder.items())]
        candidates += [AddedToken(c, special=False, normalized=True) for c in added_ids]
        for token in candidates:
            if token.content in self._added_encoder:
                continue
            if token.content in vocab:
                index = vocab[token.content]
            elif token.content in file_ids:
                index = file_ids[token.content]
            else:
                index, next_id = next_id, next_id + 1
            self._added_encoder[token.content] = index
            self._added_decoder[index] = token
        self._splitter = AddedTokenSplitter({t.content: t for t in self._added_decoder.values()})

    # ------------------------------------------------------------------ to implement
    def _base_vocab(self) -> dict[str, int]:
        """Token -> id of the model vocabulary (without added tokens)."""
        raise NotImplementedError

    def _base_vocab_size(self) -> int:
        """Number of entries of the model vocabulary."""
        return len(self._base_vocab())

    def _base_id_to_token(self, index: int) -> str:
        """Token string of a model-vocabulary id."""
        raise NotImplementedError

    def _encode_segments(self, texts: list[str], need_detail: bool = False) -> list[Encoded]:
        """Encode plain text pieces (no added tokens inside) into ids, one Encoded per piece.

        need_detail: offsets will be read (fast tokenizers may then compute them eagerly).
        """
        raise NotImplementedError

    def _prefix_for(self, text: str, is_split_into_words: bool, add_prefix_space: bool) -> str:
        """The prefix the reference adds before tokenizing ``text`` ("" or " ")."""
        return ""

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """Join tokens (no added tokens among them) back into text."""
        raise NotImplementedError

    def save_vocabulary(self, save_directory, filename_prefix: str | None = None) -> tuple[str, ...]:
        """Write the vocabulary files into ``save_directory``; return their paths."""
        raise NotImplementedError

    @classmethod
    def _from_folder(cls, directory: Path, config: dict[str, Any]):
        """Build an instance from a folder, given its merged JSON configuration."""
        raise NotImplementedError

    # ------------------------------------------------------------------ special tokens
    def _special_content(self, role: str) -> str | None:
        token = self._special.get(role)
        return None if token is None else token.content

    def _special_id(self, role: str) -> int | None:
        content = self._special_content(role)
        return None if content is None else self.convert_tokens_to_ids(content)

    bos_token = property(lambda self: self._special_content("bos_token"), doc="Beginning token ([CLS]).")
    eos_token = property(lambda self: self._special_content("eos_token"), doc="End token ([SEP]).")
    unk_token = property(lambda self: self._special_content("unk_token"), doc="Unknown token ([UNK]).")
    sep_token = property(lambda self: self._special_content("sep_token"), doc="Separator token ([SEP]).")
    pad_token = property(lambda self: self._special_content("pad_token"), doc="Padding token ([PAD]).")
    cls_token = property(lambda self: self._special_content("cls_token"), doc="Classifier token ([CLS]).")
    mask_token = property(lambda self: self._special_content("mask_token"), doc="Mask token ([MASK]).")
    bos_token_id = property(lambda self: self._special_id("bos_token"), doc="Id of bos_token.")
    eos_token_id = property(lambda self: self._special_id("eos_token"), doc="Id of eos_token.")
    unk_token_id = property(lambda self: self._special_id("unk_token"), doc="Id of unk_token.")
    sep_token_id = property(lambda self: self._special_id("sep_token"), doc="Id of sep_token.")
    pad_token_id = property(lambda self: self._special_id("pad_token"), doc="Id of pad_token.")
    cls_token_id = property(lambda self: self._special_id("cls_token"), doc="Id of cls_token.")
    mask_token_id = property(lambda self: self._special_id("mask_token"), doc="Id of mask_token.")
    pad_token_type_id = 0

    @property
    def additional_special_tokens(self) -> list[str]:
        """Extra special tokens beyond the seven roles (none for the released models)."""
        return [t.content for t in self._additional]

    @property
    def additional_special_tokens_ids(self) -> list[int]:
        """Ids of ``additional_special_tokens``."""
        return [self.convert_tokens_to_ids(t) for t in self.additional_special_tokens]

    @property
    def special_tokens_map(self) -> dict[str, str]:
        """Role -> token string, for the roles that are set."""
        return {role: token.content for role, token in self._special.items() if token is not None}

    @property
    def all_special_tokens(self) -> list[str]:
        """The distinct special token strings, in role order, then the additional ones."""
        return list(dict.fromkeys([*self.special_tokens_map.values(), *self.additional_special_tokens]))

    @property
    def all_special_ids(self) -> list[int]:
        """Ids of ``all_special_tokens``."""
        return [self.convert_tokens_to_ids(t) for t in self.all_special_tokens]

    @property
    def added_tokens_encoder(self) -> dict[str, int]:
        """Added token string -> id."""
        return dict(self._added_encoder)

    @property
    def added_tokens_decoder(self) -> dict[int, AddedToken]:
        """Id -> AddedToken (with its lstrip/rstrip/special flags)."""
        return dict(sorted(self._added_decoder.items()))

    def get_added_vocab(self) -> dict[str, int]:
        """Added tokens that are not part of the model vocabulary."""
        vocab = self._base_vocab()
        return {t: i for t, i in self._added_encoder.items() if t not in vocab}

    # ------------------------------------------------------------------ vocabulary
    @property
    def vocab_size(self) -> int:
        """Size of the model vocabulary, without added tokens (v1 50265, v2/v3 128000)."""
        return self._base_vocab_size()

    def get_vocab(self) -> dict[str, int]:
        """Token -> id, added tokens included."""
        vocab = dict(self._base_vocab())
        vocab.update(self._added_encoder)
        return vocab

    def __len__(self) -> int:
        """Vocabulary size including added tokens (v1 50265, v2/v3 128001)."""
        return self._base_vocab_size() + len(self.get_added_vocab())

    def convert_tokens_to_ids(self, tokens):
        """Token string(s) to id(s); unknown strings give ``unk_token_id``."""
        if tokens is None:
            return None
        if isinstance(tokens, str):
            return self._token_to_id(tokens)
        return [self._token_to_id(t) for t in tokens]

    def _token_to_id(self, token: str) -> int:
        index = self._added_encoder.get(token)
        if index is None:
            index = self._base_vocab().get(token)
        if index is None:
            index = self._added_encoder.get(self.unk_token)
        return index

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """Id(s) to token string(s); with ``skip_special_tokens`` special ids are dropped."""
        if isinstance(ids, int):
            return self._id_to_token(ids)
        special = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._id_to_token(i) for i in _to_id_list(ids) if i not in special]

    def _id_to_token(self, index: int) -> str:
        token = self._added_decoder.get(index)
        if token is not None:
            return token.content
        return self._base_id_to_token(index)

    # ------------------------------------------------------------------ templates
    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        """``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``."""
        if token_ids_1 is None:
            return [self.cls_token_id, *token_ids_0, self.sep_token_id]
        return [self.cls_token_id, *token_ids_0, self.sep_token_id, *token_ids_1, self.sep_token_id]

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:
        """1 where the template puts a special token, 0 elsewhere.

        With ``already_has_special_tokens`` the ids are a finished sequence and every special
        id in it (``all_special_ids``, [MASK] and [UNK] included) is marked.
        """
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("token_ids_1 must be None when already_has_special_tokens=True")
            special = set(self.all_special_ids)
            return [1 if i in special else 0 for i in token_ids_0]
        if token_ids_1 is None:
            return [1] + [0] * len(token_ids_0) + [1]
        return [1] + [0] * len(token_ids_0) + [1] + [0] * len(token_ids_1) + [1]

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int],
                                             token_ids_1: list[int] | None = None) -> list[int]:
        """Types 0 for ``[CLS] A [SEP]`` and 1 for ``B [SEP]``."""
        if token_ids_1 is None:
            return [0] * (len(token_ids_0) + 2)
        return [0] * (len(token_ids_0) + 2) + [1] * (len(token_ids_1) + 1)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        """2 for a single sequence, 3 for a pair."""
        return 3 if pair else 2

    # ------------------------------------------------------------------ text -> Encoded
    def _plan(self, text: str, prefix: str, split_special: bool) -> list:
        """Split one text into plain segments and added tokens (see AddedTokenSplitter)."""
        prepared = prefix + text
        if split_special:
            return [(0, prepared)]
        return self._splitter.split(prepared)

    def _encode_inputs(self, inputs: list, is_split_into_words: bool, add_prefix_space: bool,
                       split_special: bool, need_detail: bool = False) -> list[Encoded]:
        """Encode many texts (str, or list of words) with one call to the sub-word model."""
        if not is_split_into_words and not add_prefix_space and \
                (split_special or not any(map(self._splitter.contains_token, inputs))):
            # The common case: plain texts, nothing to split off or prefix.
            return self._encode_unique(list(inputs), need_detail)
        plans = []  # per input: list of (plan, prefix length, word index or None)
        segments: list[str] = []
        for item in inputs:
            words = item if is_split_into_words else [item]
            entry = []
            for w, word in enumerate(words):
                prefix = self._prefix_for(word, is_split_into_words, add_prefix_space)
                plan = self._plan(word, prefix, split_special)
                for piece in plan:
                    if len(piece) == 2:
                        segments.append(piece[1])
                entry.append((plan, len(prefix), w if is_split_into_words else None))
            plans.append(entry)
        encoded = iter(self._encode_unique(segments, need_detail))
        results = []
        for entry in plans:
            parts = []
            for plan, prefix_len, word in entry:
                for piece in plan:
                    if len(piece) == 2:
                        parts.append((next(encoded), piece[0] - prefix_len, word))
                    else:
                        start, stop, token = piece
                        parts.append((self._added_encoder[token.content],
                                      (max(start - prefix_len, 0), max(stop - prefix_len, 0)), word))
            results.append(self._join(parts))
        return results

    def _encode_unique(self, texts: list[str], need_detail: bool) -> list[Encoded]:
        """``_encode_segments`` with each distinct text encoded once.

        Batches often repeat texts (a context paired with each of its questions); equal texts
        give equal tokens, so they share one Encoded (read-only for the rest of the call).
        """
        index: dict[str, int] = {}
        order = [index.setdefault(text, len(index)) for text in texts]
        if len(index) == len(texts):
            return self._encode_segments(texts, need_detail)
        encoded = self._encode_segments(list(index), need_detail)
        return [encoded[i] for i in order]

    @staticmethod
    def _join(parts: list) -> Encoded:
        """Concatenate encoded segments and added tokens of one input into one Encoded.

        Offsets move by each segment's start; word indices are renumbered so that words
        count up across segments, an added token counting as one word (as the fast
        reference does). For split-into-words input every token gets its word's index.
        """
        if len(parts) == 1 and isinstance(parts[0][0], Encoded) and parts[0][1] == 0 \
                and parts[0][2] is None:
            return parts[0][0]
        ids: list[int] = []
        for piece, _, _ in parts:
            if isinstance(piece, Encoded):
                ids.extend(piece.ids)
            else:
                ids.append(piece)
        return Encoded(ids, detail=_joined_detail, detail_arg=parts)

    # ------------------------------------------------------------------ user API
    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False,
                 **kwargs) -> list[str]:
        """Split ``text`` into token strings (added tokens kept whole, no [CLS]/[SEP])."""
        if not isinstance(text, str) or (pair is not None and not isinstance(pair, str)):
            raise ValueError(_INPUT_ERROR)
        if add_special_tokens or pair is not None:
            ids = self.encode(text, pair, add_special_tokens=add_special_tokens, **kwargs)
            return self.convert_ids_to_tokens(ids)
        is_split = kwargs.pop("is_split_into_words", False)
        prefix = kwargs.pop("add_prefix_space", None)
        split_special = kwargs.pop("split_special_tokens", self.split_special_tokens)
        self._warn_unknown(kwargs)
        encoded = self._encode_inputs([text], is_split, self._resolve_prefix(prefix), split_special)[0]
        return self._tokens_of(encoded)

    def _tokens_of(self, encoded: Encoded) -> list[str]:
        return [self._id_to_token(i) for i in encoded.ids]

    def _resolve_prefix(self, add_prefix_space) -> bool:
        if add_prefix_space is None:
            return bool(getattr(self, "add_prefix_space", False))
        return bool(add_prefix_space)

    @staticmethod
    def _warn_unknown(kwargs: dict) -> None:
        if kwargs:
            logger.warning("Keyword arguments %s not recognized.", sorted(kwargs))

    def encode(self, text, text_pair=None, add_special_tokens: bool = True, padding=False,
               truncation=None, max_length: int | None = None, stride: int = 0,
               return_tensors=None, **kwargs):
        """Token ids of one text (or pair), as a list (or a (1, N) tensor with return_tensors)."""
        if not isinstance(text, str) and not (kwargs.get("is_split_into_words") and _is_str_list(text)):
            raise ValueError(_INPUT_ERROR)
        out = self(text, text_pair, add_special_tokens=add_special_tokens, padding=padding,
                   truncation=truncation, max_length=max_length, stride=stride,
                   return_tensors=return_tensors, return_token_type_ids=False,
                   return_attention_mask=False, **kwargs)
        return out["input_ids"]

    def encode_plus(self, text, text_pair=None, **kwargs) -> BatchEncoding:
        """One text or pair; same as calling the tokenizer on it."""
        return self(text, text_pair, **kwargs)

    def batch_encode_plus(self, batch_text_or_text_pairs, **kwargs) -> BatchEncoding:
        """A batch of texts or (text, pair) tuples; same as calling the tokenizer on the list."""
        return self(list(batch_text_or_text_pairs), **kwargs)

    def _collect(self, text, text_pair, is_split_into_words):
        """Validate the inputs; return (batched, list of (first, second-or-None))."""
        def single_ok(x):
            return _is_str_list(x) if is_split_into_words else isinstance(x, str)

        if text is None:
            raise ValueError("no input: pass `text` (a string, a list of strings, ...)")
        if is_split_into_words:
            batched = isinstance(text, (list, tuple)) and len(text) > 0 and isinstance(text[0], (list, tuple))
        else:
            batched = isinstance(text, (list, tuple))
        if not batched:
            if not single_ok(text) or (text_pair is not None and not single_ok(text_pair)):
                raise ValueError(_INPUT_ERROR)
            return False, [(text, text_pair)]
        if text_pair is not None:
            if not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(text):
                raise ValueError(f"text has {len(text)} examples but text_pair has "
                                 f"{len(text_pair) if isinstance(text_pair, (list, tuple)) else 'no list of'} "
                                 "examples; pass one pair per text")
            samples = list(zip(text, text_pair))
        else:
            samples = []
            for item in text:
                if isinstance(item, (list, tuple)) and not is_split_into_words:
                    # The reference accepts a batch of (text, pair) tuples.
                    if len(item) != 2:
                        raise ValueError(_INPUT_ERROR)
                    samples.append((item[0], item[1]))
                else:
                    samples.append((item, None))
        for first, second in samples:
            if not single_ok(first) or (second is not None and not single_ok(second)):
                raise ValueError(_INPUT_ERROR)
        return True, samples

    def _strategies(self, padding, truncation, max_length, pad_to_multiple_of):
        """Resolve padding/truncation arguments the way the reference does."""
        if padding is True or padding == "longest":
            pad = "longest"
        elif padding is False or padding is None or padding == "do_not_pad":
            pad = "do_not_pad"
        elif padding == "max_length":
            pad = "max_length"
        else:
            raise ValueError(f"padding must be True, False, 'longest', 'max_length' or 'do_not_pad', "
                             f"got {padding!r}")
        if truncation is None and max_length is not None and pad == "do_not_pad":
            # Reference behaviour: max_length alone switches truncation on.
            trunc = "longest_first"
        elif truncation is True:
            trunc = "longest_first"
        elif truncation is False or truncation is None:
            trunc = "do_not_truncate"
        elif isinstance(truncation, str) and truncation in TRUNCATION_STRATEGIES:
            trunc = truncation
        else:
            raise ValueError(f"truncation must be True, False or one of {TRUNCATION_STRATEGIES}, "
                             f"got {truncation!r}")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 0):
            raise ValueError(f"max_length must be a non-negative integer, got {max_length!r}")
        if max_length is None and (trunc != "do_not_truncate" or pad == "max_length"):
            max_length = self.model_max_length
        if pad_to_multiple_of is not None and (not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of < 1):
            raise ValueError(f"pad_to_multiple_of must be a positive integer, got {pad_to_multiple_of!r}")
        if (pad == "max_length" and trunc != "do_not_truncate" and pad_to_multiple_of
                and max_length % pad_to_multiple_of):
            raise ValueError(f"truncation and padding are both on, but max_length ({max_length}) is "
                             f"not a multiple of pad_to_multiple_of ({pad_to_multiple_of})")
        if pad != "do_not_pad" and self.pad_token_id is None:
            raise ValueError("asked to pad, but this tokenizer has no pad_token")
        assert pad in PADDING_STRATEGIES
        return pad, trunc, max_length

    def __call__(self, text=None, text_pair=None, add_special_tokens: bool = True, padding=False,
                 truncation=None, max_length: int | None = None, stride: int = 0,
                 is_split_into_words: bool = False, pad_to_multiple_of: int | None = None,
                 padding_side: str | None = None, return_tensors=None,
                 return_token_type_ids: bool | None = None, return_attention_mask: bool | None = None,
                 return_overflowing_tokens: bool = False, return_special_tokens_mask: bool = False,
                 return_offsets_mapping: bool = False, return_length: bool = False,
                 verbose: bool = True, **kwargs) -> BatchEncoding:
        """Tokenize one text, a pair, or a batch, into model inputs.

        text / text_pair: a string, or a list of strings (a batch; or the words of one
        example when ``is_split_into_words``), or a list of lists of words. A batch may also
        be a list of (text, pair) tuples.
        padding: False, True/"longest" (to the longest row), "max_length".
        truncation: True/"longest_first", "only_first", "only_second", False.
        max_length: length limit including special tokens; defaults to ``model_max_length``
        (512) when truncation or max_length padding is on.
        stride / return_overflowing_tokens: cut the truncated text into overlapping windows
        (one row each) and add ``overflow_to_sample_mapping``. With a pair, choose
        "only_first" or "only_second"; "longest_first" cannot say which text to window.
        return_tensors: "pt", "tf", "np" or None (lists).
        return_offsets_mapping (fast only): character span of every token in its text.

        Returns a BatchEncoding with input_ids, token_type_ids, attention_mask and whatever
        else was asked for; single inputs give flat lists unless tensors or overflow rows
        were requested.
        """
        tensor_type = check_tensor_type(return_tensors)
        if kwargs.pop("text_target", None) is not None or kwargs.pop("text_pair_target", None) is not None:
            raise ValueError("text_target is for sequence-to-sequence models; DeBERTa has no decoder")
        add_prefix_space = self._resolve_prefix(kwargs.pop("add_prefix_space", None))
        split_special = kwargs.pop("split_special_tokens", self.split_special_tokens)
        self._warn_unknown(kwargs)
        if return_offsets_mapping and not self.is_fast:
            raise NotImplementedError(
                "return_offsets_mapping is only available from the fast tokenizers "
                "(DebertaTokenizerFast, DebertaV2TokenizerFast)")
        if not isinstance(stride, int) or stride < 0:
            raise ValueError(f"stride must be a non-negative integer, got {stride!r}")
        side = padding_side or self.padding_side
        if side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {side!r}")
        batched, samples = self._collect(text, text_pair, is_split_into_words)
        pad, trunc, max_length = self._strategies(padding, truncation, max_length, pad_to_multiple_of)
        has_pair = any(second is not None for _, second in samples)
        if return_overflowing_tokens and has_pair and trunc == "longest_first":
            raise ValueError("return_overflowing_tokens with a pair of texts needs truncation='only_first' "
                             "or 'only_second' (which text to cut into windows); got 'longest_first'")

        with _gc_paused(len(samples) >= _GC_PAUSE_MIN):
            flat = [first for first, _ in samples] + [second for _, second in samples if second is not None]
            encoded = self._encode_inputs(flat, is_split_into_words, add_prefix_space, split_special,
                                         return_offsets_mapping)
            firsts, seconds = encoded[:len(samples)], iter(encoded[len(samples):])
            cls_id, sep_id = self.cls_token_id, self.sep_token_id
            rows = []
            for index, (a, (_, second)) in enumerate(zip(firsts, samples)):
                b = next(seconds) if second is not None else None
                rows.extend(build_rows(index, a, b, add_special=add_special_tokens, cls_id=cls_id,
                                       sep_id=sep_id, strategy=trunc, max_length=max_length,
                                       stride=stride, overflow=return_overflowing_tokens,
                                       side=self.truncation_side))
            if verbose and trunc == "do_not_truncate":
                longest = max((len(r) for r in rows), default=0)
                if longest > self.model_max_length and not getattr(self, "_warned_length", False):
                    self._warned_length = True
                    logger.warning("Token indices sequence length is longer than the specified maximum "
                                   "sequence length for this model (%d > %d). Running this sequence "
                                   "through the model will result in indexing errors",
                                   longest, self.model_max_length)
            lengths = [len(r) for r in rows]
            if pad != "do_not_pad":
                target = max(lengths, default=0) if pad == "longest" else max_length
                if pad_to_multiple_of and target % pad_to_multiple_of:
                    target = (target // pad_to_multiple_of + 1) * pad_to_multiple_of
                pad_rows(rows, target, self.pad_token_id, side)
            return self._batch_encoding(rows, lengths, batched, tensor_type, return_token_type_ids,
                                        return_attention_mask, return_overflowing_tokens,
                                        return_special_tokens_mask, return_offsets_mapping, return_length)

    def _batch_encoding(self, rows, lengths, batched, tensor_type, return_token_type_ids,
                        return_attention_mask, return_overflowing_tokens,
                        return_special_tokens_mask, return_offsets_mapping, return_length):
        names = self.model_input_names
        data: dict[str, Any] = {"input_ids": [r.input_ids for r in rows]}
        if return_token_type_ids or (return_token_type_ids is None and "token_type_ids" in names):
            data["token_type_ids"] = [r.token_type_ids(self.pad_token_type_id) for r in rows]
        if return_attention_mask or (return_attention_mask is None and "attention_mask" in names):
            data["attention_mask"] = [r.attention_mask() for r in rows]
        if return_special_tokens_mask:
            data["special_tokens_mask"] = [r.special_tokens_mask() for r in rows]
        if return_offsets_mapping:
            data["offset_mapping"] = [r.offsets() for r in rows]
        if return_length:
            data["length"] = lengths
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = [r.sample for r in rows]
        # A single input gives flat lists, unless overflow made several rows (as the reference).
        keep_axis = batched or return_overflowing_tokens
        if not keep_axis:
            data = {k: v[0] for k, v in data.items()}
        return BatchEncoding(data, rows=rows, id_to_token=self._id_to_token, is_fast=self.is_fast,
                             tensor_type=tensor_type, prepend_batch_axis=not keep_axis)

    def pad(self, encoded_inputs, padding=True, max_length: int | None = None,
            pad_to_multiple_of: int | None = None, padding_side: str | None = None,
            return_attention_mask: bool | None = None, return_tensors=None,
            verbose: bool = True) -> BatchEncoding:
        """Pad already-encoded inputs (a dict of lists, or a list of dicts as collators pass).

        Pads ``input_ids`` (pad id), ``token_type_ids`` (0), ``special_tokens_mask`` (1) and
        builds/pads ``attention_mask``; other keys pass through unchanged.
        """
        tensor_type = check_tensor_type(return_tensors)
        if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs and isinstance(encoded_inputs[0], dict):
            encoded_inputs = {k: [example[k] for example in encoded_inputs] for k in encoded_inputs[0]}
        if not isinstance(encoded_inputs, dict) or "input_ids" not in encoded_inputs:
            raise ValueError("pad() needs a dict (or list of dicts) with an 'input_ids' entry")
        def plain(value):
            # Tensors and arrays (whole batches or one row each) become nested lists.
            if hasattr(value, "tolist") and not isinstance(value, list):
                return value.tolist()
            if isinstance(value, (list, tuple)):
                return [plain(v) if hasattr(v, "tolist") else v for v in value]
            return value

        inputs = {k: plain(v) for k, v in encoded_inputs.items()}
        ids = inputs["input_ids"]
        batched = bool(ids) and isinstance(ids[0], (list, tuple))
        pad, _, max_length = self._strategies(padding, False, max_length, pad_to_multiple_of)
        side = padding_side or self.padding_side
        rows = ids if batched else [ids]
        lengths = [len(r) for r in rows]
        target = max(lengths, default=0) if pad == "longest" else (max_length or 0)
        if pad_to_multiple_of and target % pad_to_multiple_of:
            target = (target // pad_to_multiple_of + 1) * pad_to_multiple_of
        fills = {"input_ids": self.pad_token_id, "token_type_ids": self.pad_token_type_id,
                 "special_tokens_mask": 1, "attention_mask": 0}
        out = dict(inputs)
        want_mask = return_attention_mask if return_attention_mask is not None else \
            "attention_mask" in self.model_input_names
        if want_mask and "attention_mask" not in out:
            out["attention_mask"] = [[1] * n for n in lengths] if batched else [1] * lengths[0]
        for key, fill in fills.items():
            if key not in out:
                continue
            values = out[key] if batched else [out[key]]
            padded = []
            for value, n in zip(values, lengths):
                missing = max(target - n, 0) if pad != "do_not_pad" else 0
                value = list(value)
                padded.append(value + [fill] * missing if side == "right" else [fill] * missing + value)
            out[key] = padded if batched else padded[0]
        return BatchEncoding(out, tensor_type=tensor_type, prepend_batch_axis=not batched)

    # ------------------------------------------------------------------ decoding
    def decode(self, token_ids, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: bool | None = None,
               spaces_between_special_tokens: bool = True, **kwargs) -> str:
        """Turn ids back into text.

        skip_special_tokens drops every special id ([CLS], [SEP], [PAD], [MASK], [UNK]).
        clean_up_tokenization_spaces (default from the config: False for v1, True for the v3
        files) removes spaces before punctuation, as the reference does.
        """
        self._warn_unknown(kwargs)
        tokens = self.convert_ids_to_tokens(_to_id_list(token_ids), skip_special_tokens=skip_special_tokens)
        # As the reference: added tokens that are not special, and extra special tokens outside
        # the vocabulary, are emitted verbatim between decoded runs (joined with spaces).
        size = self._base_vocab_size()
        verbatim = (set(self._added_encoder) - set(self.all_special_tokens)) | {
            t for t in self.additional_special_tokens if self._added_encoder[t] >= size}
        pieces, run = [], []
        for token in tokens:
            if token in verbatim:
                if run:
                    text = self.convert_tokens_to_string(run)
                    if text:
                        pieces.append(text)
                    run = []
                pieces.append(token)
            else:
                run.append(token)
        if run:
            pieces.append(self.convert_tokens_to_string(run))
        text = (" " if spaces_between_special_tokens else "").join(pieces)
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        return _clean_up_tokenization(text) if clean_up_tokenization_spaces else text

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None, **kwargs) -> list[str]:
        """``decode`` for each sequence of a batch (list of lists, 2-D array or tensor)."""
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        return [self.decode(s, skip_special_tokens=skip_special_tokens,
                            clean_up_tokenization_spaces=clean_up_tokenization_spaces, **kwargs)
                for s in sequences]

    # ------------------------------------------------------------------ files
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """Load from a local folder in the Hugging Face layout.

        Keyword arguments override values from the folder's JSON files (for example
        ``model_max_length=256`` or ``add_prefix_space=True``). Hub names are not fetched.
        """
        directory = require_dir(pretrained_model_name_or_path)
        config = load_folder_config(directory)
        for key in (*cls.vocab_files_names, "name_or_path"):
            config.pop(key, None)  # paths come from the folder, never from an old config
        for key in ("cache_dir", "force_download", "local_files_only", "revision", "token",
                    "trust_remote_code", "use_fast", "subfolder"):
            kwargs.pop(key, None)
        config.update(kwargs)
        return cls._from_folder(directory, config)

    def _config_to_save(self) -> dict[str, Any]:
        config = dict(self.init_kwargs)
        config.update(self._extra_config())
        for role, token in self._special.items():
            if token is not None:
                config[role] = token.content
        config["added_tokens_decoder"] = {
            str(i): t.to_dict() for i, t in sorted(self._added_decoder.items())}
        if self._additional:
            config["additional_special_tokens"] = self.additional_special_tokens
        config.update({
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            "model_max_length": self.model_max_length,
            "padding_side": self.padding_side,
            "truncation_side": self.truncation_side,
            "tokenizer_class": self.tokenizer_class_name,
        })
        if self.split_special_tokens:
            config["split_special_tokens"] = True
        return dict(sorted(config.items()))

    def _extra_config(self) -> dict[str, Any]:
        """Constructor arguments specific to a tokenizer family, for tokenizer_config.json."""
        return {}

    def save_pretrained(self, save_directory, filename_prefix: str | None = None, **kwargs) -> tuple[str, ...]:
        """Write the tokenizer in the Hugging Face layout, loadable by us and by transformers.

        Files: tokenizer_config.json, special_tokens_map.json, added_tokens.json (only when
        some added token is outside the vocabulary) and the vocabulary files. Returns paths.
        """
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"cannot save into {directory}: it is a file")
        directory.mkdir(parents=True, exist_ok=True)
        prefix = f"{filename_prefix}-" if filename_prefix else ""
        written = [write_json(directory / f"{prefix}{TOKENIZER_CONFIG}", self._config_to_save())]
        special_map = {}
        for role, token in self._special.items():
            if token is not None:
                flags = token.to_dict()
                flags.pop("special")
                special_map[role] = flags
        if self._additional:
            special_map["additional_special_tokens"] = [
                {k: v for k, v in t.to_dict().items() if k != "special"} for t in self._additional]
        written.append(write_json(directory / f"{prefix}{SPECIAL_TOKENS_MAP}", special_map))
        extra = self.get_added_vocab()
        if extra:
            written.append(write_json(directory / f"{prefix}{ADDED_TOKENS}",
                                      dict(sorted(extra.items(), key=lambda kv: kv[1]))))
        written.extend(self.save_vocabulary(directory, filename_prefix))
        written.extend(self._save_extra(directory, filename_prefix))
        return tuple(written)

    def _save_extra(self, directory: Path, filename_prefix: str | None) -> tuple[str, ...]:
        """Additional files (the fast tokenizers' tokenizer.json)."""
        return ()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(vocab_size={self.vocab_size}, len={len(self)}, "
                f"model_max_length={self.model_max_length}, special_tokens={self.special_tokens_map})")
