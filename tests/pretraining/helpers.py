"""Helpers shared by the pre-training tests."""

import torch


def randomised(model, seed=0, scale=0.1):
    """`model` with every parameter redrawn (LayerNorm weights around 1), in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            base = 1.0 if "LayerNorm.weight" in name else 0.0
            param.copy_(base + scale * torch.randn(param.shape, generator=generator))
    return model.eval()
