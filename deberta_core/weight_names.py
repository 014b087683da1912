"""Single source of truth for checkpoint tensor names, shapes and layouts (SPEC §4).

Canonical keys are the Hugging Face PyTorch state-dict keys, because that is what public checkpoints
ship. Each key carries a layout kind so other frameworks can derive their own variable and transpose:

  linear     weight (out, in)            conv1d   weight (out, in / groups, k)
  embedding  weight (rows, width)        vector   a 1-D parameter (biases, LayerNorm, q_bias, ...)

Loading rules shared by every reader live here too: the optional `deberta.` prefix, legacy
`LayerNorm.gamma/beta` names, which keys the reference ignores, and which masked-LM head layout a
checkpoint holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .config import BaseDebertaConfig

BASE_PREFIX = "deberta."

HEADS = ("masked_lm", "sequence_classification", "token_classification", "question_answering",
         "multiple_choice", "replaced_token_detection")

# Keys present in published checkpoints that the reference never loads (SPEC §4.2): the absolute
# position table when the model adds no absolute positions, the v3 replaced-token-detection head (except
# in the class that is that head, DebertaV2ForReplacedTokenDetection), and a non-persistent buffer
# older saves carried.
_ALWAYS_IGNORED = (re.compile(r"(^|\.)mask_predictions\."), re.compile(r"(^|\.)embeddings\.position_ids$"))
_POSITION_TABLE = re.compile(r"(^|\.)embeddings\.position_embeddings\.weight$")
# Tied copies of the word embeddings and the LM bias that some saves still contain.
_TIED_COPIES = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")

LEGACY_MLM = "cls.predictions."
ORIGINAL_MLM = "lm_predictions.lm_head."

# Parts of a checkpoint that a destination may leave out on purpose: the task heads of other classes and
# the pre-training heads. Any other tensor the destination does not use means the config was misread.
_PARTS = (("cls.", "the masked-LM head"), ("lm_predictions.", "the masked-LM head"),
          ("mask_predictions.", "the replaced-token-detection head"), ("pooler.", "the classification pooler"),
          ("classifier.", "the classification head"), ("qa_outputs.", "the question-answering head"))
_BASE_PARTS = ("embeddings.", "encoder.")


def part_of(key: str) -> str | None:
    """The checkpoint part a tensor belongs to when it is a head a model may leave out, else None."""
    key = normalize_key(key).removeprefix(BASE_PREFIX)
    return next((name for prefix, name in _PARTS if key.startswith(prefix)), None)


def is_base_model_key(key: str) -> bool:
    """Whether `key` names a tensor of the encoder itself (embeddings or transformer layers)."""
    return normalize_key(key).removeprefix(BASE_PREFIX).startswith(_BASE_PARTS)


def unused_error(keys: list[str], model_name: str, hint: str = "") -> ValueError:
    """The error for checkpoint tensors that no part of the model uses, yet that belong to no other head."""
    return ValueError(
        f"{len(keys)} checkpoint tensor(s) would be dropped that {model_name} should use: {keys}. The config "
        "does not describe these weights (check relative_attention, pos_att_type, share_att_key, norm_rel_ebd, "
        "conv_kernel_size, position_biased_input, embedding_size)" + (f"; {hint}" if hint else ""))


@dataclass(frozen=True)
class WeightSpec:
    shape: tuple[int, ...]
    kind: str  # linear | embedding | conv1d | vector


def _linear(out_dim, in_dim, bias=True, prefix=""):
    specs = {f"{prefix}weight": WeightSpec((out_dim, in_dim), "linear")}
    if bias:
        specs[f"{prefix}bias"] = WeightSpec((out_dim,), "vector")
    return specs


def _norm(dim, prefix=""):
    return {f"{prefix}weight": WeightSpec((dim,), "vector"), f"{prefix}bias": WeightSpec((dim,), "vector")}


def _prefixed(prefix, specs):
    return {prefix + k: v for k, v in specs.items()}


def base_model_weights(config: BaseDebertaConfig) -> dict[str, WeightSpec]:
    """Every tensor of `DebertaModel`/`DebertaV2Model` for this config, keyed without the `deberta.` prefix."""
    H, E, I = config.hidden_size, config.embedding_dim, config.intermediate_size
    C = config.num_attention_heads * config.head_dim
    w: dict[str, WeightSpec] = {"embeddings.word_embeddings.weight": WeightSpec((config.vocab_size, E), "embedding")}
    if config.position_biased_input:
        w["embeddings.position_embeddings.weight"] = WeightSpec((config.max_position_embeddings, E), "embedding")
    if config.type_vocab_size > 0:
        w["embeddings.token_type_embeddings.weight"] = WeightSpec((config.type_vocab_size, E), "embedding")
    if E != H:
        w.update(_linear(H, E, bias=False, prefix="embeddings.embed_proj."))
    w.update(_norm(H, "embeddings.LayerNorm."))
    if config.relative_attention:
        w["encoder.rel_embeddings.weight"] = WeightSpec((config.rel_embeddings_size, H), "embedding")
        if config.norm_rel_embeddings:
            w.update(_norm(H, "encoder.LayerNorm."))
    if config.family == "v2" and config.conv_kernel_size > 0:
        k, g = config.conv_kernel_size, config.conv_groups
        w["encoder.conv.conv.weight"] = WeightSpec((H, H // g, k), "conv1d")
        w["encoder.conv.conv.bias"] = WeightSpec((H,), "vector")
        w.update(_norm(H, "encoder.conv.LayerNorm."))
    for layer in range(config.num_hidden_layers):
        p = f"encoder.layer.{layer}."
        att = p + "attention.self."
        if config.family == "v1":
            w[att + "in_proj.weight"] = WeightSpec((3 * C, H), "linear")
            w[att + "q_bias"] = WeightSpec((C,), "vector")
            w[att + "v_bias"] = WeightSpec((C,), "vector")
            if config.uses_c2p:
                w.update(_linear(C, H, bias=False, prefix=att + "pos_proj."))
            if config.uses_p2c:
                w.update(_linear(C, H, prefix=att + "pos_q_proj."))
            if config.talking_head:
                A = config.num_attention_heads
                w.update(_linear(A, A, bias=False, prefix=att + "head_logits_proj."))
                w.update(_linear(A, A, bias=False, prefix=att + "head_weights_proj."))
        else:
            for name in ("query_proj", "key_proj", "value_proj"):
                w.update(_linear(C, H, prefix=f"{att}{name}."))
            if not config.share_att_key:
                if config.uses_c2p:
                    w.update(_linear(C, H, prefix=att + "pos_key_proj."))
                if config.uses_p2c:
                    w.update(_linear(C, H, prefix=att + "pos_query_proj."))
        w.update(_linear(H, C, prefix=p + "attention.output.dense."))
        w.update(_norm(H, p + "attention.output.LayerNorm."))
        w.update(_linear(I, H, prefix=p + "intermediate.dense."))
        w.update(_linear(H, I, prefix=p + "output.dense."))
        w.update(_norm(H, p + "output.LayerNorm."))
    return w


def uses_position_table(config: BaseDebertaConfig, head: str | None = None) -> bool:
    """Whether a model reads `embeddings.position_embeddings`: absolute positions in the input, or the
    enhanced mask decoder of a masked LM with `use_emd` (the original's pre-training decoder)."""
    return config.position_biased_input or (head == "masked_lm" and config.use_emd)


def head_weights(config: BaseDebertaConfig, head: str) -> dict[str, WeightSpec]:
    """Tensors a task head adds on top of the base model, keyed as in the head model's state dict."""
    H, E, V = config.hidden_size, config.embedding_dim, config.vocab_size
    if head == "masked_lm" and config.use_emd and not config.position_biased_input:
        # The enhanced mask decoder adds the absolute position table, which the encoder input then lacks.
        w = {BASE_PREFIX + "embeddings.position_embeddings.weight":
             WeightSpec((config.max_position_embeddings, E), "embedding")}
        w.update(head_weights(config.copy(use_emd=False), head))
        return w
    if head == "replaced_token_detection":
        # The original's LMMaskPredictionHead: LayerNorm(h + h[:, 0]), dense, act, classifier -> 1 logit.
        w = _linear(H, H, prefix="mask_predictions.dense.")
        w.update(_norm(H, "mask_predictions.LayerNorm."))
        w.update(_linear(1, H, prefix="mask_predictions.classifier."))
        return w
    if head == "masked_lm":
        if config.legacy:
            w = _linear(E, H, prefix="cls.predictions.transform.dense.")
            w.update(_norm(E, "cls.predictions.transform.LayerNorm."))
            w["cls.predictions.bias"] = WeightSpec((V,), "vector")
            if not config.tie_word_embeddings:
                w["cls.predictions.decoder.weight"] = WeightSpec((V, E), "linear")
            return w
        w = _linear(E, H, prefix="lm_predictions.lm_head.dense.")
        w.update(_norm(E, "lm_predictions.lm_head.LayerNorm."))
        w["lm_predictions.lm_head.bias"] = WeightSpec((V,), "vector")
        return w
    if head in ("sequence_classification", "multiple_choice"):
        out = 1 if head == "multiple_choice" else config.num_labels
        w = _linear(H, H, prefix="pooler.dense.")
        w.update(_linear(out, H, prefix="classifier."))
        return w
    if head == "token_classification":
        return _linear(config.num_labels, H, prefix="classifier.")
    if head == "question_answering":
        return _linear(config.num_labels, H, prefix="qa_outputs.")
    raise ValueError(f"unknown head {head!r}; expected one of {HEADS} or None")


def model_weights(config: BaseDebertaConfig, head: str | None = None) -> dict[str, WeightSpec]:
    """All tensors of a model: the base model alone (head None, no prefix) or a task model."""
    if head is None:
        return base_model_weights(config)
    w = _prefixed(BASE_PREFIX, base_model_weights(config))
    w.update(head_weights(config, head))
    return w


def normalize_key(key: str) -> str:
    """Rename legacy LayerNorm parameters (`LayerNorm.gamma/beta` -> `.weight/.bias`)."""
    if key.endswith(".gamma"):
        return key[: -len("gamma")] + "weight"
    if key.endswith(".beta"):
        return key[: -len("beta")] + "bias"
    return key


def checkpoint_mlm_layout(keys) -> str | None:
    """Which masked-LM head a checkpoint holds: "legacy" (cls.predictions), "original" (lm_predictions)."""
    keys = list(keys)
    if any(ORIGINAL_MLM in k for k in keys):
        return "original"
    if any(LEGACY_MLM in k for k in keys):
        return "legacy"
    return None


@dataclass
class KeyMatch:
    """How checkpoint keys line up with a model: `mapping` expected key -> checkpoint key."""

    mapping: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def left_out(self) -> dict[str, str]:
        """Unexpected keys that belong to a head this model does not have: key -> the part's name."""
        return {k: part for k in self.unexpected if (part := part_of(k)) is not None}

    @property
    def unexplained(self) -> list[str]:
        """Unexpected keys that belong to no head: tensors the model should have used."""
        return [k for k in self.unexpected if part_of(k) is None]


@dataclass
class LoadingInfo(KeyMatch):
    """What a load did: keys `missing` from the checkpoint, `unexpected` in it, `ignored` by rule, and
    `mismatched` (key, checkpoint shape, model shape) left at their initial values."""

    mismatched: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"missing_keys": self.missing, "unexpected_keys": self.unexpected,
                "ignored_keys": self.ignored, "mismatched_keys": self.mismatched}


def plan_load(checkpoint_shapes: dict, model_shapes: dict, uses_position_table: bool, model_name: str,
              strict: bool = False, ignore_mismatched_sizes: bool = False) -> LoadingInfo:
    """Decide what a load copies, for either framework; raise where the checkpoint does not fit.

    checkpoint_shapes: checkpoint key -> shape; model_shapes: expected key -> shape, both in the
    PyTorch layout. Returns a LoadingInfo whose `mapping` (expected key -> checkpoint key) holds only
    the tensors to copy; `mismatched` lists (key, checkpoint shape, model shape) left as initialised.
    Raises ValueError for encoder tensors the model would not use (the config does not describe the
    weights; never dropped silently), for missing/unexpected keys under `strict`, and for any shape
    mismatch unless `ignore_mismatched_sizes` (e.g. a new `num_labels`).
    """
    match = match_keys(checkpoint_shapes.keys(), model_shapes.keys(), uses_position_table=uses_position_table)
    encoder_unused = [k for k in match.unexplained if is_base_model_key(k)]
    if encoder_unused:
        raise unused_error(encoder_unused, model_name)
    if strict and (match.missing or match.unexpected):
        raise ValueError(f"checkpoint does not fit {model_name} (strict=True): "
                         f"missing keys {match.missing}; unexpected keys {match.unexpected}")
    mismatched = [(target, tuple(checkpoint_shapes[source]), tuple(model_shapes[target]))
                  for target, source in match.mapping.items()
                  if tuple(checkpoint_shapes[source]) != tuple(model_shapes[target])]
    if mismatched and not ignore_mismatched_sizes:
        lines = "; ".join(f"{k}: checkpoint {a} vs model {b}" for k, a, b in mismatched)
        raise ValueError(f"checkpoint shapes do not fit {model_name}: {lines} "
                         "(pass ignore_mismatched_sizes=True to re-initialise them)")
    skipped = {k for k, _, _ in mismatched}
    mapping = {t: s for t, s in match.mapping.items() if t not in skipped}
    return LoadingInfo(mapping=mapping, missing=match.missing, unexpected=match.unexpected,
                       ignored=match.ignored, mismatched=mismatched)


def log_loading(info: LoadingInfo, model_name: str, logger) -> None:
    """Warn, by name, about weights left initialised and checkpoint weights not used."""
    if info.missing:
        logger.warning("%s: weights not in the checkpoint, newly initialised: %s", model_name, info.missing)
    if info.unexpected:
        logger.warning("%s: checkpoint weights not used: %s", model_name, info.unexpected)


def match_keys(checkpoint_keys, expected_keys, uses_position_table: bool) -> KeyMatch:
    """Line up checkpoint keys with the keys a model expects.

    Accepts checkpoints saved from the base model (no `deberta.` prefix) or from a task model (prefix),
    legacy gamma/beta names, and drops what the reference ignores (SPEC §4.2). Keys that remain on
    either side are reported as missing or unexpected, by name.
    """
    expected = list(expected_keys)
    expected_set = set(expected)
    model_has_prefix = any(k.startswith(BASE_PREFIX) for k in expected)
    result = KeyMatch()
    claimed: dict[str, str] = {}
    for raw in checkpoint_keys:
        key = normalize_key(raw)
        # A tied copy is ignored only when the model ties it; an untied decoder has its own weight. The
        # v3 head `mask_predictions.*` is ignored unless the model is that head.
        if (any(p.search(key) for p in _ALWAYS_IGNORED) and key not in expected_set) or \
                (key in _TIED_COPIES and key not in expected_set):
            result.ignored.append(raw)
            continue
        if _POSITION_TABLE.search(key) and not uses_position_table:
            result.ignored.append(raw)
            continue
        candidates = [key]
        if model_has_prefix and not key.startswith(BASE_PREFIX):
            candidates.append(BASE_PREFIX + key)
        if not model_has_prefix and key.startswith(BASE_PREFIX):
            candidates.append(key[len(BASE_PREFIX):])
        target = next((c for c in candidates if c in expected_set), None)
        if target is None or target in claimed:
            result.unexpected.append(raw)
            continue
        claimed[target] = raw
    result.mapping = claimed
    result.missing = [k for k in expected if k not in claimed]
    return result
