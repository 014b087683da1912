"""Transformer layers, the v2 convolution branch and the encoder loop (SPEC §2.10-2.12)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from deberta_core.config import BaseDebertaConfig

from . import fast_attention
from .attention import DebertaAttention
from .kernels import InferenceCache, project
from .layers import LayerNorm, ResidualLayerNorm, get_activation
from .relative_position import relative_position_index


class DebertaIntermediate(nn.Module):
    def __init__(self, config: BaseDebertaConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = get_activation(config.hidden_act)
        self.exact_gelu = config.hidden_act == "gelu"  # fused into the matmul where possible

    def forward(self, hidden_states):
        if self.exact_gelu:
            return project(self, "dense", hidden_states, [self.dense], gelu=True)
        return self.intermediate_act_fn(project(self, "dense", hidden_states, [self.dense]))


class DebertaOutput(ResidualLayerNorm):
    """Feed-forward output projection, dropout, residual and LayerNorm (`output.*`)."""

    def __init__(self, config: BaseDebertaConfig):
        super().__init__(config.intermediate_size, config)


class DebertaLayer(nn.Module):
    """Post-LN block: attention, residual + LN, feed-forward, residual + LN. (B, T, C) -> (B, T, C)."""

    def __init__(self, config: BaseDebertaConfig):
        super().__init__()
        self.attention = DebertaAttention(config)
        self.intermediate = DebertaIntermediate(config)
        self.output = DebertaOutput(config)

    def forward(self, hidden_states, pair_mask, rel_embeddings=None, rel_index=None, **kwargs):
        """kwargs (rel_rows, token_mask, output_attentions) go to the self-attention (attention.py)."""
        attention_output, probs = self.attention(hidden_states, pair_mask, rel_embeddings, rel_index, **kwargs)
        layer_output = self.output(self.intermediate(attention_output), attention_output)
        return layer_output, probs


class ConvLayer(nn.Module):
    """v2 convolution branch, applied once after layer 0 (SPEC §2.11).

    Convolves the *embedding output* over the sequence, zeroes padded positions, and adds it to the
    layer-0 output before a LayerNorm; the result is masked again.
    """

    def __init__(self, config: BaseDebertaConfig):
        super().__init__()
        k = config.conv_kernel_size
        self.conv = nn.Conv1d(config.hidden_size, config.hidden_size, k, padding=(k - 1) // 2,
                              groups=config.conv_groups)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.conv_act = get_activation(config.conv_act)

    def forward(self, embedding_output, layer_output, token_mask):
        """embedding_output, layer_output (B, T, C); token_mask (B, T) of 0/1."""
        out = self.conv(embedding_output.transpose(1, 2)).transpose(1, 2)
        keep = token_mask.unsqueeze(-1).to(out.dtype)
        out = self.conv_act(self.dropout(out * keep))
        return self.LayerNorm(layer_output + out) * keep


class DebertaEncoder(nn.Module):
    """The layer stack plus what every layer shares: the relative table and its index matrix.

    Layers on a fast path (fast_attention.py) get the table and its distance line instead, prepared once
    per forward and, in eval mode without autograd, cached in `_relative_cache` until a relative weight
    changes.
    """

    def __init__(self, config: BaseDebertaConfig):
        super().__init__()
        self.family = config.family
        self.layer = nn.ModuleList(DebertaLayer(config) for _ in range(config.num_hidden_layers))
        self.relative_attention = config.relative_attention
        self.max_relative_positions = config.relative_span
        self.position_buckets = config.position_buckets if config.family == "v2" else -1
        if config.relative_attention:
            self.rel_embeddings = nn.Embedding(config.rel_embeddings_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.norm_rel_embeddings else None
        self.conv = ConvLayer(config) if config.family == "v2" and config.conv_kernel_size > 0 else None
        self.gradient_checkpointing = False
        self._relative_cache = InferenceCache()  # fast_attention.relative_rows

    def _normed_table(self):
        """The whole relative table (2K or 2B rows, C) after the v2 LayerNorm."""
        table = self.rel_embeddings.weight
        return table if self.LayerNorm is None else self.LayerNorm(table)

    def _span(self, seq_len: int) -> int:
        if self.family == "v1":  # v1 reads rows [K - span, K + span) of its 2K-row table
            return min(seq_len, self.max_relative_positions)
        return self.rel_embeddings.weight.shape[0] // 2

    def _relative_parameters(self):
        params = [self.rel_embeddings.weight]
        if self.LayerNorm is not None:
            params += [self.LayerNorm.weight, self.LayerNorm.bias]
        return params

    def _relative_inputs(self, seq_len):
        """Relative table rows this length can reach (after the v2 LayerNorm) and the (T, T) index."""
        if not self.relative_attention:
            return None, None
        table = self._normed_table()
        span = self._span(seq_len)
        if self.family == "v1":
            # v1 uses only the rows a length can reach: [K - span, K + span) of the 2K-row table.
            K = self.max_relative_positions
            table = table[K - span: K + span]
        index = relative_position_index(seq_len, seq_len, span, self.position_buckets, self.max_relative_positions,
                                        device=table.device)
        return table, index

    def forward(self, embedding_output, pair_mask, token_mask, output_hidden_states=False,
                output_attentions=False):
        """embedding_output (B, T, C); pair_mask bool (B, 1, T, T); token_mask (B, T).

        Returns the last hidden state, all hidden states (L + 1, or None) and attentions (L, or None).
        """
        T = embedding_output.shape[1]
        rel_embeddings, rel_index = (self._relative_inputs(T) if fast_attention.needs_eager_inputs(self)
                                     else (None, None))
        pair_mask, fast = fast_attention.encoder_inputs(self, T, pair_mask, token_mask, output_attentions)
        all_hidden = [embedding_output] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        hidden_states = embedding_output
        for i, layer in enumerate(self.layer):
            if self.gradient_checkpointing and self.training:
                hidden_states, probs = checkpoint(layer, hidden_states, pair_mask, rel_embeddings, rel_index,
                                                  use_reentrant=False, **fast)
            else:
                hidden_states, probs = layer(hidden_states, pair_mask, rel_embeddings, rel_index, **fast)
            if i == 0 and self.conv is not None:
                hidden_states = self.conv(embedding_output, hidden_states, token_mask)
            if output_hidden_states:
                all_hidden.append(hidden_states)
            if output_attentions:
                all_attentions.append(probs)
        return (hidden_states,
                tuple(all_hidden) if output_hidden_states else None,
                tuple(all_attentions) if output_attentions else None)
