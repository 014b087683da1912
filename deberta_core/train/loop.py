"""The framework-neutral training driver of deberta-train.

Everything but the forward/backward/update lives here: data (deberta_core.tasks via .data), the
learning-rate schedule, when to evaluate and stop, best-checkpoint bookkeeping, OUTPUT/metrics.json,
OUTPUT/curves.png and the resume state. A framework contributes a module (``deberta_torch.train``,
``deberta_tf.train``) with

* ``setup(args) -> Distributed``: start the processes' group / the replicas (rank, world_size);
* ``Backend(args, spec, dist)`` with ``train_step(micro_batches, weights, lr, step) -> loss``,
  ``predict(batch) -> outputs``, ``save_pretrained(dir)``, ``save_state(dir)``, ``load_state(dir)``,
  ``agree(flag) -> bool`` (any process says stop), ``barrier()`` and ``close()``.

Checkpoints: OUTPUT/last (every evaluation and at the end: weights, tokenizer files, optimizer state,
trainer_state.json) and OUTPUT/best (the best evaluation so far by the task's metric); both in the
Hugging Face layout of the framework's ``save_pretrained``, which the other framework's
``from_pretrained`` reads.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..config import load_config
from ..pipelines.loading import load_tokenizer
from .args import check_resume
from .data import BatchPlan, choose_labels, encode_task, read_task
from .evaluate import baselines, evaluate
from .report import plot_curves, write_json
from .schedule import learning_rate, warmup_steps_for

logger = logging.getLogger("deberta_core.train")

FRAMEWORK_MODULES = {"pt": "deberta_torch.train", "tf": "deberta_tf.train"}
STATE_FILE = "trainer_state.json"
# Tokenizer files copied into OUTPUT/best and OUTPUT/last (config.json never: it is the model's).
TOKENIZER_FILES = ("spm.model", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json", "added_tokens.json")
OUTPUT_ITEMS = ("last", "best", "metrics.json", "curves.png", ".last.tmp", ".best.tmp", ".last.old", ".best.old")


@dataclass
class ModelSpec:
    """What the framework builds: ``config`` from scratch, or ``source`` (a checkpoint directory) loaded
    with the task's head and ``overrides`` (new labels: ``ignore_mismatched_sizes``)."""

    head: str
    config: object
    source: Path | None = None
    overrides: dict = field(default_factory=dict)


def _recorded_args(args) -> dict:
    return {k: v for k, v in vars(args).items()}


def _copy_tokenizer(source: Path, target: Path) -> None:
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)


def _swap_in(tmp: Path, final: Path) -> None:
    """Replace ``final`` by the finished directory ``tmp`` (the old one is removed only afterwards)."""
    old = final.with_name("." + final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _framework(args):
    return importlib.import_module(FRAMEWORK_MODULES[args.framework])


def run(args) -> dict:
    """Train as ``args`` (checked by :func:`deberta_core.train.args.parse_args`) says; return the summary."""
    started = time.time()
    framework = _framework(args)
    dist = framework.setup(args)
    main = dist.rank == 0
    output = Path(args.output)
    if main:
        output.mkdir(parents=True, exist_ok=True)
        if args.overwrite:
            for name in OUTPUT_ITEMS:
                path = output / name
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    last_dir = output / "last"

    # ---------------------------------------------------------------- data and model description
    tokenizer = load_tokenizer(args.tokenizer)
    raw = read_task(args)
    source = last_dir if args.resume else (Path(args.model) if args.model else None)
    config = load_config(source if source is not None else args.config)
    id2label, relabel = choose_labels(raw, config)
    overrides = {}
    if relabel:
        labels = id2label if id2label is not None else {0: "LABEL_0", 1: "LABEL_1"}
        changes = dict(id2label=labels, label2id={v: k for k, v in labels.items()})
        config = config.copy(**changes)
        overrides = {**changes, "ignore_mismatched_sizes": True}
    if len(tokenizer) > config.vocab_size:
        raise ValueError(f"the tokenizer in {args.tokenizer} has {len(tokenizer)} tokens but the model's vocab_size "
                         f"is {config.vocab_size}; use the model's own tokenizer or a config with a larger vocab_size")
    if config.position_biased_input and args.max_length > config.max_position_embeddings:
        raise ValueError(f"--max-length {args.max_length} exceeds the model's max_position_embeddings "
                         f"({config.max_position_embeddings})")
    data = encode_task(raw, tokenizer, id2label, max_length=args.max_length, doc_stride=args.doc_stride,
                       use_token_types=config.type_vocab_size > 0)
    plan = BatchPlan(len(data.train), args.batch_size, args.grad_accum, dist.world_size, args.seed)
    total_steps = args.max_steps if args.max_steps is not None else max(1, math.ceil(args.epochs * plan.steps_per_epoch))
    warmup = warmup_steps_for(total_steps, args.warmup_steps, args.warmup_ratio)
    eval_every = args.eval_every or plan.steps_per_epoch
    reference = baselines(data)

    # ---------------------------------------------------------------- state
    state = {"step": 0, "evals": [], "train_log": [], "best": None, "train_seconds": 0.0, "eval_seconds": 0.0,
             "invocations": 0, "args": _recorded_args(args)}
    if args.resume:
        from ..io import read_json_object

        saved = read_json_object(last_dir / STATE_FILE)
        check_resume(args, saved["args"])
        state.update({k: saved[k] for k in ("step", "evals", "train_log", "best", "train_seconds", "eval_seconds",
                                            "invocations")})
        state["args"] = {**saved["args"], **{k: v for k, v in _recorded_args(args).items()}}
        if state["step"] >= total_steps:
            raise ValueError(f"--resume: the run in {args.output} already made {state['step']} steps, the whole "
                             f"run's {total_steps}; raise --max-steps or --epochs to train on")
    state["invocations"] += 1
    data_seconds = time.time() - started

    spec = ModelSpec(data.head, config, source, overrides)
    backend = framework.Backend(args, spec, dist)
    if args.resume:
        backend.load_state(last_dir)
    start_step = state["step"]

    def say(message: str) -> None:
        if main:
            if bar is not None:
                bar.write(message)
            else:
                print(message, flush=True)

    bar = None
    say(f"deberta-train: {args.task} with {backend.description}; {len(data.train)} training rows "
        f"({len(raw.train)} examples), {len(data.eval)} eval rows ({len(raw.eval)} examples); "
        f"{plan.steps_per_epoch} steps/epoch, {total_steps} steps, warm-up {warmup}, eval every {eval_every}"
        + (f"; resuming at step {start_step}" if args.resume else ""))

    def record_eval(step: int, stop_reason: str | None) -> None:
        t_eval = time.time()
        metrics = evaluate(data, backend.predict, args.eval_batch_size) if main else None
        previous = state["evals"][-1]["step"] if state["evals"] else 0
        recent = [r["loss"] for r in state["train_log"] if r["step"] > previous]
        if main:
            entry = {"step": step, "epoch": round(step / plan.steps_per_epoch, 4),
                     "train_loss": sum(recent) / len(recent) if recent else None,
                     "learning_rate": state["train_log"][-1]["lr"] if state["train_log"] else None,
                     "metrics": metrics, "train_seconds": round(state["train_seconds"] + (time.time() - t_loop), 2)}
            state["evals"].append(entry)
            value = metrics[data.primary_metric]
            improved = state["best"] is None or value > state["best"]["value"]
            if improved:
                state["best"] = {"step": step, "metric": data.primary_metric, "value": value}
                tmp = output / ".best.tmp"
                shutil.rmtree(tmp, ignore_errors=True)
                backend.save_pretrained(tmp)
                _copy_tokenizer(Path(args.tokenizer), tmp)
                write_json(tmp / "eval_results.json", {"step": step, "metrics": metrics})
                _swap_in(tmp, output / "best")
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            say(f"step {step}: eval {shown}" + (" (best)" if improved else ""))
        state["eval_seconds"] += time.time() - t_eval
        save_last(stop_reason)
        backend.barrier()

    def save_last(stop_reason: str | None) -> None:
        if not main:
            return
        elapsed = time.time() - t_loop
        snapshot = {**state, "train_seconds": state["train_seconds"] + elapsed, "stop_reason": stop_reason,
                    "total_steps": total_steps}
        tmp = output / ".last.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        backend.save_pretrained(tmp)
        _copy_tokenizer(Path(args.tokenizer), tmp)
        backend.save_state(tmp)
        write_json(tmp / STATE_FILE, snapshot)
        _swap_in(tmp, last_dir)
        write_report(snapshot, stop_reason)

    def write_report(snapshot: dict, stop_reason: str | None) -> None:
        train_seconds = snapshot["train_seconds"]
        steps_done = snapshot["step"]
        report = {
            "task": args.task, "framework": args.framework, "backend": backend.description,
            "world_size": dist.world_size, "primary_metric": data.primary_metric, "best": snapshot["best"],
            "evals": snapshot["evals"], "baselines": reference,
            "data": {"train_examples": len(raw.train), "train_rows": len(data.train), "eval_examples": len(raw.eval),
                     "eval_rows": len(data.eval), "steps_per_epoch": plan.steps_per_epoch},
            "schedule": {"total_steps": total_steps, "warmup_steps": warmup, "schedule": args.schedule,
                         "peak_lr": args.lr},
            "timing": {"data_prep_seconds": round(data_seconds, 2), "train_seconds": round(train_seconds, 2),
                       "eval_seconds": round(snapshot["eval_seconds"], 2),
                       "steps_per_second": round((steps_done - start_step) / max(1e-9, time.time() - t_loop), 3),
                       "wall_seconds_this_invocation": round(time.time() - started, 2),
                       "invocations": snapshot["invocations"]},
            "stop_reason": stop_reason, "steps_done": steps_done,
            "args": snapshot["args"], "model_config": config.to_dict(),
            "train_log": snapshot["train_log"],
        }
        write_json(output / "metrics.json", report)
        plot_curves(output / "curves.png", snapshot["train_log"], snapshot["evals"], task=args.task,
                    primary=data.primary_metric, baselines=reference,
                    title=f"{args.task} / {args.framework}: {Path(args.train).name} -> {Path(args.eval).name}")

    # ---------------------------------------------------------------- the loop
    from tqdm.auto import tqdm

    bar = tqdm(total=total_steps, initial=start_step, unit="step", disable=not main or args.no_progress,
               dynamic_ncols=True, mininterval=1.0, file=sys.stderr)
    t_loop = time.time()
    stop_reason = None
    steps_this_run = 0
    try:
        while state["step"] < total_steps:
            step = state["step"]
            batches, weights = plan.step_batches(step, data)
            lr = learning_rate(step, base_lr=args.lr, total_steps=total_steps, warmup_steps=warmup,
                               schedule=args.schedule)
            loss = backend.train_step(batches, weights, lr, step)
            if not math.isfinite(loss):
                raise FloatingPointError(f"step {step + 1}: the training loss is {loss}; lower --lr")
            state["step"] = step = step + 1
            steps_this_run += 1
            state["train_log"].append({"step": step, "loss": loss, "lr": lr})
            bar.update(1)
            if main and not args.no_progress:
                window = [r["loss"] for r in state["train_log"][-20:]]
                bar.set_postfix(loss=f"{sum(window) / len(window):.4f}", lr=f"{lr:.2e}", refresh=False)
            if step >= total_steps:
                stop_reason = "max_steps" if args.max_steps is not None else "epochs"
            elif args.stop_after is not None and steps_this_run >= args.stop_after:
                stop_reason = "stop_after"
            elif args.time_budget is not None and backend.agree(time.time() - t_loop > 60 * args.time_budget):
                stop_reason = "time_budget"
            if stop_reason is not None or step % eval_every == 0:
                record_eval(step, stop_reason)
            if stop_reason is not None:
                break
    finally:
        bar.close()
    train_seconds = state["train_seconds"] + (time.time() - t_loop)
    summary = {"steps": state["step"], "stop_reason": stop_reason, "best": state["best"],
               "final_eval": state["evals"][-1]["metrics"] if state["evals"] else None,
               "train_seconds": round(train_seconds, 2), "output": str(output), "world_size": dist.world_size}
    if main:
        best = state["best"]
        print(f"deberta-train: stopped after step {state['step']} ({stop_reason}); best {best['metric']} "
              f"{best['value']:.4f} at step {best['step']}; wrote {output}/best, {output}/last, "
              f"{output}/metrics.json, {output}/curves.png", flush=True)
    backend.close()
    return summary


__all__ = ["ModelSpec", "OUTPUT_ITEMS", "STATE_FILE", "TOKENIZER_FILES", "run"]
