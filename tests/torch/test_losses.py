"""The torch losses compute deberta_core's numpy definitions, rule by rule."""

import numpy as np
import pytest
import torch

from deberta_core import losses as reference
from deberta_torch import losses
from tests.loss_cases import loss_cases

CASES = loss_cases()


@pytest.mark.parametrize("name,function,kwargs", CASES, ids=[c[0] for c in CASES])
def test_loss_equals_numpy_definition(name, function, kwargs):
    expected = getattr(reference, function)(**kwargs)
    args = {k: torch.from_numpy(np.asarray(v)) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    if "labels" in args and not args["labels"].is_floating_point():
        args["labels"] = args["labels"].long()
    for key in ("start_positions", "end_positions"):
        if key in args:
            args[key] = args[key].long()
    got = getattr(losses, function)(**args)
    got = got[0] if isinstance(got, tuple) else got
    assert float(got) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_labels_batch_is_checked():
    with pytest.raises(ValueError, match="first dimension of 4"):
        losses.sequence_classification_loss(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long), 3, None)
