"""Task models: masked LM, sequence/token classification, question answering, multiple choice.

Each task is written once as a mixin and bound to a family by its public class
(`DebertaForX` takes a DebertaConfig, `DebertaV2ForX` a DebertaV2Config). Losses follow
deberta_core.losses; label formats are in each forward's docstring.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deberta_core.outputs import (MaskedLMOutput, MultipleChoiceModelOutput, QuestionAnsweringModelOutput,
                                  SequenceClassifierOutput, TokenClassifierOutput, resolve_output_flags)
from deberta_core.validation import check_multiple_choice_inputs, check_question_answering

from .backbone import DebertaModel, DebertaV2Model
from .emd import attach_position_table, enhanced_mask_decoder
from .layers import LayerNorm, get_activation
from .losses import multiple_choice_loss, question_answering_loss, sequence_classification_loss, token_loss
from .pretrained import DebertaPreTrainedModel, DebertaV2PreTrainedModel, _pad_bias, _resize_rows


class ContextPooler(nn.Module):
    """pooled = act(dense(dropout(h[:, 0]))): the [CLS] position, so inputs must start with [CLS]."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.pooler_hidden_size, config.pooler_hidden_size)
        self.dropout = nn.Dropout(config.pooler_dropout)
        self.act = get_activation(config.pooler_hidden_act)

    def forward(self, hidden_states):
        return self.act(self.dense(self.dropout(hidden_states[:, 0])))


class PredictionHeadTransform(nn.Module):
    """dense (C -> E), activation, LayerNorm(E): the transform in front of the vocabulary projection."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.embedding_dim)
        self.transform_act_fn = get_activation(config.hidden_act)
        self.LayerNorm = LayerNorm(config.embedding_dim, eps=config.layer_norm_eps)

    def forward(self, hidden_states):
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class LegacyLMPredictionHead(nn.Module):
    """`cls.predictions`: transform, then logits = h . E^T + bias with E the word embeddings (tied).

    With tie_word_embeddings=False the projection has its own `decoder.weight` (V, E).
    """

    def __init__(self, config):
        super().__init__()
        self.transform = PredictionHeadTransform(config)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.decoder = nn.Linear(config.embedding_dim, config.vocab_size, bias=False) \
            if not config.tie_word_embeddings else None

    def forward(self, hidden_states, word_embeddings):
        weight = word_embeddings if self.decoder is None else self.decoder.weight
        return F.linear(self.transform(hidden_states), weight, self.bias)


class LegacyMLMHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.predictions = LegacyLMPredictionHead(config)

    def forward(self, hidden_states, word_embeddings):
        return self.predictions(hidden_states, word_embeddings)


class LMPredictionHead(PredictionHeadTransform):
    """`lm_predictions.lm_head` (the original microsoft/DeBERTa layout): dense, act, LayerNorm, then
    logits = h . E^T + bias, always reading the word-embedding matrix (nothing to tie, nothing to break)."""

    def __init__(self, config):
        super().__init__(config)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states, word_embeddings):
        return F.linear(super().forward(hidden_states), word_embeddings, self.bias)


class OriginalMLMHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.lm_head = LMPredictionHead(config)

    def forward(self, hidden_states, word_embeddings):
        return self.lm_head(hidden_states, word_embeddings)


class _TaskModel:
    """Mixin: builds `self.deberta` (the family's backbone) and initialises only the head modules."""

    backbone_class: type = None

    def __init__(self, config):
        super().__init__(config)
        self.deberta = self.backbone_class(config)

    def _init_head(self):
        for name, module in self.named_children():
            if name != self.base_model_prefix:
                module.apply(self._init_weights)

    def _encode(self, input_ids, **kwargs):
        return self.deberta(input_ids, return_dict=True, **kwargs)

    def _package_output(self, result, return_dict):
        """The output object, or the tuple of its non-None fields when return_dict is False."""
        return result if resolve_output_flags(self.config, return_dict=return_dict)[2] else result.to_tuple()


class _MaskedLM(_TaskModel):
    head = "masked_lm"

    def __init__(self, config):
        super().__init__(config)
        if config.legacy:
            self.cls = LegacyMLMHead(config)
        else:
            self.lm_predictions = OriginalMLMHead(config)
        self._init_head()
        if config.use_emd:  # the decoder's absolute table (deberta.embeddings.position_embeddings)
            attach_position_table(self.deberta.embeddings, config, self._init_weights)

    def get_output_embeddings(self) -> nn.Module:
        """The vocabulary projection: the untied `cls.predictions.decoder`, otherwise the word-embedding
        module itself, which a tied (or legacy=False) head projects with directly."""
        if self.config.legacy and self.cls.predictions.decoder is not None:
            return self.cls.predictions.decoder
        return self.deberta.embeddings.word_embeddings

    def set_output_embeddings(self, new_embeddings: nn.Module) -> None:
        """Project with `new_embeddings` (an nn.Linear E -> V; its bias, if any, becomes
        `cls.predictions.bias`); the word-embedding module itself restores the tie."""
        if not self.config.legacy:
            raise NotImplementedError("a legacy=False head projects with the word embeddings; use set_input_embeddings")
        head = self.cls.predictions
        if new_embeddings is self.deberta.embeddings.word_embeddings:
            head.decoder = None
            return
        if getattr(new_embeddings, "bias", None) is not None:
            head.bias = new_embeddings.bias
            new_embeddings.bias = None  # one Parameter, one state-dict key (cls.predictions.bias)
        head.decoder = new_embeddings

    def tie_weights(self) -> None:
        """With tie_word_embeddings (the default) the legacy head projects with the word embeddings: a
        separate decoder is dropped and the bias fitted to the vocabulary, as the reference's tie does."""
        if self.config.legacy and self.config.tie_word_embeddings:
            head = self.cls.predictions
            head.decoder = None
            rows = self.deberta.embeddings.word_embeddings.weight.shape[0]
            if head.bias.shape[0] != rows:
                _pad_bias(head.bias, rows)

    def _resize_output_head(self, new_num_tokens: int, mean_resizing: bool) -> None:
        if not self.config.legacy:
            # The reference cannot resize this head (it resizes lm_head.dense, SPEC 3.1); its bias is
            # zero-extended here, as for the tied legacy head.
            _pad_bias(self.lm_predictions.lm_head.bias, new_num_tokens)
        elif self.cls.predictions.decoder is None:
            _pad_bias(self.cls.predictions.bias, new_num_tokens)
        else:
            head = self.cls.predictions
            head.bias.data = _resize_rows(self, head.decoder, new_num_tokens, mean_resizing, old_bias=head.bias)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        """logits (B, T, V). labels (B, T): token ids to predict, -100 where no prediction is scored.

        With config.use_emd the head reads the enhanced mask decoder's output (deberta_torch/emd.py), as
        the original pre-training computed it; hidden_states and attentions are the encoder's.
        """
        sequence_output, out = self.decoder_states(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, position_ids=position_ids,
            inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states)
        logits = self.project(sequence_output)
        loss = token_loss(logits, labels) if labels is not None else None
        result = MaskedLMOutput(loss, logits, out.hidden_states, out.attentions)
        return self._package_output(result, return_dict)

    def decoder_states(self, input_ids=None, attention_mask=None, position_ids=None, output_hidden_states=None,
                       **kwargs):
        """(the states the head reads (B, T, C), the encoder's output): the last layer's, or with
        config.use_emd the enhanced mask decoder's. Pre-training projects only the targets' rows."""
        emd = self.config.use_emd
        out = self._encode(input_ids, attention_mask=attention_mask, position_ids=position_ids,
                           output_hidden_states=True if emd else output_hidden_states, **kwargs)
        states = out.last_hidden_state
        if emd:
            states = enhanced_mask_decoder(self.deberta, out.hidden_states[-2], attention_mask, position_ids)
            if not resolve_output_flags(self.config, output_hidden_states=output_hidden_states)[1]:
                out.hidden_states = None
        return states, out

    def project(self, states):
        """Vocabulary logits (..., V) of decoder states (..., C): the head is position-wise."""
        head = self.cls if self.config.legacy else self.lm_predictions
        return head(states, self.deberta.embeddings.word_embeddings.weight)


class _SequenceClassification(_TaskModel):
    head = "sequence_classification"

    def __init__(self, config):
        super().__init__(config)
        self.pooler = ContextPooler(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.pooler_hidden_size, config.num_labels)
        self._init_head()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        """logits (B, num_labels) from the pooled [CLS] position.

        labels, with config.problem_type None (DeBERTa never infers and stores it):
          num_labels == 1: float (B,) regression targets, MSE (logits come back flattened to (B,));
          int (B,): class ids, cross-entropy over rows with label >= 0 (negative rows skipped);
          float (B, num_labels): soft targets, -mean(sum(labels * log_softmax(logits))).
        problem_type "regression" / "single_label_classification" / "multi_label_classification" force
        MSE / cross-entropy / sigmoid BCE.
        """
        out = self._encode(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                           position_ids=position_ids, inputs_embeds=inputs_embeds,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        logits = self.classifier(self.dropout(self.pooler(out.last_hidden_state)))
        loss = None
        if labels is not None:
            loss, logits = sequence_classification_loss(logits, labels, self.config.num_labels,
                                                        self.config.problem_type)
        result = SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions)
        return self._package_output(result, return_dict)


class _TokenClassification(_TaskModel):
    head = "token_classification"

    def __init__(self, config):
        super().__init__(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self._init_head()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        """logits (B, T, num_labels). labels (B, T) class ids, -100 ignored (the mask is not applied)."""
        out = self._encode(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                           position_ids=position_ids, inputs_embeds=inputs_embeds,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = token_loss(logits, labels) if labels is not None else None
        result = TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions)
        return self._package_output(result, return_dict)


class _QuestionAnswering(_TaskModel):
    head = "question_answering"

    def __init__(self, config):
        super().__init__(config)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self._init_head()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        """start_logits, end_logits (B, T). start/end_positions (B,) token indices; positions outside
        [0, T) are clamped to T and ignored. Needs num_labels == 2."""
        with_loss = check_question_answering(self.config.num_labels, start_positions, end_positions)
        out = self._encode(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                           position_ids=position_ids, inputs_embeds=inputs_embeds,
                           output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        logits = self.qa_outputs(out.last_hidden_state)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))
        loss = question_answering_loss(start_logits, end_logits, start_positions, end_positions) if with_loss else None
        result = QuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)
        return self._package_output(result, return_dict)


class _MultipleChoice(_TaskModel):
    head = "multiple_choice"

    def __init__(self, config):
        super().__init__(config)
        self.pooler = ContextPooler(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.pooler_hidden_size, 1)
        self._init_head()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        """Inputs (B, num_choices, T) (inputs_embeds (B, num_choices, T, E)) -> logits (B, num_choices).
        labels (B,): index of the right choice."""
        check_multiple_choice_inputs(None if input_ids is None else input_ids.shape,
                                     None if inputs_embeds is None else inputs_embeds.shape)
        B, num_choices = (input_ids if input_ids is not None else inputs_embeds).shape[:2]

        def merge_choices(t):
            return None if t is None else t.reshape(-1, *t.shape[2:])

        out = self._encode(merge_choices(input_ids), attention_mask=merge_choices(attention_mask),
                           token_type_ids=merge_choices(token_type_ids), position_ids=merge_choices(position_ids),
                           inputs_embeds=merge_choices(inputs_embeds), output_attentions=output_attentions,
                           output_hidden_states=output_hidden_states)
        logits = self.classifier(self.dropout(self.pooler(out.last_hidden_state))).view(B, num_choices)
        loss = multiple_choice_loss(logits, labels) if labels is not None else None
        result = MultipleChoiceModelOutput(loss, logits, out.hidden_states, out.attentions)
        return self._package_output(result, return_dict)


class DebertaForMaskedLM(_MaskedLM, DebertaPreTrainedModel):
    backbone_class = DebertaModel


class DebertaForSequenceClassification(_SequenceClassification, DebertaPreTrainedModel):
    backbone_class = DebertaModel


class DebertaForTokenClassification(_TokenClassification, DebertaPreTrainedModel):
    backbone_class = DebertaModel


class DebertaForQuestionAnswering(_QuestionAnswering, DebertaPreTrainedModel):
    backbone_class = DebertaModel


class DebertaV2ForMaskedLM(_MaskedLM, DebertaV2PreTrainedModel):
    backbone_class = DebertaV2Model
    _keys_to_ignore_on_load_unexpected = [r"mask_predictions.*"]  # as the reference (v3 RTD heads)


class DebertaV2ForSequenceClassification(_SequenceClassification, DebertaV2PreTrainedModel):
    backbone_class = DebertaV2Model


class DebertaV2ForTokenClassification(_TokenClassification, DebertaV2PreTrainedModel):
    backbone_class = DebertaV2Model


class DebertaV2ForQuestionAnswering(_QuestionAnswering, DebertaV2PreTrainedModel):
    backbone_class = DebertaV2Model


class DebertaV2ForMultipleChoice(_MultipleChoice, DebertaV2PreTrainedModel):
    backbone_class = DebertaV2Model
