"""`deberta-pretrain` / `python -m deberta_core.pretrain`."""

from __future__ import annotations

import sys

from ..train.cli import run_command
from .args import build_parser, check_args


def main(argv=None) -> int:
    """Run deberta-pretrain with ``argv`` (default: sys.argv[1:]); returns the exit status (2: bad input)."""
    from .job import Pretraining

    return run_command(build_parser(), check_args, argv, make_job=Pretraining)


if __name__ == "__main__":
    sys.exit(main())
