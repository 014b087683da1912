"""``pipeline("question-answering")``: extract the answer span of a question from its context."""

from __future__ import annotations

from ..tasks.features import prepare_qa_features
from ..tasks.postprocess import qa_answers
from .base import Pipeline


def _positive_int(params, name):
    value = params.get(name)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


class QuestionAnsweringPipeline(Pipeline):
    """Answer questions with a ``...ForQuestionAnswering`` model.

    ``pipe(question="...", context="...")`` (also lists of both, one context for several questions,
    a dict or a list of dicts with "question"/"context") returns {"score", "start", "end",
    "answer"} per question (a list of ``top_k`` of them when more than one is found); start/end are
    character offsets into the context. Contexts longer than ``max_seq_len`` tokens (default
    min(model_max_length, 384)) are cut into windows sharing ``doc_stride`` tokens (default
    min(max_seq_len // 2, 128)). ``max_answer_len`` (15) caps an answer's length in tokens;
    ``handle_impossible_answer`` lets the empty answer win; ``align_to_words`` (True) widens answers
    to whole words.
    """

    task = "question-answering"
    head = "question_answering"
    _token_outputs = ("start_logits", "end_logits")
    _parameters = ("top_k", "doc_stride", "max_answer_len", "max_seq_len", "max_question_len",
                   "handle_impossible_answer", "align_to_words", "padding")

    def _check_parameters(self, params):
        for name in ("top_k", "max_answer_len", "max_seq_len", "max_question_len"):
            _positive_int(params, name)
        stride = params.get("doc_stride")
        if stride is not None and (not isinstance(stride, int) or isinstance(stride, bool) or stride < 0):
            raise ValueError(f"doc_stride must be a non-negative integer, got {stride!r}")

    @staticmethod
    def _examples(args, kwargs) -> tuple[list[dict], bool]:
        """(examples as {"question", "context"} dicts, whether one example was given)."""
        if args:
            if len(args) == 2 and all(isinstance(a, str) for a in args):
                items, single = [{"question": args[0], "context": args[1]}], True
            elif len(args) == 1:
                items = args[0]
                single = isinstance(items, dict)
                items = [items] if single else items
            else:
                raise ValueError("pass question= and context= (or a dict, or a list of dicts)")
            if "question" in kwargs or "context" in kwargs:
                raise ValueError("pass the examples either positionally or as question=/context=, not both")
        elif "question" in kwargs or "context" in kwargs:
            question, context = kwargs.pop("question", None), kwargs.pop("context", None)
            if question is None or context is None:
                raise ValueError("question-answering needs both question= and context=")
            if isinstance(question, str) and isinstance(context, str):
                items, single = [{"question": question, "context": context}], True
            elif isinstance(question, (list, tuple)) and isinstance(context, str):
                items, single = [{"question": q, "context": context} for q in question], False
            elif isinstance(question, (list, tuple)) and isinstance(context, (list, tuple)):
                if len(question) != len(context):
                    raise ValueError(f"{len(question)} questions but {len(context)} contexts")
                items, single = [{"question": q, "context": c} for q, c in zip(question, context)], False
            else:
                raise ValueError("question= and context= must be strings, or a list of questions with one context "
                                 "or with a list of contexts")
        else:
            raise ValueError("question-answering needs question= and context=")
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"expected a dict or a list of dicts with 'question' and 'context', got "
                             f"{type(items).__name__}")
        for i, item in enumerate(items):
            if not isinstance(item, dict) or "question" not in item or "context" not in item:
                raise ValueError(f"example {i}: expected a dict with 'question' and 'context'")
            for key in ("question", "context"):
                if item[key] is None:
                    raise ValueError(f"example {i}: the {key} is None")
                Pipeline._check_text(item[key], f"example {i}: the {key}")
        return list(items), single

    def __call__(self, *args, **kwargs):
        examples, single = self._examples(args, kwargs)
        params = self._params(kwargs)
        max_seq_len = params.get("max_seq_len") or min(self.tokenizer.model_max_length, 384)
        doc_stride = params.get("doc_stride")
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, 128)
        if doc_stride > max_seq_len:
            raise ValueError(f"doc_stride ({doc_stride}) is larger than max_seq_len ({max_seq_len})")
        if not examples:
            return []
        features = prepare_qa_features(self.tokenizer, [(e["question"], e["context"]) for e in examples],
                                       max_length=max_seq_len, doc_stride=doc_stride)
        rows = [{"input_ids": features.input_ids[r], "attention_mask": features.attention_mask[r],
                 **({"token_type_ids": features.token_type_ids[r]} if features.token_type_ids is not None else {})}
                for r in range(len(features))]
        outputs = self._forward_rows(rows)
        windows: list[list[dict]] = [[] for _ in examples]
        for r, out in enumerate(outputs):
            windows[features.example_index[r]].append({
                "start_logits": out["start_logits"], "end_logits": out["end_logits"],
                "offsets": features.offset_mapping[r], "word_ids": features.word_ids[r],
                "cls_index": features.cls_index[r]})
        results = []
        for example, example_windows in zip(examples, windows):
            answers = qa_answers(example_windows, example["context"], top_k=params.get("top_k") or 1,
                                 handle_impossible_answer=bool(params.get("handle_impossible_answer", False)),
                                 max_answer_len=params.get("max_answer_len") or 15,
                                 align_to_words=params.get("align_to_words", True))
            results.append(answers[0] if len(answers) == 1 else answers)
        # one example, even inside a list, gives its result alone (as transformers does)
        return results[0] if single or len(results) == 1 else results
