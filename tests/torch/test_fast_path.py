"""The fast attention path ("sdpa", deberta_torch/kernels.py) against the eager, reference-shaped path.

Tiny configs from tests/cases.py (hidden 32, 4 heads, 2 layers, spans shorter than the sequence, so the
log buckets, the index clamp and the constant far stretches all run). fp32 results must agree to 1e-5.
"""

import pytest
import torch

import deberta_torch as dt
import deberta_torch.kernels as kernels
from deberta_torch.relative_position import flat_ends, index_from_line, relative_position_line
from tests.cases import SEQ_LEN, VARIANTS, variant_config_kwargs

TOL = 1e-5
FAST = [name for name in dt.ATTN_IMPLEMENTATIONS if name != "eager"]


def build(name, seed=0, **overrides):
    family, kwargs = variant_config_kwargs(name)
    kwargs.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **overrides)
    torch.manual_seed(seed)
    if family == "v1":
        return dt.DebertaModel(dt.DebertaConfig(**kwargs))
    return dt.DebertaV2Model(dt.DebertaV2Config(**kwargs))


def inputs(batch=3, length=SEQ_LEN, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 100, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1, length // 2:] = 0  # right padding
    mask[2, :3] = 0  # left padding
    return ids, mask


def run(model, impl, ids, mask, **kwargs):
    model.set_attn_implementation(impl)
    return model(ids, attention_mask=mask, **kwargs)


def max_diff(a, b):
    return (a.float() - b.float()).abs().max().item()


def test_fast_path_is_the_default():
    assert dt.ATTN_IMPLEMENTATIONS[0] == "sdpa" and "eager" in dt.ATTN_IMPLEMENTATIONS
    model = build("v3_buckets_shared")
    assert all(m.attn_implementation == "sdpa" for m in model.modules() if hasattr(m, "attn_implementation"))


@pytest.mark.parametrize("impl", FAST)
@pytest.mark.parametrize("mask_kind", ["none", "padding", "pairwise"])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_matches_eager(name, mask_kind, impl):
    model = build(name).eval()
    ids, mask = inputs()
    if mask_kind == "none":
        mask = None
    elif mask_kind == "pairwise":  # (B, T, T): an arbitrary pattern, one query row fully masked
        mask = (torch.rand(3, SEQ_LEN, SEQ_LEN, generator=torch.Generator().manual_seed(2)) > 0.3).long()
        mask[0, 7] = 0
    with torch.no_grad():
        ref = run(model, "eager", ids, mask, output_hidden_states=True)
        out = run(model, impl, ids, mask, output_hidden_states=True)
    for a, b in zip(ref.hidden_states, out.hidden_states):
        assert max_diff(a, b) < TOL


@pytest.mark.parametrize("name", ["v1_rel", "v1_c2p_talking", "v3_buckets_shared", "v2_p2c_only_conv_tanh"])
def test_attention_probabilities_match_eager(name):
    model = build(name).eval()
    ids, mask = inputs()
    with torch.no_grad():
        ref = run(model, "eager", ids, mask, output_attentions=True)
        out = run(model, "sdpa", ids, mask, output_attentions=True)
    assert max_diff(ref.last_hidden_state, out.last_hidden_state) < TOL
    for a, b in zip(ref.attentions, out.attentions):
        assert a.shape == b.shape and max_diff(a, b) < TOL
    if not model.config.talking_head:  # talking heads mix the probabilities of the heads afterwards
        padded_row = out.attentions[0][1, :, -1]  # row 1 is right-padded: uniform over every key
        assert torch.allclose(padded_row, torch.full_like(padded_row, 1.0 / SEQ_LEN))


@pytest.mark.parametrize("name", ["v1_rel", "v3_buckets_shared", "v2_nobuckets_types_embproj"])
def test_tiled_and_blocked_paths_match_eager(name, monkeypatch):
    """Bands of 3-5 rows/keys and a bias budget of a few rows force every loop of the long-input path."""
    model = build(name).eval()
    ids, mask = inputs(length=77)
    with torch.no_grad():
        ref = run(model, "eager", ids, mask).last_hidden_state
        monkeypatch.setattr(kernels, "TILE_QUERY", {4: 5, 2: 5})
        monkeypatch.setattr(kernels, "TILE_KEY", {4: 3, 2: 3})
        monkeypatch.setattr(kernels, "BIAS_BUDGET", 4 * 77 * 7)  # 7 query rows per block, one batch row at a time
        out = run(model, "sdpa", ids, mask).last_hidden_state
        pairwise = mask[:, None, :] * mask[:, :, None]
        pairwise[0, 3, 5] = 0
        ref_pairwise = run(model, "eager", ids, pairwise).last_hidden_state
        out_pairwise = run(model, "sdpa", ids, pairwise).last_hidden_state
    assert max_diff(ref, out) < TOL
    assert max_diff(ref_pairwise, out_pairwise) < TOL


@pytest.mark.parametrize("length,queries", [(9, 9), (23, 23), (6, 11), (11, 6)])
def test_relative_bias_equals_gathered_terms(length, queries):
    """The banded, skewed products equal the reference gathers, keys reversed, with and without flat ends."""
    g = torch.Generator().manual_seed(0)
    B, H, D, T, S = 2, 3, 4, queries, length
    q, k = torch.randn(B, H, T, D, generator=g), torch.randn(B, H, S, D, generator=g)
    pos_key, pos_query = torch.randn(H, 8, D, generator=g), torch.randn(H, 8, D, generator=g)
    line = relative_position_line(T, S, 4, 6, 12)  # 8 rows, log buckets, clamped far ends
    index = index_from_line(line, T, S)
    c2p = torch.gather(q @ pos_key.transpose(-1, -2), -1, index.expand(B, H, T, S))
    p2c = torch.gather(k @ pos_query.transpose(-1, -2), -1, index.t().expand(B, H, S, T)).transpose(-1, -2)
    key_line, query_line = kernels.distance_tables(pos_key, pos_query, line, 2.0)
    for flat in (None, flat_ends(line)):
        for tiles in ((2, 3), (64, 64)):
            bias = kernels.relative_bias(q, k.flip(2), key_line, query_line, (0, T), flat_ends=flat,
                                         tile_query=tiles[0], tile_key=tiles[1])
            assert torch.allclose(bias.flip(-1), (c2p + p2c) / 2.0, atol=1e-6)
            rows = kernels.relative_bias(q, k.flip(2), key_line, None, (1, T - 1), flat_ends=flat, tile_query=tiles[0])
            assert torch.allclose(rows.flip(-1), c2p[:, :, 1:T - 1] / 2.0, atol=1e-6)


@pytest.mark.parametrize("length,queries", [(9, 9), (11, 6)])
def test_relative_bias_under_autograd(length, queries):
    """With gradients the bias comes from kernels._BandBias (its backward written out); it must equal the
    gathered terms, masked keys included, and its gradients must pass a float64 finite-difference check
    (with T != S, row blocks and tiles of both terms alike in shape, whose scratch bands must stay apart)."""
    g = torch.Generator().manual_seed(0)
    B, H, D, T, S = 2, 3, 4, queries, length
    q = torch.randn(B, H, T, D, generator=g, dtype=torch.float64)
    k = torch.randn(B, H, S, D, generator=g, dtype=torch.float64)
    pos_key, pos_query = (torch.randn(H, 8, D, generator=g, dtype=torch.float64) for _ in range(2))
    line = relative_position_line(T, S, 4, 6, 12)
    index = index_from_line(line, T, S)
    c2p = torch.gather(q @ pos_key.transpose(-1, -2), -1, index.expand(B, H, T, S))
    p2c = torch.gather(k @ pos_query.transpose(-1, -2), -1, index.t().expand(B, H, S, T)).transpose(-1, -2)
    key_line, query_line = kernels.distance_tables(pos_key, pos_query, line, 2.0)
    fill = torch.zeros(B, S, dtype=torch.bool)
    fill[1, :2] = True  # two padded keys (reversed order: the last two)
    inputs = [t.clone().requires_grad_() for t in (q, k.flip(2), key_line, query_line)]
    bias = kernels.relative_bias(*inputs, (1, T), fill, tile_query=2, tile_key=3)
    assert bias.grad_fn is not None
    expected = ((c2p + p2c) / 2.0)[:, :, 1:].flip(-1).masked_fill(fill[:, None, None, :], torch.finfo(bias.dtype).min)
    assert torch.allclose(bias, expected, atol=1e-12)
    assert torch.autograd.gradcheck(
        lambda *t: kernels.relative_bias(*t, (1, T), tile_query=2, tile_key=3), inputs)
    c2p_only = [inputs[0], inputs[1], inputs[2], None]
    assert torch.autograd.gradcheck(lambda a, b, c: kernels.relative_bias(a, b, c, None, (0, T), tile_query=2),
                                    c2p_only[:3])
    # second derivatives (create_graph=True: gradient penalties), through the same tiles
    assert torch.autograd.gradgradcheck(
        lambda *t: kernels.relative_bias(*t, (1, T), tile_query=2, tile_key=3), inputs)


@pytest.mark.parametrize("name", ["v1_rel", "v3_buckets_shared", "v2_c2p_only_abs", "v2_p2c_only_conv_tanh"])
def test_gradients_match_eager(name):
    model = build(name).train()
    ids, mask = inputs()
    grads = {}
    for impl in ("eager", "sdpa"):
        model.zero_grad()
        out = run(model, impl, ids, mask).last_hidden_state
        weights = torch.linspace(-1, 1, out.numel()).view_as(out)
        (out * weights).sum().backward()
        grads[impl] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert grads["eager"].keys() == grads["sdpa"].keys()
    for n, g in grads["eager"].items():
        assert max_diff(g, grads["sdpa"][n]) <= 1e-5 * max(1.0, g.abs().max().item()), n


@pytest.mark.parametrize("name", ["v3_buckets_shared", "v2_c2p_only_abs"])
def test_bfloat16_autocast_gradients_match_eager(name):
    """Mixed-precision training: under bf16 autocast the bias's written-out backward (kernels._BandBias)
    gives the eager path's gradients to bf16 precision."""
    model = build(name).train()
    ids, mask = inputs()
    grads = {}
    for impl in ("eager", "sdpa"):
        model.zero_grad()
        with torch.autocast("cpu", torch.bfloat16):
            out = run(model, impl, ids, mask).last_hidden_state
        weights = torch.linspace(-1, 1, out.numel()).view_as(out)
        (out.float() * weights).sum().backward()
        grads[impl] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert grads["eager"].keys() == grads["sdpa"].keys()
    for n, g in grads["eager"].items():
        assert torch.isfinite(grads["sdpa"][n]).all(), n
        assert max_diff(g, grads["sdpa"][n]) <= 0.05 * max(1e-3, g.abs().max().item()), n


@pytest.mark.parametrize("name", ["v3_buckets_shared", "v2_p2c_only_conv_tanh"])
def test_gradient_penalty_matches_eager(name):
    """A second derivative through the model (an input-gradient penalty, create_graph=True) gives the eager
    path's parameter gradients: the bias's written-out backward is itself differentiable."""
    model = build(name).train()
    ids, mask = inputs()
    embeds = model.embeddings.word_embeddings(ids).detach()
    grads = {}
    for impl in ("eager", "sdpa"):
        model.zero_grad()
        x = embeds.clone().requires_grad_()
        out = run(model, impl, None, mask, inputs_embeds=x).last_hidden_state
        weights = torch.linspace(-1, 1, out.numel()).view_as(out)
        (grad_x,) = torch.autograd.grad((out * weights).sum(), x, create_graph=True)
        grad_x.pow(2).sum().backward()
        grads[impl] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert grads["eager"].keys() == grads["sdpa"].keys() and grads["sdpa"]
    for n, g in grads["eager"].items():
        assert max_diff(g, grads["sdpa"][n]) <= 1e-5 * max(1.0, g.abs().max().item()), n


def test_gradient_checkpointing_matches():
    model = build("v2_conv_unshared").train()
    ids, mask = inputs()
    out = run(model, "sdpa", ids, mask).last_hidden_state
    out.pow(2).mean().backward()
    plain = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.gradient_checkpointing_enable()
    out2 = run(model, "sdpa", ids, mask).last_hidden_state
    out2.pow(2).mean().backward()
    assert max_diff(out, out2) < TOL
    for n, p in model.named_parameters():
        assert max_diff(p.grad, plain[n]) <= 1e-5 * max(1.0, plain[n].abs().max().item()), n


@pytest.mark.parametrize("name", ["v1_rel", "v3_buckets_shared", "v2_conv_unshared"])
def test_inference_caches_follow_the_weights(name):
    """Cached projections, tables and packed weights are rebuilt after any weight change."""
    model = build(name).eval()
    ids, mask = inputs()

    def fast():
        with torch.no_grad():
            return run(model, "sdpa", ids, mask).last_hidden_state

    def eager():
        with torch.no_grad():
            return run(model, "eager", ids, mask).last_hidden_state

    first = fast()
    assert torch.equal(first, fast())  # served from the caches
    # an optimizer step updates every parameter in place
    model.train()
    out = run(model, "sdpa", ids, mask).last_hidden_state
    out.pow(2).mean().backward()
    torch.optim.SGD(model.parameters(), lr=0.5).step()
    model.eval()
    stepped = fast()
    assert max_diff(stepped, first) > 1e-3 and max_diff(stepped, eager()) < TOL
    # load_state_dict copies into the same tensors
    other = build(name, seed=7).eval()
    model.load_state_dict(other.state_dict())
    assert max_diff(fast(), eager()) < TOL
    with torch.no_grad():
        assert max_diff(fast(), run(other, "eager", ids, mask).last_hidden_state) < TOL
    # replacing a tensor outright, and in-place edits of the relative table alone
    encoder = model.encoder
    encoder.rel_embeddings.weight.data = encoder.rel_embeddings.weight.data * 1.5
    assert max_diff(fast(), eager()) < TOL
    with torch.no_grad():
        encoder.rel_embeddings.weight.mul_(0.5)
    assert max_diff(fast(), eager()) < TOL


def test_cache_state_misses_a_new_storage_at_a_freed_address():
    """A freed storage's address can come back with the same version count (model.half().float() does it
    by chance); the address alone would then serve stale derived weights. Two tensors over one buffer
    make it certain here."""
    weight = torch.zeros(8)
    state = kernels.TensorsState([weight])
    assert state.holds([weight])
    weight.add_(1.0)  # an in-place update moves the version counter
    assert not state.holds([weight])
    buffer = bytearray(64 * 4)
    old = torch.frombuffer(buffer, dtype=torch.float32)
    state = kernels.TensorsState([old])
    del old  # its storage is freed; the buffer (and the address) stay
    new = torch.frombuffer(buffer, dtype=torch.float32)
    assert state.key == kernels.state_key([new])  # address, version and dtype all repeat
    assert not state.holds([new])


def test_no_cache_in_training_or_with_autograd():
    """With autograd on (input attribution in eval mode, or training), the fast path gives the eager
    path's outputs and gradients, and a weight changed in place by an optimizer step is seen at once."""
    model = build("v3_buckets_shared").eval()
    ids, mask = inputs()
    params = [model.encoder.rel_embeddings.weight, model.encoder.layer[0].attention.self.key_proj.weight,
              model.encoder.layer[1].intermediate.dense.weight]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(2):
        results = {}
        for impl in ("eager", "sdpa"):
            model.zero_grad()
            out = run(model, impl, ids, mask).last_hidden_state
            (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
            results[impl] = (out.detach(), [p.grad.clone() for p in params])
        assert max_diff(results["sdpa"][0], results["eager"][0]) < TOL, step
        for fast_grad, eager_grad in zip(results["sdpa"][1], results["eager"][1]):
            # fp32 round-off relative to the gradient's size (entries reach ~80 after the SGD step)
            assert max_diff(fast_grad, eager_grad) < 1e-5 * (1.0 + float(eager_grad.abs().max())), step
        if step == 0:
            before = results["sdpa"][0]
            optimizer.step()  # in place: a cache keyed on stale weights would now give the old outputs
    assert max_diff(results["sdpa"][0], before) > 1e-3


@pytest.mark.parametrize("name", ["v1_rel", "v3_buckets_shared"])
def test_bfloat16_close_to_float32(name):
    model = build(name).eval()
    ids, mask = inputs()
    with torch.no_grad():
        ref = run(model, "eager", ids, mask).last_hidden_state
        with torch.autocast("cpu", torch.bfloat16):
            autocast = run(model, "sdpa", ids, mask).last_hidden_state
        model.to(torch.bfloat16)
        weights = run(model, "sdpa", ids, mask).last_hidden_state
        weights_eager = run(model, "eager", ids, mask).last_hidden_state
    assert weights.dtype == torch.bfloat16
    # LayerNorm'd outputs of unit scale; bf16 keeps 8 bits of mantissa
    assert max_diff(weights, ref) < 0.1 and max_diff(autocast, ref) < 0.1
    assert max_diff(weights, weights_eager) < 0.1


@pytest.mark.parametrize("masked", [False, True])
def test_bfloat16_attention_precision_is_measured(masked):
    """bf16 CPU inference attention runs in bf16 or, on upcast inputs, in fp32 (rounded back), whichever
    was measured faster for the shape; the fp32 choice is exactly the fp32 kernel on the upcast inputs."""
    g = torch.Generator().manual_seed(3)
    B, H, T, D = 2, 4, 40, 16
    q, k, v = (torch.randn(B, H, T, D, generator=g).to(torch.bfloat16) for _ in range(3))
    key_line, query_line = (torch.randn(H, 2 * T - 1, D, generator=g).to(torch.bfloat16) for _ in range(2))
    token_mask = torch.arange(T)[None, :] < torch.tensor([[T], [T - 7]]) if masked else None
    pair_mask = token_mask[:, None, :, None] & token_mask[:, None, None, :] if masked else None
    args = (4.0, key_line, query_line, pair_mask, token_mask)
    upcast = [t.float() for t in (q, k, v, key_line, query_line)]
    with torch.no_grad():
        in_float32 = kernels.relative_attention(*upcast[:3], 4.0, *upcast[3:], pair_mask, token_mask)[0]
        out = {}
        try:
            for precision in ("bfloat16", "float32", "auto"):
                kernels.PRECISION.force(precision)
                out[precision] = kernels.relative_attention(q, k, v, *args)[0]
                assert out[precision].dtype == torch.bfloat16
            picked = list(kernels.PRECISION.picks.values())
        finally:
            kernels.PRECISION.force("auto")
    assert torch.equal(out["float32"], in_float32.to(torch.bfloat16))
    assert picked in (["bfloat16"], ["float32"]) and torch.equal(out["auto"], out[picked[0]])
    assert max_diff(out["bfloat16"], in_float32) < 0.1  # bf16 round-off of scores and outputs of unit scale
    with pytest.raises(ValueError, match="unknown bfloat16 attention precision backend 'fp16'"):
        kernels.PRECISION.force("fp16")


def test_linear_backends_agree_and_auto_measures_each_shape():
    model = build("v3_buckets_shared").eval()
    ids, mask = inputs()
    outputs = {}
    try:
        for backend in ("packed", "plain", "auto"):
            kernels.set_linear_backend(backend)
            with torch.no_grad():
                outputs[backend] = run(model, "sdpa", ids, mask).last_hidden_state
            if backend != "auto":
                assert kernels.linear_choices() == {}
        choices = kernels.linear_choices()
        # one decision per distinct Linear shape of the model: fused qkv, attention output, intermediate, output
        H, I = model.config.hidden_size, model.config.intermediate_size
        assert {(k[2], k[3], k[4]) for k in choices} == {(H, 3 * H, False), (H, H, False), (H, I, True), (I, H, False)}
        assert set(choices.values()) <= {"packed", "plain"}
    finally:
        kernels.set_linear_backend("auto")
    assert max_diff(outputs["packed"], outputs["plain"]) < TOL and max_diff(outputs["auto"], outputs["plain"]) < TOL
    with pytest.raises(ValueError, match="unknown linear backend 'fast'"):
        kernels.set_linear_backend("fast")


@pytest.mark.parametrize("name", ["v1_rel", "v3_buckets_shared"])
def test_compiles_without_graph_breaks(name):
    torch._dynamo.reset()
    model = build(name).eval()
    ids, mask = inputs()
    compiled = torch.compile(model, backend="eager", fullgraph=True)  # fullgraph: a graph break raises
    with torch.no_grad():
        out = compiled(ids, attention_mask=mask).last_hidden_state
        ref = run(model, "eager", ids, mask).last_hidden_state
    assert max_diff(out, ref) < TOL
    torch._dynamo.reset()


def test_copy_and_pickle_after_inference():
    """The caches (packed oneDNN weights among them) are dropped by deepcopy and pickling."""
    import copy
    import io

    model = build("v1_rel").eval()
    ids, mask = inputs()
    with torch.no_grad():
        ref = run(model, "sdpa", ids, mask).last_hidden_state
    clone = copy.deepcopy(model)
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    with torch.no_grad():
        assert torch.equal(run(clone, "sdpa", ids, mask).last_hidden_state, ref)
        assert torch.equal(run(loaded, "sdpa", ids, mask).last_hidden_state, ref)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore:`torch.jit.trace:DeprecationWarning")
@pytest.mark.parametrize("name", ["v1_rel", "v3_buckets_shared"])
def test_trace_and_export_keep_the_mask_general(name):
    """Traced on an all-ones mask, the graph must still mask padded inputs (no baked shortcut)."""
    model = build(name).eval()

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, ids, mask):
            return self.model(ids, attention_mask=mask, return_dict=False)[0]

    wrapped = Encoder()
    ids, mask = inputs()
    with torch.no_grad():
        ref = run(model, "eager", ids, mask).last_hidden_state
        model.set_attn_implementation("sdpa")
        traced = torch.jit.trace(wrapped, (ids, torch.ones_like(mask)), check_trace=False)
        exported = torch.export.export(wrapped, (ids, torch.ones_like(mask))).module()
        assert max_diff(traced(ids, mask), ref) < TOL
        assert max_diff(exported(ids, mask), ref) < TOL
