"""`python -m deberta_core.train ...` (also under `torchrun --nproc_per_node N -m deberta_core.train ...`)."""

import sys

from .cli import main

sys.exit(main())
