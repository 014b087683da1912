"""`deberta-convert SRC DST --to {torch,tf}`: convert a DeBERTa checkpoint between layouts and frameworks."""

from __future__ import annotations

import argparse
import sys

from .convert import convert
from .v1_to_v2 import v1_to_v2
from .sources import read_checkpoint


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="deberta-convert",
        description="Convert a DeBERTa checkpoint (Hugging Face PyTorch or TF, or the original microsoft/DeBERTa "
                    "pytorch.model.bin) into deberta_torch or deberta_tf layout, tokenizer files included.")
    p.add_argument("src", help="checkpoint directory (or an original pytorch.model.bin file)")
    p.add_argument("dst", help="destination directory (must not exist unless --force)")
    p.add_argument("--to", required=True, choices=("torch", "tf"), help="target framework")
    p.add_argument("--model-class", help="destination class, e.g. ForMaskedLM or DebertaV2ForQuestionAnswering "
                                         "(default: from the source config or its head tensors)")
    p.add_argument("--config", help="config json for an original checkpoint, when not beside it")
    p.add_argument("--family", choices=("v2",),
                   help="re-express a v1 checkpoint in the DeBERTa-v2 layout (in_proj split per head)")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), help="cast floating tensors")
    p.add_argument("--verify", action="store_true",
                   help="run a fixed batch through source and result and print the largest difference per output")
    p.add_argument("--force", action="store_true", help="replace an existing destination")
    p.add_argument("--allow-missing", action="store_true",
                   help="convert even if the destination class needs tensors the source lacks")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.to == "tf" and args.dtype == "bfloat16":
        print("error: tf_model.h5 stores float32 or float16; use --dtype float16 or load with a bf16 policy",
              file=sys.stderr)
        return 2
    try:
        ckpt = read_checkpoint(args.src, args.config)
        print(f"read {ckpt.layout} checkpoint: {len(ckpt.state)} tensors, DeBERTa {ckpt.config.family}")
        source = ckpt
        if args.family == "v2" and ckpt.config.family == "v2":
            print("note: --family v2: the checkpoint is already in the DeBERTa-v2 layout; nothing to re-express")
        elif args.family == "v2":
            ckpt = v1_to_v2(ckpt)
        result = convert(ckpt, args.dst, args.to, model_class=args.model_class, dtype=args.dtype, force=args.force,
                      allow_missing=args.allow_missing)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {result.path}")
    print(ckpt.report.summary())
    for line in ckpt.report.lines:
        print("  " + line)
    if args.verify:
        from .verify import unaccounted_tensors, verify

        unaccounted = unaccounted_tensors(source, result.head)
        print(f"verify: {len(source.state) - len(unaccounted)} of {len(source.state)} source tensors written or "
              "listed in the report")
        for key in unaccounted:
            print(f"  unused and unlisted: {key}")
        diffs = verify(source, result.head, result.state, result.path, args.to, dest_checkpoint=ckpt)
        width = max(len(k) for k in diffs)
        print("verify: largest |source - converted| per output")
        for key, value in diffs.items():
            print(f"  {key:<{width}}  {value:.3g}")
        worst = max(diffs.values())
        tolerance = 1e-4 if args.dtype in (None, "float32") else 5e-2
        ok = worst <= tolerance and not unaccounted
        why = f"; {len(unaccounted)} source tensor(s) unused (the config does not describe them)" if unaccounted else ""
        print(f"verify: {'OK' if ok else 'FAILED'} (max {worst:.3g}, tolerance {tolerance:g}{why})")
        if not ok:
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
