"""Comparing pipeline results: ours against the reference, and torch against Keras.

Scores must agree to ATOL. Character offsets are compared after one documented normalisation: the
reference fast tokenizers give a word's first token a span that starts at the space before it
(#14418), ours starts at the word; so a reference span (and its text) is moved past leading spaces.
"""

from __future__ import annotations

ATOL = 1e-5
SCORE_KEYS = ("score",)


def _lead(text: str) -> int:
    return len(text) - len(text.lstrip())


def normalize_entity(entity: dict, sentence: str) -> dict:
    out = dict(entity)
    if out.get("start") is not None:
        out["start"] += _lead(sentence[out["start"]:out["end"]])
    out["word"] = out["word"].strip()
    return out


def normalize_answer(answer: dict) -> dict:
    out = dict(answer)
    lead = _lead(out["answer"])
    out["start"] += lead
    out["answer"] = out["answer"][lead:]
    return out


def assert_close(got, want, path: str = "result") -> None:
    """Equal structures; floats within ATOL (lists of scores too)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), f"{path}: {got!r} is not a dict"
        assert list(got) == list(want), f"{path}: keys {list(got)} != {list(want)}"
        for key in want:
            assert_close(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)), f"{path}: {got!r} is not a list"
        assert len(got) == len(want), f"{path}: {len(got)} items != {len(want)}\n ours {got}\n ref  {want}"
        for i, (a, b) in enumerate(zip(got, want)):
            assert_close(a, b, f"{path}[{i}]")
    elif isinstance(want, float) or type(want).__name__ in ("float32", "float64"):
        assert abs(float(got) - float(want)) <= ATOL, f"{path}: {float(got)} != {float(want)}"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"
