"""The Keras side of deberta_core.pipelines: run a model on a batch of numpy inputs, return numpy outputs.

Everything else a pipeline does (tokenizing, batching, decoding answers) is framework-neutral and lives
in deberta_core.pipelines; this module is the only place it touches Keras.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np

OUTPUT_NAMES = ("logits", "start_logits", "end_logits")


def _device_name(device) -> str | None:
    if device is None:
        return None
    if isinstance(device, int):
        return "cpu:0" if device < 0 else f"gpu:{device}"
    name = str(device).lower().lstrip("/").replace("device:", "")
    if name in ("cpu", "gpu", "cuda"):
        name += ":0"
    return name.replace("cuda", "gpu")


class KerasRunner:
    """Calls a Keras model (``training=False``) on dicts of integer numpy arrays.

    device: None (Keras' default placement), "cpu", "gpu", "gpu:1", "cuda:0" or an index (-1: CPU);
    the call runs inside ``keras.device``. Outputs come back as float32 numpy arrays.
    """

    framework = "tf"

    def __init__(self, model, device=None):
        if not isinstance(model, keras.Model):
            raise TypeError(f"KerasRunner needs a keras.Model, got {type(model).__name__}")
        self.model = model
        self.device = _device_name(device)

    @property
    def config(self):
        return self.model.config

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        inputs = {k: np.ascontiguousarray(v, dtype=np.int32) for k, v in batch.items()}
        scope = keras.device(self.device) if self.device else contextlib.nullcontext()
        with scope:
            outputs = self.model(inputs, training=False)
        return {name: keras.ops.convert_to_numpy(outputs[name]).astype(np.float32)
                for name in OUTPUT_NAMES if name in outputs}


Runner = KerasRunner
