"""The tools people already train with: `transformers.Trainer` (train, evaluate, save, resume), the
`PreTrainedModel` surface they call (`resize_token_embeddings`, `num_parameters`, `floating_point_ops`,
...), and PEFT LoRA. The reference (transformers==4.57.6) is the oracle wherever it has an answer.
"""

import copy

import numpy as np
import pytest
import torch
import transformers as tr

import deberta_torch as dt
from tests.cases import variant_config_kwargs

peft = pytest.importorskip("peft")
pytest.importorskip("accelerate")

ATOL = 1e-5


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models on a shared CPU: one thread is several times faster than two fighting for cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------ toy tasks
class _Toy(torch.utils.data.Dataset):
    """Sequences of 12 ids starting with [CLS] (1); about half contain id 7 somewhere.

    Sequence label: whether id 7 occurs. Token labels: the parity of each id.
    """

    def __init__(self, n, seed, token_labels=False):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(8, 100, (n, 12), generator=g)
        self.ids[:, 0] = 1
        has7 = torch.rand(n, generator=g) < 0.5
        where = torch.randint(1, 12, (n,), generator=g)
        self.ids[has7, where[has7]] = 7
        self.labels = self.ids % 2 if token_labels else (self.ids == 7).any(dim=1).long()

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones_like(self.ids[i]), "labels": self.labels[i]}


def _accuracy(pred):
    logits, labels = pred.predictions, pred.label_ids
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


def _args(out, **kw):
    base = dict(output_dir=str(out), report_to=[], use_cpu=True, dataloader_num_workers=0, max_steps=60,
                per_device_train_batch_size=16, per_device_eval_batch_size=64, learning_rate=3e-3,
                lr_scheduler_type="constant", logging_steps=10, save_strategy="no", seed=0, disable_tqdm=True)
    base.update(kw)
    return tr.TrainingArguments(**base)


def _model(cls, variant, seed=0, **extra):
    family, cfg = variant_config_kwargs(variant)
    config_cls = dt.DebertaConfig if family == "v1" else dt.DebertaV2Config
    torch.manual_seed(seed)
    return cls(config_cls(**{**cfg, **extra}))


def _losses(trainer):
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def _logits(model, ids):
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


TASKS = [
    # our class, config variant, token labels, accuracy to reach (chance is 0.5)
    (dt.DebertaV2ForSequenceClassification, "v3_buckets_shared", False, 0.8),
    (dt.DebertaForTokenClassification, "v1_rel", True, 0.9),
]


@pytest.mark.parametrize("cls,variant,token_labels,target", TASKS, ids=lambda v: getattr(v, "__name__", None))
def test_trainer_trains_evaluates_saves_and_reloads(cls, variant, token_labels, target, tmp_path):
    model = _model(cls, variant, num_labels=2)
    trainer = tr.Trainer(model=model, args=_args(tmp_path / "run"), train_dataset=_Toy(512, 0, token_labels),
                         eval_dataset=_Toy(256, 1, token_labels), compute_metrics=_accuracy)
    trainer.train()
    losses = _losses(trainer)
    assert len(losses) == 6 and losses[-1] < 0.7 * losses[0], losses
    metrics = trainer.evaluate()
    assert metrics["eval_accuracy"] >= target, metrics
    assert trainer.state.total_flos > 0  # Trainer counted FLOPs through model.floating_point_ops

    # Trainer writes model.safetensors itself for a model that is not a transformers.PreTrainedModel
    # (it checks with isinstance), so there is no config.json: pass the config to from_pretrained.
    trainer.save_model(str(tmp_path / "saved"))
    assert (tmp_path / "saved" / "model.safetensors").exists()
    ids = _Toy(8, 2, token_labels).ids
    reloaded = cls.from_pretrained(tmp_path / "saved", config=model.config, strict=True)
    torch.testing.assert_close(_logits(reloaded, ids), _logits(trainer.model, ids), atol=ATOL, rtol=0)

    # save_pretrained with the arguments Trainer and PEFT pass (sharded here) reloads on its own.
    model.save_pretrained(tmp_path / "ours", is_main_process=True, state_dict=model.state_dict(),
                          safe_serialization=True, max_shard_size="20KB")
    assert (tmp_path / "ours" / "model.safetensors.index.json").exists()
    assert not (tmp_path / "ours" / "model.safetensors").exists()
    again = cls.from_pretrained(tmp_path / "ours", strict=True)
    torch.testing.assert_close(_logits(again, ids), _logits(model, ids), atol=ATOL, rtol=0)
    # A later unsharded save replaces the shards (the single file would otherwise win on load).
    model.save_pretrained(tmp_path / "ours")
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == ["config.json", "model.safetensors"]
    model.save_pretrained(tmp_path / "other", is_main_process=False)  # another rank: writes nothing
    assert not (tmp_path / "other").exists()
    model.save_pretrained(tmp_path / "bin", safe_serialization=False)
    assert (tmp_path / "bin" / "pytorch_model.bin").exists()
    torch.testing.assert_close(_logits(cls.from_pretrained(tmp_path / "bin"), ids), _logits(model, ids),
                               atol=ATOL, rtol=0)


def test_trainer_resume_from_checkpoint_matches_uninterrupted_run(tmp_path):
    cls, variant = dt.DebertaV2ForSequenceClassification, "v3_buckets_shared"
    data = _Toy(256, 0)
    args = dict(max_steps=20, save_strategy="steps", save_steps=10, logging_steps=5)

    full = tr.Trainer(model=_model(cls, variant), args=_args(tmp_path / "full", **args), train_dataset=data)
    full.train()
    checkpoint = tmp_path / "full" / "checkpoint-10"
    assert (checkpoint / "model.safetensors").exists() and (checkpoint / "optimizer.pt").exists()

    resumed = tr.Trainer(model=_model(cls, variant, seed=1), args=_args(tmp_path / "resumed", **args),
                         train_dataset=data)
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert resumed.state.global_step == 20
    ids = _Toy(8, 2).ids
    torch.testing.assert_close(_logits(resumed.model, ids), _logits(full.model, ids), atol=1e-5, rtol=0)


# -------------------------------------------------- PreTrainedModel surface vs the reference
def _pair(family_cls, variant, tmp_path, **extra):
    """The reference model with random weights (head biases made non-zero), and ours loaded from it."""
    family, cfg = variant_config_kwargs(variant)
    prefix = "Deberta" if family == "v1" else "DebertaV2"
    cfg = {**cfg, **extra}
    torch.manual_seed(0)
    ref = getattr(tr, prefix + family_cls)(getattr(tr, prefix + "Config")(**cfg)).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if not name.startswith("deberta."):
                p.add_(torch.randn_like(p) * 0.02)
    ref.save_pretrained(tmp_path / "ref")
    ours = getattr(dt, prefix + family_cls).from_pretrained(tmp_path / "ref", strict=True)
    return ref, ours


def _outputs(model, ids):
    with torch.no_grad():
        out = model(input_ids=ids)
    return out.logits


RESIZE_MODELS = [
    ("ForMaskedLM", "v1_rel", {}),
    ("ForMaskedLM", "v3_buckets_shared", {}),
    ("ForMaskedLM", "v2_nobuckets_types_embproj", {"tie_word_embeddings": False}),  # untied decoder, E != H
    ("ForMaskedLM", "v1_p2c_embproj", {"tie_word_embeddings": False}),
    ("ForSequenceClassification", "v2_conv_unshared", {}),
]
RESIZES = [  # (new_num_tokens, pad_to_multiple_of, mean_resizing)
    (130, None, True), (130, None, False), (90, None, True), (None, 64, True), (None, 64, False), (101, 8, True),
    (100, None, True),
]


@pytest.mark.parametrize("new_num_tokens,pad_to_multiple_of,mean_resizing", RESIZES)
@pytest.mark.parametrize("head,variant,extra", RESIZE_MODELS)
def test_resize_token_embeddings_matches_reference(head, variant, extra, new_num_tokens, pad_to_multiple_of,
                                                   mean_resizing, tmp_path):
    ref, ours = _pair(head, variant, tmp_path, **extra)
    # New rows are random (mean resizing samples N(mean, 1e-9 cov); otherwise N(0, 0.02)). Ours builds
    # the fresh matrices with the same constructors in the same order as the reference, so the same
    # seed gives the same rows, and logits can be compared on new tokens too, not only on old ones.
    torch.manual_seed(123)
    ref_emb = ref.resize_token_embeddings(new_num_tokens, pad_to_multiple_of=pad_to_multiple_of,
                                          mean_resizing=mean_resizing)
    torch.manual_seed(123)
    our_emb = ours.resize_token_embeddings(new_num_tokens, pad_to_multiple_of=pad_to_multiple_of,
                                           mean_resizing=mean_resizing)
    assert our_emb is ours.get_input_embeddings()
    assert isinstance(our_emb, torch.nn.Embedding) and our_emb.num_embeddings == ref_emb.num_embeddings
    assert our_emb.padding_idx == ref_emb.padding_idx
    assert ours.config.vocab_size == ref.config.vocab_size == ref_emb.weight.shape[0]
    assert torch.equal(our_emb.weight, ref_emb.weight)
    ref_state, our_state = ref.state_dict(), ours.state_dict()
    for name, value in our_state.items():  # every vocabulary-sized tensor, bias and decoder included
        torch.testing.assert_close(value, ref_state[name], atol=0, rtol=0, msg=name)
    if extra.get("tie_word_embeddings", True) and head == "ForMaskedLM":
        assert ours.get_output_embeddings().weight is our_emb.weight  # still tied
    vocab = ours.config.vocab_size
    ids = torch.tensor([[1, 5, vocab - 1, 9, vocab - 2, 3, 60, vocab // 2], [2, vocab - 3, 4, 0, 7, 8, 88, 1]])
    ids = ids.clamp(max=vocab - 1)
    torch.testing.assert_close(_outputs(ours, ids), _outputs(ref, ids), atol=ATOL, rtol=0)
    # The resized model saves and reloads (on both sides) with the new size.
    ours.save_pretrained(tmp_path / "resized")
    ref_cls = type(ref)
    back = ref_cls.from_pretrained(tmp_path / "resized").eval()
    torch.testing.assert_close(_outputs(back, ids), _outputs(ours, ids), atol=ATOL, rtol=0)
    assert type(ours).from_pretrained(tmp_path / "resized", strict=True).config.vocab_size == vocab


def test_resize_original_layout_mlm_head_keeps_old_logits(tmp_path):
    # The reference cannot resize a legacy=False head (it resizes lm_head.dense: SPEC 3.1), so there is no
    # oracle: old-token logits must not move, and new tokens get a zero bias as in the tied legacy head.
    ours = _model(dt.DebertaV2ForMaskedLM, "v3_buckets_shared", legacy=False).eval()
    with torch.no_grad():
        ours.lm_predictions.lm_head.bias.normal_()
    ids = torch.tensor([[1, 5, 99, 9, 42]])
    before = _outputs(ours, ids)
    ours.resize_token_embeddings(120)
    after = _outputs(ours, ids)
    assert after.shape[-1] == 120 and ours.lm_predictions.lm_head.bias.shape == (120,)
    torch.testing.assert_close(after[..., :100], before, atol=ATOL, rtol=0)
    assert torch.equal(ours.lm_predictions.lm_head.bias[100:], torch.zeros(20))
    ours.resize_token_embeddings(50)
    assert _outputs(ours, ids.clamp(max=49)).shape == (1, 5, 50)


def test_resize_rejects_bad_sizes():
    model = _model(dt.DebertaV2ForMaskedLM, "v3_buckets_shared")
    assert model.resize_token_embeddings() is model.get_input_embeddings()
    with pytest.raises(ValueError, match="pad_to_multiple_of"):
        model.resize_token_embeddings(120, pad_to_multiple_of=8.0)
    with pytest.raises(ValueError, match="new_num_tokens"):
        model.resize_token_embeddings(0)
    model.resize_token_embeddings(50)
    with pytest.raises(ValueError, match="vocab"):  # ids past the new size are refused
        model(input_ids=torch.tensor([[1, 60]]))


COUNT_MODELS = [
    ("ForMaskedLM", "v1_abs_types", {}),
    ("ForMaskedLM", "v2_nobuckets_types_embproj", {"tie_word_embeddings": False}),
    ("ForSequenceClassification", "v3_buckets_shared", {}),
    ("ForTokenClassification", "v2_c2p_only_abs", {}),
]


@pytest.mark.parametrize("head,variant,extra", COUNT_MODELS)
def test_parameter_counts_and_flops_match_reference(head, variant, extra, tmp_path):
    ref, ours = _pair(head, variant, tmp_path, **extra)
    for model in (ref, ours):  # freeze the embeddings and the first layer on both sides
        for name, p in model.named_parameters():
            if name.startswith(("deberta.embeddings.", "deberta.encoder.layer.0.")):
                p.requires_grad_(False)
    for only_trainable in (False, True):
        for exclude_embeddings in (False, True):
            assert ours.num_parameters(only_trainable=only_trainable, exclude_embeddings=exclude_embeddings) \
                == ref.num_parameters(only_trainable=only_trainable, exclude_embeddings=exclude_embeddings)
    inputs = {"input_ids": torch.ones(3, 17, dtype=torch.long), "attention_mask": torch.ones(3, 17)}
    assert ours.estimate_tokens(inputs) == ref.estimate_tokens(inputs) == 51
    assert ours.floating_point_ops(inputs) == ref.floating_point_ops(inputs)
    assert ours.floating_point_ops(inputs, exclude_embeddings=False) \
        == ref.floating_point_ops(inputs, exclude_embeddings=False)
    assert ours.estimate_tokens({"inputs_embeds": torch.ones(1, 2, 3)}) == 0


def test_pretrained_model_surface():
    model = _model(dt.DebertaV2ForSequenceClassification, "v3_buckets_shared")
    assert model.main_input_name == "input_ids" and not model.can_generate()
    assert model.supports_gradient_checkpointing and not model.is_gradient_checkpointing
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert model.is_gradient_checkpointing
    assert model.config.use_return_dict and model.config.return_dict
    assert model.get_output_embeddings() is None and model._keys_to_ignore_on_save is None
    model.add_model_tags("a")
    model.add_model_tags(["a", "b"])
    assert model.model_tags == ["a", "b"]
    model.enable_input_require_grads()
    model.train()
    embedded = []
    hook = model.get_input_embeddings().register_forward_hook(lambda m, i, o: embedded.append(o))
    for p in model.parameters():
        p.requires_grad_(False)
    model(input_ids=torch.tensor([[1, 2, 3]]))
    assert embedded[0].requires_grad  # gradients reach adapters on a frozen base
    hook.remove()
    model.disable_input_require_grads()
    out = model(input_ids=torch.tensor([[1, 2, 3]]), labels=torch.tensor([1]))
    assert out["loss"] is out[0] is out.get("loss") and out.get("hidden_states") is None
    assert out.to_tuple()[1] is out.logits and dict(out.items()).keys() == {"loss", "logits"}
    mlm = _model(dt.DebertaForMaskedLM, "v1_rel")
    assert mlm.get_output_embeddings() is mlm.get_input_embeddings()  # tied: the head reads E itself
    untied = _model(dt.DebertaForMaskedLM, "v1_rel", tie_word_embeddings=False)
    decoder = untied.get_output_embeddings()
    assert isinstance(decoder, torch.nn.Linear) and decoder.weight is not untied.get_input_embeddings().weight
    new_decoder = torch.nn.Linear(32, 100)  # a projection with its own bias: the bias moves to the head
    untied.set_output_embeddings(new_decoder)
    assert untied.get_output_embeddings() is new_decoder and untied.cls.predictions.bias.shape == (100,)
    untied.eval()
    with torch.no_grad():
        hidden = untied.cls.predictions.transform(untied.deberta(input_ids=torch.tensor([[1, 2]])).last_hidden_state)
        torch.testing.assert_close(untied(input_ids=torch.tensor([[1, 2]])).logits,
                                   hidden @ new_decoder.weight.T + untied.cls.predictions.bias)
    untied.set_output_embeddings(untied.get_input_embeddings())  # back to projecting with E
    assert untied.get_output_embeddings() is untied.get_input_embeddings()


# ---------------------------------------------------------------------------- PEFT
LORA_CASES = [
    (dt.DebertaV2ForSequenceClassification, "v3_buckets_shared", ["query_proj", "key_proj", "value_proj"]),
    (dt.DebertaForSequenceClassification, "v1_rel", ["in_proj"]),
    (dt.DebertaV2ForSequenceClassification, "v2_conv_unshared", ["query_proj", "value_proj", "dense"]),
]


@pytest.mark.parametrize("cls,variant,targets", LORA_CASES, ids=lambda v: getattr(v, "__name__", None))
def test_peft_lora_trains_and_merges(cls, variant, targets, tmp_path):
    base = _model(cls, variant, num_labels=2)
    untouched = copy.deepcopy(base)
    config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets, task_type="SEQ_CLS")
    model = peft.get_peft_model(base, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0 < trainable < base.num_parameters() // 4
    trainer = tr.Trainer(model=model, args=_args(tmp_path / "lora", gradient_checkpointing=True, learning_rate=1e-2),
                         train_dataset=_Toy(512, 0), eval_dataset=_Toy(256, 1), compute_metrics=_accuracy)
    trainer.train()
    losses = _losses(trainer)
    assert losses[-1] < 0.8 * losses[0], losses
    assert trainer.evaluate()["eval_accuracy"] > 0.6

    ids = _Toy(8, 2).ids
    model.eval()
    with torch.no_grad():  # the cached, packed inference path must see the adapters ...
        lora = model(input_ids=ids).logits
    lora_grad = model(input_ids=ids).logits.detach()  # ... as the autograd path does
    torch.testing.assert_close(lora, lora_grad, atol=ATOL, rtol=0)
    # The adapted attention differs from the frozen base with the trained classifier alone.
    base_only = copy.deepcopy(untouched)
    base_only.classifier.load_state_dict(model.base_model.model.classifier.modules_to_save["default"].state_dict())
    assert (_logits(base_only, ids) - lora).abs().max() > 1e-3

    trainer.save_model(str(tmp_path / "adapter"))  # PEFT's own save_pretrained: the adapter only
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    reloaded = peft.PeftModel.from_pretrained(copy.deepcopy(untouched), str(tmp_path / "adapter")).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, lora, atol=ATOL, rtol=0)

    merged = model.merge_and_unload()
    assert type(merged) is cls
    torch.testing.assert_close(_logits(merged, ids), lora, atol=ATOL, rtol=0)
    merged.save_pretrained(tmp_path / "merged")
    torch.testing.assert_close(_logits(cls.from_pretrained(tmp_path / "merged", strict=True), ids), lora,
                               atol=ATOL, rtol=0)
