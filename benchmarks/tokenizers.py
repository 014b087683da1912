"""Throughput of our fast tokenizers against the reference fast tokenizers (transformers 4.57.6).

Workloads, both on SQuAD v1.1 dev (data/datasets/squad-v1.1-dev/dev-v1.1.json):

* contexts: the 2,067 unique paragraph contexts, cycled to 10,000 texts, one batch call.
* qa: the first 10,000 (question, context) pairs, prepared as for extractive question
  answering: truncation="only_second", max_length=384, stride=128, overflow windows with
  overflow_to_sample_mapping and offsets.
* distinct: 10,000 different texts, each a question followed by its context, one batch call.
  Our tokenizers encode each distinct text of a batch once (contexts repeat in the first two
  workloads); this workload shows the speed without that help.

Ours and the reference run interleaved, round after round, in one process; the report gives
the median texts/s of each and ours/reference (above 1 means ours is faster), from wall-clock
time and from the process's CPU time (steadier when other programs share the machine). The
Rust thread pool, and the SentencePiece threads our v2/v3 tokenizers batch in (they follow the
same variable), are limited to one thread unless RAYON_NUM_THREADS is set, so the numbers are
per core; OMP_NUM_THREADS likewise defaults to 1.

    python benchmarks/tokenizers.py [--rounds 5] [--texts 10000] [--family v1|v3|both]
"""

from __future__ import annotations

import os
import sys

# This file is named like the `tokenizers` package; drop its folder from the import path so
# that `import tokenizers` finds the library, and make the repository importable.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

# Per-core measurement unless the caller asks otherwise; must be set before tokenizers loads.
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
DIRS = {"v1": DATA / "tokenizers" / "deberta-v1", "v3": DATA / "tokenizers" / "deberta-v3"}


def load_squad(count: int):
    """(contexts cycled to ``count``, first ``count`` question/context pairs)."""
    data = json.loads((DATA / "datasets" / "squad-v1.1-dev" / "dev-v1.1.json").read_text("utf-8"))
    paragraphs = [p for article in data["data"] for p in article["paragraphs"]]
    unique = [p["context"] for p in paragraphs]
    contexts = [unique[i % len(unique)] for i in range(count)]
    pairs = [(qa["question"], p["context"]) for p in paragraphs for qa in p["qas"]][:count]
    return unique, contexts, pairs


def tokenizers_for(family: str):
    import transformers

    from deberta_core.tokenization import DebertaTokenizerFast, DebertaV2TokenizerFast

    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    if family == "v1":
        return (DebertaTokenizerFast.from_pretrained(DIRS["v1"]),
                transformers.DebertaTokenizerFast.from_pretrained(DIRS["v1"]))
    return (DebertaV2TokenizerFast.from_pretrained(DIRS["v3"]),
            transformers.DebertaV2TokenizerFast.from_pretrained(DIRS["v3"]))


def workloads(contexts, pairs):
    questions, paired_contexts = [q for q, _ in pairs], [c for _, c in pairs]
    distinct = [q + " " + c for q, c in pairs]
    return {
        "contexts": (len(contexts), lambda tok: tok(contexts)),
        "distinct": (len(distinct), lambda tok: tok(distinct)),
        "qa": (len(pairs), lambda tok: tok(questions, paired_contexts, truncation="only_second",
                                           max_length=384, stride=128, return_overflowing_tokens=True,
                                           return_offsets_mapping=True, padding="max_length")),
    }


def measure(fn, tok) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn(tok)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--family", choices=("v1", "v3", "both"), default="both")
    args = parser.parse_args()

    import tokenizers
    import transformers

    unique, contexts, pairs = load_squad(args.texts)
    print(f"python {platform.python_version()}, tokenizers {tokenizers.__version__}, "
          f"transformers {transformers.__version__}, {os.cpu_count()} CPUs, "
          f"RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']} OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print(f"contexts: {len(contexts)} texts = the {len(unique)} unique SQuAD dev contexts, cycled; "
          f"distinct: {len(pairs)} texts 'question context', all different; "
          f"qa: {len(pairs)} (question, context) pairs, only_second/384/stride 128/overflow/offsets")
    print(f"{args.rounds} interleaved rounds per workload; texts/s are medians over rounds\n")
    families = ("v1", "v3") if args.family == "both" else (args.family,)
    header = (f"{'family':<7}{'workload':<10}{'ours texts/s':>14}{'ref texts/s':>13}{'ours/ref':>10}"
              f"{'ours CPU/s':>12}{'ref CPU/s':>11}{'ours/ref':>10}")
    rows = []
    print(header, flush=True)
    for family in families:
        ours, ref = tokenizers_for(family)
        for name, (count, fn) in workloads(contexts, pairs).items():
            fn(ours), fn(ref)  # warm-up (caches, lazy tables)
            times = {"ours": [], "ref": []}
            for round_index in range(args.rounds):
                # Alternate who goes first so drift in machine load hits both alike.
                order = (("ours", ours), ("ref", ref)) if round_index % 2 == 0 else (("ref", ref), ("ours", ours))
                for label, tok in order:
                    times[label].append(measure(fn, tok))
            rate = {label: [count / statistics.median(t[k] for t in times[label]) for k in (0, 1)]
                    for label in times}
            rows.append(f"{family:<7}{name:<10}{rate['ours'][0]:>14,.0f}{rate['ref'][0]:>13,.0f}"
                        f"{rate['ours'][0] / rate['ref'][0]:>10.2f}{rate['ours'][1]:>12,.0f}"
                        f"{rate['ref'][1]:>11,.0f}{rate['ours'][1] / rate['ref'][1]:>10.2f}")
            print(rows[-1], flush=True)
    print("\nsummary (texts/s, medians; ours/ref above 1 = ours faster)\n" + header + "\n" + "\n".join(rows))

if __name__ == "__main__":
    main()
