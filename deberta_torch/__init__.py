"""PyTorch DeBERTa v1/v2/v3 with the transformers API: same class names, arguments, outputs, checkpoints."""

from deberta_core.config import DebertaConfig, DebertaV2Config

from .backbone import DebertaModel, DebertaV2Model
from .heads import (DebertaForMaskedLM, DebertaForQuestionAnswering, DebertaForSequenceClassification,
                    DebertaForTokenClassification, DebertaV2ForMaskedLM, DebertaV2ForMultipleChoice,
                    DebertaV2ForQuestionAnswering, DebertaV2ForSequenceClassification,
                    DebertaV2ForTokenClassification)
from .attention import ATTN_IMPLEMENTATIONS
from .pretrained import DebertaPreTrainedModel, DebertaV2PreTrainedModel
from .pretraining import DebertaV2ForReplacedTokenDetection, DebertaV2ForRTDPretraining

__all__ = [
    "ATTN_IMPLEMENTATIONS", "DebertaConfig", "DebertaV2Config",
    "DebertaPreTrainedModel", "DebertaV2PreTrainedModel",
    "DebertaModel", "DebertaForMaskedLM", "DebertaForSequenceClassification", "DebertaForTokenClassification",
    "DebertaForQuestionAnswering",
    "DebertaV2Model", "DebertaV2ForMaskedLM", "DebertaV2ForSequenceClassification",
    "DebertaV2ForTokenClassification", "DebertaV2ForQuestionAnswering", "DebertaV2ForMultipleChoice",
    "DebertaV2ForReplacedTokenDetection", "DebertaV2ForRTDPretraining",
]
