"""The framework-neutral training driver of deberta-train and deberta-pretrain.

Everything but the forward/backward/update and the job's own data and scores lives here: the
learning-rate schedule, when to evaluate and stop, best-checkpoint bookkeeping, OUTPUT/metrics.json,
OUTPUT/curves.png and the resume state. A job (deberta_core.train.job: fine-tuning; deberta_core.pretrain:
pre-training) says what is trained on what. A framework contributes a module (``deberta_torch.train``,
``deberta_tf.train``) with

* ``setup(args) -> Distributed``: start the processes' group / the replicas (rank, world_size);
* ``Backend(args, spec, dist)`` with ``train_step(micro_batches, weights, lr, step) -> loss``,
  ``predict(batch, names) -> outputs``, ``save_pretrained(dir)``, ``save_state(dir)``, ``load_state(dir)``,
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
from pathlib import Path

from .args import check_resume
from .job import FineTuning
from .report import plot_curves, write_json
from .schedule import learning_rate, warmup_steps_for

logger = logging.getLogger("deberta_core.train")

FRAMEWORK_MODULES = {"pt": "deberta_torch.train", "tf": "deberta_tf.train"}
STATE_FILE = "trainer_state.json"
# What a run writes into OUTPUT (removed by --overwrite); "encoder" is deberta-pretrain's export.
OUTPUT_ITEMS = ("last", "best", "encoder", "metrics.json", "curves.png", ".last.tmp", ".best.tmp", ".encoder.tmp",
                ".last.old", ".best.old", ".encoder.old")


def _recorded_args(args) -> dict:
    return {k: v for k, v in vars(args).items()}


def swap_in(tmp: Path, final: Path) -> None:
    """Replace ``final`` by the finished directory ``tmp`` (the old one is removed only afterwards)."""
    old = final.with_name("." + final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _framework(args):
    return importlib.import_module(FRAMEWORK_MODULES[args.framework])


def run(args, make_job=None) -> dict:
    """Train as ``args`` (checked by :func:`deberta_core.train.args.parse_args`) says; return the summary.

    make_job(args, world_size): what is trained on what data and how it is scored (default
    :class:`deberta_core.train.job.FineTuning`; ``deberta-pretrain`` gives its own).
    """
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
    job = (make_job or FineTuning)(args, dist.world_size)
    plan = job.plan
    total_steps = args.max_steps if args.max_steps is not None else max(1, math.ceil(args.epochs * plan.steps_per_epoch))
    warmup = warmup_steps_for(total_steps, args.warmup_steps, args.warmup_ratio)
    eval_every = args.eval_every or plan.steps_per_epoch
    reference = job.baselines

    # ---------------------------------------------------------------- state
    state = {"step": 0, "evals": [], "train_log": [], "best": None, "train_seconds": 0.0, "eval_seconds": 0.0,
             "invocations": 0, "args": _recorded_args(args)}
    if args.resume:
        from ..io import read_json_object

        saved = read_json_object(last_dir / STATE_FILE)
        check_resume(args, saved["args"], job.resume_fixed)
        state.update({k: saved[k] for k in ("step", "evals", "train_log", "best", "train_seconds", "eval_seconds",
                                            "invocations")})
        state["args"] = {**saved["args"], **{k: v for k, v in _recorded_args(args).items()}}
        if state["step"] >= total_steps:
            raise ValueError(f"--resume: the run in {args.output} already made {state['step']} steps, the whole "
                             f"run's {total_steps}; raise --max-steps or --epochs to train on")
    state["invocations"] += 1
    data_seconds = time.time() - started

    backend = framework.Backend(args, job.spec(), dist)
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
    say(f"{job.program}: {job.name} with {backend.description}; {job.describe()}; "
        f"{plan.steps_per_epoch} steps/epoch, {total_steps} steps, warm-up {warmup}, eval every {eval_every}"
        + (f"; resuming at step {start_step}" if args.resume else ""))

    def record_eval(step: int, stop_reason: str | None) -> None:
        t_eval = time.time()
        metrics = job.evaluate(backend.predict) if main else None
        previous = state["evals"][-1]["step"] if state["evals"] else 0
        recent = [r["loss"] for r in state["train_log"] if r["step"] > previous]
        if main:
            entry = {"step": step, "epoch": round(step / plan.steps_per_epoch, 4),
                     "train_loss": sum(recent) / len(recent) if recent else None,
                     "learning_rate": state["train_log"][-1]["lr"] if state["train_log"] else None,
                     "metrics": metrics, "train_seconds": round(state["train_seconds"] + (time.time() - t_loop), 2)}
            state["evals"].append(entry)
            value = metrics[job.primary_metric]
            improved = state["best"] is None or (value > state["best"]["value"] if job.higher_is_better
                                                 else value < state["best"]["value"])
            if improved:
                state["best"] = {"step": step, "metric": job.primary_metric, "value": value}
                tmp = output / ".best.tmp"
                shutil.rmtree(tmp, ignore_errors=True)
                backend.save_pretrained(tmp)
                job.saved(tmp)
                write_json(tmp / "eval_results.json", {"step": step, "metrics": metrics})
                swap_in(tmp, output / "best")
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
        job.saved(tmp)
        backend.save_state(tmp)
        write_json(tmp / STATE_FILE, snapshot)
        swap_in(tmp, last_dir)
        write_report(snapshot, stop_reason)

    def write_report(snapshot: dict, stop_reason: str | None) -> None:
        train_seconds = snapshot["train_seconds"]
        steps_done = snapshot["step"]
        report = {
            job.kind: job.name, "framework": args.framework, "backend": backend.description,
            "world_size": dist.world_size, "primary_metric": job.primary_metric, "best": snapshot["best"],
            "evals": snapshot["evals"], "baselines": reference, "data": job.data_report(),
            "schedule": {"total_steps": total_steps, "warmup_steps": warmup, "schedule": args.schedule,
                         "peak_lr": args.lr},
            "timing": {"data_prep_seconds": round(data_seconds, 2), "train_seconds": round(train_seconds, 2),
                       "eval_seconds": round(snapshot["eval_seconds"], 2),
                       "steps_per_second": round((steps_done - start_step) / max(1e-9, time.time() - t_loop), 3),
                       "wall_seconds_this_invocation": round(time.time() - started, 2),
                       "invocations": snapshot["invocations"]},
            "stop_reason": stop_reason, "steps_done": steps_done,
            "args": snapshot["args"], "model_config": job.config.to_dict(),
            "train_log": snapshot["train_log"],
        }
        write_json(output / "metrics.json", report)
        plot_curves(output / "curves.png", snapshot["train_log"], snapshot["evals"], task=job.name,
                    primary=job.primary_metric, baselines=reference, title=f"{job.name} / {args.framework}: {job.title}",
                    percent=job.percent_metrics, panel=job.panel_metrics)

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
            batches, weights = job.step_batches(step)
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
        job.finish(output, backend)
        best = state["best"]
        print(f"{job.program}: stopped after step {state['step']} ({stop_reason}); best {best['metric']} "
              f"{best['value']:.4f} at step {best['step']}; wrote {', '.join(f'{output}/{n}' for n in job.outputs)}",
              flush=True)
    backend.close()
    return summary


__all__ = ["OUTPUT_ITEMS", "STATE_FILE", "run", "swap_in"]
