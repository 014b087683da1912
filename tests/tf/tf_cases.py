"""Configs and inputs for the Keras tests (no framework imports).

The variants are the PyTorch parity suite's (tests/cases.py), plus what only the Keras side needs:
embedding_size != hidden_size *with* absolute positions, where the reference TF classes build a position
table of the wrong width (SPEC §6.14). Batches are padded: rows with trailing zeros in the mask.
"""

from __future__ import annotations

import numpy as np

from deberta_core.config import DebertaConfig, DebertaV2Config
from tests import cases
from tests.cases import SEQ_LEN

BATCH = 3
ROW_LENGTHS = (40, 33, 12)  # row 0 is full, rows 1 and 2 are padded

CONFIG_CLASSES = {"v1": DebertaConfig, "v2": DebertaV2Config}
EXTRA_VARIANTS = {
    "v1_embproj_abs": ("v1", dict(cases._SMALL, relative_attention=True, pos_att_type="c2p|p2c",
                                  embedding_size=16, position_biased_input=True)),
    "v2_embproj_types_abs": ("v2", dict(cases._SMALL, relative_attention=True, pos_att_type="p2c|c2p",
                                        position_buckets=8, max_relative_positions=32, embedding_size=16,
                                        type_vocab_size=2, position_biased_input=True)),
}
VARIANTS = {**{name: cases.variant_config_kwargs(name) for name in cases.VARIANTS}, **EXTRA_VARIANTS}

HEADS = ("base", "masked_lm", "sequence_classification", "token_classification", "question_answering",
         "multiple_choice")


def make_config(variant: str, **overrides):
    """A fresh config of the named variant (dropouts at their 0.1 defaults; tests run in eval mode)."""
    family, fields = VARIANTS[variant]
    return CONFIG_CLASSES[family](**{**fields, **overrides})


def heads_for(variant: str) -> tuple[str, ...]:
    """Heads the family has: v1 has no multiple choice (neither has the reference)."""
    return tuple(h for h in HEADS if not (h == "multiple_choice" and VARIANTS[variant][0] == "v1"))


def make_batch(config, seed: int = 0, batch: int = BATCH, seq_len: int = SEQ_LEN,
               row_lengths=ROW_LENGTHS) -> dict[str, np.ndarray]:
    """int64 input_ids (ids 1..vocab-1, 0 at padding), attention_mask with trailing zeros, and
    token_type_ids when the config has token types."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, config.vocab_size, size=(batch, seq_len), dtype=np.int64)
    mask = np.zeros((batch, seq_len), dtype=np.int64)
    for row, length in enumerate(row_lengths[:batch]):
        mask[row, :length] = 1
    ids = ids * mask
    out = {"input_ids": ids, "attention_mask": mask}
    if config.type_vocab_size > 0:
        types = np.zeros_like(ids)
        types[:, seq_len // 2:] = 1
        out["token_type_ids"] = types * mask
    return out


def make_labels(head: str, config, batch: dict, seed: int = 1) -> dict[str, np.ndarray]:
    """Labels for each head, exercising the ignore rules (-100, negative class ids, out-of-range spans)."""
    rng = np.random.default_rng(seed)
    B, T = batch["input_ids"].shape[:2]
    if head == "masked_lm":
        labels = np.where(rng.random((B, T)) < 0.3, batch["input_ids"], -100)
        labels[0, 0] = 5  # at least one scored position
        return {"labels": labels}
    if head == "sequence_classification":
        labels = rng.integers(0, config.num_labels, size=(B,), dtype=np.int64)
        labels[-1] = -1  # dropped by the filtered cross-entropy rule
        return {"labels": labels}
    if head == "token_classification":
        labels = rng.integers(0, config.num_labels, size=(B, T), dtype=np.int64)
        return {"labels": np.where(batch["attention_mask"] == 1, labels, -100)}
    if head == "question_answering":
        start = rng.integers(0, T, size=(B,), dtype=np.int64)
        end = rng.integers(0, T, size=(B,), dtype=np.int64)
        end[0] = T + 7  # clamped to T and ignored
        return {"start_positions": start, "end_positions": end}
    if head == "multiple_choice":
        return {"labels": rng.integers(0, 2, size=(B,), dtype=np.int64)}
    return {}


def choices(batch: dict, num_choices: int = 2) -> dict[str, np.ndarray]:
    """Multiple-choice inputs (B, C, T): each example's choices are rolled copies of its row."""
    return {k: np.stack([np.roll(v, c, axis=0) for c in range(num_choices)], axis=1) for k, v in batch.items()}
