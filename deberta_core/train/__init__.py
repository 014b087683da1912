"""deberta-train: fine-tune DeBERTa for classification, NER or question answering from the command line.

The framework-neutral part (no torch or keras import): argument checks (:mod:`.args`), data through
deberta_core.tasks (:mod:`.data`), the learning-rate schedule as a pure function (:mod:`.schedule`),
evaluation and baselines (:mod:`.evaluate`), metrics.json / curves.png (:mod:`.report`) and the
driver with best/last checkpoints and resume (:mod:`.loop`). The framework loops are
``deberta_torch.train`` (DDP under torchrun) and ``deberta_tf.train`` (MirroredStrategy).
"""

from .args import ArgumentError, build_parser, parse_args
from .cli import main
from .schedule import SCHEDULES, learning_rate, warmup_steps_for

__all__ = ["ArgumentError", "SCHEDULES", "build_parser", "learning_rate", "main", "parse_args", "warmup_steps_for"]
