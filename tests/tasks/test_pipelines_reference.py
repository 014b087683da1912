"""Our pipelines (PyTorch) equal the transformers==4.57.6 pipelines on the same weights and tokenizer.

Real inputs from data/: SST-2 sentences, WNUT-17 sentences, SQuAD v1.1 questions. Labels, tokens and
texts must be equal, scores within 1e-5, character spans equal up to the leading-space convention
(see compare.py). Inputs the reference fast v3 tokenizer encodes differently (it emits [UNK] where
ours falls back to bytes) are left out, since the models then see different ids.
"""

from __future__ import annotations

import copy

import pytest

from .compare import assert_close, normalize_answer, normalize_entity
from .conftest import same_ids, squad_dev, sst2_sentences, wnut_dev

FAMILIES = ("v3", "v1")

pytestmark = [
    # the reference's own noise
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Passing a list of SQuAD examples:FutureWarning"),
    pytest.mark.filterwarnings("ignore:Tokenizer does not support real words:UserWarning"),
]


def _tokenizers(family, ours_v3, ours_v1, ref_tokenizers):
    return (ours_v3 if family == "v3" else ours_v1), ref_tokenizers[family]


def _masked(sentences, mask="[MASK]"):
    out = []
    for s in sentences:
        words = s.split()
        if len(words) >= 3:
            words[len(words) // 2] = mask
            out.append(" ".join(words))
    return out


# ---------------------------------------------------------------------------- fill-mask
@pytest.mark.parametrize("family", FAMILIES)
def test_fill_mask(family, our_pipeline, reference_pipeline, ours_v3, ours_v1, ref_tokenizers):
    ours_tok, ref_tok = _tokenizers(family, ours_v3, ours_v1, ref_tokenizers)
    texts = same_ids(ref_tok, ours_tok, _masked(sst2_sentences()[:12]))[:8]
    assert len(texts) == 8
    ours, ref = our_pipeline("fill-mask", f"{family}-mlm"), reference_pipeline("fill-mask", f"{family}-mlm")
    assert_close(ours(texts), ref(texts))
    assert_close(ours(texts[0], top_k=3), ref(texts[0], top_k=3))
    assert_close(ours([texts[1]]), ref([texts[1]]))  # a list of one gives that text's result
    two = "the [MASK] is long and the [MASK] is short ."
    assert_close(ours(two, top_k=2), ref(two, top_k=2))  # one list per mask
    targets = ["good", "bad", "film"] if family == "v1" else ["▁good", "bad", "▁film"]
    assert_close(ours(texts[2], targets=targets), ref(texts[2], targets=targets))
    assert_close(ours(texts[3], targets="movie", top_k=4), ref(texts[3], targets="movie", top_k=4))


# ---------------------------------------------------------------------------- text classification
@pytest.mark.parametrize("name", ["v3-nli", "v1-sst"])
def test_text_classification(name, our_pipeline, reference_pipeline, ours_v3, ours_v1, ref_tokenizers):
    family = name[:2]
    ours_tok, ref_tok = _tokenizers(family, ours_v3, ours_v1, ref_tokenizers)
    texts = same_ids(ref_tok, ours_tok, sst2_sentences()[:20])[:12]
    assert len(texts) == 12
    ours, ref = our_pipeline("text-classification", name), reference_pipeline("text-classification", name)
    assert_close(ours(texts), ref(texts))
    assert_close(ours(texts[0]), ref(texts[0]))  # a single string: [ {label, score} ]
    assert_close(ours(texts[:4], top_k=None), ref(texts[:4], top_k=None))
    assert_close(ours(texts[1], top_k=2), ref(texts[1], top_k=2))
    assert_close(ours(texts[:3], top_k=1), ref(texts[:3], top_k=1))
    for function in ("sigmoid", "none", "softmax"):
        assert_close(ours(texts[:3], function_to_apply=function), ref(texts[:3], function_to_apply=function))
    pairs = [{"text": a, "text_pair": b} for a, b in zip(texts[:5], texts[5:10])]
    assert_close(ours(pairs), ref(pairs))
    assert_close(ours(pairs[0]), ref(pairs[0]))
    assert_close(ours(pairs[1], top_k=None), ref(pairs[1], top_k=None))


def test_zero_shot(our_pipeline, reference_pipeline, ours_v3, ref_tokenizers):
    texts = same_ids(ref_tokenizers["v3"], ours_v3, sst2_sentences()[20:40])[:6]
    assert len(texts) == 6
    ours = our_pipeline("zero-shot-classification", "v3-nli")
    ref = reference_pipeline("zero-shot-classification", "v3-nli")
    labels = ["a good film", "a bad film", "politics", "sport"]
    assert_close(ours(texts, candidate_labels=labels), ref(texts, candidate_labels=labels))
    assert_close(ours(texts[0], candidate_labels=labels), ref(texts[0], candidate_labels=labels))
    assert_close(ours(texts[:3], candidate_labels=labels, multi_label=True),
                 ref(texts[:3], candidate_labels=labels, multi_label=True))
    assert_close(ours(texts[1], "cinema, music , food"), ref(texts[1], "cinema, music , food"))
    assert_close(ours(texts[2], candidate_labels=["cinema"]), ref(texts[2], candidate_labels=["cinema"]))
    template = "The review is about {}."
    assert_close(ours(texts[3], candidate_labels=labels, hypothesis_template=template),
                 ref(texts[3], candidate_labels=labels, hypothesis_template=template))


# ---------------------------------------------------------------------------- token classification
def _compare_entities(ours_result, ref_result, sentences):
    assert len(ours_result) == len(ref_result)
    for sentence, got, want in zip(sentences, ours_result, ref_result):
        assert_close([normalize_entity(e, sentence) for e in got], [normalize_entity(e, sentence) for e in want],
                     f"entities of {sentence!r}")
        for entity in got:  # our spans are the characters of the word, no leading space
            assert sentence[entity["start"]:entity["end"]] == sentence[entity["start"]:entity["end"]].strip()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_token_classification(family, strategy, our_pipeline, reference_pipeline, ours_v3, ours_v1,
                              ref_tokenizers):
    ours_tok, ref_tok = _tokenizers(family, ours_v3, ours_v1, ref_tokenizers)
    sentences = same_ids(ref_tok, ours_tok, [" ".join(e.words) for e in wnut_dev()[:40]])[:16]
    assert len(sentences) == 16
    ours = our_pipeline("token-classification", f"{family}-ner")
    ref = reference_pipeline("token-classification", f"{family}-ner")
    got = ours(sentences, aggregation_strategy=strategy)
    _compare_entities(got, ref(sentences, aggregation_strategy=strategy), sentences)
    assert sum(map(len, got)) > 3 * len(sentences)  # a random model tags plenty of tokens
    if strategy in ("none", "simple"):
        kept = ["O", "B-person", "I-person"]
        _compare_entities(ours(sentences[:6], aggregation_strategy=strategy, ignore_labels=kept),
                          ref(sentences[:6], aggregation_strategy=strategy, ignore_labels=kept), sentences[:6])
        single = sentences[6]
        _compare_entities([ours(single, aggregation_strategy=strategy)],
                          [ref(single, aggregation_strategy=strategy)], [single])


def test_token_classification_windows(ours_v3, ref_tokenizers, model_dirs, reference_pipeline):
    """Long texts with stride: overlapping windows of model_max_length tokens, entities merged."""
    from deberta_core.pipelines import pipeline
    from deberta_core.tokenization import DebertaV2TokenizerFast

    short_ours = DebertaV2TokenizerFast.from_pretrained(model_dirs["v3-ner"], model_max_length=24)
    short_ref = copy.deepcopy(ref_tokenizers["v3"])
    short_ref.model_max_length = 24
    texts = [" ".join(e.words) for e in wnut_dev()[:80] if len(e.words) > 25]
    texts = same_ids(ref_tokenizers["v3"], ours_v3, texts)[:5]
    assert texts
    ref_model = reference_pipeline("token-classification", "v3-ner").model
    transformers = pytest.importorskip("transformers")
    ref = transformers.pipeline("token-classification", model=ref_model, tokenizer=short_ref, framework="pt")
    ours = pipeline("token-classification", model=str(model_dirs["v3-ner"]), tokenizer=short_ours)
    for strategy in ("simple", "first", "max"):
        _compare_entities(ours(texts, aggregation_strategy=strategy, stride=8, ignore_labels=[]),
                          ref(texts, aggregation_strategy=strategy, stride=8, ignore_labels=[]), texts)


def test_token_classification_split_into_words(our_pipeline, reference_pipeline, ours_v3, ref_tokenizers):
    examples = [e for e in wnut_dev()[:30] if same_ids(ref_tokenizers["v3"], ours_v3, [" ".join(e.words)])][:6]
    words = [e.words for e in examples]
    sentences = [" ".join(w) for w in words]
    ours = our_pipeline("token-classification", "v3-ner")
    ref = reference_pipeline("token-classification", "v3-ner")
    for strategy in ("none", "simple"):
        _compare_entities(ours(words, is_split_into_words=True, aggregation_strategy=strategy),
                          ref(words, is_split_into_words=True, aggregation_strategy=strategy), sentences)
    # one list of words is a batch of one
    _compare_entities(ours(words[0], is_split_into_words=True), ref(words[0], is_split_into_words=True),
                      sentences[:1])


# ---------------------------------------------------------------------------- question answering
def _as_list(result):
    return result if isinstance(result, list) else [result]


def _compare_answers(got, want, n):
    if n == 1:
        got, want = [got], [want]
    assert len(got) == len(want) == n
    for a, b in zip(got, want):
        assert isinstance(a, list) == isinstance(b, list), (a, b)
        assert_close([normalize_answer(x) for x in _as_list(a)], [normalize_answer(x) for x in _as_list(b)])


QA_SETTINGS = [
    {},
    {"max_seq_len": 64, "doc_stride": 16},
    {"max_seq_len": 48, "doc_stride": 12, "top_k": 3, "handle_impossible_answer": True},
    {"top_k": 4, "align_to_words": False, "max_answer_len": 5, "max_seq_len": 96},
]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("setting", range(len(QA_SETTINGS)))
def test_question_answering(family, setting, our_pipeline, reference_pipeline, ours_v3, ours_v1, ref_tokenizers):
    ours_tok, ref_tok = _tokenizers(family, ours_v3, ours_v1, ref_tokenizers)
    examples = [e for e in squad_dev()[::97][:30] if same_ids(ref_tok, ours_tok, [e.question, e.context]) ==
                [e.question, e.context]][:10 if setting else 6]
    assert len(examples) == (10 if setting else 6)
    ours = our_pipeline("question-answering", f"{family}-qa")
    ref = reference_pipeline("question-answering", f"{family}-qa")
    kwargs = QA_SETTINGS[setting]
    questions, contexts = [e.question for e in examples], [e.context for e in examples]
    _compare_answers(ours(question=questions, context=contexts, **kwargs),
                     ref(question=questions, context=contexts, **kwargs), len(examples))
    if setting == 1:
        one = examples[0]
        _compare_answers(ours(question=one.question, context=one.context, **kwargs),
                         ref(question=one.question, context=one.context, **kwargs), 1)
        _compare_answers(ours({"question": one.question, "context": one.context}, **kwargs),
                         ref({"question": one.question, "context": one.context}, **kwargs), 1)
        # a list of one example gives its result alone
        _compare_answers(ours(question=questions[:1], context=contexts[:1], **kwargs),
                         ref(question=questions[:1], context=contexts[:1], **kwargs), 1)
        # several questions on one context
        _compare_answers(ours(question=questions[:3], context=one.context, **kwargs),
                         ref(question=questions[:3], context=one.context, **kwargs), 3)
