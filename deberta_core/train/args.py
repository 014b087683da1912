"""Command-line arguments of deberta-train, and the checks that turn bad ones into clear errors."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .data import TASKS
from .optim import EPSILON
from .schedule import SCHEDULES

DESCRIPTION = """Fine-tune DeBERTa (v1, v2, v3) for classification, NER or extractive QA with PyTorch or Keras.

Reads the data with deberta_core.tasks, trains with AdamW (no decay on biases and LayerNorm) under a
warm-up + linear/cosine/constant schedule, evaluates with the task's metric, and writes OUTPUT/best and
OUTPUT/last (Hugging Face layout + tokenizer files; either framework loads either), OUTPUT/metrics.json
and OUTPUT/curves.png. PyTorch scales out with `torchrun --nproc_per_node N -m deberta_core.train ...`
(DDP), Keras with --devices N (tf.distribute.MirroredStrategy; with KERAS_BACKEND=jax,
keras.distribution.DataParallel).
"""

# Arguments a resumed run must repeat unchanged (they decide the data, the model or the optimizer).
RESUME_FIXED = ("task", "framework", "train", "eval", "text_column", "text_pair_column", "label_column",
                "token_column", "tag_column", "batch_size", "grad_accum", "lr", "weight_decay", "max_length",
                "doc_stride", "seed", "max_train_examples", "max_eval_examples", "bf16", "schedule",
                "warmup_ratio", "warmup_steps", "max_grad_norm", "adam_epsilon")


# The Keras backends deberta-train's Keras loop runs on (deberta_tf.train).
KERAS_BACKENDS = ("tensorflow", "jax")


class ArgumentError(ValueError):
    """A bad command line (reported as `deberta-train: error: ...`, exit status 2)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deberta-train", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("task and model")
    g.add_argument("--task", required=True, choices=TASKS)
    g.add_argument("--framework", default="pt", choices=("pt", "tf"), help="pt: PyTorch (default), tf: Keras")
    source = g.add_mutually_exclusive_group()
    source.add_argument("--model", help="checkpoint directory to fine-tune (from_pretrained with the task's head)")
    source.add_argument("--config", help="config.json of a model to train from scratch")
    g.add_argument("--tokenizer", help="tokenizer directory (default: the --model directory)")
    g = p.add_argument_group("data")
    g.add_argument("--train", required=True, help="training file (.tsv/.csv/.jsonl/.json, CoNLL, SQuAD .json)")
    g.add_argument("--eval", required=True, help="evaluation file (same format)")
    g.add_argument("--text-column", help="classification: text column (default: the readers' defaults)")
    g.add_argument("--text-pair-column", help="classification: second text column, for pairs")
    g.add_argument("--label-column", help="classification: label column")
    g.add_argument("--token-column", type=int, help="ner: column of the word (default 0)")
    g.add_argument("--tag-column", type=int, help="ner: column of the tag (default -1, the last)")
    g.add_argument("--max-length", type=int, help="tokens per row (default 128; qa 384)")
    g.add_argument("--doc-stride", type=int, help="qa: context tokens shared by neighbouring windows (default 128)")
    g.add_argument("--max-train-examples", type=int, help="use only the first N training examples")
    g.add_argument("--max-eval-examples", type=int, help="use only the first N evaluation examples")
    add_training_arguments(p)
    return p


def add_training_arguments(p: argparse.ArgumentParser, lr: float = 5e-5, adam_epsilon: float = EPSILON) -> None:
    """The optimisation, evaluation/output/control and hardware flags deberta-train and deberta-pretrain share."""
    g = p.add_argument_group("optimisation")
    length = g.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=float, help="passes over the training data (default 3)")
    length.add_argument("--max-steps", type=int, help="optimizer steps (instead of --epochs)")
    g.add_argument("--batch-size", type=int, default=32, help="global batch: rows per optimizer step, all "
                                                             "processes and accumulation steps together (32)")
    g.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step (1)")
    g.add_argument("--lr", type=float, default=lr, help=f"peak learning rate ({lr:g})")
    warmup = g.add_mutually_exclusive_group()
    warmup.add_argument("--warmup-ratio", type=float, help="warm-up as a fraction of the steps (default 0)")
    warmup.add_argument("--warmup-steps", type=int, help="warm-up steps")
    g.add_argument("--schedule", default="linear", choices=SCHEDULES, help="decay after warm-up (linear)")
    g.add_argument("--weight-decay", type=float, default=0.0, help="AdamW decoupled weight decay, not on biases "
                                                                   "and LayerNorm (0)")
    g.add_argument("--adam-epsilon", type=float, default=adam_epsilon,
                   help=f"AdamW epsilon, added to the bias-corrected sqrt(v) as torch does ({adam_epsilon:g})")
    g.add_argument("--max-grad-norm", type=float, default=1.0, help="clip the global gradient norm (1.0; 0: off)")
    g.add_argument("--bf16", action="store_true", help="bfloat16 autocast (torch) / mixed_bfloat16 policy (Keras)")
    g.add_argument("--seed", type=int, default=42, help="initialisation, data order and dropout (42)")
    g = p.add_argument_group("evaluation, output, control")
    g.add_argument("--eval-every", type=int, help="evaluate (and save OUTPUT/last) every N steps (default: each epoch)")
    g.add_argument("--eval-batch-size", type=int, default=64, help="rows per evaluation batch (64)")
    g.add_argument("--output", required=True, help="output directory")
    g.add_argument("--overwrite", action="store_true", help="start afresh even if --output holds a run")
    g.add_argument("--resume", action="store_true", help="continue the run in --output from OUTPUT/last")
    g.add_argument("--time-budget", type=float, metavar="MIN", help="stop cleanly (evaluate, save) after MIN "
                                                                   "minutes of training")
    g.add_argument("--stop-after", type=int, metavar="N", help="stop cleanly after N steps in this invocation; the "
                                                              "schedule still spans the whole run (resume later)")
    g.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    g = p.add_argument_group("hardware")
    g.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="pt: where to train (auto: CUDA when available)")
    g.add_argument("--devices", type=int, default=1, help="tf: replicas for MirroredStrategy, or devices for "
                   "DataParallel under KERAS_BACKEND=jax (GPUs, or CPU devices when there is no GPU) (1)")
    g.add_argument("--threads", type=int, help="CPU threads per process for the framework's ops")


def fail(message: str):
    raise ArgumentError(message)


def check_tokenizer(args: argparse.Namespace) -> None:
    """--tokenizer defaults to the --model directory and must be a directory."""
    if args.tokenizer is None:
        if args.model is None:
            fail("--config needs --tokenizer DIR (e.g. data/tokenizers/deberta-v3)")
        args.tokenizer = args.model
    if not Path(args.tokenizer).is_dir():
        fail(f"--tokenizer {args.tokenizer}: not a directory")


def check_args(args: argparse.Namespace) -> argparse.Namespace:
    """Fill defaults that depend on other arguments and reject bad combinations (ArgumentError)."""
    if args.model is None and args.config is None:
        fail("give --model DIR (fine-tune a checkpoint) or --config JSON (train from scratch)")
    if args.model is not None:
        model = Path(args.model)
        if not model.is_dir():
            fail(f"--model {args.model}: not a directory (expected a checkpoint directory with config.json)")
        if not (model / "config.json").is_file():
            fail(f"--model {args.model}: no config.json in it")
    if args.config is not None:
        args.config = checked_config(args.config, "--config")
    check_tokenizer(args)
    for name in ("train", "eval"):
        if not Path(getattr(args, name)).is_file():
            fail(f"--{name} {getattr(args, name)}: no such file")
    task_only = {"classification": ("text_column", "text_pair_column", "label_column"),
                 "ner": ("token_column", "tag_column"), "qa": ("doc_stride",)}
    for task, names in task_only.items():
        if args.task != task:
            for name in names:
                if getattr(args, name) is not None:
                    fail(f"--{name.replace('_', '-')} is only for --task {task}")
    if args.token_column is None:
        args.token_column = 0
    if args.tag_column is None:
        args.tag_column = -1
    if args.max_length is None:
        args.max_length = 384 if args.task == "qa" else 128
    if args.doc_stride is None:
        args.doc_stride = 128 if args.task == "qa" else 0
    check_positive(args, "max_train_examples", "max_eval_examples")
    if args.max_length < 8:
        fail(f"--max-length must be >= 8, got {args.max_length}")
    if args.task == "qa" and not 0 <= args.doc_stride < args.max_length:
        fail(f"--doc-stride must be in [0, --max-length) = [0, {args.max_length}), got {args.doc_stride}")
    return check_training_args(args)


def checked_config(value: str, flag: str) -> str:
    """The config.json a flag names (a file, or a directory holding config.json), checked to be JSON."""
    config = Path(value)
    if config.is_dir():
        config = config / "config.json"
    if not config.is_file():
        fail(f"{flag} {value}: no such file")
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        fail(f"{flag} {value}: not valid JSON ({e.msg} at line {e.lineno})")
    return str(config)


def check_positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            fail(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def check_training_args(args: argparse.Namespace) -> argparse.Namespace:
    """The checks of :func:`add_training_arguments`' flags (ArgumentError), defaults filled."""
    check_positive(args, "batch_size", "grad_accum", "max_steps", "eval_every", "eval_batch_size", "stop_after",
                   "devices", "threads")
    if args.epochs is not None and not args.epochs > 0:
        fail(f"--epochs must be > 0, got {args.epochs}")
    if args.max_steps is None and args.epochs is None:
        args.epochs = 3.0
    if args.batch_size % args.grad_accum:
        fail(f"--batch-size {args.batch_size} must be a multiple of --grad-accum {args.grad_accum}")
    if not args.lr > 0:
        fail(f"--lr must be > 0, got {args.lr}")
    if args.warmup_ratio is not None and not 0.0 <= args.warmup_ratio <= 1.0:
        fail(f"--warmup-ratio must be in [0, 1], got {args.warmup_ratio}")
    if args.warmup_steps is not None and args.warmup_steps < 0:
        fail(f"--warmup-steps must be >= 0, got {args.warmup_steps}")
    if args.weight_decay < 0:
        fail(f"--weight-decay must be >= 0, got {args.weight_decay}")
    if not args.adam_epsilon > 0:
        fail(f"--adam-epsilon must be > 0, got {args.adam_epsilon}")
    if args.max_grad_norm < 0:
        fail(f"--max-grad-norm must be >= 0 (0: no clipping), got {args.max_grad_norm}")
    if args.seed < 0:
        fail(f"--seed must be >= 0, got {args.seed}")
    if args.time_budget is not None and not args.time_budget > 0:
        fail(f"--time-budget must be > 0 minutes, got {args.time_budget}")
    if args.framework == "pt" and args.devices != 1:
        fail("--devices is for --framework tf; PyTorch scales out with torchrun --nproc_per_node N")
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if args.framework == "tf" and backend not in KERAS_BACKENDS:
        fail(f"--framework tf trains on Keras' TensorFlow backend (tf.distribute) or its JAX backend "
              f"(keras.distribution); KERAS_BACKEND={backend} is not supported")
    if args.framework == "tf" and args.device != "auto":
        fail("--device is for --framework pt; Keras places replicas with --devices N")
    if args.resume and args.overwrite:
        fail("--resume and --overwrite contradict each other")
    last = Path(args.output) / "last" / "trainer_state.json"
    if args.resume and not last.is_file():
        fail(f"--resume: nothing to resume in {args.output} (no last/trainer_state.json)")
    if not args.resume and not args.overwrite and last.is_file():
        fail(f"--output {args.output} already holds a run (last/trainer_state.json); pass --resume to continue it "
              "or --overwrite to start again")
    return args


def parse_args(argv=None) -> argparse.Namespace:
    """Parse and check; argparse's own errors exit with status 2, the checks raise ArgumentError."""
    return check_args(build_parser().parse_args(argv))


def check_resume(args: argparse.Namespace, saved: dict, fixed=RESUME_FIXED) -> None:
    """A resumed run must repeat the arguments that decide data, model and optimizer (``fixed``)."""
    changed = [f"--{k.replace('_', '-')}: {saved.get(k)!r} then, {getattr(args, k)!r} now"
               for k in fixed if k in saved and _same(saved.get(k)) != _same(getattr(args, k))]
    if changed:
        raise ArgumentError("--resume with different arguments than the run in --output: " + "; ".join(changed))


def _same(value):
    return str(Path(value).resolve()) if isinstance(value, str) and Path(value).exists() else value


__all__ = ["ArgumentError", "KERAS_BACKENDS", "RESUME_FIXED", "add_training_arguments", "build_parser", "check_args", "check_positive",
           "check_resume", "check_tokenizer", "check_training_args", "checked_config", "fail", "parse_args"]
