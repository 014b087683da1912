"""Features from real examples: classification encodings, NER labels aligned through word_ids,
question-answering windows whose labels read the gold answer back from the context."""

from __future__ import annotations

import pytest

from deberta_core.tasks import (ClassificationExample, QAExample, TokenExample, align_word_labels,
                                encode_classification, encode_token_classification, prepare_qa_features,
                                read_classification)
from deberta_core.tasks.features import IGNORE_INDEX

from .conftest import SST2_DEV, WNUT_LABELS, data_path, squad_dev, wnut_dev

LABEL2ID = {t: i for i, t in enumerate(WNUT_LABELS)}


def test_classification_encoding(ours_v3):
    examples = read_classification(data_path(*SST2_DEV))[:32]
    out = encode_classification(ours_v3, examples, max_length=16)
    assert out["labels"] == [e.label for e in examples]
    direct = ours_v3([e.text for e in examples], truncation=True, max_length=16)
    assert out["input_ids"] == direct["input_ids"]
    assert max(map(len, out["input_ids"])) == 16
    pairs = [ClassificationExample("A man smiles.", "Someone is happy.", "entailment"),
             ClassificationExample("A man smiles.", "Nobody smiles.", "contradiction")]
    out = encode_classification(ours_v3, pairs, label2id={"contradiction": 0, "entailment": 1}, padding=True)
    assert out["labels"] == [1, 0]
    assert set(out["token_type_ids"][0]) == {0, 1}  # [CLS] A [SEP] | B [SEP]
    with pytest.raises(ValueError, match="pass label2id"):
        encode_classification(ours_v3, pairs)
    with pytest.raises(ValueError, match="not in label2id"):
        encode_classification(ours_v3, pairs, label2id={"entailment": 1})


def test_align_word_labels_by_hand():
    words = [None, 0, 0, 1, 2, 2, 2, None, None]
    assert align_word_labels(words, [1, 0, 3]) == [-100, 1, -100, 0, 3, -100, -100, -100, -100]
    assert align_word_labels(words, [1, 0, 3], label_all_subtokens=True, continuation={1: 2, 3: 4}) == \
        [-100, 1, 2, 0, 3, 4, 4, -100, -100]


@pytest.mark.parametrize("family", ["v3", "v1"])
def test_ner_labels_on_wnut(family, ours_v3, ours_v1):
    tokenizer = ours_v3 if family == "v3" else ours_v1
    examples = wnut_dev()
    out = encode_token_classification(tokenizer, examples, label2id=LABEL2ID)
    assert len(out["labels"]) == 1009
    for e, ids, labels, words in zip(examples, out["input_ids"], out["labels"], out["word_ids"]):
        assert len(labels) == len(ids) == len(words)
        assert labels[0] == labels[-1] == IGNORE_INDEX  # [CLS], [SEP]
        firsts = [i for i, w in enumerate(words) if w is not None and (i == 0 or words[i - 1] != w)]
        assert [labels[i] for i in firsts] == [LABEL2ID[t] for t in e.tags]  # one label per word, on its first token
        assert sum(label != IGNORE_INDEX for label in labels) == len(e.words)
    # every word got at least one token, and multi-token words exist
    assert sum(len(e.words) for e in examples) < sum(len(x) - 2 for x in out["input_ids"])


def test_ner_all_subtokens_and_truncation(ours_v3):
    example = TokenExample(["Stabilized", "Redondo", "Blvd"], ["O", "B-location", "I-location"])
    out = encode_token_classification(ours_v3, [example], label2id=LABEL2ID, label_all_subtokens=True)
    words, labels = out["word_ids"][0], out["labels"][0]
    redondo = [labels[i] for i, w in enumerate(words) if w == 1]
    assert redondo[0] == LABEL2ID["B-location"] and set(redondo[1:]) <= {LABEL2ID["I-location"]}
    short = encode_token_classification(ours_v3, wnut_dev()[:20], label2id=LABEL2ID, max_length=8)
    assert max(map(len, short["input_ids"])) == 8
    with pytest.raises(ValueError, match="is not in label2id"):
        encode_token_classification(ours_v3, [TokenExample(["x"], ["B-ORG"])], label2id=LABEL2ID)
    with pytest.raises(ValueError, match="2 words but 1 tags"):
        encode_token_classification(ours_v3, [TokenExample(["x", "y"], ["O"])], label2id=LABEL2ID)


@pytest.mark.parametrize("family", ["v3", "v1"])
def test_qa_windows_locate_the_answers(family, ours_v3, ours_v1):
    tokenizer = ours_v3 if family == "v3" else ours_v1
    examples = squad_dev()[:400]
    features = prepare_qa_features(tokenizer, examples, max_length=128, doc_stride=32, training=True)
    assert len(features) > len(examples)  # long contexts became several windows
    assert features.example_index == sorted(features.example_index)
    assert set(features.example_index) == set(range(len(examples)))
    found = set()
    for row in range(len(features)):
        assert len(features.input_ids[row]) <= 128
        example = examples[features.example_index[row]]
        offsets = features.offset_mapping[row]
        cls = features.cls_index[row]
        assert cls == 0 and offsets[0] is None
        start, end = features.start_positions[row], features.end_positions[row]
        context_tokens = [i for i, o in enumerate(offsets) if o is not None]
        assert all(offsets[i] is None for i in range(context_tokens[0]))  # the question comes first
        answer = example.answers[0]
        inside = offsets[context_tokens[0]][0] <= answer.start and offsets[context_tokens[-1]][1] >= answer.end
        if not inside:
            assert start == end == cls
            continue
        assert start <= end and offsets[start] is not None and offsets[end] is not None
        span = example.context[offsets[start][0]:offsets[end][1]]
        assert answer.text in span
        assert len(span) - len(answer.text) <= 12  # the tokens around the answer, not more
        found.add(features.example_index[row])
    assert len(found) == len(examples)  # every answer is wholly inside some window
    # windows of one example overlap by doc_stride tokens
    rows = [r for r, i in enumerate(features.example_index) if i == features.example_index[-1]]
    if len(rows) > 1:
        first = [o for o in features.offset_mapping[rows[0]] if o is not None]
        second = [o for o in features.offset_mapping[rows[1]] if o is not None]
        assert first[-32:] == second[:32]


def test_qa_impossible_and_errors(ours_v3):
    impossible = QAExample("x", "Where is Rome?", "Paris is in France.", [], True)
    features = prepare_qa_features(ours_v3, [impossible], training=True)
    assert features.start_positions == features.end_positions == [0]
    pairs = prepare_qa_features(ours_v3, [("Where?", "Paris is in France.")])
    assert pairs.start_positions is None and len(pairs) == 1
    with pytest.raises(ValueError, match="the context is empty"):
        prepare_qa_features(ours_v3, [("Where?", "  ")])
    with pytest.raises(ValueError, match="the question is empty"):
        prepare_qa_features(ours_v3, [("", "Paris is in France.")])
    with pytest.raises(ValueError, match="leaves no room for the context"):
        prepare_qa_features(ours_v3, [("why " * 40, "Paris is in France.")], max_length=32, doc_stride=4)
    with pytest.raises(ValueError, match="too long for its context to be cut into windows"):
        prepare_qa_features(ours_v3, [("why " * 24, "Paris is in France. " * 20)], max_length=32, doc_stride=8)
    with pytest.raises(ValueError, match="doc_stride"):
        prepare_qa_features(ours_v3, [("Where?", "Paris.")], max_length=32, doc_stride=32)
