"""`deberta-train` / `python -m deberta_core.train`: parse, check, run; errors become one clear line."""

from __future__ import annotations

import os
import sys

from .args import ArgumentError, build_parser, check_args


def run_command(parser, check, argv=None, make_job=None) -> int:
    """Parse ``argv`` with ``parser``, check with ``check``, train (deberta_core.train.loop.run with
    ``make_job``); returns the exit status.

    Bad arguments and bad data print ``PROG: error: ...`` and return 2 (argparse's own errors exit
    with 2 too). ``DEBERTA_TRAIN_TRACEBACK=1`` re-raises instead, for debugging.
    """
    args = parser.parse_args(argv)
    try:
        check(args)
        from .loop import run

        run(args, make_job)
    except (ArgumentError, ValueError, FileNotFoundError) as e:
        if os.environ.get("DEBERTA_TRAIN_TRACEBACK"):
            raise
        print(f"{parser.prog}: error: {e}", file=sys.stderr, flush=True)
        return 2
    return 0


def main(argv=None) -> int:
    """Run deberta-train with ``argv`` (default: sys.argv[1:]); returns the exit status."""
    return run_command(build_parser(), check_args, argv)


if __name__ == "__main__":
    sys.exit(main())
