"""benchmarks/flops.py, the FLOP ceiling speed.py prints next to ours/BERT, against counts by hand."""

from benchmarks.flops import ceiling, encoder_flops
from deberta_core.config import DebertaConfig, DebertaV2Config

TINY = dict(vocab_size=10, hidden_size=4, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8,
            max_position_embeddings=16, relative_attention=True, pos_att_type="c2p|p2c")


def test_tiny_v1_by_hand():
    config = DebertaConfig(**TINY)
    # linear 2 T (4 C^2 + 2 C I) = 2*3*(64 + 64) = 768; content 4 T^2 C = 144
    assert encoder_flops(config, 1, 3, relative=False) == 912
    # span = min(T, K) = 3: query i reads rows clip(i - j + 3) for j < 3, three distinct ones, so each of
    # c2p and p2c costs 2 C * 9 = 72
    assert encoder_flops(config, 1, 3, relative=True) == 912 + 144
    assert encoder_flops(config, 2, 3, relative=True) == 2 * (912 + 144)
    # training: x3, plus the 5 reachable table rows (distances -2..2) through a C x C map per term: 2*2*16*5
    assert encoder_flops(config, 2, 3, relative=True, train=True) == 3 * (2 * (912 + 144) + 320)
    assert ceiling(config, 1, 3) == 912 / 1056


def test_log_buckets_share_rows():
    # v3's buckets (256 over 512 positions): inside the exact range every distance is its own row, so c2p
    # and p2c each cost one more q k^T; at 512 tokens far distances share rows and cost less than that.
    config = DebertaV2Config(**dict(TINY, position_buckets=256, max_relative_positions=512,
                                    max_position_embeddings=512))
    for seq in (64, 128):
        extra = encoder_flops(config, 1, seq, relative=True) - encoder_flops(config, 1, seq, relative=False)
        assert extra == 2 * (2 * seq * seq * 4)
    extra = encoder_flops(config, 1, 512, relative=True) - encoder_flops(config, 1, 512, relative=False)
    assert 0 < extra < 2 * (2 * 512 * 512 * 4)
