"""Parity against the reference: transformers==4.57.6 models with random weights, saved with
save_pretrained and loaded with our classes. Every output, hidden state, attention map and loss must
agree within 1e-5 (fp32), padded rows included; the gradients of one training step within 1e-4.
Runs over every attention implementation deberta_torch offers.
"""

import pytest
import torch
import transformers as tr

import deberta_torch as dt
from tests.cases import SEQ_LEN, VARIANTS, variant_config_kwargs
from tests.torch.conftest import DEVICES

ATOL = 1e-5
GRAD_ATOL = 1e-4
# Some random-weight gradients reach magnitudes of ~100 (talking heads), where fp32 itself resolves only
# ~1e-5; a relative term of 1e-5 (fp32 round-off of a sum) keeps the check meaningful for those.
GRAD_RTOL = 1e-5

HEADS = {
    # head: (reference class name stem, ours stem, v1 has it)
    "base": ("Model", "Model", True),
    "masked_lm": ("ForMaskedLM", "ForMaskedLM", True),
    "sequence_classification": ("ForSequenceClassification", "ForSequenceClassification", True),
    "token_classification": ("ForTokenClassification", "ForTokenClassification", True),
    "question_answering": ("ForQuestionAnswering", "ForQuestionAnswering", True),
    "multiple_choice": ("ForMultipleChoice", "ForMultipleChoice", False),
}

CASES = [(v, h) for v in VARIANTS for h in HEADS if HEADS[h][2] or VARIANTS[v][0] == "v2"]


def _classes(family, head):
    prefix = "Deberta" if family == "v1" else "DebertaV2"
    ref_stem, our_stem, _ = HEADS[head]
    return getattr(tr, prefix + ref_stem), getattr(tr, prefix + "Config"), getattr(dt, prefix + our_stem)


def _inputs(head, batch, with_types, labels=True):
    ids, mask, types = batch
    B, T = ids.shape
    g = torch.Generator().manual_seed(1)
    kwargs = dict(input_ids=ids, attention_mask=mask)
    if with_types:
        kwargs["token_type_ids"] = types
    if head == "multiple_choice":
        kwargs = {k: torch.stack([v, v.roll(1, dims=1) if k == "input_ids" else v], dim=1) for k, v in kwargs.items()}
        if labels:
            kwargs["labels"] = torch.tensor([0, 1, 1])
    elif labels and head == "masked_lm":
        lab = torch.full((B, T), -100)
        lab[:, ::3] = torch.randint(0, 100, (B, (T + 2) // 3), generator=g)
        kwargs["labels"] = lab
    elif labels and head == "sequence_classification":
        kwargs["labels"] = torch.tensor([0, 1, 1])
    elif labels and head == "token_classification":
        kwargs["labels"] = torch.randint(0, 2, (B, T), generator=g)
    elif labels and head == "question_answering":
        kwargs["start_positions"] = torch.tensor([3, 25, 60])  # 60 > T: clamped and ignored
        kwargs["end_positions"] = torch.tensor([7, 29, 2])
    return kwargs


def _pair(variant, head, tmp_path, **extra):
    family, cfg = variant_config_kwargs(variant)
    ref_cls, ref_cfg_cls, our_cls = _classes(family, head)
    cfg = {**cfg, **extra}
    if head == "masked_lm":
        cfg.setdefault("legacy", True)
    torch.manual_seed(0)
    ref = ref_cls(ref_cfg_cls(**cfg)).eval()
    if head != "base":  # give zero-initialised head biases and LM bias values, so their mapping is tested
        with torch.no_grad():
            for name, p in ref.named_parameters():
                if not name.startswith("deberta."):
                    p.add_(torch.randn_like(p) * 0.02)
    ref.save_pretrained(tmp_path)
    ours, info = our_cls.from_pretrained(tmp_path, output_loading_info=True, strict=True)
    assert info.missing == [] and info.unexpected == []
    return ref, ours, cfg


def _compare(a, b, atol=ATOL):
    assert a.shape == b.shape, (a.shape, b.shape)
    torch.testing.assert_close(b, a, atol=atol, rtol=0)


def _compare_outputs(ref_out, our_out):
    for key in ref_out.keys():
        ref_v, our_v = ref_out[key], getattr(our_out, key)
        if isinstance(ref_v, tuple):
            assert len(ref_v) == len(our_v)
            for x, y in zip(ref_v, our_v):
                _compare(x, y)
        else:
            _compare(ref_v, our_v)


def _on(device, value):
    """A tensor, or a (nested) tuple / dict of them, moved to `device`."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        return tuple(_on(device, v) for v in value)
    if isinstance(value, dict):
        return {k: _on(device, v) for k, v in value.items()}
    return value


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("impl", dt.ATTN_IMPLEMENTATIONS)
@pytest.mark.parametrize("variant,head", CASES)
def test_forward_matches_reference(variant, head, impl, device, batch, tmp_path):
    """Ours on `device` against the reference on the CPU."""
    ref, ours, cfg = _pair(variant, head, tmp_path)
    ours.set_attn_implementation(impl)
    ours.to(device)
    kwargs = _inputs(head, batch, cfg.get("type_vocab_size", 0) > 0, labels=head != "base")
    with torch.no_grad():
        r = ref(**kwargs, output_hidden_states=True, output_attentions=True)
        o = ours(**_on(device, kwargs), output_hidden_states=True, output_attentions=True)
    assert set(r.keys()) == set(o.keys())
    _compare_outputs(r, type(o)(**_on("cpu", {key: getattr(o, key) for key in o.keys()})))
    # The tuple form carries the same tensors in the same order.
    with torch.no_grad():
        rt = ref(**kwargs, output_hidden_states=True, return_dict=False)
        ot = _on("cpu", ours(**_on(device, kwargs), output_hidden_states=True, return_dict=False))
    assert len(rt) == len(ot)
    for x, y in zip(rt, ot):
        if isinstance(x, tuple):
            for xx, yy in zip(x, y):
                _compare(xx, yy)
        else:
            _compare(x, y)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("impl", dt.ATTN_IMPLEMENTATIONS)
@pytest.mark.parametrize("variant,head", [c for c in CASES if c[1] != "base"])
def test_training_step_gradients_match_reference(variant, head, impl, device, batch, tmp_path):
    # Dropout off so both sides run the same function; training mode otherwise.
    ref, ours, cfg = _pair(variant, head, tmp_path, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ours.set_attn_implementation(impl)
    ours.to(device)
    ref.train()
    ours.train()
    kwargs = _inputs(head, batch, cfg.get("type_vocab_size", 0) > 0)
    ref_loss = ref(**kwargs).loss
    our_loss = ours(**_on(device, kwargs)).loss
    _compare(ref_loss, our_loss.cpu())
    ref_loss.backward()
    our_loss.backward()
    ref_grads = {n: p.grad for n, p in ref.named_parameters() if p.grad is not None}
    our_grads = {n: p.grad.cpu() for n, p in ours.named_parameters() if p.grad is not None}
    assert set(our_grads) == set(ref_grads)
    for name, g in ref_grads.items():
        torch.testing.assert_close(our_grads[name], g, atol=GRAD_ATOL, rtol=GRAD_RTOL, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("variant", ["v1_rel", "v3_buckets_shared"])
def test_sequence_classification_loss_rules_match_reference(variant, batch, tmp_path):
    """Every sequence-classification loss rule: inferred MSE / filtered CE / soft CE, and forced types."""
    ids, mask, _ = batch
    cases = [
        (dict(num_labels=1), torch.tensor([0.5, -1.0, 2.0])),
        (dict(num_labels=3), torch.tensor([2, -1, 0])),  # the negative row is dropped
        (dict(num_labels=3), torch.tensor([-1, -1, -1])),  # no labelled row: loss 0
        (dict(num_labels=3), torch.softmax(torch.randn(3, 3), -1)),
        (dict(num_labels=3, problem_type="single_label_classification"), torch.tensor([2, 1, 0])),
        (dict(num_labels=1, problem_type="regression"), torch.tensor([0.5, -1.0, 2.0])),
        (dict(num_labels=3, problem_type="regression"), torch.randn(3, 3)),
        (dict(num_labels=3, problem_type="multi_label_classification"), torch.tensor([[1., 0, 1], [0, 0, 0], [1, 1, 1]])),
    ]
    for i, (extra, labels) in enumerate(cases):
        ref, ours, _ = _pair(variant, "sequence_classification", tmp_path / str(i), **extra)
        with torch.no_grad():
            r = ref(ids, attention_mask=mask, labels=labels)
            o = ours(ids, attention_mask=mask, labels=labels)
        _compare(r.loss, o.loss)
        _compare(r.logits, o.logits)


@pytest.mark.parametrize("variant", ["v1_rel", "v3_buckets_shared"])
def test_inputs_embeds_and_position_ids_match_reference(variant, batch, tmp_path):
    ref, ours, _ = _pair(variant, "base", tmp_path)
    ids, mask, _ = batch
    embeds = ref.get_input_embeddings()(ids)
    with torch.no_grad():
        r = ref(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        o = ours(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
    _compare(r, o)


@pytest.mark.parametrize("variant", ["v1_abs_types", "v2_plain_abs"])
def test_custom_position_ids_match_reference(variant, batch, tmp_path):
    ref, ours, cfg = _pair(variant, "base", tmp_path)
    ids, mask, types = batch
    pos = torch.arange(SEQ_LEN).flip(0)[None].expand(3, -1)
    with torch.no_grad():
        r = ref(ids, attention_mask=mask, token_type_ids=types, position_ids=pos).last_hidden_state
        o = ours(ids, attention_mask=mask, token_type_ids=types, position_ids=pos).last_hidden_state
    _compare(r, o)


def test_long_sequence_beyond_bucket_range_matches_reference(tmp_path):
    """N > max_relative_positions with buckets: distances past P diverge from the original code; we
    follow the PyTorch reference (no clamp before the log, SPEC §2.4)."""
    ref, ours, _ = _pair("v3_buckets_shared", "base", tmp_path, max_relative_positions=16)
    ids = torch.randint(4, 100, (2, 150), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        _compare(ref(ids).last_hidden_state, ours(ids).last_hidden_state)


def test_left_padding_gives_same_real_token_outputs(tmp_path):
    """Relative positions ignore absolute offsets, so left and right padding agree on real tokens."""
    _, ours, _ = _pair("v3_buckets_shared", "base", tmp_path)
    ids = torch.randint(4, 100, (1, 12), generator=torch.Generator().manual_seed(4))
    right = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], 1)
    left = torch.cat([torch.zeros(1, 4, dtype=torch.long), ids], 1)
    m_right = torch.cat([torch.ones(1, 12), torch.zeros(1, 4)], 1).long()
    m_left = m_right.flip(1)
    with torch.no_grad():
        a = ours(right, attention_mask=m_right).last_hidden_state[:, :12]
        b = ours(left, attention_mask=m_left).last_hidden_state[:, 4:]
    _compare(a, b)
