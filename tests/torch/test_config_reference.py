"""Our configs against the reference config classes of transformers 4.57.6: the same defaults, and files
each reads from the other."""

import json

import pytest
import transformers as tr

from deberta_core import DebertaConfig, DebertaV2Config
from tests.cases import DATA

REAL_V3 = DATA / "tokenizers" / "deberta-v3" / "config.json"


def test_reference_reads_our_real_v3_config(tmp_path):
    original = json.loads(REAL_V3.read_text())
    DebertaV2Config.from_pretrained(REAL_V3.parent).save_pretrained(tmp_path)
    ref = tr.DebertaV2Config.from_pretrained(tmp_path)
    for key, value in original.items():
        if key not in ("transformers_version", "torch_dtype"):
            assert getattr(ref, key) == (value if key != "id2label" else {int(k): v for k, v in value.items()}), key


@pytest.mark.parametrize("ours,theirs", [(DebertaConfig, tr.DebertaConfig), (DebertaV2Config, tr.DebertaV2Config)])
def test_defaults_and_fallbacks_match_the_reference(ours, theirs, tmp_path):
    ref = theirs()
    cfg = ours()
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings",
                "type_vocab_size", "initializer_range", "layer_norm_eps", "relative_attention",
                "max_relative_positions", "pad_token_id", "position_biased_input", "pooler_dropout",
                "pooler_hidden_act", "pooler_hidden_size", "legacy", "num_labels", "problem_type"):
        assert getattr(cfg, key) == getattr(ref, key), key
    # Undeclared knobs the reference reads with getattr fallbacks (SPEC §1.2).
    assert (cfg.share_att_key, cfg.position_buckets, cfg.norm_rel_ebd, cfg.conv_kernel_size, cfg.conv_act,
            cfg.conv_groups, cfg.talking_head, cfg.cls_dropout) == (False, -1, "none", 0, "tanh", 1, False, None)
    ref.save_pretrained(tmp_path)
    assert ours.from_pretrained(tmp_path).to_dict()["hidden_size"] == ref.hidden_size
