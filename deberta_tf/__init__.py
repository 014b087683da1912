"""Keras 3 / TensorFlow DeBERTa v1/v2/v3 with the transformers TF API: same class names (`TFDeberta*`),
arguments, outputs and checkpoints (`tf_model.h5`, or PyTorch weights converted in memory).

Numbers equal deberta_torch to fp32 round-off, padded positions included. Only deberta_tf.ops calls
backend-specific code; the rest is keras.ops.
"""

from deberta_core.config import DebertaConfig, DebertaV2Config

from .backbone import TFDebertaModel, TFDebertaV2Model
from .heads import (TFDebertaForMaskedLM, TFDebertaForQuestionAnswering, TFDebertaForSequenceClassification,
                    TFDebertaForTokenClassification, TFDebertaV2ForMaskedLM, TFDebertaV2ForMultipleChoice,
                    TFDebertaV2ForQuestionAnswering, TFDebertaV2ForSequenceClassification,
                    TFDebertaV2ForTokenClassification)
from deberta_core.weight_names import LoadingInfo

from .pretrained import TFDebertaPreTrainedModel, TFDebertaV2PreTrainedModel
from .pretraining import TFDebertaV2ForReplacedTokenDetection, TFDebertaV2ForRTDPretraining

__all__ = [
    "DebertaConfig", "DebertaV2Config", "LoadingInfo",
    "TFDebertaPreTrainedModel", "TFDebertaV2PreTrainedModel",
    "TFDebertaModel", "TFDebertaForMaskedLM", "TFDebertaForSequenceClassification",
    "TFDebertaForTokenClassification", "TFDebertaForQuestionAnswering",
    "TFDebertaV2Model", "TFDebertaV2ForMaskedLM", "TFDebertaV2ForSequenceClassification",
    "TFDebertaV2ForTokenClassification", "TFDebertaV2ForQuestionAnswering", "TFDebertaV2ForMultipleChoice",
    "TFDebertaV2ForReplacedTokenDetection", "TFDebertaV2ForRTDPretraining",
]
