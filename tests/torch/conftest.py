import numpy as np
import pytest
import torch

from tests.cases import SEQ_LEN


@pytest.fixture
def batch():
    """A padded batch: row 0 full, row 1 right-padded, row 2 mostly padding; ids avoid the pad id."""
    rng = np.random.default_rng(0)
    ids = torch.tensor(rng.integers(4, 100, size=(3, SEQ_LEN)), dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 30:] = 0
    mask[2, 5:] = 0
    types = torch.tensor(rng.integers(0, 2, size=(3, SEQ_LEN)), dtype=torch.long)
    return ids, mask, types
