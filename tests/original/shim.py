"""Import the original microsoft/DeBERTa package (PyPI `DeBERTa==0.1.12`, a test-only dependency installed
with --no-deps by the Makefile) on Python 3.11 and numpy 2.

The package predates both: it imports `collections.Sequence` (moved to collections.abc in Python 3.3 and
removed from collections in 3.10) and uses `np.int` (removed in numpy 1.24). Nothing else is patched: the
code under test is the package as published.
"""

from __future__ import annotations

import collections
import collections.abc
import importlib
import os

import numpy as np


def load_original():
    """The original package's `DeBERTa.deberta` module and `SequenceClassificationModel` class."""
    if not hasattr(collections, "Sequence"):
        collections.Sequence = collections.abc.Sequence
    if "int" not in np.__dict__:
        np.int = int
    deberta = importlib.import_module("DeBERTa.deberta")
    threads = os.environ.get("OMP_NUM_THREADS")
    classification = importlib.import_module("DeBERTa.apps.models.sequence_classification")
    # DeBERTa.apps sets OMP_NUM_THREADS=1 on import; put back what the test run had.
    if threads is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = threads
    return deberta, classification.SequenceClassificationModel
