"""The Keras losses compute deberta_core's numpy definitions, rule by rule."""

import numpy as np
import pytest
from keras import ops

from deberta_core import losses as reference
from deberta_tf import losses
from tests.loss_cases import loss_cases

CASES = loss_cases()


@pytest.mark.parametrize("name,function,kwargs", CASES, ids=[c[0] for c in CASES])
def test_loss_equals_numpy_definition(name, function, kwargs):
    expected = getattr(reference, function)(**kwargs)
    args = {k: ops.convert_to_tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    got = getattr(losses, function)(**args)
    got = got[0] if isinstance(got, tuple) else got
    assert float(ops.convert_to_numpy(got)) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_labels_batch_is_checked():
    with pytest.raises(ValueError, match="first dimension of 4"):
        losses.sequence_classification_loss(ops.zeros((4, 3)), ops.zeros((5,), dtype="int32"), 3, None)
