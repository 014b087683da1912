"""DeBERTa tokenizers, framework-neutral: v1 byte-level BPE and v2/v3 SentencePiece, slow and fast.

``DebertaTokenizer`` is GPT-2 byte-level BPE in pure Python and ``DebertaTokenizerFast`` the same
BPE in the ``tokenizers`` Rust library; ``DebertaV2Tokenizer``/``DebertaV2TokenizerFast`` run the
SentencePiece model in ``sentencepiece``, the fast one adding offsets and word ids. All four give
the ids of the reference slow tokenizers of transformers 4.57 and share one implementation of
the call API (:mod:`.base`). :func:`train_spm_tokenizer` trains a v3-style vocabulary on your own text.
"""

from .base import DEFAULT_MODEL_MAX_LENGTH
from .batch_encoding import BatchEncoding
from .bpe import DebertaTokenizer
from .bpe_fast import DebertaTokenizerFast
from .special_tokens import AddedToken
from .spm import DebertaV2Tokenizer, DebertaV2TokenizerFast
from .spm_train import train_spm_tokenizer

__all__ = [
    "AddedToken",
    "BatchEncoding",
    "DEFAULT_MODEL_MAX_LENGTH",
    "DebertaTokenizer",
    "DebertaTokenizerFast",
    "DebertaV2Tokenizer",
    "DebertaV2TokenizerFast",
    "train_spm_tokenizer",
]
