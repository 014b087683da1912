"""Re-express a DeBERTa v1 checkpoint in the v2 layout (separate query/key/value projections).

v1 keeps W_q, W_k, W_v in one `in_proj.weight` (3C, C), interleaved per head: viewed as (H, 3, D, C), slot 0
is head h's W_q, slot 1 its W_k, slot 2 its W_v (SPEC §2.7; a plain chunk(3) would be wrong). The biases
q_bias / v_bias become the query / value biases, the key gets a zero bias; `pos_proj` (no bias) becomes
`pos_key_proj` with a zero bias and `pos_q_proj` becomes `pos_query_proj`. The v2 model then computes the
same function, because without buckets both families read the same relative rows.
"""

from __future__ import annotations

import re

import numpy as np

from deberta_core.config import DebertaV2Config
from deberta_core.weight_names import normalize_key

from .sources import Checkpoint, Report

_LAYER = re.compile(r"^(.*attention\.self\.)(in_proj\.weight|q_bias|v_bias|pos_proj\.weight|pos_q_proj\.(weight|bias))$")


def split_in_proj(weight: np.ndarray, num_heads: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(3C, C) interleaved per head -> W_q, W_k, W_v, each (C, C)."""
    three_c, c = weight.shape
    per_head = weight.reshape(num_heads, 3, three_c // (3 * num_heads), c)
    return tuple(np.ascontiguousarray(per_head[:, i].reshape(three_c // 3, c)) for i in range(3))


def v1_to_v2(ckpt: Checkpoint) -> Checkpoint:
    """The same model as a DebertaV2 checkpoint; refuses v1 options v2 cannot express."""
    config = ckpt.config
    if config.family != "v1":
        raise ValueError("--family v2 converts DeBERTa v1 checkpoints; this one is already v2")
    if config.talking_head:
        raise ValueError("this v1 model uses talking heads, which DeBERTa-v2 does not have")
    if "p2p" in config.pos_att_type:
        raise ValueError("pos_att_type has 'p2p': v1 counts it in the score scale and v2 does not, so the v2 "
                         "model would compute a different function")
    fields = {k: v for k, v in config.to_dict().items() if k not in ("model_type", "talking_head")}
    new_config = DebertaV2Config.from_dict({**fields, "share_att_key": False, "position_buckets": -1,
                                            "norm_rel_ebd": "none"})
    report = Report(list(ckpt.report.lines), dict(ckpt.report.counts))
    state: dict[str, np.ndarray] = {}
    heads = config.num_attention_heads
    for key, value in ckpt.state.items():
        norm = normalize_key(key)
        match = _LAYER.match(norm)
        if match is None:
            state[key] = value
            continue
        prefix, name = match.group(1), match.group(2)
        if name == "in_proj.weight":
            for part, w in zip(("query_proj", "key_proj", "value_proj"), split_in_proj(value, heads)):
                state[f"{prefix}{part}.weight"] = w
            state[f"{prefix}key_proj.bias"] = np.zeros(value.shape[1], dtype=value.dtype)
            report.add("split", f"{key} -> {prefix}{{query,key,value}}_proj.weight (per-head interleaving undone); "
                                f"{prefix}key_proj.bias = 0")
        elif name in ("q_bias", "v_bias"):
            target = f"{prefix}{'query' if name == 'q_bias' else 'value'}_proj.bias"
            state[target] = value
            report.add("renamed", f"{key} -> {target}")
        elif name == "pos_proj.weight":
            state[f"{prefix}pos_key_proj.weight"] = value
            state[f"{prefix}pos_key_proj.bias"] = np.zeros(value.shape[0], dtype=value.dtype)
            report.add("renamed", f"{key} -> {prefix}pos_key_proj.weight; {prefix}pos_key_proj.bias = 0")
        else:
            target = f"{prefix}pos_query_proj.{match.group(3)}"
            state[target] = value
            report.add("renamed", f"{key} -> {target}")
    return Checkpoint(new_config, state, ckpt.layout, ckpt.source, ckpt.architecture, report, ckpt.defaulted)
