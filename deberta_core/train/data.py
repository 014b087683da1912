"""Training data for deberta-train, built on deberta_core.tasks: read, pick labels, encode, batch, shard.

The order of the training rows is a pure function of (seed, epoch): every process of a distributed
run computes the same global batch for a step and takes its own slice of it, and a resumed run gets
the batches an uninterrupted one would have had from the step number alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..tasks import (conll_label_list, encode_classification, encode_token_classification, label_list,
                     prepare_qa_features, read_classification, read_conll, read_squad)
from ..tasks.features import IGNORE_INDEX

TASKS = ("classification", "ner", "qa")
HEADS = {"classification": "sequence_classification", "ner": "token_classification", "qa": "question_answering"}
# The metric that picks OUTPUT/best (higher is better).
PRIMARY_METRIC = {"classification": "accuracy", "ner": "f1", "qa": "f1"}
# Keys padded along the token axis, and the value they are padded with (None: the tokenizer's pad id).
TOKEN_KEYS = {"input_ids": None, "attention_mask": 0, "token_type_ids": 0}
PAD_MULTIPLE = 8


@dataclass
class RawTask:
    """Examples as read from the files, before tokenisation."""

    task: str
    train: list
    eval: list
    labels: list | None  # class / tag names in id order (None for question answering)
    version_2: bool = False  # SQuAD v2 (unanswerable questions)


@dataclass
class Split:
    """Encoded rows of one split: ``features`` maps input and label names to per-row lists."""

    features: dict[str, list]
    examples: list  # the RawTask examples (for decoding and scoring)
    extra: Any = None  # NER: word_ids per row; QA: the QAFeatures

    def __len__(self) -> int:
        return len(self.features["input_ids"])


@dataclass
class TaskData:
    task: str
    head: str
    train: Split
    eval: Split
    id2label: dict[int, str] | None
    pad_token_id: int
    version_2: bool = False
    label_values: list | None = None  # the labels as read (ints stay ints), index = class id

    @property
    def primary_metric(self) -> str:
        return PRIMARY_METRIC[self.task]


# ----------------------------------------------------------------------------- reading
def read_task(args) -> RawTask:
    """Read ``args.train`` / ``args.eval`` with the task's reader (format from the file name)."""
    task = args.task
    if task == "classification":
        options = dict(text_column=args.text_column, text_pair_column=args.text_pair_column,
                       label_column=args.label_column)
        train = read_classification(args.train, **options)
        evaluation = read_classification(args.eval, **options)
        for name, rows in (("--train", train), ("--eval", evaluation)):
            unlabelled = next((e for e in rows if e.label is None), None)
            if unlabelled is not None:
                raise ValueError(f"{name} {unlabelled.guid}: no label column found; pass --label-column")
        values = label_list(train)
        if any(isinstance(v, float) and not float(v).is_integer() for v in values):
            raise ValueError(f"--train {args.train}: the labels are real numbers (regression), which deberta-train "
                             "does not do; classification needs class labels")
        unseen = sorted({str(e.label) for e in evaluation} - {str(v) for v in values})
        if unseen:
            raise ValueError(f"--eval {args.eval}: label(s) {unseen} never occur in --train {args.train}")
        if len(values) < 2:
            raise ValueError(f"--train {args.train}: a single class ({values}) cannot be learned")
        raw = RawTask(task, train, evaluation, values)
    elif task == "ner":
        options = dict(token_column=args.token_column, tag_column=args.tag_column)
        train = read_conll(args.train, **options)
        evaluation = read_conll(args.eval, **options)
        raw = RawTask(task, train, evaluation, conll_label_list([*train, *evaluation]))
    elif task == "qa":
        train = read_squad(args.train)
        evaluation = read_squad(args.eval)
        raw = RawTask(task, train, evaluation, None,
                      version_2=any(e.is_impossible for e in [*train, *evaluation]))
    else:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    if args.max_train_examples is not None:
        raw.train = raw.train[:args.max_train_examples]
    if args.max_eval_examples is not None:
        raw.eval = raw.eval[:args.max_eval_examples]
    for name, rows, path in (("--train", raw.train, args.train), ("--eval", raw.eval, args.eval)):
        if not rows:
            raise ValueError(f"{name} {path}: no examples")
    return raw


def choose_labels(raw: RawTask, config) -> tuple[dict[int, str] | None, bool]:
    """(id2label for the model, whether it differs from the config's).

    A config whose labels are exactly the data's (as strings) keeps its order (a fine-tuned checkpoint
    trains on); otherwise the data's labels, sorted, replace them (the head is new).
    """
    if raw.labels is None:
        return None, config.num_labels != 2
    names = [str(v) for v in raw.labels]
    current = {int(k): str(v) for k, v in config.id2label.items()}
    if sorted(current.values()) == sorted(names) and len(current) == len(names):
        return current, False
    return dict(enumerate(names)), True


# ----------------------------------------------------------------------------- encoding
def _rows(encoded: dict, keep: Sequence[str]) -> dict[str, list]:
    return {k: list(encoded[k]) for k in keep if k in encoded}


def encode_task(raw: RawTask, tokenizer, id2label: dict[int, str] | None, *, max_length: int, doc_stride: int,
                use_token_types: bool) -> TaskData:
    """Tokenise both splits with deberta_core.tasks.features; labels become ids through ``id2label``."""
    inputs = ["input_ids", "attention_mask"] + (["token_type_ids"] if use_token_types else [])
    if raw.task == "classification":
        by_name = {name: i for i, name in id2label.items()}
        label2id = {v: by_name[str(v)] for v in raw.labels}

        def split(examples):
            encoded = encode_classification(tokenizer, examples, label2id=label2id, max_length=max_length)
            return Split(_rows(encoded, inputs + ["labels"]), examples)

        train, evaluation = split(raw.train), split(raw.eval)
    elif raw.task == "ner":
        label2id = {name: i for i, name in id2label.items()}

        def split(examples):
            encoded = encode_token_classification(tokenizer, examples, label2id=label2id, max_length=max_length)
            return Split(_rows(encoded, inputs + ["labels"]), examples, encoded["word_ids"])

        train, evaluation = split(raw.train), split(raw.eval)
    else:
        def split(examples):
            features = prepare_qa_features(tokenizer, examples, max_length=max_length, doc_stride=doc_stride,
                                           training=True)
            return Split(_rows(features.model_inputs(), inputs + ["start_positions", "end_positions"]), examples,
                         features)

        train, evaluation = split(raw.train), split(raw.eval)
    return TaskData(raw.task, HEADS[raw.task], train, evaluation, id2label, tokenizer.pad_token_id,
                    raw.version_2, raw.labels)


# ----------------------------------------------------------------------------- batches
def collate(features: dict[str, list], indices: Sequence[int], pad_token_id: int, *, width: int | None = None,
            multiple: int = PAD_MULTIPLE) -> dict[str, np.ndarray]:
    """Rows ``indices`` as int64 arrays, right-padded to ``width`` (default: the longest row rounded up
    to ``multiple``). Token-level labels are padded with -100."""
    indices = list(indices)
    if width is None:
        longest = max(len(features["input_ids"][i]) for i in indices)
        width = int(math.ceil(longest / multiple) * multiple)
    token_level_labels = "labels" in features and isinstance(features["labels"][indices[0]], (list, tuple))
    batch = {}
    for key, column in features.items():
        if key in TOKEN_KEYS or (key == "labels" and token_level_labels):
            fill = pad_token_id if key == "input_ids" else IGNORE_INDEX if key == "labels" else TOKEN_KEYS[key]
            out = np.full((len(indices), width), fill, dtype=np.int64)
            for row, i in enumerate(indices):
                values = column[i][:width]
                out[row, :len(values)] = values
            batch[key] = out
        else:
            batch[key] = np.asarray([column[i] for i in indices], dtype=np.int64)
    return batch


def loss_items(task: str, batch: dict[str, np.ndarray]) -> int:
    """How many terms the head's loss averages over: rows with a class (classification), tokens with
    a label other than -100 (NER), rows (question answering)."""
    if task == "classification":
        return int((batch["labels"] >= 0).sum())
    if task == "ner":
        return int((batch["labels"] != IGNORE_INDEX).sum())
    return int(len(batch["input_ids"]))


def width_of(features: dict[str, list], indices: Sequence[int], multiple: int = PAD_MULTIPLE) -> int:
    longest = max(len(features["input_ids"][i]) for i in indices)
    return int(math.ceil(longest / multiple) * multiple)


class BatchPlan:
    """Which rows train at which step, and how a step's global batch is split.

    Epoch ``e`` visits the rows in ``default_rng([seed, e]).permutation(n)``; step ``s`` takes batch
    ``s % steps_per_epoch`` of epoch ``s // steps_per_epoch`` (the incomplete last batch is dropped).
    The global batch is cut into ``grad_accum`` micro-batches, each padded to the step's longest row
    (rounded up to 8), and each micro-batch into ``world_size`` equal shards, one per process/replica.
    """

    def __init__(self, n_rows: int, batch_size: int, grad_accum: int, world_size: int, seed: int):
        if batch_size % (grad_accum * world_size):
            raise ValueError(f"--batch-size {batch_size} must be a multiple of --grad-accum ({grad_accum}) x the "
                             f"number of processes/replicas ({world_size}) = {grad_accum * world_size}")
        if n_rows < batch_size:
            raise ValueError(f"the training set has {n_rows} rows (features), fewer than one global batch of "
                             f"{batch_size}; lower --batch-size or give more data")
        self.n_rows, self.batch_size, self.grad_accum = n_rows, batch_size, grad_accum
        self.world_size, self.seed = world_size, seed
        self.steps_per_epoch = n_rows // batch_size
        self._orders: dict[int, np.ndarray] = {}

    def order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            self._orders = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.n_rows)}
        return self._orders[epoch]

    def global_indices(self, step: int) -> np.ndarray:
        epoch, position = divmod(step, self.steps_per_epoch)
        return self.order(epoch)[position * self.batch_size:(position + 1) * self.batch_size]

    def step_batches(self, step: int, data: TaskData) -> tuple[list[dict], list[list[float]]]:
        """(the step's micro-batches, whole, and the loss weight of every shard of each).

        ``weights[m][r]`` is shard ``r`` of micro-batch ``m``'s share of the loss items of the whole step
        (all micro-batches, all shards): the weighted sum of the shards' mean losses is the mean loss
        over the global batch, so every split of the batch gives the same gradient.
        """
        features = data.train.features
        indices = self.global_indices(step)
        width = width_of(features, indices)
        micro = self.batch_size // self.grad_accum
        batches, counts = [], []
        for m in range(self.grad_accum):
            full = collate(features, indices[m * micro:(m + 1) * micro], data.pad_token_id, width=width)
            batches.append(full)
            counts.append([loss_items(data.task, shard(full, r, self.world_size)) for r in range(self.world_size)])
        total = sum(map(sum, counts))
        if total == 0:
            raise ValueError(f"step {step}: no row of the batch has a label the loss can use")
        return batches, [[c / total for c in row] for row in counts]


def shard(batch: dict[str, np.ndarray], index: int, count: int) -> dict[str, np.ndarray]:
    """Rows ``[index * n / count, (index + 1) * n / count)`` of every array (n divisible by count)."""
    size = len(batch["input_ids"]) // count
    return {k: v[index * size:(index + 1) * size] for k, v in batch.items()}


def eval_batches(split: Split, batch_size: int, pad_token_id: int):
    """(row indices, padded batch) over a split, rows sorted by length (less padding), every row once."""
    lengths = np.array([len(ids) for ids in split.features["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        yield rows, collate(split.features, rows, pad_token_id)


__all__ = ["BatchPlan", "HEADS", "PRIMARY_METRIC", "RawTask", "Split", "TASKS", "TaskData", "choose_labels",
           "collate", "encode_task", "eval_batches", "loss_items", "read_task", "shard"]
