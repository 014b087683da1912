"""`deberta-train` / `python -m deberta_core.train`: parse, check, run; errors become one clear line."""

from __future__ import annotations

import os
import sys

from .args import ArgumentError, build_parser, check_args


def main(argv=None) -> int:
    """Run deberta-train with ``argv`` (default: sys.argv[1:]); returns the exit status.

    Bad arguments and bad data print ``deberta-train: error: ...`` and return 2 (argparse's own
    errors exit with 2 too). ``DEBERTA_TRAIN_TRACEBACK=1`` re-raises instead, for debugging.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_args(args)
        from .loop import run

        run(args)
    except (ArgumentError, ValueError, FileNotFoundError) as e:
        if os.environ.get("DEBERTA_TRAIN_TRACEBACK"):
            raise
        print(f"{parser.prog}: error: {e}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
