"""Carve a train/dev split out of one SQuAD file by article (no article's questions in both halves).

    python -m examples.squad_split data/datasets/squad-v1.1-dev/dev-v1.1.json OUT_DIR [--every 8]

Article i (0-based, in file order) goes to OUT_DIR/dev.json when i % every == every - 1, else to
OUT_DIR/train.json. The default takes every 8th article (6 of SQuAD v1.1 dev's 48) as dev.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def split(source: Path, output: Path, every: int = 8) -> dict[str, int]:
    data = json.loads(source.read_text(encoding="utf-8"))
    if every < 2:
        raise ValueError(f"--every must be >= 2, got {every}")
    parts = {"train": [], "dev": []}
    for i, article in enumerate(data["data"]):
        parts["dev" if i % every == every - 1 else "train"].append(article)
    output.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, articles in parts.items():
        (output / f"{name}.json").write_text(json.dumps({"version": data.get("version", "1.1"), "data": articles}),
                                             encoding="utf-8")
        counts[name] = sum(len(p["qas"]) for a in articles for p in a["paragraphs"])
        counts[f"{name}_articles"] = len(articles)
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--every", type=int, default=8, help="every N-th article goes to dev (8)")
    args = p.parse_args(argv)
    counts = split(args.source, args.output, args.every)
    print(f"train.json: {counts['train']} questions from {counts['train_articles']} articles; "
          f"dev.json: {counts['dev']} questions from {counts['dev_articles']} articles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
