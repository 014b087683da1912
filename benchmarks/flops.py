"""Arithmetic of one encoder forward: BERT against DeBERTa's disentangled attention, in matmul FLOPs.

The ratio BERT FLOPs / DeBERTa FLOPs is the best ours/BERT speed ratio any exact implementation can
reach with kernels exactly as efficient as BERT's: the `ceiling` column of benchmarks/speed.py.

Per layer and sequence of T tokens (C hidden, I intermediate, H heads of D = C / H; a multiply-add is
2 FLOPs; LayerNorm, softmax, GELU and gathers are not matmuls and are left out):
  linear layers     2 T (4 C^2 + 2 C I)                  the same in both models
  content attention 4 T^2 C                              q k^T and probs @ v
  c2p               2 D H sum_i rows(i)                  rows(i): distinct table rows query i reads
  p2c               2 D H sum_j rows(j)                  (every other product is a repeat)
  position tables   2 C^2 R' per term and batch          training only (inference caches them); R' the
                                                         table rows this length reaches

rows(i) counts the distinct buckets of the distances i - j, j < T: T while T is inside the exact
bucket range, fewer once far distances share log buckets. So c2p and p2c each cost at most one more
q k^T. For v3-base (inference) the ceiling is 0.97 at 128 tokens and 0.94 at 512.
"""

from __future__ import annotations

import numpy as np

from deberta_core.config import BaseDebertaConfig
from deberta_core.relative_position import relative_position_index


def encoder_flops(config: BaseDebertaConfig, batch: int, seq: int, relative: bool, train: bool = False) -> float:
    """Matmul FLOPs of a (batch, seq) input through the encoder (forward; x3 with the backward when `train`).

    relative: count DeBERTa's c2p and p2c products (False: a BERT of the same size).
    """
    C, I, L = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    per_layer = batch * (2 * seq * (4 * C * C + 2 * C * I) + 4 * seq * seq * C)
    if relative and config.relative_attention:
        if config.family == "v2" and config.position_buckets > 0:
            span, buckets = config.position_buckets, config.position_buckets
        else:
            span, buckets = min(seq, config.relative_span), -1
        terms = config.uses_c2p + config.uses_p2c
        index = relative_position_index(seq, seq, span, buckets, config.relative_span)
        per_layer += batch * terms * 2 * C * sum(len(np.unique(row)) for row in index)
        if train:  # every step projects the table rows this length reaches, once per batch and term
            per_layer += terms * 2 * C * C * len(np.unique(index))
    return L * per_layer * (3 if train else 1)


def ceiling(config: BaseDebertaConfig, batch: int, seq: int, train: bool = False) -> float:
    """BERT FLOPs / DeBERTa FLOPs: the ours/BERT speed ratio at equal kernel efficiency."""
    return encoder_flops(config, batch, seq, False, train) / encoder_flops(config, batch, seq, True, train)
