"""The main job: fine-tune DeBERTa-v3 on SST-2 with Keras, convert to PyTorch, check both agree.

  1. Tokenise SST-2 (train: 60,614 phrases; dev: the 872-sentence GLUE dev set) with the real v3
     SentencePiece tokenizer.
  2. Train a TFDebertaV2ForSequenceClassification with `model.fit` for a time budget on the CPU: by
     default a small v3-shaped model from scratch (no hub here), or a checkpoint you name.
  3. Report dev accuracy, save the Keras checkpoint (config.json + tf_model.h5).
  4. Convert it with `deberta-convert --to torch --verify` and show that PyTorch predicts the same labels.
  5. Save a training-curve PNG and print a summary.

Run with `make demo`, or `python -m examples.demo --help` for the options.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
DEFAULT_TOKENIZER = DATA / "tokenizers" / "deberta-v3"
SST2 = DATA / "datasets" / "sst2"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="start from this checkpoint directory (or hub name, if huggingface_hub can "
                                        "reach it) instead of a small model from scratch")
    p.add_argument("--tokenizer", default=str(DEFAULT_TOKENIZER), help="tokenizer directory (default: the real v3 spm)")
    p.add_argument("--out", default=str(ROOT / "demo_out"), help="output directory (replaced)")
    p.add_argument("--minutes", type=float, default=6.0, help="training time budget")
    p.add_argument("--max-steps", type=int, default=1000, help="stop after this many steps even within budget")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def read_sst2(path: Path):
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [r[0].strip() for r in rows], np.array([int(r[1]) for r in rows], dtype=np.int64)


def encode(tokenizer, texts, max_length):
    enc = tokenizer(texts, truncation=True, max_length=max_length, padding="max_length", return_tensors="np")
    return enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)


def length_batches(ids, mask, labels, batch_size, rng):
    """Shuffled batches, each cut to its longest row rounded up to 8 tokens (short phrases train fast)."""
    order = rng.permutation(len(ids))
    for start in range(0, len(order) - batch_size + 1, batch_size):
        idx = order[start:start + batch_size]
        width = int(-(-mask[idx].sum(1).max() // 8) * 8)
        yield {"input_ids": ids[idx, :width], "attention_mask": mask[idx, :width]}, labels[idx]


def small_v3_config():
    """deberta-v3 architecture (log buckets, shared keys, LayerNorm'd relative table) at a CPU size."""
    from deberta_core import DebertaV2Config

    return DebertaV2Config(vocab_size=128100, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=256, embedding_size=64, relative_attention=True, pos_att_type="p2c|c2p",
                           position_buckets=32, max_relative_positions=64, share_att_key=True,
                           norm_rel_ebd="layer_norm", position_biased_input=False, num_labels=2,
                           id2label={0: "negative", 1: "positive"})


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    from tqdm.auto import tqdm

    from deberta_core.tokenization import DebertaV2TokenizerFast
    from deberta_tf import TFDebertaV2ForSequenceClassification

    keras.utils.set_random_seed(args.seed)
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t_start = time.time()

    print(f"[1/5] tokenising SST-2 with {args.tokenizer}")
    tokenizer = DebertaV2TokenizerFast.from_pretrained(args.tokenizer)
    train_x, train_y = read_sst2(SST2 / "alps_train.tsv")
    dev_x, dev_y = read_sst2(SST2 / "glue_sst2_dev.tsv")
    train_ids, train_mask = encode(tokenizer, train_x, args.max_length)
    dev_ids, dev_mask = encode(tokenizer, dev_x, args.max_length)
    print(f"      {len(train_x):,} train phrases, {len(dev_x)} dev sentences, vocabulary {len(tokenizer):,}")

    if args.checkpoint:
        model = TFDebertaV2ForSequenceClassification.from_pretrained(args.checkpoint, num_labels=2,
                                                                     ignore_mismatched_sizes=True)
        source = args.checkpoint
    else:
        model = TFDebertaV2ForSequenceClassification(small_v3_config())
        source = "a small v3-shaped model from scratch"
    print(f"[2/5] training {source} with model.fit for up to {args.minutes:g} min / {args.max_steps} steps")

    rng = np.random.default_rng(args.seed)
    signature = ({"input_ids": tf.TensorSpec([None, None], tf.int64),
                  "attention_mask": tf.TensorSpec([None, None], tf.int64)}, tf.TensorSpec([None], tf.int64))

    def batches():
        while True:
            yield from length_batches(train_ids, train_mask, train_y, args.batch_size, rng)

    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(2)
    # Linear warm-up over the first 5% of steps, then linear decay to zero at max_steps.
    warmup = max(1, args.max_steps // 20)
    schedule = keras.optimizers.schedules.PolynomialDecay(args.learning_rate, args.max_steps - warmup, 0.0)

    class WarmupThenDecay(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            step = keras.ops.cast(step, "float32")
            return keras.ops.where(step < warmup, args.learning_rate * (step + 1) / warmup, schedule(step - warmup))

    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=WarmupThenDecay(), weight_decay=0.01))

    class Budget(keras.callbacks.Callback):
        """Records the loss of every step, shows a progress bar, stops at the time budget.

        Keras reports the running mean of the epoch's losses; with equal-sized batches the loss of step t
        is t * mean_t - (t - 1) * mean_(t-1).
        """

        def __init__(self):
            super().__init__()
            self.losses, self.running, self.bar, self.t0 = [], [], None, None

        def on_train_begin(self, logs=None):
            self.t0 = time.time()
            self.bar = tqdm(total=args.max_steps, unit="step", desc="      fit", mininterval=2.0)

        def on_train_batch_end(self, batch, logs=None):
            mean = float(logs["loss"])
            t = len(self.running) + 1
            self.losses.append(t * mean - (t - 1) * (self.running[-1] if self.running else 0.0))
            self.running.append(mean)
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{np.mean(self.losses[-50:]):.3f}")
            if time.time() - self.t0 > args.minutes * 60:
                self.model.stop_training = True

        def on_train_end(self, logs=None):
            self.bar.close()

    budget = Budget()
    model.fit(dataset, epochs=1, steps_per_epoch=args.max_steps, callbacks=[budget], verbose=0)
    train_seconds = time.time() - budget.t0

    print("[3/5] dev accuracy")
    predicted = model.predict({"input_ids": dev_ids, "attention_mask": dev_mask}, batch_size=128, verbose=0)
    keras_logits = np.asarray(predicted["logits"])
    keras_pred = keras_logits.argmax(-1)
    accuracy = float((keras_pred == dev_y).mean())
    print(f"      Keras: {accuracy:.1%} on {len(dev_y)} GLUE SST-2 dev sentences")
    keras_dir = out / "keras"
    model.save_pretrained(keras_dir)
    tokenizer.save_pretrained(keras_dir)

    print("[4/5] converting to PyTorch with deberta-convert --verify")
    torch_dir = out / "torch"
    result = subprocess.run([sys.executable, "-m", "conversion", str(keras_dir), str(torch_dir), "--to", "torch",
                             "--verify"], capture_output=True, text=True)
    verify_lines = [line for line in result.stdout.splitlines() if line.startswith(("verify", "  logits"))]
    for line in verify_lines:
        print("      " + line.strip())
    if result.returncode != 0:
        print(result.stdout + result.stderr, file=sys.stderr)
        return result.returncode

    import torch

    from deberta_torch import DebertaV2ForSequenceClassification

    torch_model = DebertaV2ForSequenceClassification.from_pretrained(torch_dir, strict=True)
    with torch.no_grad():
        torch_logits = torch_model(torch.from_numpy(dev_ids), attention_mask=torch.from_numpy(dev_mask)).logits.numpy()
    torch_pred = torch_logits.argmax(-1)
    agree = int((torch_pred == keras_pred).sum())
    max_diff = float(np.abs(torch_logits - keras_logits).max())

    print("[5/5] training curve")
    curve = out / "training_curve.png"
    plot_curve(budget.losses, curve, accuracy)

    summary = {
        "model": source, "train_steps": len(budget.losses), "train_seconds": round(train_seconds, 1),
        "final_train_loss_50": round(float(np.mean(budget.losses[-50:])), 4), "dev_accuracy": round(accuracy, 4),
        "torch_keras_same_label": f"{agree}/{len(dev_y)}", "max_logit_diff": max_diff,
        "total_seconds": round(time.time() - t_start, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\nsummary")
    for key, value in summary.items():
        print(f"  {key:<24} {value}")
    print(f"  {'outputs':<24} {keras_dir}, {torch_dir}, {curve}")
    return 0 if agree == len(dev_y) else 1


def plot_curve(losses, path, accuracy):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, len(losses) + 1)
    window = max(1, min(25, len(losses) // 10))
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, losses, color="#bbbbbb", lw=0.8, label="loss per step")
    ax.plot(steps[window - 1:], smooth, color="#1f5fa8", lw=2, label=f"{window}-step mean")
    ax.axhline(np.log(2), color="#aa3333", ls="--", lw=1, label="chance (ln 2)")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy")
    ax.set_title(f"SST-2 fine-tuning with Keras model.fit (dev accuracy {accuracy:.1%})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
