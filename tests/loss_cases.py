"""Random inputs for every loss rule (numpy, framework-free), shared by the torch and Keras loss tests."""

import numpy as np


def loss_cases():
    """(id, loss name, kwargs of numpy arrays and options) for every rule of deberta_core.losses."""
    rng = np.random.default_rng(0)
    B, T, L = 4, 6, 3
    logits = rng.normal(size=(B, L)).astype(np.float32) * 3
    cases = [
        ("filtered_ce", "sequence_classification_loss",
         dict(logits=logits, labels=np.array([0, 2, -1, 1]), num_labels=L, problem_type=None)),
        ("filtered_ce_column", "sequence_classification_loss",
         dict(logits=logits, labels=np.array([[0], [2], [1], [1]]), num_labels=L, problem_type=None)),
        ("soft_ce", "sequence_classification_loss",
         dict(logits=logits, labels=rng.dirichlet(np.ones(L), size=B).astype(np.float32), num_labels=L,
              problem_type=None)),
        ("regression", "sequence_classification_loss",
         dict(logits=logits[:, :1], labels=rng.normal(size=B).astype(np.float32), num_labels=1, problem_type=None)),
        ("ce", "sequence_classification_loss",
         dict(logits=logits, labels=np.array([0, 2, -100, 1]), num_labels=L, problem_type="single_label_classification")),
        ("bce", "sequence_classification_loss",
         dict(logits=logits, labels=(rng.random((B, L)) > 0.5).astype(np.float32), num_labels=L,
              problem_type="multi_label_classification")),
        ("mse_multi", "sequence_classification_loss",
         dict(logits=logits, labels=rng.normal(size=(B, L)).astype(np.float32), num_labels=L, problem_type="regression")),
        ("token", "token_loss",
         dict(logits=rng.normal(size=(B, T, L)).astype(np.float32),
              labels=np.where(rng.random((B, T)) > 0.3, rng.integers(0, L, (B, T)), -100))),
        ("qa", "question_answering_loss",
         dict(start_logits=rng.normal(size=(B, T)).astype(np.float32), end_logits=rng.normal(size=(B, T)).astype(np.float32),
              start_positions=np.array([0, 3, 9, 5]), end_positions=np.array([[1], [5], [2], [40]]))),
        ("multiple_choice", "multiple_choice_loss",
         dict(logits=logits, labels=np.array([0, 2, 1, -100]))),
    ]
    return cases
