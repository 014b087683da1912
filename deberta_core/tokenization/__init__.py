"""DeBERTa tokenizers, framework-neutral: v1 byte-level BPE and v2/v3 SentencePiece, slow and fast.

``DebertaTokenizer``/``DebertaV2Tokenizer`` are the pure-Python and SentencePiece versions;
the ``...Fast`` classes run the sub-word model in the ``tokenizers`` Rust library and add
offsets and word ids. All four give the ids of the reference slow tokenizers of
transformers 4.57 and share one implementation of the call API (:mod:`.base`).
"""

from .base import DEFAULT_MODEL_MAX_LENGTH
from .batch_encoding import BatchEncoding
from .bpe import DebertaTokenizer
from .fast import DebertaTokenizerFast, DebertaV2TokenizerFast
from .special_tokens import AddedToken
from .spm import DebertaV2Tokenizer

__all__ = [
    "AddedToken",
    "BatchEncoding",
    "DEFAULT_MODEL_MAX_LENGTH",
    "DebertaTokenizer",
    "DebertaTokenizerFast",
    "DebertaV2Tokenizer",
    "DebertaV2TokenizerFast",
]
