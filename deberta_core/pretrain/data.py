"""Pre-training data: text files to packed blocks, and each step's freshly masked micro-batches.

Every rule (masking, whole words, packing) is deberta_core.pretraining's; this module applies them to
files and to the training schedule, in numpy, so both frameworks train on identical batches.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..losses import IGNORE_INDEX
from ..pretraining import MaskingRule, mask_tokens, pack_blocks, word_starts_from_tokens
from ..train.data import BatchPlan, shard

# Streams of the masking generator (np.random.default_rng([seed, STREAM, ...])).
TRAIN_MASKS, EVAL_MASKS = 1, 2


TABLE_SUFFIXES = {".tsv": "\t", ".csv": ","}
TEXT_COLUMNS = ("text", "sentence")  # tried in order when no column is named


def _open_text(path: Path):
    """A text handle on a file, decompressing .gz / .bz2."""
    if path.suffix == ".gz":
        import gzip

        return gzip.open(path, "rt", encoding="utf-8")
    if path.suffix == ".bz2":
        import bz2

        return bz2.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_lines(paths, text_column: str | None = None) -> list[str]:
    """The passages of text files, in order: the non-blank lines of a plain file; the ``text_column``
    (default: the first of "text", "sentence" present) of a .tsv/.csv (header row) or .jsonl file,
    other columns (labels) never read. .gz/.bz2 are decompressed."""
    lines = []
    for path in map(Path, paths):
        kind = Path(path.stem).suffix if path.suffix in (".gz", ".bz2") else path.suffix
        with _open_text(path) as handle:
            if kind in TABLE_SUFFIXES or kind == ".jsonl":
                rows = ([json.loads(line) for line in handle if line.strip()] if kind == ".jsonl" else
                        list(csv.DictReader(handle, delimiter=TABLE_SUFFIXES[kind])))
                names = list(rows[0]) if rows else []
                column = text_column or next((c for c in TEXT_COLUMNS if c in names), None)
                if column not in names:
                    raise ValueError(f"{path}: no {column or ' or '.join(TEXT_COLUMNS)!r} column (it has {names}); "
                                     "name one with --text-column")
                lines += [str(row[column]).strip() for row in rows if str(row[column]).strip()]
            else:
                lines += [line.strip() for line in handle if line.strip()]
    if not lines:
        raise ValueError(f"{', '.join(map(str, paths))}: no text (every line is blank)")
    return lines


def text_blocks(tokenizer, paths, block_size: int, *, max_blocks: int | None = None, progress: bool = False,
                drop_last: bool = True, text_column: str | None = None) -> dict[str, np.ndarray]:
    """Packed blocks (deberta_core.pretraining.pack_blocks) of the files' lines: input_ids,
    attention_mask (N, block_size) and word_starts (N, block_size); with ``max_blocks``, the first
    ones (lines are tokenized only until there are enough tokens)."""
    lines = read_lines(paths, text_column)
    wanted = None if max_blocks is None else max_blocks * (block_size - 2)
    ids, starts, count = [], [], 0
    for line in tqdm(lines, desc="tokenizing", unit="line", disable=not progress, mininterval=1.0):
        tokens = tokenizer.tokenize(line)
        ids.append(tokenizer.convert_tokens_to_ids(tokens))
        starts.append(word_starts_from_tokens(tokens).tolist())
        count += len(tokens)
        if wanted is not None and count >= wanted:
            break
    blocks = pack_blocks(ids, block_size, cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id,
                         pad_id=tokenizer.pad_token_id, word_starts=starts, drop_last=drop_last)
    if max_blocks is not None:
        blocks = {k: v[:max_blocks] for k, v in blocks.items()}
    if len(blocks["input_ids"]) == 0:
        raise ValueError(f"{', '.join(map(str, paths))}: fewer tokens than one block of {block_size}")
    return blocks


@dataclass
class Masker:
    """The masking of one objective: the rule, and the tokenizer's ids it needs."""

    rule: MaskingRule
    mask_token_id: int
    vocab_size: int  # the tokenizer's (random replacements are real tokens)
    special_ids: tuple

    @classmethod
    def for_tokenizer(cls, tokenizer, rule: MaskingRule) -> "Masker":
        if tokenizer.mask_token_id is None:
            raise ValueError("the tokenizer has no mask token; masked-LM pre-training needs one")
        return cls(rule, tokenizer.mask_token_id, len(tokenizer), tuple(tokenizer.all_special_ids))

    def __call__(self, blocks: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        """input_ids (masked), attention_mask and labels (original id at each target, -100 elsewhere)."""
        masked, labels = mask_tokens(blocks["input_ids"], rng, mask_token_id=self.mask_token_id,
                                     vocab_size=self.vocab_size, special_ids=self.special_ids,
                                     attention_mask=blocks["attention_mask"],
                                     word_starts=blocks.get("word_starts"), rule=self.rule)
        return {"input_ids": masked, "attention_mask": blocks["attention_mask"], "labels": labels}


class MaskedBlocks:
    """The training schedule over packed blocks (deberta_core.train.data.BatchPlan's order and split),
    each step's global batch masked with ``default_rng([seed, TRAIN_MASKS, step])``: a resumed run, or
    any number of processes, masks exactly as one uninterrupted process."""

    def __init__(self, blocks: dict[str, np.ndarray], masker: Masker, batch_size: int, grad_accum: int,
                 world_size: int, seed: int):
        self.blocks, self.masker, self.seed = blocks, masker, seed
        self.plan = BatchPlan(len(blocks["input_ids"]), batch_size, grad_accum, world_size, seed)
        self.grad_accum, self.world_size = grad_accum, world_size

    @property
    def steps_per_epoch(self) -> int:
        return self.plan.steps_per_epoch

    def step_batches(self, step: int) -> tuple[list[dict], list[list[float]]]:
        """(micro-batches, loss weights): ``weights[m][r]`` is shard r of micro-batch m's share of the
        step's masked tokens, so the weighted shards' mean MLM losses make the global batch's mean."""
        indices = self.plan.global_indices(step)
        batch = self.masker({k: v[indices] for k, v in self.blocks.items()},
                            np.random.default_rng([self.seed, TRAIN_MASKS, step]))
        micro = len(indices) // self.grad_accum
        batches = [{k: v[m * micro:(m + 1) * micro] for k, v in batch.items()} for m in range(self.grad_accum)]
        counts = [[int((shard(b, r, self.world_size)["labels"] != IGNORE_INDEX).sum()) for r in range(self.world_size)]
                  for b in batches]
        total = sum(map(sum, counts))
        if total == 0:
            raise ValueError(f"step {step}: no token of the batch could be masked")
        return batches, [[c / total for c in row] for row in counts]


def unigram_loss(train_ids: np.ndarray, eval_labels: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy of the eval targets under the training tokens' unigram distribution (add-one
    smoothed over the vocabulary): what a masked LM that ignores the context scores."""
    counts = np.bincount(train_ids.reshape(-1), minlength=vocab_size)[:vocab_size].astype(np.float64) + 1.0
    log_p = np.log(counts / counts.sum())
    targets = eval_labels[eval_labels != IGNORE_INDEX]
    return float(-log_p[targets].mean())


__all__ = ["EVAL_MASKS", "MaskedBlocks", "Masker", "TRAIN_MASKS", "read_lines", "text_blocks", "unigram_loss"]
