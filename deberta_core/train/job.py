"""What the training driver trains, on what, and how it scores it: a *job*.

:func:`deberta_core.train.loop.run` owns the loop, the checkpoints, the report and resume; a job owns
the rest, with this surface:

* ``program``, ``kind``, ``name``: for messages and metrics.json (``"deberta-train"``, ``"task"``, ``"ner"``);
* ``config``, ``spec() -> ModelSpec``: the model the framework builds (from OUTPUT/last on --resume);
* ``plan`` (``steps_per_epoch``) and ``step_batches(step) -> (micro-batches, loss weights)``;
* ``evaluate(predict) -> metrics``, ``primary_metric``, ``higher_is_better``, ``percent_metrics``,
  ``panel_metrics`` (the curves' right panel), ``baselines``;
* ``describe()``, ``data_report()``, ``title``; ``saved(directory)`` (after each checkpoint: the
  tokenizer files), ``finish(output, backend)`` and ``outputs`` (what the run leaves in OUTPUT);
* ``resume_fixed``: the arguments a resumed run must repeat.

:class:`FineTuning` is deberta-train's; deberta_core.pretrain has deberta-pretrain's.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..config import load_config
from ..pipelines.loading import TOKENIZER_FILES, load_tokenizer, model_class
from .args import RESUME_FIXED
from .data import BatchPlan, choose_labels, encode_task, read_task
from .evaluate import baselines, evaluate


@dataclass
class ModelSpec:
    """What the framework builds: ``config`` from scratch, or ``source`` (a checkpoint directory) loaded
    with the head and ``overrides`` (new labels: ``ignore_mismatched_sizes``). ``head`` is a task head
    (deberta_core.pipelines.loading.model_class) or ``"rtd_pretraining"``, the generator + discriminator
    pair, built from ``generator_config`` and ``config`` with ``settings`` (embedding_sharing, rtd_lambda)."""

    head: str
    config: object
    source: Path | None = None
    overrides: dict = field(default_factory=dict)
    generator_config: object = None
    settings: dict = field(default_factory=dict)


# The outputs a backend's predict returns by default (the task heads'); a job may ask for others.
OUTPUT_NAMES = ("logits", "start_logits", "end_logits")


def build_model(spec: ModelSpec, framework: str, seed: int | None = None):
    """The model ``spec`` describes, in ``framework`` ("pt" / "tf"; seed: the Keras pair's sampling seed)."""
    if spec.head == "rtd_pretraining":
        if framework == "pt":
            from deberta_torch.pretraining import DebertaV2ForRTDPretraining as cls
            settings = dict(spec.settings)
        else:
            from deberta_tf.pretraining import TFDebertaV2ForRTDPretraining as cls
            settings = {**spec.settings, "seed": seed}
        if spec.source is not None:
            return cls.from_pretrained(spec.source, **settings)
        return cls(spec.generator_config, spec.config, **settings)
    cls = model_class(spec.config, spec.head, framework)
    return cls(spec.config) if spec.source is None else cls.from_pretrained(spec.source, **spec.overrides)


def copy_tokenizer(source: Path, target: Path) -> None:
    """The tokenizer files of ``source`` (config.json never: it is the model's) into ``target``."""
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)


def check_vocabulary(tokenizer, config, where) -> None:
    if len(tokenizer) > config.vocab_size:
        raise ValueError(f"the tokenizer in {where} has {len(tokenizer)} tokens but the model's vocab_size "
                         f"is {config.vocab_size}; use the model's own tokenizer or a config with a larger vocab_size")


class FineTuning:
    """deberta-train: a task head fine-tuned on a task's files (deberta_core.tasks), scored by its metric."""

    program = "deberta-train"
    kind = "task"
    higher_is_better = True
    panel_metrics = None  # the curves' defaults for the task
    outputs = ("best", "last", "metrics.json", "curves.png")
    resume_fixed = RESUME_FIXED

    def __init__(self, args, world_size: int):
        self.args = args
        self.name = args.task
        tokenizer = load_tokenizer(args.tokenizer)
        self.raw = raw = read_task(args)
        last_dir = Path(args.output) / "last"
        self.source = last_dir if args.resume else (Path(args.model) if args.model else None)
        config = load_config(self.source if self.source is not None else args.config)
        id2label, relabel = choose_labels(raw, config)
        self.overrides = {}
        if relabel:
            labels = id2label if id2label is not None else {0: "LABEL_0", 1: "LABEL_1"}
            changes = dict(id2label=labels, label2id={v: k for k, v in labels.items()})
            config = config.copy(**changes)
            self.overrides = {**changes, "ignore_mismatched_sizes": True}
        check_vocabulary(tokenizer, config, args.tokenizer)
        if config.position_biased_input and args.max_length > config.max_position_embeddings:
            raise ValueError(f"--max-length {args.max_length} exceeds the model's max_position_embeddings "
                             f"({config.max_position_embeddings})")
        self.config = config
        self.data = data = encode_task(raw, tokenizer, id2label, max_length=args.max_length,
                                       doc_stride=args.doc_stride, use_token_types=config.type_vocab_size > 0)
        self.plan = BatchPlan(len(data.train), args.batch_size, args.grad_accum, world_size, args.seed)
        self.primary_metric = data.primary_metric
        self.percent_metrics = args.task != "qa"  # QA metrics are already percentages
        self.baselines = baselines(data)
        self.title = f"{Path(args.train).name} -> {Path(args.eval).name}"

    def spec(self) -> ModelSpec:
        return ModelSpec(self.data.head, self.config, self.source, self.overrides)

    def step_batches(self, step: int):
        return self.plan.step_batches(step, self.data)

    def evaluate(self, predict) -> dict[str, float]:
        return evaluate(self.data, predict, self.args.eval_batch_size)

    def describe(self) -> str:
        return (f"{len(self.data.train)} training rows ({len(self.raw.train)} examples), {len(self.data.eval)} "
                f"eval rows ({len(self.raw.eval)} examples)")

    def data_report(self) -> dict:
        return {"train_examples": len(self.raw.train), "train_rows": len(self.data.train),
                "eval_examples": len(self.raw.eval), "eval_rows": len(self.data.eval),
                "steps_per_epoch": self.plan.steps_per_epoch}

    def saved(self, directory: Path) -> None:
        copy_tokenizer(Path(self.args.tokenizer), directory)

    def finish(self, output: Path, backend) -> None:
        pass


__all__ = ["FineTuning", "ModelSpec", "OUTPUT_NAMES", "build_model", "check_vocabulary", "copy_tokenizer"]
