"""Framework helpers for the Keras tests: class lookup, seeded torch twins, comparisons."""

from __future__ import annotations

import numpy as np

import deberta_tf

HEAD_SUFFIX = {"base": "Model", "masked_lm": "ForMaskedLM", "sequence_classification": "ForSequenceClassification",
               "token_classification": "ForTokenClassification", "question_answering": "ForQuestionAnswering",
               "multiple_choice": "ForMultipleChoice"}
ALL_TF_CLASSES = [(family, head) for family in ("v1", "v2") for head in HEAD_SUFFIX
                  if not (family == "v1" and head == "multiple_choice")]


def _stem(family: str, head: str) -> str:
    return ("Deberta" if family == "v1" else "DebertaV2") + HEAD_SUFFIX[head]


def tf_class(family: str, head: str):
    return getattr(deberta_tf, "TF" + _stem(family, head))


def torch_class(family: str, head: str):
    import deberta_torch

    return getattr(deberta_torch, _stem(family, head))


def torch_model(config, head: str, seed: int = 0):
    """A deberta_torch model in eval mode with every parameter moved off its init value (zero biases,
    unit LayerNorm weights), so the comparison exercises each tensor."""
    import torch

    torch.manual_seed(seed)
    model = torch_class(config.family, head)(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return model


def numpy(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def max_diff(a, b) -> float:
    """Max |a - b| over tensors or tuples of tensors."""
    if isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        return max(max_diff(x, y) for x, y in zip(a, b))
    a, b = numpy(a), numpy(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0


def model_inputs(head: str, config, seed: int = 0, labels: bool = True) -> dict:
    """A padded batch (and labels) for the head; multiple choice gets (B, 2, T) inputs."""
    from tests.tf.tf_cases import choices, make_batch, make_labels

    batch = make_batch(config, seed=seed)
    extra = make_labels(head, config, batch) if labels else {}
    if head == "multiple_choice":
        batch = choices(batch)
    return {**batch, **extra}
