"""Small building blocks shared by every DeBERTa module: LayerNorm and activations."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .kernels import project


class LayerNorm(nn.LayerNorm):
    """LayerNorm whose statistics are always computed in float32 (SPEC §2.1, §6.10).

    In float32 this is `nn.LayerNorm`; for bfloat16/float16 inputs it upcasts, normalises and casts back,
    as DeBERTa v1's own LayerNorm does, so low-precision models keep their accuracy.
    Parameters are named weight/bias as in every checkpoint.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype in (torch.float32, torch.float64):
            return super().forward(x)
        out = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)
        return out.to(x.dtype)


class ResidualLayerNorm(nn.Module):
    """Projection to the hidden size, dropout, residual add and LayerNorm: `dense`, `dropout`, `LayerNorm`.

    (B, T, in_features) and the residual (B, T, C) -> (B, T, C). Both post-LN sub-layer outputs
    (`attention.output`, `output`) are this with their own input width.
    """

    def __init__(self, in_features: int, config):
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor):
        out = project(self, "dense", hidden_states, [self.dense])
        return self.LayerNorm(self.dropout(out) + input_tensor)


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def _gelu_fast(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_python": lambda x: x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0))),
    "gelu_new": _gelu_tanh,
    "gelu_fast": _gelu_fast,
    "relu": F.relu,
    "tanh": torch.tanh,
    "silu": F.silu,
    "swish": F.silu,
    "sigmoid": torch.sigmoid,
    "linear": lambda x: x,
}


def get_activation(name: str):
    """The activation function for a config name (the names are validated by the config)."""
    return ACTIVATIONS[name]
