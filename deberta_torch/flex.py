"""Disentangled attention as one FlexAttention kernel: attn_implementation="flex_attention".

Legend: B batch, T query length, S key length, H heads, D head dim, R' position-table rows reached.

FlexAttention (torch.nn.attention.flex_attention) runs a fused flash-attention loop and calls a
`score_mod(score, b, h, i, j)` on each score tile. The relative terms enter there, as the reference
defines them: with row = line[i - j + S - 1] of the projected position table,
  score(i, j) = q_i . k_j / scale + c2p[b, h, i, row] + p2c[b, h, j, row]
where c2p = q @ pos_key.T (B, H, T, R') and p2c = k @ pos_query.T (B, H, S, R') are two ordinary
matmuls (pos_key, pos_query already divided by the scale). Nothing of size (B, H, T, S) is ever
materialised (R' <= 2 * position_buckets), so memory grows linearly with T. Scores are summed in
float32 inside the kernel, so float16 and bfloat16 models cannot overflow there.

Masks follow the PyTorch reference (SPEC §2.9): a masked score is replaced by the float32 minimum and
the softmax is plain, so a fully masked (padding) row attends uniformly to every key. A 2-D padding
mask is read per key from the (B, S) token mask, and its padded query rows get mean(v) directly.

On CUDA the kernel is compiled (Triton) on first use per shape; inside a torch.compile graph it is
compiled with the graph. On CPU it runs FlexAttention's unfused reference implementation, and inside
a compiled CPU graph the "sdpa" operator instead: "sdpa" is the fast CPU path. FlexAttention has no
dropout, no probabilities output and, on CPU, no backward: those calls take "sdpa" too (`usable`).
"""

from __future__ import annotations

import functools
import warnings

import torch

from .kernels import _uniform_padded_rows

try:  # torch >= 2.5
    from torch.nn.attention.flex_attention import flex_attention
except ImportError:  # pragma: no cover - older torch
    flex_attention = None

_FILL = torch.finfo(torch.float32).min


def available() -> bool:
    """Whether this torch has FlexAttention."""
    return flex_attention is not None


def usable(query: torch.Tensor, dropout_p: float, output_attentions: bool) -> bool:
    """Whether this call can run on FlexAttention (else the caller takes the "sdpa" path)."""
    if flex_attention is None or dropout_p > 0.0 or output_attentions:
        return False
    if query.device.type == "cpu":
        # No CPU backward; and in a compiled CPU graph the "sdpa" operator is both faster (measured: 322
        # vs 169 ms per v3-base layer at 4x512) and safe: Inductor's CPU FlexAttention template of torch
        # 2.13 returns NaN for some head sizes and lengths (16 and 40), even without a score_mod.
        return not torch.compiler.is_compiling() and not (torch.is_grad_enabled() and query.requires_grad)
    return True


@functools.lru_cache(maxsize=None)
def _compiled_kernel():
    return torch.compile(flex_attention, dynamic=False)


def _kernel(query: torch.Tensor):
    """The compiled kernel on accelerators; inside a compiled graph the plain function (compiled with the
    graph); on CPU outside one the unfused reference implementation, without its warning."""
    if torch.compiler.is_compiling():
        return flex_attention
    if query.device.type != "cpu":
        return _compiled_kernel()
    return _unfused


def _unfused(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
        return flex_attention(*args, **kwargs)


@torch.library.custom_op("deberta::materialize", mutates_args=())
def _materialize(x: torch.Tensor) -> torch.Tensor:
    """A copy Inductor cannot fuse away: its CPU FlexAttention template finds no kernel when an index
    or mask read by score_mod is still an unrealised pointwise expression (the distance line is one)."""
    return x.clone()


@_materialize.register_fake
def _(x):
    return torch.empty_like(x)


def flex_relative_attention(query, key, value, scale: float, pos_key=None, pos_query=None, line=None,
                            pair_mask=None, token_mask=None) -> torch.Tensor:
    """softmax(q.k / scale + c2p + p2c, masked) v through one FlexAttention call: context (B, H, T, D).

    query, key, value: (B, H, T|S, D). pos_key / pos_query: (H, R', D) position keys/queries divided by
    the scale, or None (term disabled). line: int64 (T + S - 1,), the row of those tables that query i
    and key j read is line[i - j + S - 1]. pair_mask: bool (B|1, 1, T, S) or None. token_mask: bool
    (B, T), given when pair_mask is token_mask[i] & token_mask[j] (then only keys are read per call).
    """
    B, H, T, _ = query.shape
    S = key.shape[2]
    c2p = None if pos_key is None else query @ pos_key.transpose(-1, -2)  # (B, H, T, R')
    p2c = None if pos_query is None else key @ pos_query.transpose(-1, -2)  # (B, H, S, R')
    keys_valid = None if token_mask is None else token_mask.bool()
    pairs = None if pair_mask is None or keys_valid is not None else pair_mask.expand(B, 1, T, S)
    offset = S - 1
    if torch.compiler.is_compiling():
        line, keys_valid, pairs = (None if t is None else _materialize(t) for t in (line, keys_valid, pairs))
        if query.device.type == "cpu":  # the CPU template reads q/k/v as plain buffers, not views of one
            query, key, value = (_materialize(t) for t in (query, key, value))

    def score_mod(score, b, h, i, j):
        if c2p is not None or p2c is not None:
            row = line[i - j + offset]
            if c2p is not None:
                score = score + c2p[b, h, i, row]
            if p2c is not None:
                score = score + p2c[b, h, j, row]
        if keys_valid is not None:
            score = torch.where(keys_valid[b, j], score, _FILL)
        elif pairs is not None:
            score = torch.where(pairs[b, 0, i, j], score, _FILL)
        return score

    context = _kernel(query)(query, key, value, score_mod=score_mod, scale=1.0 / scale)
    if torch.compiler.is_compiling() and query.device.type == "cpu":
        context = _materialize(context)  # the CPU template takes no fused epilogue (the padded rows below)
    return context if keys_valid is None else _uniform_padded_rows(context, value, keys_valid)
