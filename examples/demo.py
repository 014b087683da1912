"""Short PyTorch example: build a v3-shaped model from a config, classify a sentence pair, print logits.

Run with `make demo`. The weights are random (no hub access here), so the logits are meaningless; the
point is the API, which is the transformers one.
"""

import torch

from deberta_torch import DebertaV2Config, DebertaV2ForSequenceClassification


def main() -> None:
    torch.manual_seed(0)
    # deberta-v3 architecture knobs at a small size.
    config = DebertaV2Config(vocab_size=128100, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                             intermediate_size=1024, relative_attention=True, pos_att_type="p2c|c2p",
                             position_buckets=256, norm_rel_ebd="layer_norm", share_att_key=True,
                             position_biased_input=False, num_labels=3)
    model = DebertaV2ForSequenceClassification(config).eval()
    # "[CLS] A [SEP] B [SEP]" ids as the v3 tokenizer would produce them.
    input_ids = torch.tensor([[1, 279, 1538, 3258, 16123, 260, 2, 5365, 447, 300, 2]])
    with torch.no_grad():
        out = model(input_ids, attention_mask=torch.ones_like(input_ids))
    print(f"parameters: {model.num_parameters():,}")
    print("logits:", out.logits.tolist())


if __name__ == "__main__":
    main()
