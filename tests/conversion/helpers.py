"""Reference checkpoints for the conversion tests, built from transformers models with random weights."""

import json

import torch
import transformers as tr

from tests.cases import variant_config_kwargs

STEMS = ["Model", "ForMaskedLM", "ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering",
         "ForMultipleChoice"]
FAMILY_VARIANT = {"v1": "v1_rel", "v2": "v2_conv_unshared"}


def class_cases():
    return [(f, s) for f in ("v1", "v2") for s in STEMS if not (f == "v1" and s == "ForMultipleChoice")]


def reference_model(family, stem, **extra):
    _, cfg = variant_config_kwargs(FAMILY_VARIANT[family])
    prefix = "Deberta" if family == "v1" else "DebertaV2"
    if stem == "ForMaskedLM" and extra.get("legacy") is False:
        extra.setdefault("tie_word_embeddings", False)  # the reference crashes when tied (SPEC §3.1)
    torch.manual_seed(0)
    model = getattr(tr, prefix + stem)(getattr(tr, prefix + "Config")(**{**cfg, **extra})).eval()
    with torch.no_grad():  # non-zero head biases so their mapping is exercised
        for name, p in model.named_parameters():
            if not name.startswith("deberta.") and stem != "Model":
                p.add_(torch.randn_like(p) * 0.02)
    return model


def write_original_layout(model, directory):
    """Reverse the documented renames (SPEC §4): the microsoft/DeBERTa pytorch.model.bin layout.

    Keys lose the `deberta.` prefix, LayerNorms use gamma/beta, the absolute position table is present even
    when unused, the v3 discriminator head `mask_predictions.*` rides along, and the config has no
    model_type (family and head come from the weights).
    """
    directory.mkdir(parents=True, exist_ok=True)
    H = model.config.hidden_size
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("cls.predictions.decoder."):
            continue
        key = key.removeprefix("deberta.")
        key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        state[key] = value.clone()
    state.setdefault("embeddings.position_embeddings.weight", torch.randn(model.config.max_position_embeddings, H))
    state["mask_predictions.dense.weight"] = torch.randn(H, H)
    state["mask_predictions.LayerNorm.gamma"] = torch.ones(H)
    torch.save(state, directory / "pytorch.model.bin")
    config = {k: v for k, v in model.config.to_dict().items()
              if k not in ("model_type", "architectures", "transformers_version", "id2label", "label2id")}
    config["pooling"] = {"dropout": 0, "hidden_act": "gelu"}
    (directory / "model_config.json").write_text(json.dumps(config))
    return directory


def batch(stem, type_vocab):
    ids = torch.randint(4, 100, (2, 20), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 14:] = 0
    kwargs = {"input_ids": ids, "attention_mask": mask}
    if type_vocab:
        kwargs["token_type_ids"] = (torch.arange(20) >= 10).long().expand(2, -1)
    if stem == "ForMultipleChoice":
        kwargs = {k: v[:, None].repeat(1, 3, 1) for k, v in kwargs.items()}
    return kwargs
