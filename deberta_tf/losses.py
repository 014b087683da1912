"""Task losses in keras.ops; which rule applies is decided once in deberta_core.losses.

Every loss is computed in float32 (logits are upcast under mixed precision) and mean-reduced, with the
PyTorch semantics: ignored labels leave the mean, and a mean over nothing is nan, as torch's is
(except the filtered sequence-classification rule, whose empty case is 0.0).
"""

from __future__ import annotations

import keras
from keras import ops

from deberta_core import losses as rules
from deberta_core.validation import check_label_shape


def _check_label_shape(name: str, labels, expected) -> None:
    """check_label_shape on static shapes; dims unknown while tracing are not compared."""
    shape, expected = tuple(labels.shape), tuple(expected)
    if len(shape) == len(expected):
        shape = tuple(e if s is None or e is None else s for s, e in zip(shape, expected))
        expected = tuple(s if e is None else e for s, e in zip(shape, expected))
    check_label_shape(name, shape, expected)


def _is_float(t) -> bool:
    return "float" in keras.backend.standardize_dtype(t.dtype)


def cross_entropy(logits, labels, ignore_index: int = rules.IGNORE_INDEX):
    """torch's F.cross_entropy(logits (N, C), labels (N,), ignore_index): mean over the kept rows."""
    labels = ops.cast(labels, "int32")
    keep = labels != ignore_index
    per_row = ops.sparse_categorical_crossentropy(ops.where(keep, labels, 0), ops.cast(logits, "float32"),
                                                  from_logits=True)
    keep = ops.cast(keep, "float32")
    return ops.sum(per_row * keep) / ops.sum(keep)


def _mse(predictions, targets):
    return ops.mean(ops.square(ops.cast(predictions, "float32") - ops.cast(targets, "float32")))


def sequence_classification_loss(logits, labels, num_labels: int, problem_type: str | None):
    """Loss for ForSequenceClassification / ForMultipleChoice heads; logits (B, L).

    Returns (loss, logits): with problem_type None and num_labels == 1 the reference returns logits
    flattened to (B,) (and cast to the label dtype when it is a float type), so the output follows.
    """
    rules.check_labels_batch(labels.shape, logits.shape[0])
    last_dim = labels.shape[-1] if len(labels.shape) > 1 else None
    kind = rules.sequence_classification_loss_kind(problem_type, num_labels, len(labels.shape), last_dim)
    if kind == rules.MSE:
        if num_labels == 1:
            if problem_type is None:
                logits = ops.reshape(logits, (-1,))
                if _is_float(labels):
                    logits = ops.cast(logits, labels.dtype)
                return _mse(logits, ops.reshape(labels, (-1,))), logits
            return _mse(ops.squeeze(logits), ops.squeeze(labels)), logits
        return _mse(logits, labels), logits
    if kind == rules.FILTERED_CE:
        labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
        keep = labels >= 0
        per_row = ops.sparse_categorical_crossentropy(ops.where(keep, labels, 0), ops.cast(logits, "float32"),
                                                      from_logits=True)
        keep = ops.cast(keep, "float32")
        # The mean over rows with a label; 0.0 (with no gradient) when no row has one, as in PyTorch.
        return ops.sum(per_row * keep) / ops.maximum(ops.sum(keep), 1.0), logits
    if kind == rules.SOFT_CE:
        _check_label_shape("labels", labels, logits.shape)
        log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        return -ops.mean(ops.sum(log_probs * ops.cast(labels, "float32"), axis=-1)), logits
    if kind == rules.CE:
        return cross_entropy(ops.reshape(logits, (-1, num_labels)), ops.reshape(labels, (-1,))), logits
    _check_label_shape("labels", labels, logits.shape)
    bce = ops.binary_crossentropy(ops.cast(labels, "float32"), ops.cast(logits, "float32"), from_logits=True)
    return ops.mean(bce), logits


def token_loss(logits, labels):
    """Cross-entropy over every position, -100 ignored; logits (B, T, L) or (B, T, V), labels (B, T)."""
    _check_label_shape("labels", labels, logits.shape[:-1])
    return cross_entropy(ops.reshape(logits, (-1, ops.shape(logits)[-1])), ops.reshape(labels, (-1,)))


def question_answering_loss(start_logits, end_logits, start_positions, end_positions):
    """Mean of start and end cross-entropies; positions (B,) or (B, 1), clamped to [0, T], T ignored."""
    B, T = ops.shape(start_logits)
    losses = []
    for name, logits, positions in (("start_positions", start_logits, start_positions),
                                    ("end_positions", end_logits, end_positions)):
        if len(positions.shape) > 1:
            positions = ops.squeeze(positions, axis=-1)
        _check_label_shape(name, positions, start_logits.shape[:1])
        positions = ops.clip(ops.cast(positions, "int32"), 0, T)
        losses.append(cross_entropy(logits, positions, ignore_index=T))
    return (losses[0] + losses[1]) / 2


def multiple_choice_loss(logits, labels):
    """Cross-entropy over the choices; logits (B, C), labels (B,) choice indices (-100 ignored, as in torch)."""
    batch, shape = logits.shape[0], tuple(labels.shape)
    if len(shape) != 1 or (None not in (batch, shape[0]) and shape[0] != batch):
        raise ValueError(f"labels has shape {shape}, expected {(batch,)} (one choice index per example)")
    return cross_entropy(logits, labels)
