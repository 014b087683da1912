"""New vocabulary rows for `resize_token_embeddings`, as transformers 4.57.6 initialises them (numpy).

Old rows are kept; added rows are drawn from N(mean, 1e-9 * covariance) of the old rows (mean resizing,
the default; the mean itself when that covariance is not positive definite) or N(0, initializer_range).
An output bias is zero-padded where the head reads the word embeddings, and drawn around the old bias
mean for an untied decoder. deberta_tf uses these functions; deberta_torch draws the same
distributions with torch's generator, so a seeded resize equals the reference's bit for bit.
"""

from __future__ import annotations

import numpy as np


def added_rows(old: np.ndarray, added: int, mean_resizing: bool, std: float) -> np.ndarray:
    """`added` new rows for a (rows, width) table, as transformers 4.57.6 initialises them (float64).

    mean_resizing: samples of N(mean, 1e-9 * cov) of the old rows (cov with 1/rows), or the mean itself
    when 1e-9 * cov is not positive definite; otherwise N(0, std). Uses numpy's global generator, which
    keras.utils.set_random_seed seeds.
    """
    width = old.shape[1]
    if not mean_resizing:
        return np.random.normal(0.0, std, size=(added, width))
    old = old.astype(np.float64)
    mean = old.mean(axis=0)
    centered = old - mean
    covariance = 1e-9 * (centered.T @ centered) / old.shape[0]
    try:
        chol = np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        return np.repeat(mean[None], added, axis=0)
    return mean + np.random.standard_normal((added, width)) @ chol.T


def resized_table(old: np.ndarray, rows: int, mean_resizing: bool, std: float) -> np.ndarray:
    """The first min(rows, old rows) rows of `old`, then added_rows for the rest; old's dtype."""
    keep = old[:rows]
    if rows <= old.shape[0]:
        return keep.copy()
    return np.concatenate([keep, added_rows(old, rows - old.shape[0], mean_resizing, std).astype(old.dtype)])


def resized_bias(old: np.ndarray, rows: int, mean_init: bool) -> np.ndarray:
    """An output bias cut or extended to `rows`: zeros (the tied-head rule, transformers' pad), or with
    mean_init N(mean, 1e-9 * std) of the old bias (std with n - 1), the untied-head rule."""
    if rows <= old.shape[0]:
        return old[:rows].copy()
    added = rows - old.shape[0]
    if mean_init:
        values = old.astype(np.float64)
        std = values.std(ddof=1) if values.size > 1 else 0.0
        extra = np.random.normal(values.mean(), 1e-9 * std, size=added) if std > 0 else np.full(added, values.mean())
    else:
        extra = np.zeros(added)
    return np.concatenate([old, extra.astype(old.dtype)])
