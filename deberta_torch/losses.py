"""Task losses in torch; which rule applies is decided once in deberta_core.losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deberta_core import losses as rules
from deberta_core.validation import check_label_shape


def sequence_classification_loss(logits: torch.Tensor, labels: torch.Tensor, num_labels: int,
                                 problem_type: str | None):
    """Loss for ForSequenceClassification / ForMultipleChoice heads; logits (B, L).

    Returns (loss, logits): with problem_type None and num_labels == 1 the reference returns logits
    flattened to (B,) in the label dtype, and so do we.
    """
    rules.check_labels_batch(labels.shape, logits.shape[0])
    kind = rules.sequence_classification_loss_kind(problem_type, num_labels, labels.dim(),
                                                   labels.shape[-1] if labels.dim() > 1 else None)
    if kind == rules.MSE:
        if num_labels == 1:
            if problem_type is None:
                logits = logits.view(-1).to(labels.dtype)
                return F.mse_loss(logits, labels.view(-1)), logits
            return F.mse_loss(logits.squeeze(), labels.squeeze()), logits
        return F.mse_loss(logits, labels), logits
    if kind == rules.FILTERED_CE:
        labels = labels.view(-1).long()
        keep = labels >= 0
        if not bool(keep.any()):
            return logits.new_zeros(()), logits
        return F.cross_entropy(logits[keep].float(), labels[keep]), logits
    if kind == rules.SOFT_CE:
        check_label_shape("labels", labels.shape, logits.shape)
        return -(F.log_softmax(logits, dim=-1) * labels).sum(-1).mean(), logits
    if kind == rules.CE:
        return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1), ignore_index=rules.IGNORE_INDEX), logits
    check_label_shape("labels", labels.shape, logits.shape)
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype)), logits


def token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every position, -100 ignored; logits (B, T, L) or (B, T, V), labels (B, T)."""
    check_label_shape("labels", labels.shape, logits.shape[:-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=rules.IGNORE_INDEX)


def question_answering_loss(start_logits, end_logits, start_positions, end_positions) -> torch.Tensor:
    """Mean of start and end cross-entropies; positions (B,) or (B, 1), clamped to [0, T], T ignored."""
    B, T = start_logits.shape
    losses = []
    for name, logits, positions in (("start_positions", start_logits, start_positions),
                                    ("end_positions", end_logits, end_positions)):
        if positions.dim() > 1:
            positions = positions.squeeze(-1)
        check_label_shape(name, positions.shape, (B,))
        positions = positions.clamp(0, T)
        losses.append(F.cross_entropy(logits, positions, ignore_index=T))
    return (losses[0] + losses[1]) / 2


def multiple_choice_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the choices; logits (B, C), labels (B,) choice indices (-100 ignored)."""
    if tuple(labels.shape) != (logits.shape[0],):
        raise ValueError(f"labels has shape {tuple(labels.shape)}, expected {(logits.shape[0],)} "
                         "(one choice index per example)")
    return F.cross_entropy(logits, labels, ignore_index=rules.IGNORE_INDEX)
