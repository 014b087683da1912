"""The PyTorch side of deberta_core.pipelines: run a model on a batch of numpy inputs, return numpy outputs.

Everything else a pipeline does (tokenizing, batching, decoding answers) is framework-neutral and lives
in deberta_core.pipelines; this module is the only place it touches torch.
"""

from __future__ import annotations

import numpy as np
import torch

OUTPUT_NAMES = ("logits", "start_logits", "end_logits")


def _device(device) -> torch.device | None:
    if device is None:
        return None
    if isinstance(device, torch.device):
        return device
    if isinstance(device, int):
        return torch.device("cpu") if device < 0 else torch.device(f"cuda:{device}")
    return torch.device(device)


class TorchRunner:
    """Calls a PyTorch model (eval mode, no gradients) on dicts of integer numpy arrays.

    device: None (where the model already is), "cpu", "cuda", "cuda:1", an index (-1: CPU, as in
    transformers) or a torch.device. Outputs come back as float32 numpy arrays (bf16/fp16 upcast).
    """

    framework = "pt"

    def __init__(self, model, device=None):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"TorchRunner needs a torch.nn.Module, got {type(model).__name__}")
        target = _device(device)
        if target is not None:
            model = model.to(target)
        self.model = model.eval()
        parameter = next(model.parameters(), None)
        self.device = target or (parameter.device if parameter is not None else torch.device("cpu"))

    @property
    def config(self):
        return self.model.config

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        inputs = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.int64)).to(self.device)
                  for k, v in batch.items()}
        with torch.inference_mode():
            outputs = self.model(**inputs)
        return {name: outputs[name].detach().float().cpu().numpy() for name in OUTPUT_NAMES if name in outputs}


Runner = TorchRunner
