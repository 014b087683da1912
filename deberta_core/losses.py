"""Which loss each task head uses, and what it computes: the rules live here once.

Rules follow the PyTorch reference (SPEC §3): all losses are mean-reduced, -100 is ignored for token
and masked-LM labels, and question-answering positions are clamped to [0, T] with T ignored. Each
framework supplies the arithmetic (deberta_torch/losses.py, deberta_tf/losses.py); the numpy functions
at the end of this module are the definition both are tested against.
"""

from __future__ import annotations

import numpy as np

from .validation import check_label_shape

IGNORE_INDEX = -100

MSE = "mse"                    # mean squared error on flattened logits vs labels
FILTERED_CE = "filtered_ce"    # cross-entropy over rows whose label is >= 0 (0.0 if none)
SOFT_CE = "soft_ce"            # -mean_b sum_c labels * log_softmax(logits)
CE = "ce"                      # plain cross-entropy, ignore_index -100
BCE = "bce"                    # sigmoid binary cross-entropy on (B, L) targets


def sequence_classification_loss_kind(problem_type: str | None, num_labels: int, labels_ndim: int,
                                      labels_last_dim: int | None) -> str:
    """Pick the ForSequenceClassification loss (SPEC §3.2).

    With `problem_type` None the rule is inferred, never stored (DeBERTa differs from BERT here):
      * num_labels == 1: MSE; the returned logits are flattened to (B,) and cast to the label dtype.
      * labels (B,) or (B, 1): cross-entropy over rows with label >= 0; negative labels are dropped.
      * labels (B, L): soft-target cross-entropy.
    Otherwise "regression" -> MSE, "single_label_classification" -> CE,
    "multi_label_classification" -> BCE.
    """
    if problem_type is None:
        if num_labels == 1:
            return MSE
        if labels_ndim == 1 or labels_last_dim == 1:
            return FILTERED_CE
        return SOFT_CE
    return {"regression": MSE, "single_label_classification": CE, "multi_label_classification": BCE}[problem_type]


def check_labels_batch(labels_shape, batch: int | None) -> None:
    """Labels must have one row per example: their first dimension is the batch size."""
    shape = tuple(labels_shape)
    if len(shape) == 0 or (batch is not None and shape[0] is not None and shape[0] != batch):
        raise ValueError(f"labels has shape {shape}, expected a first dimension of {batch} (the batch)")


# ------------------------------------------------------------------ numpy reference definitions
def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def cross_entropy(logits: np.ndarray, labels: np.ndarray, ignore_index: int = IGNORE_INDEX) -> float:
    """Mean of -log softmax(logits)[label] over rows whose label is not `ignore_index` (nan if none, as
    torch's mean over nothing). logits (N, C), labels (N,)."""
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    keep = labels != ignore_index
    if not keep.any():
        return float("nan")
    log_probs = _log_softmax(np.asarray(logits).reshape(len(labels), -1))
    return float(-log_probs[np.flatnonzero(keep), labels[keep]].mean())


def sequence_classification_loss(logits, labels, num_labels: int, problem_type: str | None) -> float:
    """ForSequenceClassification loss for logits (B, L): the rule `sequence_classification_loss_kind`
    picks, computed in float64."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    check_labels_batch(labels.shape, logits.shape[0])
    kind = sequence_classification_loss_kind(problem_type, num_labels, labels.ndim,
                                             labels.shape[-1] if labels.ndim > 1 else None)
    if kind == MSE:
        predictions = logits.reshape(-1) if num_labels == 1 else logits
        return float(np.mean((predictions - labels.reshape(predictions.shape).astype(np.float64)) ** 2))
    if kind == FILTERED_CE:
        labels = labels.reshape(-1).astype(np.int64)
        keep = labels >= 0
        return cross_entropy(logits[keep], labels[keep]) if keep.any() else 0.0
    if kind == SOFT_CE:
        check_label_shape("labels", labels.shape, logits.shape)
        return float(-(_log_softmax(logits) * labels).sum(-1).mean())
    if kind == CE:
        return cross_entropy(logits.reshape(-1, num_labels), labels)
    check_label_shape("labels", labels.shape, logits.shape)
    targets = labels.astype(np.float64)
    # log(1 + exp(-|x|)) form: finite for any logit
    per_item = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    return float(per_item.mean())


def token_loss(logits, labels) -> float:
    """Cross-entropy over every position, -100 ignored; logits (B, T, L), labels (B, T)."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    check_label_shape("labels", labels.shape, logits.shape[:-1])
    return cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def question_answering_loss(start_logits, end_logits, start_positions, end_positions) -> float:
    """Mean of the start and end cross-entropies; positions (B,) or (B, 1) clamped to [0, T], T ignored."""
    start_logits = np.asarray(start_logits)
    batch, length = start_logits.shape
    total = 0.0
    for name, logits, positions in (("start_positions", start_logits, start_positions),
                                    ("end_positions", np.asarray(end_logits), end_positions)):
        positions = np.asarray(positions)
        if positions.ndim > 1:
            positions = positions.squeeze(-1)
        check_label_shape(name, positions.shape, (batch,))
        total += cross_entropy(logits, np.clip(positions, 0, length), ignore_index=length)
    return total / 2


def multiple_choice_loss(logits, labels) -> float:
    """Cross-entropy over the choices; logits (B, C), labels (B,) choice indices, -100 ignored."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels has shape {labels.shape}, expected {(logits.shape[0],)} (one choice index per example)")
    return cross_entropy(logits, labels)
