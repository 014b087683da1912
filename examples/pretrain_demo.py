"""Pre-train -> fine-tune: do a few CPU minutes of v3 RTD pre-training help SST-2 with 2,000 labels?

  1. `deberta-pretrain --objective rtd` of a small DeBERTa-v3 (examples/configs/small-v3.json, the real
     v3 tokenizer) on wikitext-2's valid split plus the text (never the labels) of SST-2's 60,614
     training phrases, scored on wikitext-2's test split, for a time budget; the discriminator's encoder
     is exported to OUTPUT/pretrain/encoder. `--wikitext-only` leaves the SST-2 text out: then half the
     SST-2 token types are never seen and pre-training hurts (docs/pretraining.md says why).
  2. `deberta-train --task classification` on the first N SST-2 training phrases, evaluated on the GLUE
     dev set, twice with the same recipe and number of steps: from that encoder, and from scratch.
  3. A summary table (and OUTPUT/summary.json): held-out pre-training losses, both fine-tuning accuracies.

Run with `make pretrain-demo`, or `python -m examples.pretrain_demo --help` for the options.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
CONFIG = ROOT / "examples" / "configs" / "small-v3.json"
TOKENIZER = DATA / "tokenizers" / "deberta-v3"
WIKITEXT = DATA / "datasets" / "wikitext-2-valid-test"
SST2 = DATA / "datasets" / "sst2"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--framework", default="pt", choices=("pt", "tf"), help="pre-training framework (pt)")
    p.add_argument("--finetune-framework", choices=("pt", "tf"), help="fine-tuning framework (default: the same)")
    p.add_argument("--pretrain-minutes", type=float, default=5.0, help="pre-training time budget (5)")
    p.add_argument("--pretrain-steps", type=int, default=400, help="pre-training schedule length; the budget may "
                                                                   "stop it earlier (400)")
    p.add_argument("--finetune-steps", type=int, default=300, help="fine-tuning steps, both runs (300)")
    p.add_argument("--train-examples", type=int, default=2000, help="SST-2 training phrases (2000)")
    p.add_argument("--wikitext-only", action="store_true", help="pre-train on wikitext-2 alone (no SST-2 text)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per run (1)")
    p.add_argument("--out", default=str(ROOT / "pretrain_demo_out"), help="output directory (replaced)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from deberta_core import pretrain, train

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    common = ["--tokenizer", str(TOKENIZER), "--lr", "1e-3", "--warmup-ratio", "0.06", "--weight-decay", "0.01",
              "--seed", "0", "--threads", str(args.threads), "--no-progress"]
    texts = [] if args.wikitext_only else [str(SST2 / "alps_train.tsv")]  # its `sentence` column only
    status = pretrain.main(["--objective", "rtd", "--framework", args.framework, "--config", str(CONFIG), *common,
                            "--train", str(WIKITEXT / "valid.txt"), *texts, "--eval", str(WIKITEXT / "test.txt"),
                            "--batch-size", "16", "--max-steps", str(args.pretrain_steps), "--eval-every", "25",
                            "--time-budget", str(args.pretrain_minutes), "--output", str(out / "pretrain")])
    if status:
        return status
    framework = args.finetune_framework or args.framework
    finetune = ["--task", "classification", "--framework", framework, *common,
                "--train", str(SST2 / "alps_train.tsv"), "--eval", str(SST2 / "glue_sst2_dev.tsv"),
                "--max-train-examples", str(args.train_examples), "--batch-size", "32", "--max-length", "64",
                "--max-steps", str(args.finetune_steps), "--eval-every", str(max(1, args.finetune_steps // 6))]
    runs = {"pre-trained": ["--model", str(out / "pretrain" / "encoder")], "from scratch": ["--config", str(CONFIG)]}
    for name, source in runs.items():
        status = train.main([*finetune, *source, "--output", str(out / name.replace(" ", "-"))])
        if status:
            return status

    pre = json.loads((out / "pretrain" / "metrics.json").read_text())
    first, last = pre["evals"][0], pre["evals"][-1]
    summary = {"pretrain": {"framework": args.framework, "steps": pre["steps_done"], "sst2_text": not args.wikitext_only,
                            "train_seconds": pre["timing"]["train_seconds"], "first_eval": first, "last_eval": last,
                            "unigram_mlm_loss": pre["baselines"]["unigram"]["mlm_loss"]},
               "finetune": {"framework": framework, "steps": args.finetune_steps,
                            "train_examples": args.train_examples}}
    print(f"\npre-training ({args.framework}): {pre['steps_done']} steps in {pre['timing']['train_seconds']:.0f} s; "
          f"held-out MLM loss {first['metrics']['mlm_loss']:.3f} (step {first['step']}) -> "
          f"{last['metrics']['mlm_loss']:.3f} (step {last['step']}), unigram baseline "
          f"{pre['baselines']['unigram']['mlm_loss']:.3f}; RTD loss {first['metrics']['rtd_loss']:.3f} -> "
          f"{last['metrics']['rtd_loss']:.3f}")
    print(f"SST-2 ({framework}, first {args.train_examples} phrases, {args.finetune_steps} steps) -> GLUE dev:")
    for name in runs:
        report = json.loads((out / name.replace(" ", "-") / "metrics.json").read_text())
        accuracy = [e["metrics"]["accuracy"] for e in report["evals"]]
        summary["finetune"][name] = {"best_accuracy": max(accuracy), "last_accuracy": accuracy[-1],
                                     "curve": accuracy, "train_seconds": report["timing"]["train_seconds"]}
        print(f"  {name:>12}: best accuracy {100 * max(accuracy):.1f}, last {100 * accuracy[-1]:.1f} "
              f"(curve {' '.join(f'{100 * a:.1f}' for a in accuracy)})")
    gain = 100 * (summary["finetune"]["pre-trained"]["best_accuracy"] - summary["finetune"]["from scratch"]["best_accuracy"])
    print(f"pre-training {'helped' if gain > 0 else 'did not help'}: {gain:+.1f} points of best dev accuracy "
          "(docs/pretraining.md: why a few CPU minutes are not enough)")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out}/summary.json, {out}/pretrain/curves.png, {out}/pre-trained/curves.png, "
          f"{out}/from-scratch/curves.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
