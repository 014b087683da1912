"""deberta-pretrain: pre-train DeBERTa from text files, masked LM or v3's replaced-token detection.

Framework-neutral, like deberta_core.train, whose driver (loop, checkpoints, resume, report, scale-out)
it reuses with its own job: text reading, packing and dynamic masking (:mod:`.data`), the job that
builds the model and scores held-out text (:mod:`.job`) and the command line (:mod:`.args`, :mod:`.cli`).
"""

from .args import build_parser, check_args
from .cli import main

__all__ = ["build_parser", "check_args", "main"]
