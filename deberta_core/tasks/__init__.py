"""Framework-neutral task layer: read data sets, turn them into model inputs, decode outputs, score.

One concept per module, numpy and the standard library only (no torch, no keras):

* :mod:`.readers`: classification files (TSV/CSV/JSONL/JSON), CoNLL NER, SQuAD v1.1/v2 JSON.
* :mod:`.features`: examples -> tokenizer outputs with labels (classification, NER label alignment,
  question-answering windows with offsets and start/end positions).
* :mod:`.postprocess`: softmax/sigmoid, question-answering span decoding over windows, and
  token-classification entity grouping (the transformers pipeline semantics).
* :mod:`.metrics`: accuracy and F1, entity-level precision/recall/F1 as ``seqeval`` computes them,
  and the official SQuAD v1.1 / v2.0 exact match and F1.
"""

from .features import (QAFeatures, align_word_labels, encode_classification, encode_token_classification,
                       prepare_qa_features)
from .metrics import (accuracy, entity_scores, f1, get_entities, normalize_answer, squad_evaluate,
                      squad_exact_match, squad_f1, squad_v2_evaluate)
from .postprocess import (aggregate_entities, decode_spans, gather_pre_entities, group_entities,
                          merge_overlapping_entities, qa_answers, select_spans, sigmoid, softmax,
                          squad_predictions)
from .readers import (Answer, ClassificationExample, QAExample, TokenExample, conll_label_list, label_list,
                      read_classification, read_conll, read_squad)

__all__ = [
    "Answer", "ClassificationExample", "QAExample", "QAFeatures", "TokenExample",
    "accuracy", "aggregate_entities", "align_word_labels", "conll_label_list", "decode_spans",
    "encode_classification", "encode_token_classification", "entity_scores", "f1", "gather_pre_entities",
    "get_entities", "group_entities", "label_list", "merge_overlapping_entities", "normalize_answer",
    "prepare_qa_features", "qa_answers", "read_classification", "read_conll", "read_squad", "select_spans",
    "sigmoid", "softmax", "squad_evaluate", "squad_exact_match", "squad_f1", "squad_predictions",
    "squad_v2_evaluate",
]
