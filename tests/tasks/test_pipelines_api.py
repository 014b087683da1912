"""The pipeline factory and call API: loading, batching, the progress bar, and clear errors for bad input."""

from __future__ import annotations

import pytest

from deberta_core.pipelines import SUPPORTED_TASKS, pipeline

from .compare import assert_close
from .conftest import squad_dev, sst2_sentences, wnut_dev


def test_factory_loads_the_right_classes(model_dirs, our_pipeline):
    for task, name, cls in [("fill-mask", "v3-mlm", "DebertaV2ForMaskedLM"),
                            ("sentiment-analysis", "v1-sst", "DebertaForSequenceClassification"),
                            ("ner", "v1-ner", "DebertaForTokenClassification"),
                            ("question-answering", "v3-qa", "DebertaV2ForQuestionAnswering"),
                            ("zero-shot-classification", "v3-nli", "DebertaV2ForSequenceClassification")]:
        pipe = our_pipeline(task, name)
        assert type(pipe.model).__name__ == cls and pipe.framework == "pt"
        assert type(pipe.tokenizer).__name__ == ("DebertaV2TokenizerFast" if name.startswith("v3") else
                                                 "DebertaTokenizerFast")
    assert set(SUPPORTED_TASKS) == {"fill-mask", "text-classification", "token-classification",
                                    "question-answering", "zero-shot-classification"}


def test_model_object_and_tokenizer_directory(model_dirs, ours_v3):
    from deberta_torch import DebertaV2ForTokenClassification

    model = DebertaV2ForTokenClassification.from_pretrained(model_dirs["v3-ner"])
    by_object = pipeline("ner", model=model, tokenizer=str(model_dirs["v3-ner"]))
    by_path = pipeline("ner", model=model_dirs["v3-ner"], tokenizer=ours_v3)
    text = " ".join(wnut_dev()[3].words)
    assert_close(by_object(text), by_path(text))
    with pytest.raises(ValueError, match="pass tokenizer="):
        pipeline("ner", model=model)
    with pytest.raises(ValueError, match="needs a ...ForQuestionAnswering model"):
        pipeline("question-answering", model=model, tokenizer=ours_v3)
    with pytest.raises(ValueError, match="framework='tf' but the model is a PyTorch model"):
        pipeline("ner", model=model, tokenizer=ours_v3, framework="tf")


@pytest.mark.parametrize("task,name", [("token-classification", "v3-ner"), ("question-answering", "v3-qa"),
                                       ("text-classification", "v1-sst")])
def test_results_do_not_depend_on_batch_size(task, name, model_dirs):
    pipes = [pipeline(task, model=model_dirs[name], batch_size=b) for b in (1, 3, 64)]
    if task == "question-answering":
        examples = squad_dev()[:7]
        call = dict(question=[e.question for e in examples], context=[e.context for e in examples],
                    max_seq_len=64, doc_stride=16, top_k=2)
        results = [p(**call) for p in pipes]
    else:
        inputs = [" ".join(e.words) for e in wnut_dev()[:9]] if task == "token-classification" else sst2_sentences()[:9]
        results = [p(inputs) for p in pipes]
    assert_close(results[0], results[1])
    assert_close(results[0], results[2])


def test_progress_bar_and_defaults(our_pipeline, model_dirs, capsys):
    pipe = pipeline("text-classification", model=model_dirs["v1-sst"], batch_size=2, progress_bar=True, top_k=None)
    out = pipe(sst2_sentences()[:5])
    assert len(out) == 5 and all(len(r) == 2 for r in out)  # the default top_k=None: every label
    assert "text-classification" in capsys.readouterr().err
    quiet = our_pipeline("text-classification", "v1-sst")
    quiet(sst2_sentences()[:5])
    assert capsys.readouterr().err == ""
    ner = pipeline("ner", model=model_dirs["v3-ner"], aggregation_strategy="simple")
    assert all("entity_group" in e for e in ner(" ".join(wnut_dev()[0].words)))
    assert pipe([]) == []


# ---------------------------------------------------------------------------- errors
def test_factory_errors(model_dirs, tmp_path):
    with pytest.raises(ValueError, match="unknown task 'summarization'"):
        pipeline("summarization", model=model_dirs["v3-mlm"])
    with pytest.raises(ValueError, match="needs model="):
        pipeline("fill-mask")
    with pytest.raises(ValueError, match="is not a directory"):
        pipeline("fill-mask", model=tmp_path / "absent")
    with pytest.raises(ValueError, match="framework must be 'pt' or 'tf'"):
        pipeline("fill-mask", model=model_dirs["v3-mlm"], framework="jax")
    with pytest.raises(ValueError, match="unknown aggregation_strategy 'longest'"):
        pipeline("ner", model=model_dirs["v3-ner"], aggregation_strategy="longest")
    with pytest.raises(ValueError, match="unknown parameter"):
        pipeline("ner", model=model_dirs["v3-ner"], top_k=3)
    with pytest.raises(ValueError, match="batch_size"):
        pipeline("ner", model=model_dirs["v3-ner"], batch_size=0)


def test_fill_mask_errors(our_pipeline):
    pipe = our_pipeline("fill-mask", "v3-mlm")
    with pytest.raises(ValueError, match="empty string"):
        pipe("")
    with pytest.raises(ValueError, match=r"no mask token \(\[MASK\]\)"):
        pipe("there is no mask here")
    with pytest.raises(ValueError, match="top_k"):
        pipe("a [MASK] b", top_k=0)
    with pytest.raises(ValueError, match="takes a string or a list"):
        pipe(42)


def test_text_classification_errors(our_pipeline):
    pipe = our_pipeline("text-classification", "v1-sst")
    with pytest.raises(ValueError, match="input 1 is an empty string"):
        pipe(["fine", "   "])
    with pytest.raises(ValueError, match="unknown function_to_apply 'relu'"):
        pipe("fine", function_to_apply="relu")
    with pytest.raises(ValueError, match="'text' and 'text_pair'"):
        pipe({"sentence": "a", "pair": "b"})
    with pytest.raises(ValueError, match="text_pair' is an empty string"):
        pipe({"text": "a", "text_pair": ""})
    with pytest.raises(ValueError, match="expected a string or a dict"):
        pipe([["a", "b"]])


def test_token_classification_errors(our_pipeline):
    pipe = our_pipeline("token-classification", "v3-ner")
    with pytest.raises(ValueError, match="empty string"):
        pipe("")
    with pytest.raises(ValueError, match="unknown aggregation_strategy 'longest'"):
        pipe("a text", aggregation_strategy="longest")
    with pytest.raises(ValueError, match="aggregation_strategy other than 'none'"):
        pipe("a text", stride=4)
    with pytest.raises(ValueError, match="stride"):
        pipe("a text", stride=4096, aggregation_strategy="simple")
    with pytest.raises(ValueError, match="non-empty list of words"):
        pipe([[]], is_split_into_words=True)
    with pytest.raises(ValueError, match="ignore_labels"):
        pipe("a text", ignore_labels="O")


def test_question_answering_errors(our_pipeline):
    pipe = our_pipeline("question-answering", "v3-qa")
    with pytest.raises(ValueError, match="the context is an empty string"):
        pipe(question="Where?", context="")
    with pytest.raises(ValueError, match="the question is an empty string"):
        pipe(question=" ", context="Paris is in France.")
    with pytest.raises(ValueError, match="the context is None"):
        pipe({"question": "Where?", "context": None})
    with pytest.raises(ValueError, match="needs both question= and context="):
        pipe(question="Where?")
    with pytest.raises(ValueError, match="2 questions but 1 contexts"):
        pipe(question=["a?", "b?"], context=["c"])
    with pytest.raises(ValueError, match="leaves no room for the context"):
        pipe(question="why " * 80, context="Paris is in France.", max_seq_len=64)
    with pytest.raises(ValueError, match=r"doc_stride \(80\) is larger than max_seq_len \(64\)"):
        pipe(question="Where?", context="Paris is in France.", max_seq_len=64, doc_stride=80)
    with pytest.raises(ValueError, match="max_answer_len"):
        pipe(question="Where?", context="Paris is in France.", max_answer_len=0)
    with pytest.raises(ValueError, match="top_k"):
        pipe(question="Where?", context="Paris is in France.", top_k=0)


def test_zero_shot_errors(our_pipeline):
    pipe = our_pipeline("zero-shot-classification", "v3-nli")
    with pytest.raises(ValueError, match="at least one candidate label"):
        pipe("a film", candidate_labels=[])
    with pytest.raises(ValueError, match="at least one candidate label"):
        pipe("a film", candidate_labels=" , ")
    with pytest.raises(ValueError, match="at least one candidate label"):
        pipe("a film")
    with pytest.raises(ValueError, match="must contain"):
        pipe("a film", candidate_labels=["good"], hypothesis_template="No slot here.")
    with pytest.raises(ValueError, match="empty string"):
        pipe("", candidate_labels=["good"])
    with pytest.raises(ValueError, match="at least one sequence"):
        pipe([], candidate_labels=["good"])


def test_task_layer_imports_no_framework():
    import subprocess
    import sys

    code = ("import sys, deberta_core.tasks, deberta_core.pipelines; "
            "bad = [m for m in ('torch', 'keras', 'tensorflow', 'transformers', 'jax') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("framework,device", [("pt", "cpu"), ("pt", -1), ("tf", "cpu"), ("tf", -1)])
def test_cpu_device(framework, device, model_dirs, our_pipeline):
    pipe = pipeline("text-classification", model=model_dirs["v1-sst"], framework=framework, device=device)
    texts = sst2_sentences()[:3]
    assert_close(pipe(texts), our_pipeline("text-classification", "v1-sst")(texts))
