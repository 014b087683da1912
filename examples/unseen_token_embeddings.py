"""How alike the word embeddings of tokens the pre-training text never had have become.

For an encoder checkpoint (deberta-pretrain's OUTPUT/encoder, safetensors or tf_model.h5): the token
types of the first N SST-2 training phrases, split into those that occur in the pre-training text
and those that do not, and for each group the mean pairwise cosine between (up to 500 of) their
embedding rows. Random rows give ~0; rows pushed in one shared direction give ~1.

    python -m examples.unseen_token_embeddings out/pretrain/rtd-sst-pt/encoder \\
        --text data/datasets/wikitext-2-valid-test/valid.txt [--text data/datasets/sst2/alps_train.tsv]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SST2_TRAIN = ROOT / "data" / "datasets" / "sst2" / "alps_train.tsv"
TABLE = "embeddings.word_embeddings.weight"


def mean_cosine(rows: np.ndarray) -> float:
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    n = len(unit)
    return float(((unit @ unit.T).sum() - n) / (n * n - n))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("encoder", help="checkpoint directory (config.json + weights + tokenizer files)")
    p.add_argument("--text", action="append", required=True, help="the pre-training text file(s)")
    p.add_argument("--phrases", type=int, default=2000, help="SST-2 training phrases to take the tokens of (2000)")
    args = p.parse_args(argv)

    from deberta_core.checkpoint import read_weights
    from deberta_core.config import load_config
    from deberta_core.pipelines.loading import load_tokenizer
    from deberta_core.pretrain.data import read_lines

    encoder = Path(args.encoder)
    tokenizer = load_tokenizer(encoder)
    _, weights = read_weights(encoder, "v1" if load_config(encoder).model_type == "deberta" else "v2")
    table = next(v for k, v in weights.items() if k.removeprefix("deberta.") == TABLE)
    seen = set()
    for line in read_lines(args.text):
        seen.update(tokenizer.convert_tokens_to_ids(tokenizer.tokenize(line)))
    counts: dict[int, int] = {}
    for line in read_lines([SST2_TRAIN])[:args.phrases]:
        for i in tokenizer.convert_tokens_to_ids(tokenizer.tokenize(line)):
            counts[i] = counts.get(i, 0) + 1
    unseen = [i for i in counts if i not in seen]
    present = [i for i in counts if i in seen]
    share = sum(counts[i] for i in unseen) / sum(counts.values())
    rng = np.random.default_rng(0)
    print(f"{encoder}: {len(counts)} token types in the first {args.phrases} SST-2 phrases, {len(unseen)} never in "
          f"the pre-training text ({100 * share:.0f}% of their occurrences)")
    print(f"mean cosine: unseen {mean_cosine(table[unseen[:500]]):.3f}, seen {mean_cosine(table[present[:500]]):.3f}, "
          f"random rows {mean_cosine(rng.normal(size=(500, table.shape[1]))):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
