import numpy as np
import pytest
import torch

from tests.cases import SEQ_LEN

# Where the parity suites run: the CPU, and every accelerator present (CI has none; a GPU machine runs
# each parity case there too). TF32 would round matmuls to 10 mantissa bits: off, so fp32 means fp32.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
if torch.cuda.is_available():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


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
