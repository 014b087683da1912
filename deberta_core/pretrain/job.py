"""deberta-pretrain's job for the training driver (deberta_core.train.job describes the surface)."""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ..config import DebertaV2Config, load_config
from ..losses import IGNORE_INDEX
from ..pipelines.loading import load_tokenizer, model_class
from ..pretraining import ORIGINAL_RTD_MASKING, MaskingRule, check_pair, read_pretraining_settings
from ..train.job import ModelSpec, check_vocabulary, copy_tokenizer
from ..train.loop import swap_in
from .args import RESUME_FIXED
from .data import EVAL_MASKS, MaskedBlocks, Masker, read_lines, text_blocks, unigram_loss

# What predict returns for the held-out score, by objective.
EVAL_OUTPUTS = {"mlm": ("loss",),
                "rtd": ("mlm_loss", "rtd_loss", "generator_logits", "discriminator_logits", "rtd_labels")}
ENCODER = "encoder"


def train_run_tokenizer(args) -> float:
    """--train-tokenizer: the vocabulary trained on the --train text, written to args.tokenizer
    (OUTPUT/tokenizer); returns the seconds it took. Every process of a torchrun job trains it (one
    thread, a fixed seed: the same bytes) in its own folder and moves the files in one by one (each
    move atomic), so none reads a half-written file and all tokenize alike."""
    from ..tokenization.spm_train import train_spm_tokenizer

    started = time.time()
    target = Path(args.tokenizer)
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    train_spm_tokenizer(read_lines(args.train, args.text_column), tmp, args.train_tokenizer, seed=args.seed)
    target.mkdir(parents=True, exist_ok=True)
    for path in tmp.iterdir():
        os.replace(path, target / path.name)
    shutil.rmtree(tmp, ignore_errors=True)
    return time.time() - started


def generator_config_for(discriminator: DebertaV2Config) -> DebertaV2Config:
    """The DeBERTa-v3 recipe's generator: the discriminator's width, half its layers, the original's
    MLM head layout (legacy=False), with the enhanced mask decoder where the encoder allows it (no
    absolute positions in the input, embedding width = hidden width)."""
    emd = not discriminator.position_biased_input and discriminator.embedding_dim == discriminator.hidden_size
    return discriminator.copy(num_hidden_layers=max(1, discriminator.num_hidden_layers // 2), legacy=False,
                              use_emd=emd)


class Pretraining:
    """Masked-LM or RTD pre-training on packed text blocks, scored on held-out blocks masked once."""

    program = "deberta-pretrain"
    kind = "objective"
    higher_is_better = False
    percent_metrics = False
    resume_fixed = RESUME_FIXED
    outputs = ("best", "last", ENCODER, "metrics.json", "curves.png")

    def __init__(self, args, world_size: int):
        self.args = args
        self.name = args.objective
        rtd = args.objective == "rtd"
        self.tokenizer_seconds = None
        if args.train_tokenizer is not None and not args.resume:
            self.tokenizer_seconds = train_run_tokenizer(args)
        tokenizer = load_tokenizer(args.tokenizer)
        source = Path(args.output) / "last" if args.resume else (Path(args.model) if args.model else None)
        self.source = source
        self.settings = {"embedding_sharing": args.embedding_sharing, "rtd_lambda": args.rtd_lambda} if rtd else {}
        if rtd and source is not None:
            self.settings = {k: v for k, v in read_pretraining_settings(source).items() if k in self.settings}
            config = load_config(source / "discriminator")
            self.generator_config = load_config(source / "generator")
        else:
            config = load_config(source if source is not None else args.config)
            if args.train_tokenizer is not None and source is None:  # one embedding row per trained id
                config = config.copy(vocab_size=args.train_tokenizer)
            self.generator_config = None
            if rtd:
                self.generator_config = (load_config(args.generator_config) if args.generator_config
                                         else generator_config_for(config))
                if args.train_tokenizer is not None and args.generator_config:
                    self.generator_config = self.generator_config.copy(vocab_size=args.train_tokenizer)
                check_pair(self.generator_config, config, args.embedding_sharing)
        if config.model_type != "deberta-v2" and rtd:
            raise ValueError(f"--objective rtd pre-trains DeBERTa-v2/v3 models; the config is {config.model_type!r}")
        check_vocabulary(tokenizer, config, args.tokenizer)
        if config.position_biased_input and args.block_size > config.max_position_embeddings:
            raise ValueError(f"--block-size {args.block_size} exceeds the model's max_position_embeddings "
                             f"({config.max_position_embeddings})")
        self.config = config
        progress = not args.no_progress
        self.train = text_blocks(tokenizer, args.train, args.block_size, max_blocks=args.max_train_blocks,
                                 progress=progress, text_column=args.text_column)
        eval_blocks = text_blocks(tokenizer, [args.eval], args.block_size, max_blocks=args.max_eval_blocks,
                                  progress=progress, text_column=args.text_column)
        # rtd: the original's generator input is all [MASK] at the targets; mlm: BERT's 80/10/10
        base = ORIGINAL_RTD_MASKING if rtd else MaskingRule()
        rule = MaskingRule(mlm_probability=args.mlm_probability, mask_replace_prob=base.mask_replace_prob,
                           random_replace_prob=base.random_replace_prob, whole_word=args.whole_word_masking)
        masker = Masker.for_tokenizer(tokenizer, rule)
        self.eval = masker(eval_blocks, np.random.default_rng([args.seed, EVAL_MASKS]))
        self.plan = MaskedBlocks(self.train, masker, args.batch_size, args.grad_accum, world_size, args.seed)
        # best/ by the held-out MLM loss: the RTD loss rises as the generator improves (its samples get
        # harder to detect), so the joint loss would pick an early, under-trained checkpoint
        self.primary_metric = "mlm_loss"
        self.panel_metrics = ["mlm_loss", "rtd_loss"] if rtd else ["mlm_loss"]
        self.baselines = {"unigram": {"mlm_loss": unigram_loss(self.train["input_ids"], self.eval["labels"],
                                                               len(tokenizer))}}
        self.title = f"{', '.join(Path(p).name for p in args.train)} -> {Path(args.eval).name}"

    def spec(self) -> ModelSpec:
        if self.name == "rtd":
            return ModelSpec("rtd_pretraining", self.config, self.source, generator_config=self.generator_config,
                             settings=self.settings)
        return ModelSpec("masked_lm", self.config, self.source)

    def step_batches(self, step: int):
        return self.plan.step_batches(step)

    def evaluate(self, predict) -> dict[str, float]:
        """Held-out scores: loss (mlm: the MLM loss; rtd: mlm_loss + rtd_lambda * rtd_loss), each a mean
        over the whole eval set (MLM over its targets, RTD over its tokens), and for rtd the
        generator's accuracy at the targets, the discriminator's accuracy over the tokens and on the
        replaced ones, and the share of targets the generator replaced."""
        size = self.args.eval_batch_size
        names = EVAL_OUTPUTS[self.name]
        sums = dict.fromkeys(("mlm", "rtd", "targets", "tokens", "generator_right", "rtd_right", "replaced",
                              "replaced_found"), 0.0)
        for start in range(0, len(self.eval["input_ids"]), size):
            batch = {k: v[start:start + size] for k, v in self.eval.items()}
            out = predict(batch, names)
            targets = batch["labels"] != IGNORE_INDEX
            tokens = batch["attention_mask"] != 0
            n_targets, n_tokens = int(targets.sum()), int(tokens.sum())
            sums["targets"] += n_targets
            sums["tokens"] += n_tokens
            if self.name == "mlm":
                sums["mlm"] += float(out["loss"]) * n_targets
                continue
            sums["mlm"] += float(out["mlm_loss"]) * n_targets
            sums["rtd"] += float(out["rtd_loss"]) * n_tokens
            sums["generator_right"] += float((out["generator_logits"].argmax(-1) == batch["labels"][targets]).sum())
            labels = out["rtd_labels"] > 0.5
            said = out["discriminator_logits"] > 0.0
            sums["rtd_right"] += float(((said == labels) & tokens).sum())
            sums["replaced"] += float(labels.sum())
            sums["replaced_found"] += float((said & labels).sum())
        mlm = sums["mlm"] / max(sums["targets"], 1.0)
        if self.name == "mlm":
            return {"loss": mlm, "mlm_loss": mlm, "perplexity": math.exp(min(mlm, 50.0))}
        rtd = sums["rtd"] / max(sums["tokens"], 1.0)
        return {"loss": mlm + self.settings["rtd_lambda"] * rtd, "mlm_loss": mlm, "rtd_loss": rtd,
                "generator_accuracy": sums["generator_right"] / max(sums["targets"], 1.0),
                "rtd_accuracy": sums["rtd_right"] / max(sums["tokens"], 1.0),
                "replaced_recall": sums["replaced_found"] / max(sums["replaced"], 1.0),
                "replaced_share": sums["replaced"] / max(sums["targets"], 1.0)}

    def describe(self) -> str:
        return (f"{len(self.train['input_ids'])} training blocks of {self.args.block_size} tokens, "
                f"{len(self.eval['input_ids'])} held-out blocks")

    def data_report(self) -> dict:
        return {"train_blocks": len(self.train["input_ids"]), "eval_blocks": len(self.eval["input_ids"]),
                "block_size": self.args.block_size,
                "train_tokens": int(self.train["attention_mask"].sum()),
                "eval_targets": int((self.eval["labels"] != IGNORE_INDEX).sum()),
                "steps_per_epoch": self.plan.steps_per_epoch, "vocab_size": self.config.vocab_size,
                **({"tokenizer_trained": {"vocab_size": self.args.train_tokenizer,
                                          "seconds": round(self.tokenizer_seconds, 2)}}
                   if self.tokenizer_seconds is not None else {})}

    def saved(self, directory: Path) -> None:
        copy_tokenizer(Path(self.args.tokenizer), directory)

    def finish(self, output: Path, backend) -> None:
        export_encoder(output / "last", self.name, backend.framework, Path(self.args.tokenizer), output / ENCODER)


def export_encoder(checkpoint: Path, objective: str, framework: str, tokenizer: Path, target: Path) -> Path:
    """A run's checkpoint (rtd: its discriminator, embeddings folded) as a plain DebertaV2Model in the
    framework's layout, with the tokenizer files: what fine-tuning starts from. Written atomically."""
    source = checkpoint / "discriminator" if objective == "rtd" else checkpoint
    cls = model_class(load_config(source), "base", framework)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    cls.from_pretrained(source).save_pretrained(tmp)
    copy_tokenizer(tokenizer, tmp)
    swap_in(tmp, target)
    return target


__all__ = ["EVAL_OUTPUTS", "Pretraining", "export_encoder", "generator_config_for", "train_run_tokenizer"]
