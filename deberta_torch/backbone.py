"""`DebertaModel` and `DebertaV2Model`: token ids to hidden states, nothing else."""

from __future__ import annotations

import torch

from deberta_core.outputs import BaseModelOutput, resolve_output_flags
from deberta_core.validation import check_model_inputs

from .embeddings import DebertaEmbeddings
from .encoder import DebertaEncoder
from .pretrained import DebertaPreTrainedModel, DebertaV2PreTrainedModel, _PreTrained


def _min_max(t: torch.Tensor | None):
    if t is None or t.numel() == 0 or torch.compiler.is_compiling():
        return None
    return int(t.min()), int(t.max())


def build_masks(attention_mask: torch.Tensor, ids_shape) -> tuple[torch.Tensor, torch.Tensor]:
    """Token mask (B, T) and pairwise attention mask bool (B, 1, T, T) from the user's mask.

    A 2-D mask m gives M[b, i, j] = m[b, i] and m[b, j], so a padded query row is fully masked (SPEC §2.3).
    3-D (B, T, T) and 4-D (B, 1, T, T) masks are used as given; their token mask, used to zero padded
    embeddings and conv outputs, marks positions some query may attend to (the reference's conv rule).
    """
    if attention_mask.dim() == 2:
        token = attention_mask != 0
        return token, (token[:, None, :, None] & token[:, None, None, :])
    pair = attention_mask if attention_mask.dim() == 4 else attention_mask[:, None]
    pair = pair != 0
    token = pair.any(dim=1).any(dim=-2)
    return token, pair


class _Backbone(_PreTrained):
    """Embeddings and encoder; the public classes fix the config type."""

    def __init__(self, config):
        super().__init__(config)
        self.embeddings = DebertaEmbeddings(config)
        self.encoder = DebertaEncoder(config)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        """Encode a batch.

        Args:
            input_ids: int64 (B, T), or inputs_embeds (B, T, embedding_size) instead (exactly one of them).
            attention_mask: (B, T) of 0/1 (1 = real token), or a pairwise (B, T, T) / (B, 1, T, T) mask.
                Defaults to all ones.
            token_type_ids: int64 (B, T), used only when type_vocab_size > 0. Defaults to zeros.
            position_ids: int64 (B, T) or (1, T), used only with absolute positions. Defaults to 0..T-1.
            output_attentions / output_hidden_states / return_dict: as in transformers (config defaults).

        Returns:
            BaseModelOutput(last_hidden_state (B, T, C), hidden_states (L + 1 of them), attentions (L of
            (B, H, T, T))), or the tuple of its non-None fields when return_dict=False.
            Padded positions attend uniformly to all keys, as in the PyTorch reference (>= 4.47).
        """
        cfg = self.config
        output_attentions, output_hidden_states, return_dict = resolve_output_flags(
            cfg, output_attentions, output_hidden_states, return_dict)
        check_model_inputs(
            cfg,
            ids_shape=None if input_ids is None else tuple(input_ids.shape),
            embeds_shape=None if inputs_embeds is None else tuple(inputs_embeds.shape),
            mask_shape=None if attention_mask is None else tuple(attention_mask.shape),
            token_type_shape=None if token_type_ids is None else tuple(token_type_ids.shape),
            position_shape=None if position_ids is None else tuple(position_ids.shape),
            id_range=_min_max(input_ids),
            token_type_range=_min_max(token_type_ids),
            position_range=_min_max(position_ids),
            mask_is_binary=None if attention_mask is None or torch.compiler.is_compiling()
            else not bool(((attention_mask != 0) & (attention_mask != 1)).any()),
            ids_is_integer=None if input_ids is None else not input_ids.is_floating_point(),
        )
        shape = input_ids.shape if input_ids is not None else inputs_embeds.shape[:2]
        device = input_ids.device if input_ids is not None else inputs_embeds.device
        if attention_mask is None:
            attention_mask = torch.ones(shape, dtype=torch.long, device=device)
        token_mask, pair_mask = build_masks(attention_mask, shape)
        embedding_output = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids,
                                           position_ids=position_ids, token_mask=token_mask,
                                           inputs_embeds=inputs_embeds)
        last, hidden_states, attentions = self.encoder(embedding_output, pair_mask, token_mask,
                                                       output_hidden_states=output_hidden_states,
                                                       output_attentions=output_attentions)
        out = BaseModelOutput(last_hidden_state=last, hidden_states=hidden_states, attentions=attentions)
        return out if return_dict else out.to_tuple()


class DebertaModel(_Backbone, DebertaPreTrainedModel):
    """The bare DeBERTa v1 encoder (no head). State-dict keys carry no `deberta.` prefix."""


class DebertaV2Model(_Backbone, DebertaV2PreTrainedModel):
    """The bare DeBERTa-v2/v3 encoder (no head). State-dict keys carry no `deberta.` prefix."""
