"""Readers on the real files of data/ (counts from each folder's PROVENANCE.md) and on small
hand-written files for the other formats, the options and the errors."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from deberta_core.tasks import (conll_label_list, get_entities, label_list, read_classification, read_conll,
                                read_squad)

from .conftest import SQUAD_DEV, SST2_DEV, WNUT_DEV, WNUT_LABELS, data_path


# ---------------------------------------------------------------------------- real files
def test_sst2_glue_dev():
    examples = read_classification(data_path(*SST2_DEV))
    assert len(examples) == 872
    assert Counter(e.label for e in examples) == {1: 444, 0: 428}
    first = examples[0]
    assert first.text == "it 's a charming and often affecting journey . " and first.label == 1
    assert first.text_pair is None and first.guid.endswith("glue_sst2_dev.tsv:2")
    assert label_list(examples) == [0, 1]


def test_sst2_alps_splits():
    assert len(read_classification(data_path("datasets", "sst2", "alps_dev.tsv"))) == 6735
    assert len(read_classification(data_path("datasets", "sst2", "alps_train.tsv"))) == 60614


@pytest.mark.parametrize("file,sentences,tokens,entities", [
    ("emerging.dev.conll", 1009, 15733, 836),
    ("wnut17train.conll", 3394, 62730, 1975),  # sentences separated by lines holding only a tab
    ("emerging.test.annotated", 1287, 23394, 1079),
])
def test_wnut17(file, sentences, tokens, entities):
    examples = read_conll(data_path("datasets", "wnut17", file))
    assert len(examples) == sentences
    assert sum(len(e.words) for e in examples) == tokens
    assert all(len(e.words) == len(e.tags) for e in examples)
    assert len(get_entities([e.tags for e in examples])) == entities
    assert conll_label_list(examples) == WNUT_LABELS


def test_wnut17_first_sentences():
    examples = read_conll(data_path(*WNUT_DEV))
    assert examples[0].words[:5] == ["Stabilized", "approach", "or", "not", "?"]
    assert examples[1].words[:7] == ["You", "should", "'", "ve", "stayed", "on", "Redondo"]
    assert examples[1].tags[6:9] == ["B-location", "I-location", "I-location"]


def test_squad_v11_dev():
    examples = read_squad(data_path(*SQUAD_DEV))
    assert len(examples) == 10570
    assert len({e.context for e in examples}) == 2067 and len({e.title for e in examples}) == 48
    assert not any(e.is_impossible for e in examples)
    assert sum(len(e.answers) for e in examples) == 34726
    first = examples[0]
    assert first.title == "Super_Bowl_50" and first.question == "Which NFL team represented the AFC at Super Bowl 50?"
    assert first.answer_texts == ["Denver Broncos"] * 3
    for e in examples:
        for a in e.answers:
            assert e.context[a.start:a.end] == a.text


# ---------------------------------------------------------------------------- other formats
def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_pairs_with_quotes_and_string_labels(tmp_path):
    path = _write(tmp_path / "nli.csv", 'premise,hypothesis,label\n"A man, smiling.",A person smiles.,entailment\n'
                                       '"He said ""no""",He agreed.,contradiction\n')
    examples = read_classification(path)
    assert [(e.text, e.text_pair, e.label) for e in examples] == [
        ("A man, smiling.", "A person smiles.", "entailment"), ('He said "no"', "He agreed.", "contradiction")]
    assert label_list(examples) == ["contradiction", "entailment"]


def test_tsv_quotes_are_plain_characters(tmp_path):
    path = _write(tmp_path / "x.tsv", 'sentence\tlabel\n"quoted" start\t1\nan " odd quote\t0\n')
    assert [e.text for e in read_classification(path)] == ['"quoted" start', 'an " odd quote']


def test_byte_order_mark(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("sentence,label\nhello,1\n".encode("utf-8-sig"))
    assert [(e.text, e.label) for e in read_classification(path)] == [("hello", 1)]


def test_jsonl_and_json(tmp_path):
    rows = [{"sentence1": "a b", "sentence2": "c d", "label": 1, "idx": 0},
            {"sentence1": "e f", "sentence2": "g h", "label": 0, "idx": 1}]
    jsonl = _write(tmp_path / "x.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    js = _write(tmp_path / "x.json", json.dumps({"data": rows}))
    for path in (jsonl, js):
        examples = read_classification(path)
        assert [(e.text, e.text_pair, e.label) for e in examples] == [("a b", "c d", 1), ("e f", "g h", 0)]


def test_columns_labels_and_headerless(tmp_path):
    path = _write(tmp_path / "x.tsv", "id\treview\tstars\n1\tgood\t4.5\n2\tbad\t1\n")
    examples = read_classification(path, text_column="review", label_column="stars")
    assert [(e.text, e.label) for e in examples] == [("good", 4.5), ("bad", 1.0)]
    assert [e.label for e in read_classification(path, text_column="review", label_column="stars",
                                                 label_type="str")] == ["4.5", "1"]
    unlabelled = _write(tmp_path / "test.tsv", "index\tsentence\n0\thello\n1\tworld\n")
    assert [e.label for e in read_classification(unlabelled)] == [None, None]
    bare = _write(tmp_path / "bare.tsv", "hello there\t1\nbye\t0\n")
    examples = read_classification(bare, has_header=False)
    assert [(e.text, e.label) for e in examples] == [("hello there", 1), ("bye", 0)]


def test_conll_docstart_columns_and_whitespace(tmp_path):
    path = _write(tmp_path / "c.conll", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
                                        "-DOCSTART- -X- -X- O\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n")
    examples = read_conll(path)
    assert [(e.words, e.tags) for e in examples] == [(["EU", "rejects"], ["B-ORG", "O"]),
                                                     (["Peter", "Blackburn"], ["B-PER", "I-PER"])]
    assert [e.tags for e in read_conll(path, tag_column=2)] == [["B-NP", "B-VP"], ["B-NP", "I-NP"]]


def test_squad_v2(tmp_path):
    data = {"version": "v2.0", "data": [{"title": "T", "paragraphs": [{"context": "Paris is in France.", "qas": [
        {"id": "a", "question": "Where is Paris?", "answers": [{"text": "France", "answer_start": 12}],
         "is_impossible": False},
        {"id": "b", "question": "Where is Rome?", "answers": [], "is_impossible": True,
         "plausible_answers": [{"text": "France", "answer_start": 12}]}]}]}]}
    path = _write(tmp_path / "v2.json", json.dumps(data))
    a, b = read_squad(path)
    assert (a.id, a.answer_texts, a.is_impossible) == ("a", ["France"], False)
    assert (b.id, b.answers, b.is_impossible) == ("b", [], True)


# ---------------------------------------------------------------------------- errors
def test_bad_classification_files(tmp_path):
    bad_row = _write(tmp_path / "bad.tsv", "sentence\tlabel\nfine\t1\ntoo\tmany\tfields\n")
    with pytest.raises(ValueError, match=r"bad\.tsv:3: expected 2 TSV fields, got 3"):
        read_classification(bad_row)
    bad_json = _write(tmp_path / "bad.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n{"text": \n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:3: not valid JSON"):
        read_classification(bad_json)
    missing = _write(tmp_path / "m.jsonl", '{"text": "a", "label": 1}\n{"label": 0}\n')
    with pytest.raises(ValueError, match=r"m\.jsonl:2: missing key"):
        read_classification(missing)
    empty_text = _write(tmp_path / "e.tsv", "sentence\tlabel\n \t1\n")
    with pytest.raises(ValueError, match=r"e\.tsv:2: column 'sentence' is empty"):
        read_classification(empty_text)
    no_text = _write(tmp_path / "n.tsv", "foo\tlabel\nx\t1\n")
    with pytest.raises(ValueError, match="none of the default text columns"):
        read_classification(no_text)
    with pytest.raises(ValueError, match="label_column='gold' is not a column"):
        read_classification(_write(tmp_path / "g.tsv", "sentence\tlabel\nx\t1\n"), label_column="gold")
    with pytest.raises(ValueError, match="cannot tell the format"):
        read_classification(_write(tmp_path / "data.txt", "x"))
    with pytest.raises(ValueError, match=r"int"):
        read_classification(_write(tmp_path / "l.tsv", "sentence\tlabel\nx\tpos\n"), label_type="int")
    with pytest.raises(FileNotFoundError):
        read_classification(tmp_path / "absent.tsv")


def test_bad_conll(tmp_path):
    path = _write(tmp_path / "bad.conll", "EU\tB-ORG\nrejects\tO\n\nlonely\n")
    with pytest.raises(ValueError, match=r"bad\.conll:4: expected a token and a tag column, got 1"):
        read_conll(path)


def test_bad_squad(tmp_path):
    def squad(qa, version="1.1"):
        return json.dumps({"version": version, "data": [{"title": "T", "paragraphs": [
            {"context": "Paris is in France.", "qas": [qa]}]}]})

    moved = _write(tmp_path / "moved.json", squad({"id": "q1", "question": "Where?",
                                                   "answers": [{"text": "France", "answer_start": 3}]}))
    with pytest.raises(ValueError, match=r"moved\.json: data\[0\]\.paragraphs\[0\]\.qas\[0\] \(id q1\).*not at answer_start=3"):
        read_squad(moved)
    assert read_squad(moved, check_answers=False)[0].answers[0].start == 3
    unanswered = _write(tmp_path / "u.json", squad({"id": "q2", "question": "Where?", "answers": []}))
    with pytest.raises(ValueError, match=r"id q2.*v1\.1 question needs at least one answer"):
        read_squad(unanswered)
    assert read_squad(unanswered, version="2.0")[0].is_impossible
    no_question = _write(tmp_path / "q.json", squad({"id": "q3", "answers": []}, "v2.0"))
    with pytest.raises(ValueError, match=r"id q3.*'question'"):
        read_squad(no_question)
    broken = _write(tmp_path / "broken.json", '{"data": [\n  {"title": "x",\n  "paragraphs": ]}\n')
    with pytest.raises(ValueError, match=r"broken\.json:3: not valid JSON"):
        read_squad(broken)
    with pytest.raises(ValueError, match="not SQuAD JSON"):
        read_squad(_write(tmp_path / "list.json", "[1, 2]"))
