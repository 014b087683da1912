"""Token embeddings: word (+ absolute position) (+ token type), optional projection, LayerNorm, mask."""

from __future__ import annotations

import torch
from torch import nn

from deberta_core.config import BaseDebertaConfig

from .layers import LayerNorm


class DebertaEmbeddings(nn.Module):
    """Map ids (or given embeddings) to the encoder input (SPEC §2.2).

    Shapes: input_ids (B, T) -> (B, T, C). `token_mask` (B, T) of 0/1 zeroes padded positions after the
    LayerNorm, as the reference does.
    """

    def __init__(self, config: BaseDebertaConfig):
        super().__init__()
        E, H = config.embedding_dim, config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, E, padding_idx=config.pad_token_id)
        self.position_biased_input = config.position_biased_input
        self.position_embeddings = (
            nn.Embedding(config.max_position_embeddings, E) if config.position_biased_input else None
        )
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, E) if config.type_vocab_size > 0 else None
        self.embed_proj = nn.Linear(E, H, bias=False) if E != H else None
        self.LayerNorm = LayerNorm(H, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids=None, token_type_ids=None, position_ids=None, token_mask=None,
                inputs_embeds=None) -> torch.Tensor:
        embeddings = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds
        T = embeddings.shape[1]
        if self.position_biased_input:  # (a masked LM's EMD may hold the table without adding it)
            if position_ids is None:
                position_ids = torch.arange(T, device=embeddings.device)[None, :]
            embeddings = embeddings + self.position_embeddings(position_ids)
        if self.token_type_embeddings is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros(embeddings.shape[:2], dtype=torch.long, device=embeddings.device)
            embeddings = embeddings + self.token_type_embeddings(token_type_ids)
        if self.embed_proj is not None:
            embeddings = self.embed_proj(embeddings)
        embeddings = self.LayerNorm(embeddings)
        if token_mask is not None:
            embeddings = embeddings * token_mask.unsqueeze(-1).to(embeddings.dtype)
        return self.dropout(embeddings)
