"""Task pipelines with the transformers call and return conventions, for PyTorch and Keras models.

```python
from deberta_core.pipelines import pipeline

ner = pipeline("token-classification", model="path/to/checkpoint", aggregation_strategy="simple")
ner("My name is Wolfgang and I live in Berlin")
qa = pipeline("question-answering", model="path/to/checkpoint", framework="tf")
qa(question="Where do I live?", context="My name is Wolfgang and I live in Berlin")
```

Tasks: "fill-mask", "text-classification" ("sentiment-analysis"), "token-classification" ("ner"),
"question-answering", "zero-shot-classification". Pre- and post-processing (deberta_core.tasks) exist
once; the only framework-specific part is a runner (deberta_torch.runner, deberta_tf.runner) that
calls the model on a padded numpy batch and returns numpy outputs.
"""

from __future__ import annotations

import os

from .base import Pipeline
from .fill_mask import FillMaskPipeline
from .loading import load_runner, load_tokenizer
from .question_answering import QuestionAnsweringPipeline
from .text_classification import TextClassificationPipeline
from .token_classification import TokenClassificationPipeline
from .zero_shot_classification import ZeroShotClassificationPipeline

SUPPORTED_TASKS = {
    "fill-mask": FillMaskPipeline,
    "text-classification": TextClassificationPipeline,
    "token-classification": TokenClassificationPipeline,
    "question-answering": QuestionAnsweringPipeline,
    "zero-shot-classification": ZeroShotClassificationPipeline,
}
TASK_ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}


def pipeline(task: str, model=None, tokenizer=None, framework: str | None = None, device=None,
             batch_size: int = 8, progress_bar: bool | None = None, **kwargs) -> Pipeline:
    """Build a pipeline for ``task``.

    model: a checkpoint directory (config.json + weights; the class comes from the task, the family
    from config.json's model_type) or a model object (a deberta_torch / deberta_tf model with the
    task's head). tokenizer: a tokenizer, a directory, or None (the model directory's).
    framework: "pt" (default for directories) or "tf"; for a model object it is read from the object.
    device: "cpu", "cuda", "cuda:1", "gpu:0", an index (-1 for CPU) or None. batch_size: sequences
    per model call (inputs are padded per batch; results do not depend on it). progress_bar: a tqdm
    bar over the sequences; None shows one when there are at least 16 batches.
    Other keyword arguments are defaults for the call parameters (e.g. aggregation_strategy="simple").
    """
    if not isinstance(task, str) or TASK_ALIASES.get(task, task) not in SUPPORTED_TASKS:
        raise ValueError(f"unknown task {task!r}; available: {sorted([*SUPPORTED_TASKS, *TASK_ALIASES])}")
    cls = SUPPORTED_TASKS[TASK_ALIASES.get(task, task)]
    if model is None:
        raise ValueError(f"pipeline({task!r}) needs model= (a checkpoint directory or a model object); no model "
                         "is downloaded")
    runner, framework = load_runner(model, cls.head, framework, device)
    if tokenizer is None:
        if isinstance(model, (str, os.PathLike)):
            tokenizer = load_tokenizer(model)
        else:
            source = getattr(runner.config, "name_or_path", None) or getattr(runner.config, "_name_or_path", None)
            if not source:
                raise ValueError("pass tokenizer= (a tokenizer or its directory) when model is a model object")
            tokenizer = load_tokenizer(source)
    elif isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = load_tokenizer(tokenizer)
    return cls(runner, tokenizer, framework=framework, batch_size=batch_size, progress_bar=progress_bar, **kwargs)


__all__ = ["FillMaskPipeline", "Pipeline", "QuestionAnsweringPipeline", "SUPPORTED_TASKS",
           "TextClassificationPipeline", "TokenClassificationPipeline", "ZeroShotClassificationPipeline",
           "pipeline"]
