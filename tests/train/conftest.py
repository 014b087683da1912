"""Helpers for the deberta-train tests: tiny v3-shaped configs with the real v3 vocabulary, the
repository's data files, and in-process / subprocess runs of the CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np

from tests.cases import DATA, data_path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = DATA / "tokenizers" / "deberta-v3"
# Toy subsets: training on the first examples of a file and evaluating on the same ones is learnable
# in a few steps (the loss must fall).
DATASETS = {
    "classification": ("datasets", "sst2", "glue_sst2_dev.tsv"),
    "ner": ("datasets", "wnut17", "emerging.dev.conll"),
    "qa": ("datasets", "squad-v1.1-dev", "dev-v1.1.json"),
}


def tiny_config(directory: Path, dropout: float = 0.0) -> Path:
    """A DeBERTa-v3-shaped config at hidden 32, 2 layers, the real v3 vocabulary size."""
    config = {"model_type": "deberta-v2", "vocab_size": 128100, "hidden_size": 32, "num_hidden_layers": 2,
              "num_attention_heads": 2, "intermediate_size": 64, "relative_attention": True,
              "pos_att_type": ["p2c", "c2p"], "position_buckets": 32, "max_relative_positions": 64,
              "share_att_key": True, "norm_rel_ebd": "layer_norm", "position_biased_input": False,
              "type_vocab_size": 0, "hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"tiny_dropout{dropout:g}.json"
    path.write_text(json.dumps(config))
    return path


def train_argv(task: str, framework: str, config: Path, output: Path, **options) -> list[str]:
    """A deberta-train command line on the task's toy subset; ``options`` add or replace flags."""
    data = str(data_path(*DATASETS[task]))
    flags = {"task": task, "framework": framework, "config": config and str(config), "tokenizer": str(TOKENIZER),
             "train": data, "eval": data, "max-train-examples": 8, "max-eval-examples": 8, "batch-size": 8,
             "max-steps": 4, "lr": 1e-3, "output": str(output), "threads": 1}
    if task == "qa":
        flags.update({"max-length": 128, "doc-stride": 32})
    return command_line(flags, options)


def command_line(flags: dict, options: dict) -> list[str]:
    """``--key value`` pairs of ``flags`` updated by ``options`` (underscores become dashes; True: a bare
    flag; None/False: left out), then --no-progress."""
    flags = {**flags, **{k.replace("_", "-"): v for k, v in options.items()}}
    argv = []
    for key, value in flags.items():
        if value is True:
            argv.append(f"--{key}")
        elif value is not None and value is not False:
            argv += [f"--{key}", str(value)]
    return argv + ["--no-progress"]


def run_main(argv: list[str]) -> int:
    from deberta_core.train import main

    return main(argv)


def run_subprocess(args: list[str], timeout: int = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def metrics(output: Path) -> dict:
    return json.loads((output / "metrics.json").read_text())


def losses(output: Path) -> list[float]:
    return [r["loss"] for r in metrics(output)["train_log"]]


def weights(directory: Path) -> dict[str, np.ndarray]:
    """The tensors of a checkpoint directory as PyTorch-keyed numpy arrays (either framework's file)."""
    from deberta_core.checkpoint import TF_WEIGHTS
    from deberta_core.tf_names import read_tf_h5, state_dict_from_tf

    if (directory / "model.safetensors").is_file():
        from safetensors.numpy import load_file

        return load_file(directory / "model.safetensors")
    return state_dict_from_tf(read_tf_h5(directory / TF_WEIGHTS), "v2")


def max_difference(a: dict, b: dict) -> float:
    assert sorted(a) == sorted(b)
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max()) for k in a)


import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _restore_torch_threads():
    """The runs pass --threads 1 (two torch threads on a shared 2-core machine are many times slower);
    put torch's setting back for the modules that follow."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
