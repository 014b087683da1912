"""Run the same fixed batch through the source and the converted model; report the largest difference
of every output."""

from __future__ import annotations

import numpy as np

from .convert import STEM_OF_HEAD, destination_match
from .sources import Checkpoint


def fixed_batch(config, head: str | None, batch: int = 2, length: int = 24, choices: int = 2, seed: int = 0):
    """Deterministic inputs: a full row and a right-padded one (numpy, framework-neutral)."""
    rng = np.random.default_rng(seed)
    length = min(length, config.max_position_embeddings) if config.position_biased_input else length
    ids = rng.integers(4, min(config.vocab_size, 1000), size=(batch, length)).astype(np.int64)
    ids[:, 0] = 1 if config.vocab_size > 1 else 0
    mask = np.ones_like(ids)
    mask[1:, length * 2 // 3:] = 0
    inputs = {"input_ids": ids, "attention_mask": mask}
    if config.type_vocab_size > 0:
        types = np.zeros_like(ids)
        types[:, length // 2:] = 1
        inputs["token_type_ids"] = types
    if head == "multiple_choice":
        inputs = {k: np.repeat(v[:, None], choices, axis=1) for k, v in inputs.items()}
    return inputs


def _torch_model(ckpt: Checkpoint, head, state=None, directory=None):
    import torch

    import deberta_torch

    name = ("Deberta" if ckpt.config.family == "v1" else "DebertaV2") + STEM_OF_HEAD[head]
    cls = getattr(deberta_torch, name)
    if directory is not None:
        return cls.from_pretrained(directory, strict=True)
    model = cls(ckpt.config.copy())
    model.load_checkpoint_state({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    return model.eval()


def _tf_model(ckpt: Checkpoint, head, directory):
    import deberta_tf

    name = "TF" + ("Deberta" if ckpt.config.family == "v1" else "DebertaV2") + STEM_OF_HEAD[head]
    return getattr(deberta_tf, name).from_pretrained(directory)


def _run(model, framework: str, inputs: dict) -> dict[str, np.ndarray]:
    if framework == "torch":
        import torch

        with torch.no_grad():
            out = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}, output_hidden_states=True,
                        output_attentions=True)
        convert = lambda t: t.float().numpy()  # noqa: E731
    else:
        out = model(inputs, output_hidden_states=True, output_attentions=True, training=False)
        convert = lambda t: np.asarray(t, dtype=np.float32)  # noqa: E731
    flat = {}
    for key in out.keys():
        value = out[key]
        if isinstance(value, (tuple, list)):
            for i, v in enumerate(value):
                flat[f"{key}[{i}]"] = convert(v)
        else:
            flat[key] = convert(value)
    return flat


def unaccounted_tensors(ckpt: Checkpoint, head: str | None) -> list[str]:
    """Source tensors that the destination neither holds nor leaves out on purpose (another head, the
    pre-training parts, what the reference ignores). Any such tensor means the config was misread:
    comparing outputs cannot show it, since both sides are built from that same config."""
    return destination_match(ckpt, head, config=ckpt.config.copy())[1].unexplained


def verify(ckpt: Checkpoint, head: str | None, state: dict, dst_dir, to: str,
           dest_checkpoint: Checkpoint | None = None) -> dict[str, float]:
    """Largest |source - destination| per output, for the fixed batch.

    `ckpt` is the source as read; `dest_checkpoint` the (possibly re-expressed, e.g. v1 -> v2) checkpoint
    that was written, whose family picks the destination class.
    """
    from .convert import target_state

    dest_checkpoint = dest_checkpoint or ckpt
    inputs = fixed_batch(ckpt.config, head)
    if ckpt.layout == "hf-tf":
        source = _run(_tf_model(ckpt, head, ckpt.source), "tf", inputs)
    else:
        if dest_checkpoint is not ckpt:
            state = target_state(Checkpoint(ckpt.config, ckpt.state, ckpt.layout, ckpt.source), head, strict=False)
        source = _run(_torch_model(ckpt, head, state=state), "torch", inputs)
    dest_model = (_torch_model(dest_checkpoint, head, directory=dst_dir) if to == "torch"
                  else _tf_model(dest_checkpoint, head, dst_dir))
    dest = _run(dest_model, to, inputs)
    if set(source) != set(dest):
        raise ValueError(f"outputs differ in kind: {sorted(set(source) ^ set(dest))}")
    return {k: float(np.max(np.abs(source[k] - dest[k]))) if source[k].size else 0.0 for k in source}
