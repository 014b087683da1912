"""Turn model outputs (numpy logits) into task answers; the rules of the transformers pipelines.

Question answering
    :func:`select_spans` scores every (start, end) pair of one window as P(start) * P(end), with the
    softmax taken over the tokens an answer may use (the context, plus [CLS]); :func:`decode_spans`
    keeps the ``top_k`` best pairs with ``start <= end < start + max_answer_len`` inside the context.
    :func:`qa_answers` does this over all windows of one example, turns token spans into character
    spans of the context (whole words with ``align_to_words``), merges equal answers from overlapping
    windows (their scores add), and with ``handle_impossible_answer`` competes the smallest [CLS]
    ("null") score against them. :func:`squad_predictions` is the evaluation-time decoder of the
    transformers ``run_qa`` example (start + end logits, n-best, v2 null threshold).

Token classification
    :func:`gather_pre_entities` builds one record per non-special token (its softmax scores, token,
    character span, and whether it continues a word); :func:`aggregate_entities` applies an
    aggregation strategy ("none", "simple", "first", "average", "max") and :func:`group_entities`
    joins neighbouring tokens of one type (a ``B-`` tag always starts a new entity);
    :func:`merge_overlapping_entities` resolves entities found twice in overlapping windows.

Everything works on numpy arrays and plain lists; tokenizer services (id -> token string, tokens ->
text) are passed in as callables.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

AGGREGATION_STRATEGIES = ("none", "simple", "first", "average", "max")


# ----------------------------------------------------------------------------- activations
def softmax(x, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis`` (keeps a floating input's dtype)."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    shifted = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def sigmoid(x) -> np.ndarray:
    """1 / (1 + exp(-x)) (keeps a floating input's dtype)."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return 1.0 / (1.0 + np.exp(-x))


# ----------------------------------------------------------------------------- question answering
def decode_spans(start: np.ndarray, end: np.ndarray, top_k: int, max_answer_len: int,
                 allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``top_k`` best (start, end) token pairs of one window by P(start) * P(end).

    start, end: probabilities (T,). Pairs need ``start <= end <= start + max_answer_len - 1``; after
    picking the ``top_k`` highest products, pairs with a token outside ``allowed`` (T,) are dropped,
    so fewer than ``top_k`` may come back (as in the transformers pipeline). Returns starts, ends,
    scores, best first.
    """
    start, end = np.asarray(start), np.asarray(end)
    outer = np.matmul(start[:, None], end[None, :])
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    flat = candidates.flatten()
    if top_k == 1:
        order = np.array([np.argmax(flat)])
    elif len(flat) < top_k:
        order = np.argsort(-flat)
    else:
        picked = np.argpartition(-flat, top_k)[:top_k]
        order = picked[np.argsort(-flat[picked])]
    starts, ends = np.unravel_index(order, candidates.shape)
    ok_tokens = np.asarray(allowed).nonzero()[0]
    keep = np.isin(starts, ok_tokens) & np.isin(ends, ok_tokens)
    starts, ends = starts[keep], ends[keep]
    return starts, ends, candidates[starts, ends]


def select_spans(start_logits, end_logits, allowed, *, top_k: int = 1, max_answer_len: int = 15,
                 handle_impossible_answer: bool = False, min_null_score: float = 1_000_000.0,
                 cls_index: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Softmax one window's logits over the allowed tokens and return its best spans.

    allowed: 1 where an answer may start/end (context tokens and [CLS]; 0 for question, special and
    padding tokens). The [CLS] product P(cls) * P(cls) is the window's null score: with
    ``handle_impossible_answer`` the smaller of it and ``min_null_score`` is returned, so the
    minimum over windows is kept. [CLS] itself never starts or ends a span.
    Returns starts, ends, scores (see :func:`decode_spans`) and the running null score.
    """
    start_logits = np.asarray(start_logits).reshape(-1)
    end_logits = np.asarray(end_logits).reshape(-1)
    allowed = np.asarray(allowed).reshape(-1).astype(bool)
    start = np.where(~allowed, -10000.0, start_logits)
    end = np.where(~allowed, -10000.0, end_logits)
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    if handle_impossible_answer:
        min_null_score = min(min_null_score, float(start[cls_index] * end[cls_index]))
    start[cls_index] = end[cls_index] = 0.0
    starts, ends, scores = decode_spans(start, end, top_k, max_answer_len, allowed)
    return starts, ends, scores, min_null_score


def _char_span(offsets: Sequence, word_ids: Sequence | None, start: int, end: int, align_to_words: bool):
    """Character span of tokens [start, end] of a window (whole words with align_to_words)."""
    def token_span(i):
        o = offsets[i]
        return (0, 0) if o is None else (int(o[0]), int(o[1]))

    if align_to_words and word_ids is not None:
        first_word, last_word = word_ids[start], word_ids[end]
        if first_word is not None and last_word is not None:
            first = next(i for i, w in enumerate(word_ids) if w == first_word)
            last = max(i for i, w in enumerate(word_ids) if w == last_word)
            return token_span(first)[0], token_span(last)[1]
    return token_span(start)[0], token_span(end)[1]


def qa_answers(windows: Sequence[Mapping], context: str, *, top_k: int = 1, handle_impossible_answer: bool = False,
               max_answer_len: int = 15, align_to_words: bool = True) -> list[dict]:
    """The best answers to one question from all of its windows, best first.

    windows: one mapping per window with ``start_logits`` and ``end_logits`` (T,), ``offsets`` (T
    character spans, None outside the context), and optionally ``word_ids`` (context word per token),
    ``attention_mask`` (T,) and ``cls_index`` (default 0). Returns up to ``top_k`` dicts
    {"score", "start", "end", "answer"}; an answer text seen again (case-insensitively, e.g. in the
    overlap of two windows) adds its score to the first one. With ``handle_impossible_answer`` the
    null answer {"score": smallest null score, "start": 0, "end": 0, "answer": ""} competes.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if max_answer_len < 1:
        raise ValueError(f"max_answer_len must be >= 1, got {max_answer_len}")
    pre_top_k = top_k * 2 + 10 if align_to_words else top_k  # aligning to words can merge candidates
    min_null = 1_000_000.0
    answers: list[dict] = []
    by_text: dict[str, dict] = {}
    for window in windows:
        offsets = window["offsets"]
        cls_index = int(window.get("cls_index", 0))
        allowed = np.array([o is not None for o in offsets])
        allowed[cls_index] = True
        mask = window.get("attention_mask")
        if mask is not None:
            allowed &= np.asarray(mask).reshape(-1)[:len(allowed)].astype(bool)
        n = len(offsets)
        starts, ends, scores, min_null = select_spans(
            np.asarray(window["start_logits"])[:n], np.asarray(window["end_logits"])[:n], allowed,
            top_k=pre_top_k, max_answer_len=max_answer_len, handle_impossible_answer=handle_impossible_answer,
            min_null_score=min_null, cls_index=cls_index)
        for s, e, score in zip(starts.tolist(), ends.tolist(), scores.tolist()):
            begin, finish = _char_span(offsets, window.get("word_ids"), s, e, align_to_words)
            text = context[begin:finish]
            key = text.lower()
            if key in by_text:
                by_text[key]["score"] += score
            else:
                answer = {"score": score, "start": begin, "end": finish, "answer": text}
                by_text[key] = answer
                answers.append(answer)
    if handle_impossible_answer:
        answers.append({"score": min_null, "start": 0, "end": 0, "answer": ""})
    return sorted(answers, key=lambda a: a["score"], reverse=True)[:top_k]


def squad_predictions(examples: Sequence, features, start_logits, end_logits, *, n_best_size: int = 20,
                      max_answer_length: int = 30, version_2: bool = False,
                      null_score_diff_threshold: float = 0.0) -> tuple[dict[str, str], dict[str, list[dict]]]:
    """Answer texts for evaluation from window logits (the transformers ``run_qa`` post-processing).

    examples: the QAExamples the features came from (``features.example_index`` points into it);
    features: :class:`~deberta_core.tasks.features.QAFeatures`; start_logits, end_logits: (windows, T)
    arrays (padding beyond a window's length is ignored). For each example, the ``n_best_size`` best
    starts and ends of every window form candidate spans inside the context, no longer than
    ``max_answer_length`` tokens, scored by start + end logit. With ``version_2`` the answer is ""
    when the smallest null score (start + end logit at [CLS]) beats the best span by more than
    ``null_score_diff_threshold``. Returns ({id: text}, {id: n-best list with probabilities}).
    """
    windows_of: dict[int, list[int]] = {}
    for row, index in enumerate(features.example_index):
        windows_of.setdefault(index, []).append(row)
    predictions, nbest_out = {}, {}
    for index, example in enumerate(examples):
        context = example.context
        null_score = None
        candidates = []
        for row in windows_of.get(index, []):
            offsets = features.offset_mapping[row]
            n = len(offsets)
            start = np.asarray(start_logits[row])[:n]
            end = np.asarray(end_logits[row])[:n]
            cls = features.cls_index[row]
            window_null = float(start[cls] + end[cls])
            if null_score is None or window_null < null_score:
                null_score = window_null
            best_starts = np.argsort(start)[-1:-n_best_size - 1:-1].tolist()
            best_ends = np.argsort(end)[-1:-n_best_size - 1:-1].tolist()
            for s in best_starts:
                for e in best_ends:
                    if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                        continue
                    candidates.append({"score": float(start[s] + end[e]), "start": offsets[s][0],
                                       "end": offsets[e][1], "start_logit": float(start[s]),
                                       "end_logit": float(end[e])})
        candidates = sorted(candidates, key=lambda c: c["score"], reverse=True)[:n_best_size]
        for c in candidates:
            c["text"] = context[c["start"]:c["end"]]
        if version_2 and null_score is not None:
            candidates.append({"score": null_score, "start": 0, "end": 0, "text": "", "start_logit": None,
                               "end_logit": None})
            candidates.sort(key=lambda c: c["score"], reverse=True)
        if not candidates:
            candidates = [{"score": 0.0, "start": 0, "end": 0, "text": ""}]
        probs = softmax(np.array([c["score"] for c in candidates], dtype=np.float64))
        for c, p in zip(candidates, probs.tolist()):
            c["probability"] = p
        if not version_2:
            predictions[example.id] = candidates[0]["text"]
        else:
            best = next((c for c in candidates if c["text"] != ""), None)
            if best is None or null_score - best["score"] > null_score_diff_threshold:
                predictions[example.id] = ""
            else:
                predictions[example.id] = best["text"]
        nbest_out[example.id] = candidates
    return predictions, nbest_out


# ----------------------------------------------------------------------------- token classification
def check_aggregation_strategy(strategy) -> str:
    """Normalise an aggregation strategy name ("none", "simple", "first", "average", "max")."""
    name = getattr(strategy, "value", strategy)
    if name is None:
        return "none"
    if not isinstance(name, str) or name.lower() not in AGGREGATION_STRATEGIES:
        raise ValueError(f"unknown aggregation_strategy {strategy!r}: expected one of {list(AGGREGATION_STRATEGIES)}")
    return name.lower()


def gather_pre_entities(sentence: str, input_ids: Sequence[int], scores: np.ndarray, offsets: Sequence | None,
                        special_tokens_mask: Sequence[int], id_to_token: Callable[[int], str], *,
                        unk_token_id: int | None = None, word_ids: Sequence | None = None,
                        word_to_chars: Sequence | None = None) -> list[dict]:
    """One record per non-special token: word (token string), scores, start, end, index, is_subword.

    offsets: character spans of the tokens (None: no offsets, start/end None). For pre-split input,
    ``word_ids`` and ``word_to_chars`` (the span of each word in ``sentence``) move word-relative
    offsets to sentence positions. A token continues a word (``is_subword``) when the character
    before it is not a space (the transformers rule for tokenizers without a sub-word prefix).
    An [UNK] token's word is the text it covers.
    """
    out = []
    for index, token_scores in enumerate(scores):
        if special_tokens_mask[index]:
            continue
        token_id = int(input_ids[index])
        word = id_to_token(token_id)
        if offsets is not None:
            start, end = (int(v) for v in offsets[index])
            if word_ids is not None and word_to_chars is not None and word_ids[index] is not None:
                shift = word_to_chars[word_ids[index]][0]
                start, end = start + shift, end + shift
            word_ref = sentence[start:end]
            is_subword = start > 0 and " " not in sentence[start - 1:start + 1]
            if unk_token_id is not None and token_id == unk_token_id:
                word, is_subword = word_ref, False
        else:
            start = end = None
            is_subword = False
        out.append({"word": word, "scores": token_scores, "start": start, "end": end, "index": index,
                    "is_subword": is_subword})
    return out


def _label(id2label: Mapping, index) -> str:
    index = int(index)
    return id2label[index] if index in id2label else id2label[str(index)]


def _aggregate_word(entities: list[dict], strategy: str, id2label: Mapping, tokens_to_string) -> dict:
    word = tokens_to_string([e["word"] for e in entities])
    if strategy == "first":
        scores = entities[0]["scores"]
        index = scores.argmax()
        score = scores[index]
    elif strategy == "max":
        scores = max(entities, key=lambda e: e["scores"].max())["scores"]
        index = scores.argmax()
        score = scores[index]
    else:  # average
        mean = np.nanmean(np.stack([e["scores"] for e in entities]), axis=0)
        index = mean.argmax()
        score = mean[index]
    return {"entity": _label(id2label, index), "score": score, "word": word, "start": entities[0]["start"],
            "end": entities[-1]["end"]}


def aggregate_entities(pre_entities: list[dict], strategy, id2label: Mapping,
                       tokens_to_string: Callable[[list[str]], str]) -> list[dict]:
    """Token records -> entities by ``strategy`` (see the module docstring).

    "none": one entity per token {"entity", "score", "index", "word", "start", "end"}. "simple":
    tokens grouped by :func:`group_entities`. "first"/"average"/"max": the tokens of each word first
    get one label (the first token's, the averaged scores' best, or the most confident token's),
    then words are grouped. Grouped entities are {"entity_group", "score", "word", "start", "end"}.
    """
    strategy = check_aggregation_strategy(strategy)
    if strategy in ("none", "simple"):
        entities = []
        for pre in pre_entities:
            index = pre["scores"].argmax()
            entities.append({"entity": _label(id2label, index), "score": pre["scores"][index],
                             "index": pre["index"], "word": pre["word"], "start": pre["start"],
                             "end": pre["end"]})
        if strategy == "none":
            return entities
        return group_entities(entities, tokens_to_string)
    words, group = [], None
    for pre in pre_entities:
        if group is None:
            group = [pre]
        elif pre["is_subword"]:
            group.append(pre)
        else:
            words.append(_aggregate_word(group, strategy, id2label, tokens_to_string))
            group = [pre]
    if group is not None:
        words.append(_aggregate_word(group, strategy, id2label, tokens_to_string))
    return group_entities(words, tokens_to_string)


def _tag(name: str) -> tuple[str, str]:
    if name.startswith("B-"):
        return "B", name[2:]
    if name.startswith("I-"):
        return "I", name[2:]
    return "I", name  # no prefix: a continuation


def _group(entities: list[dict], tokens_to_string) -> dict:
    return {"entity_group": entities[0]["entity"].split("-", 1)[-1],
            "score": np.mean(np.nanmean([e["score"] for e in entities])),
            "word": tokens_to_string([e["word"] for e in entities]),
            "start": entities[0]["start"], "end": entities[-1]["end"]}


def group_entities(entities: list[dict], tokens_to_string: Callable[[list[str]], str]) -> list[dict]:
    """Join neighbouring entities of the same type; a ``B-`` tag always starts a new group."""
    groups, current = [], []
    for entity in entities:
        if not current:
            current.append(entity)
            continue
        bi, tag = _tag(entity["entity"])
        _, last_tag = _tag(current[-1]["entity"])
        if tag == last_tag and bi != "B":
            current.append(entity)
        else:
            groups.append(_group(current, tokens_to_string))
            current = [entity]
    if current:
        groups.append(_group(current, tokens_to_string))
    return groups


def merge_overlapping_entities(entities: list[dict]) -> list[dict]:
    """Entities found in overlapping windows: of two that overlap keep the longer (then the surer)."""
    if not entities:
        return entities
    entities = sorted(entities, key=lambda e: e["start"])
    merged, previous = [], entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            length, previous_length = entity["end"] - entity["start"], previous["end"] - previous["start"]
            if length > previous_length or (length == previous_length and entity["score"] > previous["score"]):
                previous = entity
        else:
            merged.append(previous)
            previous = entity
    merged.append(previous)
    return merged


__all__ = ["AGGREGATION_STRATEGIES", "aggregate_entities", "check_aggregation_strategy", "decode_spans",
           "gather_pre_entities", "group_entities", "merge_overlapping_entities", "qa_answers", "select_spans",
           "sigmoid", "softmax", "squad_predictions"]
