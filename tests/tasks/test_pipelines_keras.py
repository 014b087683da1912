"""framework="tf": the Keras models behind the same pipelines give the PyTorch results (scores to 1e-5).

The Keras models load the checkpoint transformers saved (PyTorch weights, converted in memory); the
pre- and post-processing is the same code, so every label, token, span and text must be equal.
"""

from __future__ import annotations

import pytest

from .compare import assert_close
from .conftest import squad_dev, sst2_sentences, wnut_dev

pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def _both(our_pipeline, task, name):
    return our_pipeline(task, name, "pt"), our_pipeline(task, name, "tf")


def test_keras_pipeline_is_a_keras_model(our_pipeline):
    import keras

    pipe = our_pipeline("fill-mask", "v3-mlm", "tf")
    assert pipe.framework == "tf" and isinstance(pipe.model, keras.Model)
    assert type(pipe.model).__name__ == "TFDebertaV2ForMaskedLM"


def test_fill_mask_keras(our_pipeline):
    pt, tf = _both(our_pipeline, "fill-mask", "v3-mlm")
    texts = [" ".join(w if i != 2 else "[MASK]" for i, w in enumerate(s.split())) for s in sst2_sentences()[:6]
             if len(s.split()) > 3]
    assert_close(tf(texts, top_k=3), pt(texts, top_k=3))
    assert_close(tf(texts[0], targets=["▁good", "▁bad"]), pt(texts[0], targets=["▁good", "▁bad"]))


@pytest.mark.parametrize("name", ["v3-nli", "v1-sst"])
def test_text_classification_keras(name, our_pipeline):
    pt, tf = _both(our_pipeline, "text-classification", name)
    texts = sst2_sentences()[:10]
    assert_close(tf(texts, top_k=None), pt(texts, top_k=None))
    pairs = [{"text": a, "text_pair": b} for a, b in zip(texts[:4], texts[4:8])]
    assert_close(tf(pairs), pt(pairs))


def test_zero_shot_keras(our_pipeline):
    pt, tf = _both(our_pipeline, "zero-shot-classification", "v3-nli")
    texts = sst2_sentences()[10:14]
    labels = ["good", "bad", "boring"]
    assert_close(tf(texts, candidate_labels=labels), pt(texts, candidate_labels=labels))
    assert_close(tf(texts, candidate_labels=labels, multi_label=True),
                 pt(texts, candidate_labels=labels, multi_label=True))


@pytest.mark.parametrize("name", ["v3-ner", "v1-ner"])
def test_token_classification_keras(name, our_pipeline):
    pt, tf = _both(our_pipeline, "token-classification", name)
    sentences = [" ".join(e.words) for e in wnut_dev()[:12]]
    for strategy in ("none", "simple", "average"):
        got = tf(sentences, aggregation_strategy=strategy)
        assert_close(got, pt(sentences, aggregation_strategy=strategy))
        assert sum(map(len, got)) > 0


@pytest.mark.parametrize("name", ["v3-qa", "v1-qa"])
def test_question_answering_keras(name, our_pipeline):
    pt, tf = _both(our_pipeline, "question-answering", name)
    examples = squad_dev()[::211][:8]
    questions, contexts = [e.question for e in examples], [e.context for e in examples]
    for kwargs in ({"max_seq_len": 64, "doc_stride": 16, "top_k": 2}, {"handle_impossible_answer": True}):
        assert_close(tf(question=questions, context=contexts, **kwargs),
                     pt(question=questions, context=contexts, **kwargs))
