"""Configs read and write the Hugging Face config.json unchanged and refuse invalid values (no framework;
the comparisons with the reference classes are in tests/torch/test_config_reference.py)."""

import json

import pytest

from deberta_core import DebertaConfig, DebertaV2Config, load_config
from tests.cases import DATA

REAL_V3 = DATA / "tokenizers" / "deberta-v3" / "config.json"


def test_real_v3_config_round_trips_every_key(tmp_path):
    original = json.loads(REAL_V3.read_text())
    config = DebertaV2Config.from_pretrained(REAL_V3.parent)
    assert (config.hidden_size, config.position_buckets, config.share_att_key) == (768, 256, True)
    assert config.pos_att_type == ["p2c", "c2p"] and config.norm_rel_embeddings
    assert config.id2label == {0: "SAFE", 1: "INJECTION"} and config.num_labels == 2
    config.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    for key, value in original.items():
        assert written[key] == value, key


def test_pos_att_type_string_and_list():
    assert DebertaConfig(pos_att_type="C2P | p2c").pos_att_type == ["c2p", "p2c"]
    assert DebertaConfig(pos_att_type=["c2p"]).pos_att_type == ["c2p"]
    assert DebertaConfig().pos_att_type == []
    assert DebertaConfig(pos_att_type="c2p|p2c|p2p").scale_factor == 4  # v1 counts p2p
    assert DebertaV2Config(pos_att_type="c2p|p2c|p2p").scale_factor == 3  # v2 does not


def test_labels_and_overrides(tmp_path):
    cfg = DebertaV2Config(id2label={"0": "neg", "1": "neu", "2": "pos"})
    assert cfg.num_labels == 3 and cfg.label2id == {"neg": 0, "neu": 1, "pos": 2}
    cfg.save_pretrained(tmp_path)
    again = DebertaV2Config.from_pretrained(tmp_path, num_labels=5)
    assert again.num_labels == 5 and again.id2label[4] == "LABEL_4"
    assert DebertaV2Config.from_pretrained(tmp_path, problem_type="regression").problem_type == "regression"
    assert load_config(tmp_path) == cfg
    cfg.num_labels = 4
    assert list(cfg.id2label) == [0, 1, 2, 3]


def test_derived_quantities():
    v1 = DebertaConfig(relative_attention=True, max_relative_positions=-1, max_position_embeddings=128)
    assert v1.relative_span == 128 and v1.rel_embeddings_size == 256
    v3 = DebertaV2Config(relative_attention=True, position_buckets=256, hidden_size=768, num_attention_heads=12,
                         embedding_size=128, cls_dropout=0.2)
    assert (v3.rel_embeddings_size, v3.head_dim, v3.embedding_dim, v3.classifier_dropout) == (512, 64, 128, 0.2)
    assert DebertaV2Config(hidden_size=64, num_attention_heads=4, attention_head_size=16).head_dim == 16


@pytest.mark.parametrize("kwargs,message", [
    (dict(hidden_size=30, num_attention_heads=4), r"hidden_size \(30\) is not divisible by num_attention_heads \(4\)"),
    (dict(pos_att_type="c2p|q2q"), r"unknown attention type\(s\) \['q2q'\] in pos_att_type"),
    (dict(num_hidden_layers=-2), "num_hidden_layers must be a positive integer, got -2"),
    (dict(vocab_size=0), "vocab_size must be a positive integer, got 0"),
    (dict(intermediate_size=-1), "intermediate_size must be a positive integer"),
    (dict(type_vocab_size=-1), "type_vocab_size must be a non-negative integer"),
    (dict(hidden_dropout_prob=1.5), r"hidden_dropout_prob must be in \[0, 1\)"),
    (dict(hidden_act="mish"), "hidden_act 'mish' is not supported"),
    (dict(conv_kernel_size=4), "conv_kernel_size must be odd"),
    (dict(conv_groups=5), "conv_groups .* must be a positive divisor of hidden_size"),
    (dict(norm_rel_ebd="batch_norm"), "norm_rel_ebd must be 'none' or 'layer_norm'"),
    (dict(problem_type="ranking"), "unknown problem_type 'ranking'"),
    (dict(pad_token_id=200000), r"pad_token_id \(200000\) must be inside the vocabulary"),
    (dict(num_labels=0), "num_labels must be a positive integer"),
    (dict(num_labels=3, id2label={0: "a"}), "num_labels=3 disagrees with id2label"),
    (dict(layer_norm_eps=0), "layer_norm_eps must be positive"),
    (dict(position_buckets=256, max_relative_positions=100), r"max_relative_positions \(100\) must exceed"),
    (dict(talking_head=True), "talking_head is a DeBERTa v1 option"),
    (dict(hidden_size=64, num_attention_heads=4, attention_head_size=8), r"attention_head_size \(8\) x num_attention_heads"),
])
def test_invalid_configs_raise_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DebertaV2Config(**kwargs)


def test_model_type_mismatch_and_bad_files(tmp_path):
    DebertaConfig().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="model_type 'deberta' but DebertaV2Config reads 'deberta-v2'"):
        DebertaV2Config.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        DebertaConfig.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no config file"):
        DebertaConfig.from_pretrained(tmp_path / "nowhere")


def test_mapping_style_access_tools_use():
    config = DebertaV2Config(hidden_size=64, num_attention_heads=4)
    assert "hidden_size" in config and "no_such_key" not in config
    assert config.get_text_config() is config
