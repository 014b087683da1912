"""Pre-train -> fine-tune: do a few CPU minutes of v3 RTD pre-training help SST-2 with 2,000 labels?

  1. `deberta-pretrain --objective rtd --train-tokenizer 8000` of a small DeBERTa-v3
     (examples/configs/small-v3.json, its vocab_size set to the trained vocabulary's) on wikitext-2's
     valid split plus the text (never the labels) of SST-2's 60,614 training phrases, scored on
     wikitext-2's test split, for a time budget: it first trains an 8,000-token SentencePiece vocabulary
     (deberta-v3's layout and special ids) on that text, then pre-trains with it; the discriminator's
     encoder is exported to OUTPUT/pretrain/encoder. `--real-vocab` uses the real 128k-piece deberta-v3
     vocabulary instead (then a few minutes are not enough: docs/pretraining.md says why), and
     `--wikitext-only` leaves the SST-2 text out.
  2. `deberta-train --task classification` on the first N SST-2 training phrases, evaluated on the GLUE
     dev set, twice with the same recipe, number of steps and tokenizer: from that encoder, and from
     scratch (the same config).
  3. A summary table (and OUTPUT/summary.json): held-out pre-training losses, both fine-tuning
     accuracies, and whether pre-training helped.

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
    p.add_argument("--pretrain-minutes", type=float, default=10.0, help="pre-training time budget (10)")
    p.add_argument("--pretrain-steps", type=int, default=900, help="pre-training schedule length; the budget may "
                                                                   "stop it earlier (900: ~7 minutes here)")
    p.add_argument("--finetune-steps", type=int, default=300, help="fine-tuning steps, both runs (300)")
    p.add_argument("--train-examples", type=int, default=2000, help="SST-2 training phrases (2000)")
    p.add_argument("--wikitext-only", action="store_true", help="pre-train on wikitext-2 alone (no SST-2 text)")
    p.add_argument("--vocab-size", type=int, default=8000, help="size of the vocabulary trained on the "
                                                                "pre-training text (8000)")
    p.add_argument("--real-vocab", action="store_true", help="use the real 128k-piece deberta-v3 vocabulary "
                                                             "(data/tokenizers/deberta-v3) instead of training one")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per run (1)")
    p.add_argument("--out", default=str(ROOT / "pretrain_demo_out"), help="output directory (replaced)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from deberta_core import pretrain, train
    from deberta_core.config import load_config

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    common = ["--lr", "1e-3", "--warmup-ratio", "0.06", "--weight-decay", "0.01", "--seed", "0",
              "--threads", str(args.threads), "--no-progress"]
    vocab = ["--tokenizer", str(TOKENIZER)] if args.real_vocab else ["--train-tokenizer", str(args.vocab_size)]
    texts = [] if args.wikitext_only else [str(SST2 / "alps_train.tsv")]  # its `sentence` column only
    status = pretrain.main(["--objective", "rtd", "--framework", args.framework, "--config", str(CONFIG), *vocab,
                            *common, "--train", str(WIKITEXT / "valid.txt"), *texts, "--eval",
                            str(WIKITEXT / "test.txt"), "--batch-size", "16", "--max-steps", str(args.pretrain_steps),
                            "--eval-every", str(max(1, args.pretrain_steps // 9)), "--time-budget", str(args.pretrain_minutes),
                            "--output", str(out / "pretrain")])
    if status:
        return status
    # both fine-tuning runs read the same tokenizer (the encoder's), and from scratch the same config
    tokenizer = TOKENIZER if args.real_vocab else out / "pretrain" / "tokenizer"
    scratch_config = out / "small-v3.json"
    scratch_config.write_text(json.dumps({**json.loads(CONFIG.read_text()),
                                          "vocab_size": load_config(out / "pretrain" / "encoder").vocab_size},
                                         indent=2) + "\n")
    framework = args.finetune_framework or args.framework
    finetune = ["--task", "classification", "--framework", framework, *common, "--tokenizer", str(tokenizer),
                "--train", str(SST2 / "alps_train.tsv"), "--eval", str(SST2 / "glue_sst2_dev.tsv"),
                "--max-train-examples", str(args.train_examples), "--batch-size", "32", "--max-length", "64",
                "--max-steps", str(args.finetune_steps), "--eval-every", str(max(1, args.finetune_steps // 6))]
    runs = {"pre-trained": ["--model", str(out / "pretrain" / "encoder")],
            "from scratch": ["--config", str(scratch_config)]}
    for name, source in runs.items():
        status = train.main([*finetune, *source, "--output", str(out / name.replace(" ", "-"))])
        if status:
            return status

    pre = json.loads((out / "pretrain" / "metrics.json").read_text())
    first, last = pre["evals"][0], pre["evals"][-1]
    summary = {"pretrain": {"framework": args.framework, "steps": pre["steps_done"], "sst2_text": not args.wikitext_only,
                            "vocabulary": "deberta-v3 (128k)" if args.real_vocab else f"trained ({args.vocab_size})",
                            "train_seconds": pre["timing"]["train_seconds"], "first_eval": first, "last_eval": last,
                            "unigram_mlm_loss": pre["baselines"]["unigram"]["mlm_loss"]},
               "finetune": {"framework": framework, "steps": args.finetune_steps,
                            "train_examples": args.train_examples}}
    print(f"\npre-training ({args.framework}, {summary['pretrain']['vocabulary']} vocabulary): "
          f"{pre['steps_done']} steps in {pre['timing']['train_seconds']:.0f} s; "
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
    pre_ft, scratch = summary["finetune"]["pre-trained"], summary["finetune"]["from scratch"]
    gain = 100 * (pre_ft["best_accuracy"] - scratch["best_accuracy"])
    gain_last = 100 * (pre_ft["last_accuracy"] - scratch["last_accuracy"])
    summary["helped"] = gain > 0
    print(f"pre-training {'helped' if gain > 0 else 'did not help'}: {gain:+.1f} points of best dev accuracy, "
          f"{gain_last:+.1f} at the last step" + ("" if gain > 0 else " (docs/pretraining.md discusses why)"))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {out}/summary.json, {out}/pretrain/curves.png, {out}/pre-trained/curves.png, "
          f"{out}/from-scratch/curves.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
