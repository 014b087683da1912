"""torch.compile against eager for deberta-v3-base inference: compile seconds and tokens/s, per shape.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compile.py                 # 12 layers, 1x128,8x128,4x512
    .venv/bin/python benchmarks/compile.py --layers 2 --shapes 1x128 --repeats 3
    .venv/bin/python benchmarks/compile.py --dtype bf16                      # bfloat16 weights

Random weights, `torch.compile(model, fullgraph=True, dynamic=False)`, one fresh compile per shape
(torch._dynamo.reset()). Inductor keeps compiled code on disk between processes
(TORCHINDUCTOR_CACHE_DIR, /tmp/torchinductor_$USER by default): point it at an empty folder for a cold
compile time. Then `--repeats` interleaved runs of each; medians of CPU time. Prints the CPU model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.speed import FAMILIES, cpu_features  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--shapes", default="1x128,8x128,4x512", help="BATCHxSEQ, comma separated")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"), help="weight dtype")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    args = p.parse_args(argv)
    import torch

    import deberta_torch

    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_features()['cpu']}; torch {torch.__version__}; {args.layers} layers, {args.dtype}, "
          f"{args.threads} thread(s)")
    torch.manual_seed(0)
    model = deberta_torch.DebertaV2Model(deberta_torch.DebertaV2Config(
        **dict(FAMILIES["v3"], num_hidden_layers=args.layers))).eval()
    model = model.to({"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype])
    for shape in args.shapes.split(","):
        batch, seq = map(int, shape.split("x"))
        ids = torch.randint(5, 1000, (batch, seq), generator=torch.Generator().manual_seed(0))
        torch._dynamo.reset()
        compiled = torch.compile(model, fullgraph=True, dynamic=False)
        with torch.inference_mode():
            start = time.perf_counter()
            out = compiled(input_ids=ids).last_hidden_state
            compile_s = time.perf_counter() - start
            diff = (out.float() - model(input_ids=ids).last_hidden_state.float()).abs().max().item()
            times = {"eager": [], "compiled": []}
            for _ in range(args.repeats):
                for name, fn in (("eager", model), ("compiled", compiled)):
                    start = time.process_time()
                    fn(input_ids=ids)
                    times[name].append(time.process_time() - start)
        eager, comp = (statistics.median(times[n]) for n in ("eager", "compiled"))
        print(f"{shape:>7}  compile {compile_s:5.1f} s  eager {batch * seq / eager:6.0f} tok/s  compiled "
              f"{batch * seq / comp:6.0f} tok/s  compiled/eager {eager / comp:.3f}  max|diff| {diff:.1e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
