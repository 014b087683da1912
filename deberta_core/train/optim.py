"""The optimizer rules both framework loops share, on the canonical (PyTorch) parameter names."""

from __future__ import annotations

import numpy as np

# AdamW settings (the transformers Trainer defaults; epsilon is --adam-epsilon, 1e-8 for fine-tuning as the
# Trainer, 1e-6 for pre-training as the original DeBERTa).
BETAS = (0.9, 0.999)
EPSILON = 1e-8
PRETRAINING_EPSILON = 1e-6


def uses_weight_decay(name: str) -> bool:
    """False for biases (``*.bias``, v1's ``q_bias`` / ``v_bias``) and LayerNorm parameters, True otherwise
    (the transformers Trainer rule: embeddings and kernels decay)."""
    parts = name.split(".")
    if parts[-1].endswith("bias"):
        return False
    return not any(p.lower() in ("layernorm", "layer_norm") or p.lower().endswith("layernorm") for p in parts[:-1])


def dropout_seed(seed: int, step: int, micro: int, rank: int) -> int:
    """A seed for the dropout of one micro-batch shard: a function of the step, so a resumed run draws the
    masks an uninterrupted one would have drawn."""
    return int(np.random.SeedSequence([seed, step, micro, rank]).generate_state(1, dtype=np.uint64)[0] >> 1)


__all__ = ["BETAS", "EPSILON", "PRETRAINING_EPSILON", "dropout_seed", "uses_weight_decay"]
