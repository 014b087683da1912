"""deberta_core.weight_names is a bijection with both our state dicts and the reference's."""

import pytest
import torch
import transformers as tr

import deberta_torch as dt
from deberta_core.weight_names import model_weights
from tests.cases import VARIANTS, variant_config_kwargs

HEADS = {None: "Model", "masked_lm": "ForMaskedLM", "sequence_classification": "ForSequenceClassification",
         "token_classification": "ForTokenClassification", "question_answering": "ForQuestionAnswering",
         "multiple_choice": "ForMultipleChoice"}
TIED = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}


# v1 has no multiple-choice class, as in the reference.
CASES = [(v, h) for v in VARIANTS for h in HEADS if not (h == "multiple_choice" and VARIANTS[v][0] == "v1")]


@pytest.mark.parametrize("variant,head", CASES)
def test_every_tensor_is_named_once_with_its_shape(variant, head):
    family, cfg = variant_config_kwargs(variant)
    prefix = "Deberta" if family == "v1" else "DebertaV2"
    ours = getattr(dt, prefix + HEADS[head])(getattr(dt, prefix + "Config")(**cfg))
    spec = {k: v.shape for k, v in model_weights(ours.config, head).items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == spec
    ref = getattr(tr, prefix + HEADS[head])(getattr(tr, prefix + "Config")(**cfg))
    assert {k: tuple(v.shape) for k, v in ref.state_dict().items() if k not in TIED} == spec
