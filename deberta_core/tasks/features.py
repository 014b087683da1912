"""Turn read examples into model inputs with the deberta_core tokenizers.

* :func:`encode_classification`: one text or a pair per example, truncated to ``max_length``, with
  ``labels`` as class ids.
* :func:`encode_token_classification` / :func:`align_word_labels`: word-level tags aligned to
  sub-tokens through ``word_ids``: the first sub-token of a word gets its label, the others and the
  special tokens get -100 (ignored by the losses), unless ``label_all_subtokens``.
* :func:`prepare_qa_features`: question + context pairs; a long context is cut into windows of
  ``max_length`` tokens overlapping by ``doc_stride`` (``return_overflowing_tokens``). Each window
  keeps the index of its example, the character offsets of its context tokens (None elsewhere), their
  word ids and the [CLS] index; with ``training=True`` also start/end token positions, the [CLS]
  index for an impossible question or an answer not wholly inside the window.

Outputs are plain lists (``padding`` as the tokenizer takes it); the tokenizer must be a fast one
(offsets and word ids) for token classification and question answering.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from .readers import ClassificationExample, QAExample, TokenExample

IGNORE_INDEX = -100


def _require_fast(tokenizer, what: str) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{what} needs a fast tokenizer (offsets and word ids): DebertaTokenizerFast or "
                         f"DebertaV2TokenizerFast, got {type(tokenizer).__name__}")


def _label_id(label, label2id: Mapping | None, where: str) -> int | float:
    if label2id is not None:
        if label not in label2id:
            raise ValueError(f"{where}: label {label!r} is not in label2id ({sorted(map(str, label2id))})")
        return label2id[label]
    if isinstance(label, bool) or not isinstance(label, (int, float)):
        raise ValueError(f"{where}: label {label!r} is not a number; pass label2id= to map it to a class id")
    return label


# ----------------------------------------------------------------------------- classification
def encode_classification(tokenizer, examples: Sequence[ClassificationExample], *, label2id: Mapping | None = None,
                          max_length: int | None = None, truncation: bool | str = True,
                          padding: bool | str = False) -> dict[str, list]:
    """Tokenize classification examples (single texts or pairs) and attach ``labels``.

    label2id: label -> class id; without it labels must already be numbers (int class ids, or floats
    for regression). Unlabelled examples give no ``labels`` key (all must agree). ``truncation=True``
    cuts pairs longest-first to ``max_length`` (default: the tokenizer's ``model_max_length``).
    """
    examples = list(examples)
    if not examples:
        raise ValueError("no examples to encode")
    pairs = [e.text_pair is not None for e in examples]
    if any(pairs) and not all(pairs):
        raise ValueError("mixing single texts and text pairs in one call is not supported")
    texts = [e.text for e in examples]
    second = [e.text_pair for e in examples] if pairs[0] else None
    encoded = tokenizer(texts, second, truncation=truncation, max_length=max_length, padding=padding)
    out = dict(encoded)
    labelled = [e.label is not None for e in examples]
    if any(labelled):
        if not all(labelled):
            first = examples[labelled.index(False)]
            raise ValueError(f"{first.guid or 'an example'} has no label while others do")
        out["labels"] = [_label_id(e.label, label2id, e.guid or f"example {i}") for i, e in enumerate(examples)]
    return out


# ----------------------------------------------------------------------------- token classification
def align_word_labels(word_ids: Sequence[int | None], word_labels: Sequence[int], *,
                      label_all_subtokens: bool = False, continuation: Mapping[int, int] | None = None,
                      ignore_index: int = IGNORE_INDEX) -> list[int]:
    """Per-token labels from per-word labels.

    word_ids: the tokenizer's word index per token (None for special and pad tokens). The first
    sub-token of each word gets the word's label; later sub-tokens get ``ignore_index``, or with
    ``label_all_subtokens`` the word's label mapped through ``continuation`` (e.g. the B-X id to the
    I-X id; identity when not given). Special tokens get ``ignore_index``.
    """
    labels, previous = [], None
    for word in word_ids:
        if word is None:
            labels.append(ignore_index)
        else:
            if word >= len(word_labels):
                raise ValueError(f"word id {word} but only {len(word_labels)} word labels")
            label = word_labels[word]
            if word != previous:
                labels.append(label)
            elif label_all_subtokens:
                labels.append(continuation.get(label, label) if continuation else label)
            else:
                labels.append(ignore_index)
        previous = word
    return labels


def _continuation_map(label2id: Mapping[str, int]) -> dict[int, int]:
    out = {}
    for label, index in label2id.items():
        if isinstance(label, str) and label.startswith("B-") and f"I-{label[2:]}" in label2id:
            out[index] = label2id[f"I-{label[2:]}"]
    return out


def encode_token_classification(tokenizer, examples: Sequence[TokenExample], *, label2id: Mapping[str, int],
                                max_length: int | None = None, truncation: bool = True,
                                padding: bool | str = False, label_all_subtokens: bool = False,
                                ignore_index: int = IGNORE_INDEX) -> dict[str, list]:
    """Tokenize pre-split sentences (``is_split_into_words``) and align their tags to the sub-tokens.

    label2id: tag -> class id (every tag of the examples must be in it). With
    ``label_all_subtokens`` the later sub-tokens of a word get the word's label, B-X turned into I-X.
    Also returns ``word_ids`` per row, for mapping predictions back to words.
    """
    _require_fast(tokenizer, "token classification")
    examples = list(examples)
    if not examples:
        raise ValueError("no examples to encode")
    for i, e in enumerate(examples):
        if len(e.words) != len(e.tags):
            raise ValueError(f"{e.guid or f'example {i}'}: {len(e.words)} words but {len(e.tags)} tags")
        if not e.words:
            raise ValueError(f"{e.guid or f'example {i}'}: a sentence without words")
        unknown = [t for t in e.tags if t not in label2id]
        if unknown:
            raise ValueError(f"{e.guid or f'example {i}'}: tag {unknown[0]!r} is not in label2id")
    encoded = tokenizer([e.words for e in examples], is_split_into_words=True, truncation=truncation,
                        max_length=max_length, padding=padding)
    continuation = _continuation_map(label2id) if label_all_subtokens else None
    out = dict(encoded)
    out["labels"], out["word_ids"] = [], []
    for row, e in enumerate(examples):
        words = encoded.word_ids(row)
        out["word_ids"].append(words)
        out["labels"].append(align_word_labels(words, [label2id[t] for t in e.tags],
                                               label_all_subtokens=label_all_subtokens,
                                               continuation=continuation, ignore_index=ignore_index))
    return out


# ----------------------------------------------------------------------------- question answering
@dataclass
class QAFeatures:
    """Question-answering windows: one row per window, ``example_index`` says whose.

    offset_mapping: (start, end) character span in the context for context tokens, None for the
    question, special and pad tokens. word_ids: the context word of each context token (None
    elsewhere). cls_index: position of [CLS], the "no answer" target. start_positions and
    end_positions are set with ``training=True``.
    """

    input_ids: list[list[int]]
    attention_mask: list[list[int]]
    token_type_ids: list[list[int]] | None
    offset_mapping: list[list[tuple[int, int] | None]]
    word_ids: list[list[int | None]]
    example_index: list[int]
    cls_index: list[int]
    start_positions: list[int] | None = None
    end_positions: list[int] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    def context_mask(self, row: int) -> list[int]:
        """1 for the context tokens of window ``row`` (where an answer may start or end), else 0."""
        return [0 if o is None else 1 for o in self.offset_mapping[row]]

    def model_inputs(self) -> dict[str, list]:
        """The tokenizer outputs the model takes (plus positions when training)."""
        out = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if self.token_type_ids is not None:
            out["token_type_ids"] = self.token_type_ids
        if self.start_positions is not None:
            out["start_positions"] = self.start_positions
            out["end_positions"] = self.end_positions
        return out


def _qa_pairs(examples) -> list[tuple[str, str, list]]:
    pairs = []
    for i, e in enumerate(examples):
        if isinstance(e, QAExample):
            question, context, answers, where = e.question, e.context, [(a.start, a.end) for a in e.answers], e.id
        elif isinstance(e, Mapping):
            question, context, where = e.get("question"), e.get("context"), f"example {i}"
            answers = [(a["answer_start"], a["answer_start"] + len(a["text"])) for a in e.get("answers", [])]
        elif isinstance(e, (tuple, list)) and len(e) == 2:
            (question, context), answers, where = e, [], f"example {i}"
        else:
            raise ValueError(f"example {i}: expected a QAExample, a dict with question/context or a "
                             f"(question, context) pair, got {type(e).__name__}")
        for name, value in (("question", question), ("context", context)):
            if not isinstance(value, str):
                raise ValueError(f"{where}: {name} must be a string, got {type(value).__name__}")
            if not value.strip():
                raise ValueError(f"{where}: the {name} is empty")
        pairs.append((question, context, answers, where))
    return pairs


def prepare_qa_features(tokenizer, examples: Iterable, *, max_length: int = 384, doc_stride: int = 128,
                        training: bool = False, padding: bool | str = False) -> QAFeatures:
    """Cut each (question, context) into windows and label them.

    examples: QAExamples, dicts with question/context (and SQuAD-style answers), or (question,
    context) tuples. max_length counts [CLS] question [SEP] context [SEP]; doc_stride is the number
    of context tokens two neighbouring windows share (the tokenizer's ``stride``). With
    ``training=True`` the first answer of each example gives start/end token positions: the first
    and last context tokens that overlap its characters, or [CLS] when the question is impossible
    or the answer is not wholly inside the window.
    """
    _require_fast(tokenizer, "question answering")
    if doc_stride < 0:
        raise ValueError(f"doc_stride must be >= 0, got {doc_stride}")
    if doc_stride >= max_length:
        raise ValueError(f"doc_stride ({doc_stride}) must be smaller than max_length ({max_length})")
    pairs = _qa_pairs(examples)
    if not pairs:
        raise ValueError("no examples to encode")
    questions = [q for q, _, _, _ in pairs]
    question_lengths = [len(ids) for ids in tokenizer(questions, add_special_tokens=False)["input_ids"]]
    for (_, _, _, where), n in zip(pairs, question_lengths):
        if max_length - n - 3 < 1:
            raise ValueError(f"{where}: the question has {n} tokens, which leaves no room for the context in "
                             f"max_length={max_length} ([CLS] question [SEP] context [SEP]); raise max_length")
    try:
        encoded = tokenizer(questions, [c for _, c, _, _ in pairs], truncation="only_second",
                            max_length=max_length, stride=doc_stride, return_overflowing_tokens=True,
                            return_offsets_mapping=True, padding=padding)
    except ValueError as e:
        if "stride" not in str(e):
            raise
        raise ValueError(f"a question is too long for its context to be cut into windows: {e}") from None
    cls_id = tokenizer.cls_token_id
    n_rows = len(encoded["input_ids"])
    offsets_out, words_out, cls_out = [], [], []
    starts, ends = ([], []) if training else (None, None)
    for row in range(n_rows):
        sequence_ids = encoded.sequence_ids(row)
        offsets = encoded["offset_mapping"][row]
        words = encoded.word_ids(row)
        offsets_out.append([tuple(o) if s == 1 else None for o, s in zip(offsets, sequence_ids)])
        words_out.append([w if s == 1 else None for w, s in zip(words, sequence_ids)])
        ids = encoded["input_ids"][row]
        cls_index = ids.index(cls_id) if cls_id in ids else 0
        cls_out.append(cls_index)
        if training:
            answers = pairs[encoded["overflow_to_sample_mapping"][row]][2]
            start, end = _answer_tokens(offsets_out[-1], answers[0] if answers else None, cls_index)
            starts.append(start)
            ends.append(end)
    return QAFeatures(
        input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"],
        token_type_ids=encoded.get("token_type_ids"), offset_mapping=offsets_out, word_ids=words_out,
        example_index=list(encoded["overflow_to_sample_mapping"]), cls_index=cls_out,
        start_positions=starts, end_positions=ends)


def _answer_tokens(offsets: list, answer: tuple[int, int] | None, cls_index: int) -> tuple[int, int]:
    """Start/end token of a character span inside one window, or (cls, cls) when it is not inside."""
    if answer is None:
        return cls_index, cls_index
    start_char, end_char = answer
    context = [(i, o) for i, o in enumerate(offsets) if o is not None and o[1] > o[0]]
    if not context or not (context[0][1][0] <= start_char and context[-1][1][1] >= end_char):
        return cls_index, cls_index
    start = next(i for i, (s, e) in context if e > start_char)
    end = max(i for i, (s, e) in context if s < end_char)
    if end < start:  # an empty answer span
        return cls_index, cls_index
    return start, end


__all__ = ["IGNORE_INDEX", "QAFeatures", "align_word_labels", "encode_classification",
           "encode_token_classification", "prepare_qa_features"]
