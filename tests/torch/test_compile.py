"""torch.compile with Inductor, the FlexAttention path, and the distance-line bounds they rely on.

Compiled inference calls the banded kernel as one operator (kernels.compiled_relative_attention), which
decides the mask's form on each call; attn_implementation="flex_attention" compiles into Inductor's
FlexAttention kernel. Both must give the eager path's numbers (fp32, 1e-5). Tiny configs, but with a
head size of 16 so Inductor's CPU FlexAttention template applies; each compile takes seconds.
"""

import numpy as np
import pytest
import torch

import deberta_torch as dt
import deberta_torch.kernels as kernels
from deberta_core import relative_position as oracle
from deberta_torch.relative_position import flat_ends, relative_position_line
from tests.torch.test_fast_path import build, inputs, max_diff, run

TOL = 1e-5


def compile_model(model, **kwargs):
    torch._dynamo.reset()
    return torch.compile(model, fullgraph=True, **kwargs)


@pytest.fixture
def operator_calls(monkeypatch):
    """How often the compiled graphs ran the banded kernel (through the operator)."""
    calls = []
    original = kernels.relative_attention

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(kernels, "relative_attention", counting)
    return calls


@pytest.mark.parametrize("name", ["v1_rel", "v3_buckets_shared"])
def test_inductor_inference_runs_the_banded_operator(name, operator_calls):
    model = build(name, hidden_size=64).eval()
    ids, padded = inputs()
    full = torch.ones_like(padded)
    compiled = compile_model(model, dynamic=False)
    torch._dynamo.config.error_on_recompile = True  # one graph serves every mask of this shape
    try:
        with torch.no_grad():
            outs = {kind: compiled(ids, attention_mask=mask).last_hidden_state
                    for kind, mask in (("padding", padded), ("none", full))}
    finally:
        torch._dynamo.config.error_on_recompile = False
    assert len(operator_calls) == 2 * model.config.num_hidden_layers  # not the traced tile loop
    with torch.no_grad():
        for kind, mask in (("padding", padded), ("none", full)):
            assert max_diff(outs[kind], run(model, "eager", ids, mask).last_hidden_state) < TOL, kind


def test_inductor_dynamic_length_keeps_the_operator(operator_calls):
    model = build("v3_buckets_shared", hidden_size=64).eval()
    compiled = compile_model(model, dynamic=True)
    batches = [inputs(length=length) for length in (24, 40)]
    with torch.no_grad():
        outs = [compiled(ids, attention_mask=mask).last_hidden_state for ids, mask in batches]
        assert len(operator_calls) == 2 * model.config.num_hidden_layers
        for out, (ids, mask) in zip(outs, batches):
            assert max_diff(out, run(model, "eager", ids, mask).last_hidden_state) < TOL


@pytest.mark.parametrize("backend", ["packed", "plain"])
def test_compiled_inference_runs_the_linear_operator(monkeypatch, backend):
    """Compiled CPU inference runs the encoder's Linear layers through kernels.compiled_linear (eager's
    packed weights and measured kernel, not Inductor's matmuls): one cache entry per Linear, eager's numbers,
    and a weight changed in place between calls is seen."""
    monkeypatch.setattr(kernels, "_COMPILED_LINEARS", {})
    kernels.set_linear_backend(backend)
    try:
        model = build("v3_buckets_shared", hidden_size=64).eval()
        ids, mask = inputs()
        compiled = compile_model(model, dynamic=False)
        with torch.no_grad():
            out = compiled(ids, attention_mask=mask).last_hidden_state
            # per layer: the fused q/k/v, attention output, intermediate (GELU fused) and output Linear
            assert len(kernels._COMPILED_LINEARS) == 4 * model.config.num_hidden_layers
            packed = ["linear/packed" in getattr(holder, "_inference_cache", {})
                      for _, holder in kernels._COMPILED_LINEARS.values()]
            assert all(packed) if backend == "packed" else not any(packed)
            assert max_diff(out, run(model, "eager", ids, mask).last_hidden_state) < TOL
            model.encoder.layer[0].intermediate.dense.weight.mul_(2.0)
            out = compiled(ids, attention_mask=mask).last_hidden_state
            assert max_diff(out, run(model, "eager", ids, mask).last_hidden_state) < TOL
    finally:
        kernels.set_linear_backend("auto")


@pytest.mark.parametrize("autocast", [False, True])
def test_bfloat16_inference_compiles(autocast):
    """A bfloat16 model (or float32 under bf16 autocast) compiles with fullgraph=True for inference and gives
    the eager bfloat16 numbers."""
    model = build("v3_buckets_shared", hidden_size=64).eval()
    if not autocast:
        model = model.to(torch.bfloat16)
    ids, mask = inputs()
    compiled = compile_model(model, dynamic=False)
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
        out = compiled(ids, attention_mask=mask).last_hidden_state
        eager = model(ids, attention_mask=mask).last_hidden_state
    assert out.dtype == eager.dtype == (torch.float32 if autocast else torch.bfloat16)  # autocast: fp32 LayerNorm
    assert max_diff(out, eager) < 0.05 * eager.abs().max().item()


def test_compiled_training_step_equals_eager():
    """With gradients the graph traces the bias's autograd Function (no operator): same loss and gradients."""
    model = build("v3_buckets_shared", hidden_size=64).train()
    ids, mask = inputs()
    compiled = compile_model(model, dynamic=False)
    grads = []
    for fn in (compiled, model):
        model.zero_grad()
        loss = fn(ids, attention_mask=mask).last_hidden_state.square().mean()
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    assert abs(grads[0][0] - grads[1][0]) < TOL
    assert max(max_diff(a, b) for a, b in zip(grads[0][1], grads[1][1])) < 1e-4


@pytest.mark.parametrize("mask_kind", ["padding", "pairwise"])
def test_flex_kernel_compiled_equals_unfused(mask_kind):
    """The score_mod through Inductor's FlexAttention lowering (the front end CUDA shares) and the unfused
    reference implementation agree; head size 64 (the released models'), a length no block divides."""
    from deberta_torch import flex

    g = torch.Generator().manual_seed(0)
    B, H, T, D, R = 2, 2, 40, 64, 12
    q, k, v = (torch.randn(B, H, T, D, generator=g) for _ in range(3))
    pos_key, pos_query = (torch.randn(H, R, D, generator=g) for _ in range(2))
    line = torch.clamp(torch.arange(-(T - 1), T) + R // 2, 0, R - 1)
    token = torch.ones(B, T, dtype=torch.bool)
    token[1, 25:] = False
    pairs = token[:, None, :, None] & token[:, None, None, :]
    if mask_kind == "pairwise":
        pairs = pairs & (torch.rand(B, 1, T, T, generator=g) > 0.3)
    masks = dict(pair_mask=pairs, token_mask=token if mask_kind == "padding" else None)

    def attend(q, k, v, pos_key, pos_query, line):
        return flex.flex_relative_attention(q, k, v, 8.0, pos_key, pos_query, line, **masks)

    torch._dynamo.reset()
    with torch.no_grad():
        fused = torch.compile(attend, fullgraph=True, dynamic=False)(q, k, v, pos_key, pos_query, line)
        unfused = attend(q, k, v, pos_key, pos_query, line)
    assert max_diff(fused, unfused) < TOL


def test_flex_attention_in_a_compiled_cpu_graph_takes_the_operator(operator_calls):
    model = build("v3_buckets_shared", hidden_size=64).eval()
    ids, mask = inputs()
    with torch.no_grad():
        ref = run(model, "eager", ids, mask).last_hidden_state
        model.set_attn_implementation("flex_attention")
        unfused = model(ids, attention_mask=mask).last_hidden_state
        compiled = compile_model(model, dynamic=False)(ids, attention_mask=mask).last_hidden_state
    assert max_diff(unfused, ref) < TOL and max_diff(compiled, ref) < TOL
    assert len(operator_calls) == model.config.num_hidden_layers


def test_flex_attention_falls_back_where_it_cannot_run():
    """Dropout, probabilities and CPU gradients are not in FlexAttention: those calls take "sdpa"."""
    model = build("v3_buckets_shared", hidden_size=64)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.1
    ids, mask = inputs()
    model.set_attn_implementation("flex_attention")
    torch.manual_seed(0)
    out = model(ids, attention_mask=mask).last_hidden_state  # training mode: dropout, gradients
    out.sum().backward()
    model.set_attn_implementation("sdpa")
    model.zero_grad()
    torch.manual_seed(0)
    assert max_diff(out, model(ids, attention_mask=mask).last_hidden_state) == 0.0
    model.eval()
    probs = run(model, "flex_attention", ids, mask, output_attentions=True).attentions
    assert probs is not None and probs[0].shape == (3, 4, ids.shape[1], ids.shape[1])


@pytest.mark.parametrize("T", [1, 7, 40, 300, 700])
@pytest.mark.parametrize("span,buckets,max_position", [(16, -1, -1), (8, 8, 16), (256, 256, 512)])
def test_line_bounds_match_the_line(T, span, buckets, max_position):
    line = relative_position_line(T, T, span, buckets, max_position)
    lo, hi, m_lo, m_hi = oracle.line_bounds(T, T, span, buckets, max_position)
    assert (lo, hi) == (int(line[0]), int(line[-1]))
    assert (m_lo, m_hi) == flat_ends(line)
    assert np.all(np.diff(line.numpy()) >= 0)
