"""Command-line arguments of deberta-pretrain, and the checks that turn bad ones into clear errors."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..pretraining import EMBEDDING_SHARING, RTD_LAMBDA
from ..tokenization.spm_train import MIN_VOCAB_SIZE
from ..train.args import (add_training_arguments, check_positive, check_tokenizer, check_training_args,
                          checked_config, fail)
from ..train.optim import PRETRAINING_EPSILON

DESCRIPTION = """Pre-train DeBERTa on text files: --objective mlm (a masked LM; with use_emd in the config, the
enhanced mask decoder) or --objective rtd (DeBERTa-v3: a generator masked LM and a replaced-token
detection discriminator, embeddings shared by GDES by default).

Lines of the text files are tokenized, concatenated and packed into blocks of --block-size tokens
([CLS] ... [SEP]); every step masks its blocks afresh (15% of the tokens: 80% [MASK], 10% random, 10%
kept for mlm; all [MASK] for rtd's generator, as the original). Training, checkpoints, resume, bf16,
torchrun / MirroredStrategy and the report are deberta-train's. OUTPUT/encoder is the run's final
encoder (the discriminator's for rtd) as a plain DebertaV2Model with the tokenizer, for fine-tuning with
deberta-train --model OUTPUT/encoder. --train-tokenizer N first trains an N-token SentencePiece vocabulary
(deberta-v3's layout and special ids) on the --train text, saves it in OUTPUT/tokenizer and pre-trains
with it (the config's vocab_size set to N).
"""

TOKENIZER_DIR = "tokenizer"  # OUTPUT/tokenizer: the vocabulary --train-tokenizer trains

# Arguments a resumed run must repeat unchanged.
RESUME_FIXED = ("objective", "framework", "train", "eval", "text_column", "block_size", "mlm_probability", "whole_word_masking",
                "embedding_sharing", "rtd_lambda", "batch_size", "grad_accum", "lr", "weight_decay", "seed",
                "max_train_blocks", "max_eval_blocks", "bf16", "schedule", "warmup_ratio", "warmup_steps",
                "max_grad_norm", "adam_epsilon", "train_tokenizer")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deberta-pretrain", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("objective and model")
    g.add_argument("--objective", required=True, choices=("mlm", "rtd"))
    g.add_argument("--framework", default="pt", choices=("pt", "tf"), help="pt: PyTorch (default), tf: Keras")
    source = g.add_mutually_exclusive_group()
    source.add_argument("--config", help="config.json of the model (rtd: of the discriminator) to pre-train from "
                                         "scratch")
    source.add_argument("--model", help="continue pre-training a checkpoint: a masked-LM directory (mlm) or a "
                                        "pre-training pair's (rtd: generator/, discriminator/, rtd_pretraining.json)")
    g.add_argument("--generator-config", help="rtd: config.json of the generator (default: the discriminator's "
                                              "with half its layers, the DeBERTa-v3 recipe)")
    g.add_argument("--embedding-sharing", choices=EMBEDDING_SHARING, default="gdes",
                   help="rtd: none, es (shared tables) or gdes (gradient-disentangled, default)")
    g.add_argument("--rtd-lambda", type=float, default=RTD_LAMBDA, help=f"rtd: weight of the RTD loss ({RTD_LAMBDA:g})")
    g.add_argument("--tokenizer", help="tokenizer directory (default: the --model directory)")
    g.add_argument("--train-tokenizer", type=int, metavar="VOCAB_SIZE",
                   help="train a SentencePiece unigram vocabulary of VOCAB_SIZE ids ([MASK] included; deberta-v3's "
                        "special tokens and ids) on the --train text, save it in OUTPUT/tokenizer and pre-train "
                        "with it; the config's vocab_size is set to VOCAB_SIZE (with --config, instead of "
                        "--tokenizer)")
    g = p.add_argument_group("data")
    g.add_argument("--train", required=True, nargs="+", help="text file(s): one passage per line, blank lines "
                   "skipped; or .tsv/.csv/.jsonl, whose --text-column is read (labels never); .gz/.bz2 decompressed")
    g.add_argument("--eval", required=True, help="held-out text file (same formats)")
    g.add_argument("--text-column", help="column of .tsv/.csv/.jsonl files (default: text, else sentence)")
    g.add_argument("--block-size", type=int, default=128, help="tokens per packed block, [CLS] and [SEP] included (128)")
    g.add_argument("--mlm-probability", type=float, default=0.15, help="share of the tokens masked (0.15)")
    g.add_argument("--whole-word-masking", action="store_true", help="mask whole words (all their pieces)")
    g.add_argument("--max-train-blocks", type=int, help="use only the first N training blocks")
    g.add_argument("--max-eval-blocks", type=int, default=64, help="held-out blocks scored at each evaluation (64)")
    # epsilon 1e-6, the original's: at 1e-8 Adam turns the tiny gradients that the tied output layer
    # sends every unseen token's row into full-size steps, all in one direction (their embeddings collapse)
    add_training_arguments(p, lr=5e-4, adam_epsilon=PRETRAINING_EPSILON)
    p.set_defaults(eval_batch_size=16)
    return p


def check_args(args: argparse.Namespace) -> argparse.Namespace:
    """Fill defaults that depend on other arguments and reject bad combinations (ArgumentError)."""
    if args.model is None and args.config is None:
        fail("give --config JSON (pre-train from scratch) or --model DIR (continue a checkpoint)")
    if args.config is not None:
        args.config = checked_config(args.config, "--config")
    if args.model is not None:
        model = Path(args.model)
        wanted = "rtd_pretraining.json" if args.objective == "rtd" else "config.json"
        if not (model / wanted).is_file():
            fail(f"--model {args.model}: no {wanted} in it (--objective {args.objective} continues "
                  + ("a pre-training pair's directory)" if args.objective == "rtd" else "a masked-LM checkpoint)"))
    if args.generator_config is not None:
        if args.objective != "rtd" or args.model is not None:
            fail("--generator-config is for --objective rtd from --config")
        args.generator_config = checked_config(args.generator_config, "--generator-config")
    if args.objective != "rtd" and (args.embedding_sharing != "gdes" or args.rtd_lambda != RTD_LAMBDA):
        fail("--embedding-sharing and --rtd-lambda are for --objective rtd")
    if args.train_tokenizer is not None:
        if args.model is not None:
            fail("--train-tokenizer is for pre-training from --config (a --model keeps its own vocabulary)")
        if args.tokenizer is not None:
            fail("--train-tokenizer makes the tokenizer (OUTPUT/tokenizer); drop --tokenizer")
        if args.train_tokenizer < MIN_VOCAB_SIZE:
            fail(f"--train-tokenizer must be >= {MIN_VOCAB_SIZE} (4 special pieces, 256 byte pieces, [MASK] and "
                 f"some text pieces), got {args.train_tokenizer}")
        args.tokenizer = str(Path(args.output) / TOKENIZER_DIR)
        if args.resume and not (Path(args.tokenizer) / "spm.model").is_file():
            fail(f"--resume with --train-tokenizer: no trained vocabulary in {args.tokenizer}")
    else:
        check_tokenizer(args)
    for path in [*args.train, args.eval]:
        if not Path(path).is_file():
            fail(f"{path}: no such file")
    check_positive(args, "max_train_blocks", "max_eval_blocks")
    if args.block_size < 8:
        fail(f"--block-size must be >= 8, got {args.block_size}")
    if not 0.0 < args.mlm_probability < 1.0:
        fail(f"--mlm-probability must be in (0, 1), got {args.mlm_probability}")
    if not args.rtd_lambda >= 0:
        fail(f"--rtd-lambda must be >= 0, got {args.rtd_lambda}")
    if args.objective == "rtd" and args.framework == "tf" and os.environ.get("KERAS_BACKEND") == "jax":
        fail("--objective rtd projects a dynamic number of masked rows, which jax.jit cannot compile; use "
              "Keras' TensorFlow backend (or --objective mlm on JAX)")
    return check_training_args(args)


def parse_args(argv=None) -> argparse.Namespace:
    return check_args(build_parser().parse_args(argv))


__all__ = ["DESCRIPTION", "RESUME_FIXED", "TOKENIZER_DIR", "build_parser", "check_args", "parse_args"]
