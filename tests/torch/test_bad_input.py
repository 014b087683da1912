"""Bad input gets a ValueError that names the problem, never a crash deep inside a kernel."""

import pytest
import torch

import deberta_torch as dt
from tests.cases import variant_config_kwargs


def _model(variant, cls_name="Model", **extra):
    family, cfg = variant_config_kwargs(variant)
    prefix = "Deberta" if family == "v1" else "DebertaV2"
    torch.manual_seed(0)
    return getattr(dt, prefix + cls_name)(getattr(dt, prefix + "Config")(**{**cfg, **extra})).eval()


IDS = torch.randint(4, 100, (2, 10), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("variant", ["v1_rel", "v3_buckets_shared"])
@pytest.mark.parametrize("bad_id", [100, 5000, -1])
def test_token_id_outside_vocabulary(variant, bad_id):
    ids = IDS.clone()
    ids[1, 3] = bad_id
    with pytest.raises(ValueError, match=rf"input_ids contains id {bad_id}, outside the vocabulary \[0, 100\)"):
        _model(variant)(ids)


@pytest.mark.parametrize("variant", ["v1_abs_types", "v2_plain_abs"])
def test_sequence_longer_than_absolute_positions(variant):
    ids = torch.randint(4, 100, (1, 65))
    with pytest.raises(ValueError, match=r"sequence length 65 exceeds max_position_embeddings \(64\)"):
        _model(variant)(ids)


def test_relative_only_model_accepts_long_sequences():
    out = _model("v3_buckets_shared")(torch.randint(4, 100, (1, 200)))
    assert out.last_hidden_state.shape == (1, 200, 32)


@pytest.mark.parametrize("shape", [(2, 9), (1, 10), (2, 10, 9), (2, 2, 10, 10)])
def test_attention_mask_shape_mismatch(shape):
    with pytest.raises(ValueError, match=r"attention_mask shape .* does not match the input shape \(2, 10\)"):
        _model("v3_buckets_shared")(IDS, attention_mask=torch.ones(shape, dtype=torch.long))


def test_attention_mask_values_must_be_binary():
    mask = torch.ones_like(IDS)
    mask[0, 0] = 2
    with pytest.raises(ValueError, match="attention_mask must hold only 0 and 1"):
        _model("v1_rel")(IDS, attention_mask=mask)


def test_token_type_shape_and_range():
    model = _model("v1_abs_types")
    with pytest.raises(ValueError, match=r"token_type_ids shape \(2, 9\) does not match the input shape \(2, 10\)"):
        model(IDS, token_type_ids=torch.zeros(2, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token_type_ids contains 2, outside \[0, 2\)"):
        model(IDS, token_type_ids=torch.full((2, 10), 2))


def test_position_ids_out_of_range():
    with pytest.raises(ValueError, match=r"position_ids contains 64, outside \[0, 64\)"):
        _model("v2_plain_abs")(IDS, position_ids=torch.arange(55, 65)[None])


def test_both_or_neither_ids_and_embeddings():
    model = _model("v3_buckets_shared")
    with pytest.raises(ValueError, match=r"exactly one of input_ids and inputs_embeds \(both were given\)"):
        model(IDS, inputs_embeds=torch.zeros(2, 10, 32))
    with pytest.raises(ValueError, match=r"exactly one of input_ids and inputs_embeds \(neither was given\)"):
        model()
    with pytest.raises(ValueError, match="inputs_embeds last dimension is 16, the model's embedding size is 32"):
        model(inputs_embeds=torch.zeros(2, 10, 16))


def test_wrong_rank_and_dtype():
    model = _model("v3_buckets_shared")
    with pytest.raises(ValueError, match=r"input_ids must have shape \(batch, sequence\), got \(10,\)"):
        model(IDS[0])
    with pytest.raises(ValueError, match="input_ids must be integer token ids"):
        model(IDS.float())
    with pytest.raises(ValueError, match="sequence is empty"):
        model(torch.zeros(2, 0, dtype=torch.long))


@pytest.mark.parametrize("start,end", [(torch.zeros(3, dtype=torch.long), torch.zeros(2, dtype=torch.long)),
                                       (torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, dtype=torch.long))])
def test_question_answering_label_shapes(start, end):
    model = _model("v3_buckets_shared", "ForQuestionAnswering")
    with pytest.raises(ValueError, match=r"(start|end)_positions has shape .*, expected \(2,\)"):
        model(IDS, start_positions=start, end_positions=end)
    with pytest.raises(ValueError, match="pass both start_positions and end_positions"):
        model(IDS, start_positions=torch.zeros(2, dtype=torch.long))


def test_question_answering_needs_two_labels():
    with pytest.raises(ValueError, match="question answering needs num_labels == 2"):
        _model("v3_buckets_shared", "ForQuestionAnswering", num_labels=3)(IDS)


def test_multiple_choice_shapes():
    model = _model("v3_buckets_shared", "ForMultipleChoice")
    with pytest.raises(ValueError, match=r"input_ids must have shape \(batch, num_choices, sequence\)"):
        model(IDS)
    with pytest.raises(ValueError, match=r"labels has shape \(3,\), expected \(2,\)"):
        model(IDS[:, None].repeat(1, 4, 1), labels=torch.zeros(3, dtype=torch.long))


def test_token_and_sequence_label_shapes():
    with pytest.raises(ValueError, match=r"labels has shape \(2, 9\), expected \(2, 10\)"):
        _model("v1_rel", "ForTokenClassification")(IDS, labels=torch.zeros(2, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels has shape \(2, 9\), expected \(2, 10\)"):
        _model("v1_rel", "ForMaskedLM")(IDS, labels=torch.zeros(2, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels has shape \(3,\), expected a first dimension of 2"):
        _model("v1_rel", "ForSequenceClassification")(IDS, labels=torch.zeros(3, dtype=torch.long))
