"""Pre-training rules shared by both frameworks, stated once (numpy only): the data side (dynamic
masking, whole-word groups, packing text into blocks) and the definitions the tensor code in
deberta_torch/pretraining.py and deberta_tf/pretraining.py is tested against (EMD constants, sampling,
replaced-token labels, the losses and how they combine, gradient-disentangled embedding sharing).

What the original microsoft/DeBERTa code does, and where this module follows or departs from it
(DeBERTa/apps/models/{masked_language_model,replaced_token_detection_model}.py, apps/tasks/{mlm,rtd}_task.py):

* EMD (enhanced mask decoder): the last encoder layer is run EMD_STEPS = 2 more times with its own
  weights, queries first from absolute positions + the input of that layer, then from its own output;
  keys and values are always the input of the last layer. Only when position_biased_input is False.
* Generator: a masked LM (with the EMD) on the masked input; MLM loss = cross-entropy averaged over the
  masked positions (0 when there are none).
* Sampling: one token per masked position from softmax(logits / temperature), temperature 1, drawn
  with torch.multinomial (no Gumbel noise on top, no top-k). Given noise u ~ U(0, 1) (N, V), the same
  distribution is drawn by the Gumbel-max trick, argmax(logits / temperature - log(-log(u))), so both
  frameworks draw the same tokens from the same u (the tests); without it the models draw by the
  inverse CDF (sample_by_cdf: one uniform per row, the first index whose cumulative probability
  exceeds it), the same distribution at one exp per logit instead of two logs and a uniform each.
* Discriminator input: the original tokens, with every masked position replaced by its sample (so
  the 80/10/10 split of the masking only shapes the generator's input). Label 1 ("replaced") where a
  position was masked and its sample differs from the original token: a sample equal to the original
  counts as not replaced.
* RTD loss: sigmoid cross-entropy of the `mask_predictions` logit, averaged over the non-pad tokens
  ([CLS] and [SEP] included).
* Total: MLM + rtd_lambda * RTD, rtd_lambda = 10 (the original's --rtd_lambda default; ELECTRA uses 50).
  The original trains "decoupled" by default: the generator steps on the MLM loss and the discriminator
  on rtd_lambda * RTD with separate optimizers; with "gdes" or "none" sharing no gradient crosses, so
  the single summed loss gives the same gradients.
* Embedding sharing ("embedding_sharing"): "none"; "es", the discriminator uses the generator's word
  (and position) tables, so both losses train them; "gdes", the discriminator's table is
  stop_gradient(generator table) + its own delta `_weight`, initialised to zero, so the generator table
  learns from the MLM loss only and the delta from the RTD loss only. The original shares the absolute
  position table the same way. A discriminator exported for fine-tuning has generator + delta folded in.
* Masking: the original's RTD task masks 15% of the tokens and always writes [MASK] (mask_prob 1,
  keep_prob 0: ORIGINAL_RTD_MASKING); its MLM task uses 80/10/10. It picks one word per window of
  1/0.15 = 6 words, then stops at round(0.15 x length) tokens; `mask_tokens` below picks words uniformly
  at random up to the same count instead (the rate and the whole-word rule are the same; the windowing
  that spreads the masks out is not reproduced). Random replacements come from the non-special ids (the
  original draws from the whole vocabulary, special tokens included).
* Packing: the original's prepare_data.py concatenates every tokenized line of a file and cuts the
  stream into chunks of max_seq_length - 2 tokens, each [CLS] chunk [SEP]; `pack_blocks` does that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .losses import IGNORE_INDEX

EMD_STEPS = 2                # how many times the EMD re-runs the last encoder layer
RTD_LAMBDA = 10.0            # weight of the RTD loss in the total (the original's default)
SAMPLING_TEMPERATURE = 1.0   # softmax temperature of the generator samples
EMBEDDING_SHARING = ("none", "es", "gdes")  # the original's names: no sharing, plain sharing, GDES
GDES_DELTA = "_weight"       # the original's name of the discriminator's delta on a shared table


# ------------------------------------------------------------------------------------------ masking
@dataclass(frozen=True)
class MaskingRule:
    """Dynamic masking: which tokens become MLM targets and what the generator sees there.

    mlm_probability: share of the maskable tokens (not special, not padding) chosen as targets,
        round(p x count), at least 1 per row that has any.
    mask_replace_prob / random_replace_prob: of the chosen tokens, the share written as [MASK] and the
        share replaced by a random non-special token; the rest keep their token (80/10/10 by default).
    whole_word: choose whole words (a token starting a word and the continuation tokens after it).
    max_predictions: cap on the targets per row (None: no cap).
    """

    mlm_probability: float = 0.15
    mask_replace_prob: float = 0.8
    random_replace_prob: float = 0.1
    whole_word: bool = False
    max_predictions: int | None = None

    def __post_init__(self):
        if not 0.0 < self.mlm_probability < 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1), got {self.mlm_probability!r}")
        if not (0.0 <= self.mask_replace_prob and 0.0 <= self.random_replace_prob
                and self.mask_replace_prob + self.random_replace_prob <= 1.0):
            raise ValueError("mask_replace_prob and random_replace_prob must be >= 0 and sum to at most 1, got "
                             f"{self.mask_replace_prob!r} and {self.random_replace_prob!r}")
        if self.max_predictions is not None and self.max_predictions < 1:
            raise ValueError(f"max_predictions must be positive or None, got {self.max_predictions!r}")


ORIGINAL_RTD_MASKING = MaskingRule(mask_replace_prob=1.0, random_replace_prob=0.0)  # rtd_task.py's generator


def word_starts_from_tokens(tokens: list[str]) -> np.ndarray:
    """Which tokens of one text start a word: the first one, and those carrying the word-boundary mark
    of the tokenizer ("▁" SentencePiece v2/v3, "Ġ" byte-level BPE v1). (N,) bool."""
    starts = np.fromiter((t.startswith(("▁", "Ġ")) for t in tokens), dtype=bool, count=len(tokens))
    if len(tokens):
        starts[0] = True
    return starts


def _units(candidates: np.ndarray, word_starts: np.ndarray | None) -> list[np.ndarray]:
    """The positions chosen together: single candidates, or whole words (a run of candidates that
    starts at a word start, or after a non-candidate, and continues while no new word starts)."""
    positions = np.flatnonzero(candidates)
    if word_starts is None or len(positions) == 0:
        return [positions[i:i + 1] for i in range(len(positions))]
    new = np.ones(len(positions), dtype=bool)
    new[1:] = word_starts[positions[1:]] | (np.diff(positions) != 1)
    return np.split(positions, np.flatnonzero(new)[1:])


def mask_tokens(input_ids, rng: np.random.Generator, *, mask_token_id: int, vocab_size: int, special_ids,
                attention_mask=None, word_starts=None, rule: MaskingRule = MaskingRule()):
    """Mask a batch for the masked LM: (masked input ids, labels), both int64 (B, T).

    input_ids (B, T); attention_mask (B, T) of 0/1 (padding is never chosen); special_ids: ids never
    chosen ([CLS], [SEP], [PAD], [MASK], [UNK], ...); word_starts (B, T) bool, needed with
    rule.whole_word. labels hold the original id at each target and -100 elsewhere (the losses' ignore
    index). Each row draws from `rng` in turn, so a seed gives the same masks.
    """
    ids = np.array(input_ids, dtype=np.int64, copy=True)
    if ids.ndim != 2:
        raise ValueError(f"input_ids must be (batch, length), got shape {ids.shape}")
    mask = np.ones_like(ids, dtype=bool) if attention_mask is None else np.asarray(attention_mask) != 0
    if rule.whole_word and word_starts is None:
        raise ValueError("whole-word masking needs word_starts (see word_starts_from_tokens)")
    special = np.asarray(sorted({int(i) for i in special_ids}), dtype=np.int64)
    allowed = np.setdiff1d(np.arange(vocab_size, dtype=np.int64), special)
    candidates = mask & ~np.isin(ids, special)
    labels = np.full_like(ids, IGNORE_INDEX)
    for row in range(ids.shape[0]):
        units = _units(candidates[row], None if not rule.whole_word else np.asarray(word_starts[row], dtype=bool))
        count = int(candidates[row].sum())
        if count == 0:
            continue
        target = max(1, int(round(count * rule.mlm_probability)))
        if rule.max_predictions is not None:
            target = min(target, rule.max_predictions)
        chosen, total = [], 0
        for index in rng.permutation(len(units)):
            if total >= target:
                break
            chosen.append(units[index])
            total += len(units[index])
        positions = np.sort(np.concatenate(chosen))
        labels[row, positions] = ids[row, positions]
        draw = rng.random(len(positions))
        to_mask = draw < rule.mask_replace_prob
        to_random = (draw >= rule.mask_replace_prob) & (draw < rule.mask_replace_prob + rule.random_replace_prob)
        ids[row, positions[to_mask]] = mask_token_id
        ids[row, positions[to_random]] = rng.choice(allowed, size=int(to_random.sum()))
    return ids, labels


# ------------------------------------------------------------------------------------------ packing
def pack_blocks(token_ids: list, block_size: int, *, cls_id: int, sep_id: int, pad_id: int,
                word_starts: list | None = None, drop_last: bool = False) -> dict[str, np.ndarray]:
    """Concatenate tokenized texts into one stream and cut it into blocks of `block_size` tokens:
    [CLS] + block_size - 2 tokens + [SEP], the last block padded (or dropped with drop_last).

    token_ids: a list of id lists (one per line or document, no special tokens). word_starts: the
    matching list of bool lists (word_starts_from_tokens), carried into the blocks for whole-word
    masking. Returns input_ids (N, block_size) int64, attention_mask (N, block_size) int64 and, when
    given, word_starts (N, block_size) bool (False on [CLS], [SEP] and padding).
    """
    if block_size < 3:
        raise ValueError(f"block_size must leave room for [CLS], a token and [SEP], got {block_size}")
    stream = np.fromiter((t for ids in token_ids for t in ids), dtype=np.int64)
    starts = None
    if word_starts is not None:
        if [len(w) for w in word_starts] != [len(t) for t in token_ids]:
            raise ValueError("word_starts must have one flag per token of token_ids")
        starts = np.fromiter((s for flags in word_starts for s in flags), dtype=bool, count=len(stream))
    body = block_size - 2
    full, rest = divmod(len(stream), body)
    blocks = full + (1 if rest and not drop_last else 0)
    input_ids = np.full((blocks, block_size), pad_id, dtype=np.int64)
    attention_mask = np.zeros((blocks, block_size), dtype=np.int64)
    out_starts = np.zeros((blocks, block_size), dtype=bool)
    for b in range(blocks):
        chunk = stream[b * body:(b + 1) * body]
        n = len(chunk)
        input_ids[b, 0], input_ids[b, 1:n + 1], input_ids[b, n + 1] = cls_id, chunk, sep_id
        attention_mask[b, :n + 2] = 1
        if starts is not None:
            out_starts[b, 1:n + 1] = starts[b * body:(b + 1) * body]
            out_starts[b, 1] = True  # a block starts a word, even mid-word in the stream
    out = {"input_ids": input_ids, "attention_mask": attention_mask}
    if starts is not None:
        out["word_starts"] = out_starts
    return out


# ------------------------------------------------------------------- sampling, labels and losses
def gumbel_noise(uniform) -> np.ndarray:
    """-log(-log(u)) for u in (0, 1), u clipped away from 0 and 1 by float32's tiny (the frameworks do the same)."""
    u = np.clip(np.asarray(uniform, dtype=np.float64), np.finfo(np.float32).tiny, 1.0 - np.finfo(np.float32).epsneg)
    return -np.log(-np.log(u))


def sample_tokens(logits, uniform, temperature: float = SAMPLING_TEMPERATURE) -> np.ndarray:
    """One draw per position from softmax(logits / temperature): argmax(logits / temperature + Gumbel(u)).
    logits (..., V), uniform (..., V) in (0, 1). Returns int64 (...)."""
    return np.argmax(np.asarray(logits, dtype=np.float64) / temperature + gumbel_noise(uniform), axis=-1)


def sample_by_cdf(logits, uniform_rows, temperature: float = SAMPLING_TEMPERATURE) -> np.ndarray:
    """One draw per row of logits (..., V) by the inverse CDF: the number of cumulative probabilities
    <= u * total for u (...) in [0, 1) (the models' draw when no Gumbel noise is given). int64 (...)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    cdf = np.cumsum(p / p.sum(axis=-1, keepdims=True), axis=-1)
    u = np.asarray(uniform_rows, dtype=np.float64)[..., None] * cdf[..., -1:]
    return np.minimum((cdf <= u).sum(axis=-1), cdf.shape[-1] - 1).astype(np.int64)


def replace_masked(input_ids, labels, samples) -> np.ndarray:
    """The discriminator input: the original token everywhere but at the MLM targets (labels != -100),
    where the generator's sample goes. input_ids may be the masked or the original ids: they agree off
    the targets."""
    labels = np.asarray(labels)
    return np.where(labels != IGNORE_INDEX, np.asarray(samples), np.asarray(input_ids)).astype(np.int64)


def rtd_labels(labels, replaced_ids) -> np.ndarray:
    """1.0 where a target position holds a token other than the original (labels != -100 and the
    sample differs), else 0.0: a sample equal to the original is not a replacement. (B, T) float32."""
    labels, replaced_ids = np.asarray(labels), np.asarray(replaced_ids)
    return ((labels != IGNORE_INDEX) & (replaced_ids != labels)).astype(np.float32)


def mlm_loss(logits, labels) -> float:
    """Generator loss: cross-entropy averaged over the targets (labels != -100); 0.0 when there are none
    (the original skips the head then). logits (B, T, V), labels (B, T)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    keep = labels != IGNORE_INDEX
    if not keep.any():
        return 0.0
    flat = logits.reshape(len(labels), -1)[keep]
    shifted = flat - flat.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return float(-log_probs[np.arange(len(flat)), labels[keep]].mean())


def rtd_loss(logits, labels, attention_mask=None) -> float:
    """Discriminator loss: sigmoid cross-entropy of logits (B, T) against 0/1 labels (B, T), averaged
    over the positions with attention_mask != 0 (all when None) whose label is not negative."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    keep = labels >= 0
    if attention_mask is not None:
        keep &= np.asarray(attention_mask) != 0
    if not keep.any():
        return 0.0
    x, y = logits[keep], labels[keep]
    return float(np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))))


def pretraining_loss(mlm: float, rtd: float, rtd_lambda: float = RTD_LAMBDA) -> float:
    """The joint objective: MLM + rtd_lambda x RTD."""
    return mlm + rtd_lambda * rtd


def shared_table(generator_table, delta=None, mode: str = "gdes") -> np.ndarray:
    """The table the discriminator embeds with under `mode`: its own (`delta` is its own table) for
    "none", the generator's for "es", generator + delta for "gdes" (the value; the gradient rule is in
    the module docstring)."""
    check_sharing_mode(mode)
    if mode == "none":
        return np.asarray(delta)
    if mode == "es":
        return np.asarray(generator_table)
    return np.asarray(generator_table) + np.asarray(delta)


def check_sharing_mode(mode: str) -> str:
    if mode not in EMBEDDING_SHARING:
        raise ValueError(f"embedding_sharing must be one of {EMBEDDING_SHARING} (none, plain sharing, "
                         f"gradient-disentangled sharing), got {mode!r}")
    return mode


def check_pair(generator_config, discriminator_config, mode: str) -> None:
    """A generator and a discriminator that can be trained together (and share tables under `mode`)."""
    check_sharing_mode(mode)
    if generator_config.family != "v2" or discriminator_config.family != "v2":
        raise ValueError("replaced-token-detection pre-training is DeBERTa-v3's: use DebertaV2Config for both")
    if generator_config.vocab_size != discriminator_config.vocab_size:
        raise ValueError(f"generator and discriminator vocabularies differ ({generator_config.vocab_size} vs "
                         f"{discriminator_config.vocab_size}): the generator's samples are discriminator inputs")
    if mode != "none" and generator_config.embedding_dim != discriminator_config.embedding_dim:
        raise ValueError(f"embedding_sharing={mode!r} needs one embedding width, got generator "
                         f"{generator_config.embedding_dim} and discriminator {discriminator_config.embedding_dim}")
    if mode != "none" and generator_config.max_position_embeddings != discriminator_config.max_position_embeddings:
        raise ValueError("embedding_sharing shares the absolute position table too: max_position_embeddings "
                         "must be equal")


PRETRAINING_CONFIG = "rtd_pretraining.json"


def write_pretraining_settings(directory, embedding_sharing: str, rtd_lambda: float, temperature: float) -> None:
    """Write the pair's settings beside its generator/ and discriminator/ folders (atomically)."""
    import json
    from pathlib import Path

    from .io import atomic_write_text

    settings = {"embedding_sharing": embedding_sharing, "rtd_lambda": rtd_lambda, "temperature": temperature}
    atomic_write_text(Path(directory) / PRETRAINING_CONFIG, json.dumps(settings, indent=2, sort_keys=True) + "\n")


def read_pretraining_settings(directory) -> dict:
    """The settings `write_pretraining_settings` wrote."""
    from pathlib import Path

    from .io import read_json_object

    return read_json_object(Path(directory) / PRETRAINING_CONFIG)
