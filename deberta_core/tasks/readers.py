"""Read task data: classification tables, CoNLL named-entity files and SQuAD JSON.

Every reader returns plain dataclasses and raises ``ValueError`` naming the file and the line (or,
for SQuAD, the JSON path and question id) of malformed input, so a bad row never turns into a
silently wrong example.

* :func:`read_classification`: TSV, CSV, JSONL or a JSON list; one text or a pair; string, int or
  float labels (or none, for unlabelled test files). Column names default to the GLUE/NLI names.
* :func:`read_conll`: ``token<TAB>tag`` (or whitespace-separated columns), blank lines between
  sentences, ``-DOCSTART-`` lines skipped.
* :func:`read_squad`: SQuAD v1.1 and v2.0 (``is_impossible``, empty answer lists).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

# Default column names, tried in order: pairs first (a file with sentence1 and sentence2 is a pair
# task), then single texts.
PAIR_COLUMNS = (("sentence1", "sentence2"), ("premise", "hypothesis"), ("question1", "question2"),
                ("question", "sentence"), ("text", "text_pair"))
TEXT_COLUMNS = ("sentence", "text", "sentence1", "premise", "review", "content")
LABEL_COLUMNS = ("label", "labels", "gold_label", "class")

_FORMATS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}


@dataclass
class ClassificationExample:
    """One row of a classification file. ``label`` is None for unlabelled data."""

    text: str
    text_pair: str | None = None
    label: str | int | float | None = None
    guid: str | None = None  # "file:line", for error messages and joins


@dataclass
class TokenExample:
    """One sentence of a CoNLL file: its words and their tags (same length)."""

    words: list[str]
    tags: list[str]
    guid: str | None = None


@dataclass
class Answer:
    """A gold answer: its text and the character index where it starts in the context."""

    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass
class QAExample:
    """One SQuAD question. ``answers`` is empty for an unanswerable (v2) question."""

    id: str
    question: str
    context: str
    answers: list[Answer] = field(default_factory=list)
    is_impossible: bool = False
    title: str = ""

    @property
    def answer_texts(self) -> list[str]:
        return [a.text for a in self.answers]


# ----------------------------------------------------------------------------- helpers
def _path(path) -> Path:
    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in ("tsv", "csv", "jsonl", "json"):
            raise ValueError(f"unknown format {fmt!r}: expected 'tsv', 'csv', 'jsonl' or 'json'")
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    for suffix in reversed(suffixes):
        if suffix in _FORMATS:
            return _FORMATS[suffix]
    raise ValueError(f"{path}: cannot tell the format from the file name; pass format='tsv', 'csv', "
                     "'jsonl' or 'json'")


def _convert_labels(examples: list[ClassificationExample], label_type: str | None, path: Path) -> None:
    """Labels read as text become int (or float) when every one of them parses as such."""
    raw = [e.label for e in examples if e.label is not None]
    if label_type == "str" or not raw:
        if label_type == "str":
            for e in examples:
                if e.label is not None:
                    e.label = str(e.label)
        return
    if label_type in (None, "auto"):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
            return
        strings = [str(v).strip() for v in raw]
        try:
            converted = [int(s) for s in strings]
        except ValueError:
            try:
                converted = [float(s) for s in strings]
            except ValueError:
                return
        it = iter(converted)
        for e in examples:
            if e.label is not None:
                e.label = next(it)
        return
    cast = {"int": int, "float": float}.get(label_type)
    if cast is None:
        raise ValueError(f"label_type must be 'auto', 'str', 'int' or 'float', got {label_type!r}")
    for e in examples:
        if e.label is None:
            continue
        try:
            e.label = cast(str(e.label).strip()) if cast is int else cast(e.label)
        except ValueError:
            raise ValueError(f"{e.guid}: label {e.label!r} is not {'an' if cast is int else 'a'} "
                             f"{label_type}") from None


def _pick_columns(names: Sequence[str], where: str, text_column, text_pair_column, label_column,
                  explicit_label: bool):
    """(text, pair-or-None, label-or-None) column names for a table whose columns are ``names``."""
    present = set(names)
    if text_column is None:
        for first, second in PAIR_COLUMNS:
            if first in present and second in present and text_pair_column is None:
                text_column, text_pair_column = first, second
                break
        else:
            text_column = next((c for c in TEXT_COLUMNS if c in present), None)
        if text_column is None:
            raise ValueError(f"{where}: none of the default text columns {list(TEXT_COLUMNS)} is present "
                             f"(columns: {list(names)}); pass text_column=")
    for what, column in (("text_column", text_column), ("text_pair_column", text_pair_column)):
        if column is not None and column not in present:
            raise ValueError(f"{where}: {what}={column!r} is not a column (columns: {list(names)})")
    if label_column is None:
        label_column = next((c for c in LABEL_COLUMNS if c in present), None)
    elif label_column not in present:
        if explicit_label:
            raise ValueError(f"{where}: label_column={label_column!r} is not a column (columns: {list(names)})")
        label_column = None
    return text_column, text_pair_column, label_column


def _make_example(record, text_column, pair_column, label_column, guid: str) -> ClassificationExample:
    def text_of(column):
        value = record[column]
        if not isinstance(value, str):
            raise ValueError(f"{guid}: column {column!r} must hold text, got {type(value).__name__} {value!r}")
        if not value.strip():
            raise ValueError(f"{guid}: column {column!r} is empty")
        return value

    label = None
    if label_column is not None:
        label = record[label_column]
        if isinstance(label, str):
            label = label.strip()
            if label == "":
                raise ValueError(f"{guid}: the label (column {label_column!r}) is empty")
        elif label is not None and (isinstance(label, bool) or not isinstance(label, (int, float))):
            raise ValueError(f"{guid}: the label must be a string or a number, got {label!r}")
    return ClassificationExample(text_of(text_column), text_of(pair_column) if pair_column is not None else None,
                                 label, guid)


# ----------------------------------------------------------------------------- classification
def read_classification(path, *, format: str | None = None, text_column: str | int | None = None,
                        text_pair_column: str | int | None = None, label_column: str | int | None = None,
                        has_header: bool = True, label_type: str | None = "auto",
                        encoding: str = "utf-8-sig") -> list[ClassificationExample]:
    """Read a classification file into :class:`ClassificationExample` rows.

    format: "tsv", "csv", "jsonl" (one JSON object a line) or "json" (a list of objects, or an object
    with a "data" list); by default from the file suffix. TSV is read without quote handling (the
    GLUE convention: a ``"`` is an ordinary character), CSV with standard quoting.
    text_column / text_pair_column: column names (or, with ``has_header=False``, 0-based indices);
    by default the first of sentence1+sentence2, premise+hypothesis, question1+question2,
    question+sentence, text+text_pair present, else sentence, text, ... (single text).
    label_column: by default the first of label, labels, gold_label, class present; a file without one
    gives examples with ``label=None``. label_type: "auto" (int when every label is an integer,
    float when every one is a number, str otherwise), "str", "int" or "float".
    """
    path = _path(path)
    fmt = _format_of(path, format)
    explicit_label = label_column is not None
    if fmt in ("tsv", "csv"):
        examples = _read_table(path, fmt, text_column, text_pair_column, label_column, has_header,
                               explicit_label, encoding)
    else:
        examples = _read_json_records(path, fmt, text_column, text_pair_column, label_column, explicit_label,
                                      encoding)
    _convert_labels(examples, label_type, path)
    return examples


def _read_table(path, fmt, text_column, pair_column, label_column, has_header, explicit_label, encoding):
    options = dict(delimiter="\t", quoting=csv.QUOTE_NONE) if fmt == "tsv" else dict(delimiter=",")
    examples = []
    with open(path, encoding=encoding, newline="") as f:
        reader = csv.reader(f, **options)
        try:
            if has_header:
                header = next(reader, None)
                if header is None:
                    raise ValueError(f"{path}: the file is empty (expected a header line)")
                if len(set(header)) != len(header):
                    raise ValueError(f"{path}:1: the header repeats a column name: {header}")
                names = header
            else:
                first = next(reader, None)
                if first is None:
                    raise ValueError(f"{path}: the file is empty")
                names = list(range(len(first)))
                text_column = 0 if text_column is None else text_column
                if label_column is None and len(first) > (2 if pair_column is not None else 1):
                    label_column = len(first) - 1
                reader = _chain([first], reader)
            if has_header:
                text_column, pair_column, label_column = _pick_columns(
                    names, str(path), text_column, pair_column, label_column, explicit_label)
            else:
                for what, column in (("text_column", text_column), ("text_pair_column", pair_column),
                                     ("label_column", label_column)):
                    if column is not None and not (isinstance(column, int) and 0 <= column < len(names)):
                        raise ValueError(f"{path}: without a header {what} must be a column index in "
                                         f"0..{len(names) - 1}, got {column!r}")
            width = len(names)
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line
                if len(row) != width:
                    raise ValueError(f"{where}: expected {width} {fmt.upper()} fields, got {len(row)}"
                                     + (" (a tab inside a text?)" if fmt == "tsv" else ""))
                record = dict(zip(names, row))
                examples.append(_make_example(record, text_column, pair_column, label_column, where))
        except csv.Error as e:
            raise ValueError(f"{path}:{reader.line_num}: malformed {fmt.upper()}: {e}") from None
    return examples


class _chain:
    """A csv reader with some rows put back in front; keeps ``line_num``."""

    def __init__(self, first, reader):
        self._first, self._reader = list(first), reader

    @property
    def line_num(self):
        return self._reader.line_num

    def __iter__(self):
        yield from self._first
        yield from self._reader


def _read_json_records(path, fmt, text_column, pair_column, label_column, explicit_label, encoding):
    records: list[tuple[str, Any]] = []
    if fmt == "jsonl":
        with open(path, encoding=encoding) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    records.append((f"{path}:{number}", json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{number}: not valid JSON ({e.msg} at column {e.colno})") from None
    else:
        data = _load_json(path, encoding)
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of objects (or an object with a 'data' list)")
        records = [(f"{path}: record {i}", r) for i, r in enumerate(data)]
    examples = []
    chosen = None
    for where, record in records:
        if not isinstance(record, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
        if chosen is None:
            chosen = _pick_columns(list(record), where, text_column, pair_column, label_column, explicit_label)
        text_c, pair_c, label_c = chosen
        missing = [c for c in (text_c, pair_c, label_c) if c is not None and c not in record]
        if missing:
            raise ValueError(f"{where}: missing key(s) {missing}")
        examples.append(_make_example(record, text_c, pair_c, label_c, where))
    return examples


def _load_json(path: Path, encoding: str):
    text = path.read_text(encoding=encoding)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})") from None


def label_list(labels: Iterable) -> list:
    """The distinct labels, sorted (numbers numerically, strings alphabetically): index = class id.

    Accepts examples or bare labels; None (unlabelled) is skipped.
    """
    values = {getattr(x, "label", x) for x in labels}
    values.discard(None)
    if not values:
        return []
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return sorted(values)
    return sorted(str(v) for v in values)


# ----------------------------------------------------------------------------- CoNLL
def read_conll(path, *, token_column: int = 0, tag_column: int = -1, delimiter: str | None = None,
               encoding: str = "utf-8-sig") -> list[TokenExample]:
    """Read a CoNLL-format file: one ``token ... tag`` line per word, blank lines between sentences.

    Columns are split on tabs when the line has one (tokens may then contain spaces), else on any
    whitespace; ``delimiter`` forces a separator. ``-DOCSTART-`` lines are skipped, and so are lines
    of whitespace only (they separate sentences, as a blank line does).
    """
    path = _path(path)
    examples: list[TokenExample] = []
    words: list[str] = []
    tags: list[str] = []
    start_line = 0
    with open(path, encoding=encoding) as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                if words:
                    examples.append(TokenExample(words, tags, f"{path}:{start_line}"))
                    words, tags = [], []
                continue
            if line.startswith("-DOCSTART-"):
                if words:
                    examples.append(TokenExample(words, tags, f"{path}:{start_line}"))
                    words, tags = [], []
                continue
            if delimiter is not None:
                columns = line.split(delimiter)
            elif "\t" in line:
                columns = line.split("\t")
            else:
                columns = line.split()
            try:
                token, tag = columns[token_column], columns[tag_column]
            except IndexError:
                raise ValueError(f"{path}:{number}: expected a token and a tag column, got {len(columns)} "
                                 f"column(s): {line!r}") from None
            if len(columns) < 2:
                raise ValueError(f"{path}:{number}: expected a token and a tag column, got 1 column: {line!r}")
            token, tag = token.strip(), tag.strip()
            if not token or not tag:
                raise ValueError(f"{path}:{number}: empty {'token' if not token else 'tag'} in {line!r}")
            if not words:
                start_line = number
            words.append(token)
            tags.append(tag)
    if words:
        examples.append(TokenExample(words, tags, f"{path}:{start_line}"))
    return examples


def conll_label_list(examples: Iterable[TokenExample]) -> list[str]:
    """The distinct tags in a stable order: "O" first, then by entity type, B- before I- (and E-, S-)."""
    tags = {t for e in examples for t in e.tags}
    order = {"B": 0, "I": 1, "E": 2, "S": 3}

    def key(tag: str):
        if tag == "O":
            return (0, "", 0)
        prefix, _, kind = tag.partition("-")
        if kind and prefix in order:
            return (1, kind, order[prefix])
        return (1, tag, 9)

    return sorted(tags, key=key)


# ----------------------------------------------------------------------------- SQuAD
def read_squad(path, *, version: str | None = None, check_answers: bool = True,
               encoding: str = "utf-8-sig") -> list[QAExample]:
    """Read SQuAD-format JSON (v1.1 or v2.0) into one :class:`QAExample` per question.

    version: "1.1" or "2.0"; by default from the file's "version" field (v2 when any question has
    ``is_impossible``). In v2 a question is impossible when ``is_impossible`` is true; its answers are
    empty (``plausible_answers`` are not kept). check_answers: each answer's ``answer_start`` must be
    where its text is in the context (the SQuAD files satisfy this); a mismatch is an error naming the
    question.
    """
    path = _path(path)
    data = _load_json(path, encoding)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(f"{path}: not SQuAD JSON (expected an object with a 'data' list of articles)")
    if version is None:
        declared = str(data.get("version", "")).lstrip("v")
        v2 = declared.startswith("2") or (not declared and _has_impossible(data["data"]))
    elif str(version).lstrip("v") in ("1.1", "1"):
        v2 = False
    elif str(version).lstrip("v") in ("2.0", "2"):
        v2 = True
    else:
        raise ValueError(f"version must be '1.1' or '2.0', got {version!r}")
    examples = []
    for a, article in enumerate(data["data"]):
        where_a = f"{path}: data[{a}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise ValueError(f"{where_a}: an article needs a 'paragraphs' list")
        title = article.get("title", "")
        for p, paragraph in enumerate(article["paragraphs"]):
            where_p = f"{where_a}.paragraphs[{p}]"
            if not isinstance(paragraph, dict):
                raise ValueError(f"{where_p}: expected an object")
            context = paragraph.get("context")
            if not isinstance(context, str) or not context.strip():
                raise ValueError(f"{where_p}: missing or empty 'context'")
            qas = paragraph.get("qas")
            if not isinstance(qas, list):
                raise ValueError(f"{where_p}: missing 'qas' list")
            for q, qa in enumerate(qas):
                examples.append(_squad_question(qa, f"{where_p}.qas[{q}]", context, title, check_answers, v2))
    return examples


def _has_impossible(articles) -> bool:
    for article in articles:
        for paragraph in (article.get("paragraphs") or []) if isinstance(article, dict) else []:
            for qa in (paragraph.get("qas") or []) if isinstance(paragraph, dict) else []:
                if isinstance(qa, dict) and "is_impossible" in qa:
                    return True
    return False


def _squad_question(qa, where: str, context: str, title: str, check_answers: bool, v2: bool) -> QAExample:
    if not isinstance(qa, dict):
        raise ValueError(f"{where}: expected an object")
    qid = qa.get("id")
    if not isinstance(qid, str) or not qid:
        raise ValueError(f"{where}: missing question 'id'")
    where = f"{where} (id {qid})"
    question = qa.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"{where}: missing or empty 'question'")
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        raise ValueError(f"{where}: 'is_impossible' must be true or false, got {impossible!r}")
    raw_answers = qa.get("answers", [])
    if not isinstance(raw_answers, list):
        raise ValueError(f"{where}: 'answers' must be a list")
    answers = []
    if not impossible:
        for i, answer in enumerate(raw_answers):
            if not isinstance(answer, dict) or not isinstance(answer.get("text"), str) \
                    or not isinstance(answer.get("answer_start"), int) or isinstance(answer.get("answer_start"), bool):
                raise ValueError(f"{where}: answers[{i}] needs a 'text' string and an integer 'answer_start'")
            text, start = answer["text"], answer["answer_start"]
            if check_answers and (start < 0 or context[start:start + len(text)] != text):
                raise ValueError(f"{where}: answers[{i}] {text!r} is not at answer_start={start} of the context "
                                 f"(found {context[start:start + len(text)]!r}); pass check_answers=False to keep it")
            answers.append(Answer(text, start))
    elif raw_answers and check_answers:
        raise ValueError(f"{where}: an impossible question must have no answers (got {len(raw_answers)})")
    if not answers and not v2:
        raise ValueError(f"{where}: a SQuAD v1.1 question needs at least one answer (read the file with "
                         "version='2.0' if it has unanswerable questions)")
    return QAExample(qid, question, context, answers, impossible or not answers, title)
