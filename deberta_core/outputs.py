"""Output containers shared by both frameworks, shaped like the Hugging Face `ModelOutput` classes.

Fields left as None are skipped by integer indexing and `to_tuple()`, so `outputs[0]` is the loss when
labels were given and the logits otherwise, exactly as in the reference.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


def resolve_output_flags(config, output_attentions=None, output_hidden_states=None, return_dict=None):
    """(output_attentions, output_hidden_states, return_dict): each argument, or the config's when None."""
    return (config.output_attentions if output_attentions is None else output_attentions,
            config.output_hidden_states if output_hidden_states is None else output_hidden_states,
            config.return_dict if return_dict is None else return_dict)


class ModelOutput:
    """Base for the output dataclasses: attribute, key (`out["logits"]`) and position (`out[0]`) access."""

    def to_tuple(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None)

    def keys(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def values(self) -> list[Any]:
        return list(self.to_tuple())

    def items(self) -> list[tuple[str, Any]]:
        return [(k, getattr(self, k)) for k in self.keys()]

    def __getitem__(self, key: int | slice | str) -> Any:
        if isinstance(key, str):
            if key not in self.keys():
                raise KeyError(key)
            return getattr(self, key)
        return self.to_tuple()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.keys() else default

    def __contains__(self, key: str) -> bool:
        return key in self.keys()

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())


@dataclass
class BaseModelOutput(ModelOutput):
    """last_hidden_state (B, T, C); hidden_states: L+1 tensors (B, T, C); attentions: L tensors (B, H, T, T)."""

    last_hidden_state: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


@dataclass
class MaskedLMOutput(ModelOutput):
    """logits (B, T, V)."""

    loss: Any = None
    logits: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


@dataclass
class SequenceClassifierOutput(ModelOutput):
    """logits (B, num_labels)."""

    loss: Any = None
    logits: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


@dataclass
class TokenClassifierOutput(ModelOutput):
    """logits (B, T, num_labels)."""

    loss: Any = None
    logits: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


@dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    """start_logits, end_logits (B, T)."""

    loss: Any = None
    start_logits: Any = None
    end_logits: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


@dataclass
class MultipleChoiceModelOutput(ModelOutput):
    """logits (B, num_choices)."""

    loss: Any = None
    logits: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


@dataclass
class ReplacedTokenDetectionOutput(ModelOutput):
    """logits (B, T): one "replaced" logit per token (the v3 discriminator)."""

    loss: Any = None
    logits: Any = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


@dataclass
class RTDPretrainingOutput(ModelOutput):
    """One generator + discriminator step: loss = mlm_loss + rtd_lambda * rtd_loss (deberta_core.pretraining).

    generator_logits (N, V) at the N targets (labels != -100, row-major: the generator's head projects
    only them, as the original's does); replaced_input_ids (B, T), the discriminator's input; rtd_labels (B, T)
    of 0/1; discriminator_logits (B, T).
    """

    loss: Any = None
    mlm_loss: Any = None
    rtd_loss: Any = None
    generator_logits: Any = None
    discriminator_logits: Any = None
    replaced_input_ids: Any = None
    rtd_labels: Any = None


# Every output class, for frameworks that must be told which containers hold tensors (pytrees).
OUTPUT_CLASSES = (BaseModelOutput, MaskedLMOutput, SequenceClassifierOutput, TokenClassifierOutput,
                  QuestionAnsweringModelOutput, MultipleChoiceModelOutput, ReplacedTokenDetectionOutput,
                  RTDPretrainingOutput)
