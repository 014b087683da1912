"""Which loss each task head uses: the rules live here once; each framework supplies the arithmetic.

Rules follow the PyTorch reference (SPEC §3): all losses are mean-reduced, -100 is ignored for token
and masked-LM labels, and question-answering positions are clamped to [0, T] with T ignored.
"""

from __future__ import annotations

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
