"""Train a DeBERTa-v3-style SentencePiece vocabulary on your own text.

:func:`train_spm_tokenizer` trains a SentencePiece unigram model on text lines and saves it as a
tokenizer folder that :class:`~deberta_core.tokenization.DebertaV2Tokenizer` /
``DebertaV2TokenizerFast`` (and ``transformers``' DebertaV2 tokenizers) load like the released
deberta-v3 one (data/tokenizers/deberta-v3): the same layout (``spm.model``, ``tokenizer_config.json``,
``special_tokens_map.json``, ``added_tokens.json``) and the same special tokens in the same places:

    [PAD]=0, [CLS]=1, [SEP]=2, [UNK]=3 (pieces of the SentencePiece model, as in deberta-v3's),
    [MASK]=vocab_size - 1 (added after the pieces, as deberta-v3's 128000)

and the same model options as deberta-v3's spm.model: unigram, ``nmt_nfkc`` normalisation, byte
fallback (characters outside the vocabulary become ``<0xNN>`` byte pieces, never [UNK]), digits not
split, whitespace as a "▁" word prefix. ``vocab_size`` counts every id, [MASK] included, so a model
config with that ``vocab_size`` has one embedding row per token and none unused.

A vocabulary trained on the pre-training text is what a domain pre-training run wants: every id the
model sees has training signal (a borrowed 128k vocabulary leaves most rows untouched or, through the
tied MLM output layer, pushed all one way), and the softmax is as wide as the text needs.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable

import sentencepiece

from .spm import MODEL_FILE, DebertaV2Tokenizer

# Ids and pieces of the released deberta-v3 spm.model (its trainer_spec), kept here.
SPECIAL_PIECES = {"pad": (0, "[PAD]"), "bos": (1, "[CLS]"), "eos": (2, "[SEP]"), "unk": (3, "[UNK]")}
MASK_TOKEN = "[MASK]"
BYTE_PIECES = 256
# The smallest useful vocabulary: the 4 special pieces, 256 byte pieces and [MASK], plus some text pieces.
MIN_VOCAB_SIZE = len(SPECIAL_PIECES) + BYTE_PIECES + 1 + 40


def train_spm_tokenizer(texts: Iterable[str], output_dir, vocab_size: int, *, character_coverage: float = 0.9999,
                        max_sentences: int = 2_000_000, max_sentence_length: int = 1 << 16, seed: int = 0,
                        num_threads: int = 1, model_max_length: int = 512, verbose: bool = False):
    """Train a unigram SentencePiece vocabulary on ``texts`` and save it as a DeBERTa-v3 tokenizer folder.

    texts: the training text, one passage (line, sentence, document) per string; blank ones are
    skipped. output_dir: the folder to write (created; its tokenizer files replaced).
    vocab_size: the number of ids, [MASK] included (``len(tokenizer) == vocab_size``): the
    SentencePiece model gets ``vocab_size - 1`` pieces, [MASK] the last id. Set the model config's
    ``vocab_size`` to it.
    character_coverage: share of the text's characters that get their own piece (the rarest others
    fall back to bytes). max_sentences: at most this many passages are used (a seeded sample of
    them when there are more). max_sentence_length: longer passages (in bytes) are skipped by
    SentencePiece. seed: SentencePiece's random generator. num_threads: its training threads.

    Returns the loaded :class:`DebertaV2Tokenizer`. Raises ValueError when ``vocab_size`` is below
    :data:`MIN_VOCAB_SIZE` or above what the text can make (SentencePiece's message, with the limit).
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f"vocab_size must be an integer >= {MIN_VOCAB_SIZE} (4 special pieces, {BYTE_PIECES} byte "
                         f"pieces, [MASK] and some text pieces), got {vocab_size!r}")
    if not 0.0 < character_coverage <= 1.0:
        raise ValueError(f"character_coverage must be in (0, 1], got {character_coverage}")
    lines = [text.strip() for text in texts if text and text.strip()]
    if not lines:
        raise ValueError("no text to train a vocabulary on (every passage is blank)")
    ids = {f"{role}_id": index for role, (index, _) in SPECIAL_PIECES.items()}
    pieces = {f"{role}_piece": piece for role, (_, piece) in SPECIAL_PIECES.items()}
    model = io.BytesIO()
    sentencepiece.set_random_generator_seed(seed)
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_writer=model, model_type="unigram", vocab_size=vocab_size - 1,
            **ids, **pieces, byte_fallback=True, normalization_rule_name="nmt_nfkc", split_digits=False,
            character_coverage=character_coverage, input_sentence_size=max_sentences if len(lines) > max_sentences
            else 0, shuffle_input_sentence=True, max_sentence_length=max_sentence_length, num_threads=num_threads,
            minloglevel=0 if verbose else 2)
    except RuntimeError as err:  # e.g. "Vocabulary size is too high (9999). Please set it to a value <= 2345."
        raise ValueError(f"training a {vocab_size}-token SentencePiece vocabulary failed: {err} (the limit counts "
                         "SentencePiece pieces; vocab_size is that + 1 for [MASK])") from None
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / MODEL_FILE).write_bytes(model.getvalue())
    tokenizer = DebertaV2Tokenizer(output / MODEL_FILE, mask_token=MASK_TOKEN, model_max_length=model_max_length)
    if len(tokenizer) != vocab_size or tokenizer.mask_token_id != vocab_size - 1:
        raise AssertionError(f"trained vocabulary has {len(tokenizer)} ids, [MASK]={tokenizer.mask_token_id}; "
                             f"expected {vocab_size} and {vocab_size - 1}")
    tokenizer.save_pretrained(output)
    return tokenizer


__all__ = ["MASK_TOKEN", "MIN_VOCAB_SIZE", "SPECIAL_PIECES", "train_spm_tokenizer"]
