"""Checkpoint conversion across layouts (HF PyTorch, HF TF, original microsoft/DeBERTa) and frameworks."""

from .convert import Converted, convert, detect_head
from .sources import Checkpoint, read_checkpoint

__all__ = ["Checkpoint", "Converted", "convert", "detect_head", "read_checkpoint"]
