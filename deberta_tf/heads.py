"""Task models: masked LM, sequence/token classification, question answering, multiple choice.

Each task is written once as a mixin and bound to a family by its public class
(`TFDebertaForX` takes a DebertaConfig, `TFDebertaV2ForX` a DebertaV2Config). Losses follow
deberta_core.losses; label formats are in each call's docstring. Every call also accepts its inputs as
a dict or a list (see pretrained.unpack_inputs) and `training=` for dropout.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from deberta_core.outputs import (MaskedLMOutput, MultipleChoiceModelOutput, QuestionAnsweringModelOutput,
                                  SequenceClassifierOutput, TokenClassifierOutput, resolve_output_flags)
from deberta_core.resizing import resized_bias, resized_table
from deberta_core.validation import check_multiple_choice_inputs, check_question_answering

from .backbone import DebertaMainLayer
from .emd import attach_position_table, enhanced_mask_decoder
from .layers import LayerNorm, Linear, get_activation, replace_variable
from .losses import multiple_choice_loss, question_answering_loss, sequence_classification_loss, token_loss
from .pretrained import TFDebertaPreTrainedModel, TFDebertaV2PreTrainedModel, unpack_inputs


class ContextPooler(keras.layers.Layer):
    """pooled = act(dense(dropout(h[:, 0]))): the [CLS] position, so inputs must start with [CLS]."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dense = Linear(config.pooler_hidden_size, config.pooler_hidden_size, config, name="dense")
        self.dropout = keras.layers.Dropout(config.pooler_dropout, name="dropout")
        self.act = get_activation(config.pooler_hidden_act)

    def build(self, input_shape=None):
        self.dense.build()

    def call(self, hidden_states, training=False):
        return self.act(self.dense(self.dropout(hidden_states[:, 0], training=training)))


class PredictionHeadTransform(keras.layers.Layer):
    """dense (C -> E), activation, LayerNorm(E): the transform in front of the vocabulary projection."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dense = Linear(config.hidden_size, config.embedding_dim, config, name="dense")
        self.transform_act_fn = get_activation(config.hidden_act)
        self.LayerNorm = LayerNorm(config.embedding_dim, eps=config.layer_norm_eps)

    def build(self, input_shape=None):
        self.dense.build()
        self.LayerNorm.build()

    def call(self, hidden_states):
        return self.LayerNorm(self.transform_act_fn(self.dense(hidden_states)))


class LegacyLMPredictionHead(keras.layers.Layer):
    """`cls.predictions`: transform, then logits = h . E^T + bias with E the word embeddings (tied).

    With tie_word_embeddings=False the projection has its own `decoder` kernel (E, V).
    """

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = config.vocab_size
        self.transform = PredictionHeadTransform(config, name="transform")
        self.decoder = (Linear(config.embedding_dim, config.vocab_size, config, use_bias=False, name="decoder")
                        if not config.tie_word_embeddings else None)

    def build(self, input_shape=None):
        self.transform.build()
        self.bias = self.add_weight(name="bias", shape=(self.vocab_size,), initializer="zeros")
        if self.decoder is not None:
            self.decoder.build()

    def call(self, hidden_states, word_embeddings):
        hidden_states = self.transform(hidden_states)
        logits = (ops.matmul(hidden_states, ops.transpose(word_embeddings)) if self.decoder is None
                  else self.decoder(hidden_states))
        return logits + self.bias


class LegacyMLMHead(keras.layers.Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.predictions = LegacyLMPredictionHead(config, name="predictions")

    def build(self, input_shape=None):
        self.predictions.build()

    def call(self, hidden_states, word_embeddings):
        return self.predictions(hidden_states, word_embeddings)


class LMPredictionHead(PredictionHeadTransform):
    """`lm_predictions.lm_head` (the original microsoft/DeBERTa layout): dense, act, LayerNorm, then
    logits = h . E^T + bias, always reading the word-embedding matrix (nothing to tie, nothing to break)."""

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.vocab_size = config.vocab_size

    def build(self, input_shape=None):
        super().build()
        self.bias = self.add_weight(name="bias", shape=(self.vocab_size,), initializer="zeros")

    def call(self, hidden_states, word_embeddings):
        return ops.matmul(super().call(hidden_states), ops.transpose(word_embeddings)) + self.bias


class OriginalMLMHead(keras.layers.Layer):
    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.lm_head = LMPredictionHead(config, name="lm_head")

    def build(self, input_shape=None):
        self.lm_head.build()

    def call(self, hidden_states, word_embeddings):
        return self.lm_head(hidden_states, word_embeddings)


class _TaskModel:
    """Mixin: builds `self.deberta` (the main layer); each task adds its layers and builds them."""

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.deberta = DebertaMainLayer(config, name="deberta")

    def _head_layers(self):
        return ()

    def build(self, input_shape=None):
        if self.built:
            return
        self.deberta.build()
        for layer in self._head_layers():
            layer.build()

    def _encode(self, input_ids, training, output_attentions=None, output_hidden_states=None, **kwargs):
        """(last hidden state, hidden states, attentions) of the backbone; None flags follow the config."""
        output_attentions, output_hidden_states, _ = resolve_output_flags(self.config, output_attentions,
                                                                          output_hidden_states)
        return self.deberta(input_ids, training=training, output_attentions=output_attentions,
                            output_hidden_states=output_hidden_states, **kwargs)

    def _package_output(self, result, return_dict):
        """The output object, or the tuple of its non-None fields when return_dict is False."""
        return result if resolve_output_flags(self.config, return_dict=return_dict)[2] else result.to_tuple()


class _MaskedLM(_TaskModel):
    head = "masked_lm"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        if config.legacy:
            self.cls = LegacyMLMHead(config, name="cls")
        else:
            self.lm_predictions = OriginalMLMHead(config, name="lm_predictions")
        if config.use_emd:  # the decoder's absolute table (deberta/embeddings/position_embeddings)
            attach_position_table(self.deberta.embeddings, config)
        self.build()

    def _head_layers(self):
        return (self.cls,) if self.config.legacy else (self.lm_predictions,)

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
             labels=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False):
        """logits (B, T, V). labels (B, T): token ids to predict, -100 where no prediction is scored.

        With config.use_emd the head reads the enhanced mask decoder's output (deberta_tf/emd.py), as
        the original pre-training computed it; hidden_states and attentions are the encoder's.
        """
        states, hidden_states, attentions = self.decoder_states(
            input_ids, training, attention_mask=attention_mask, token_type_ids=token_type_ids,
            position_ids=position_ids, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states)
        logits = self.project(states)
        loss = token_loss(logits, labels) if labels is not None else None
        return self._package_output(MaskedLMOutput(loss, logits, hidden_states, attentions), return_dict)

    def decoder_states(self, input_ids, training, attention_mask=None, position_ids=None,
                       output_hidden_states=None, **kwargs):
        """(the states the head reads (B, T, C), hidden_states, attentions): the last layer's, or with
        config.use_emd the enhanced mask decoder's. Pre-training projects only the targets' rows."""
        emd = self.config.use_emd
        states, hidden_states, attentions = self._encode(
            input_ids, training, attention_mask=attention_mask, position_ids=position_ids,
            output_hidden_states=True if emd else output_hidden_states, **kwargs)
        if emd:
            states = enhanced_mask_decoder(self.deberta, hidden_states[-2], attention_mask, position_ids, training)
            if not resolve_output_flags(self.config, output_hidden_states=output_hidden_states)[1]:
                hidden_states = None
        return states, hidden_states, attentions

    def project(self, states):
        """Vocabulary logits (..., V) of decoder states (..., C): the head is position-wise."""
        head = self.cls if self.config.legacy else self.lm_predictions
        return head(states, self.deberta.embeddings.word_embeddings.weight)

    def _labels_loss(self, outputs, labels):
        return token_loss(outputs.logits, labels)

    def _resize_output_embeddings(self, new_num_tokens: int, mean_resizing: bool) -> None:
        """Resize the vocabulary side of the head with the word embeddings (resize_token_embeddings).

        A head that reads the word embeddings (tied `cls.predictions`, `lm_predictions.lm_head`) only
        needs its bias padded with zeros, as transformers pads a tied head's bias; an untied `decoder`
        kernel (E, V) gets new columns like new embedding rows and its bias new entries around the old
        bias mean (transformers' _get_resized_lm_head).
        """
        head = self.cls.predictions if self.config.legacy else self.lm_predictions.lm_head
        untied = getattr(head, "decoder", None) is not None
        bias = resized_bias(ops.convert_to_numpy(head.bias), new_num_tokens, mean_init=untied and mean_resizing)
        replace_variable(head, "bias", bias, "bias")
        head.vocab_size = new_num_tokens
        if untied:
            decoder = head.decoder
            kernel = ops.convert_to_numpy(decoder._kernel)  # (E, V): rows of the (V, E) weight are columns
            weight = resized_table(kernel.T, new_num_tokens, mean_resizing, self.config.initializer_range)
            replace_variable(decoder, "_kernel", np.ascontiguousarray(weight.T), "kernel")
            decoder.units = new_num_tokens


class _SequenceClassification(_TaskModel):
    head = "sequence_classification"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.pooler = ContextPooler(config, name="pooler")
        self.dropout = keras.layers.Dropout(config.classifier_dropout, name="dropout")
        self.classifier = Linear(config.pooler_hidden_size, config.num_labels, config, name="classifier")
        self.build()

    def _head_layers(self):
        return self.pooler, self.classifier

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
             labels=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False):
        """logits (B, num_labels) from the pooled [CLS] position.

        labels, with config.problem_type None (DeBERTa never infers and stores it):
          num_labels == 1: float (B,) regression targets, MSE (logits come back flattened to (B,));
          int (B,): class ids, cross-entropy over rows with label >= 0 (negative rows skipped);
          float (B, num_labels): soft targets, -mean(sum(labels * log_softmax(logits))).
        problem_type "regression" / "single_label_classification" / "multi_label_classification" force
        MSE / cross-entropy / sigmoid BCE.
        """
        last, hidden_states, attentions = self._encode(
            input_ids, training, attention_mask=attention_mask, token_type_ids=token_type_ids,
            position_ids=position_ids, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states)
        logits = self.classifier(self.dropout(self.pooler(last, training=training), training=training))
        loss = None
        if labels is not None:
            loss, logits = sequence_classification_loss(logits, labels, self.config.num_labels,
                                                        self.config.problem_type)
        return self._package_output(SequenceClassifierOutput(loss, logits, hidden_states, attentions), return_dict)

    def _labels_loss(self, outputs, labels):
        return sequence_classification_loss(outputs.logits, labels, self.config.num_labels,
                                            self.config.problem_type)[0]


class _TokenClassification(_TaskModel):
    head = "token_classification"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob, name="dropout")
        self.classifier = Linear(config.hidden_size, config.num_labels, config, name="classifier")
        self.build()

    def _head_layers(self):
        return (self.classifier,)

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
             labels=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False):
        """logits (B, T, num_labels). labels (B, T) class ids, -100 ignored (the mask is not applied)."""
        last, hidden_states, attentions = self._encode(
            input_ids, training, attention_mask=attention_mask, token_type_ids=token_type_ids,
            position_ids=position_ids, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states)
        logits = self.classifier(self.dropout(last, training=training))
        loss = token_loss(logits, labels) if labels is not None else None
        return self._package_output(TokenClassifierOutput(loss, logits, hidden_states, attentions), return_dict)

    def _labels_loss(self, outputs, labels):
        return token_loss(outputs.logits, labels)


class _QuestionAnswering(_TaskModel):
    head = "question_answering"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.qa_outputs = Linear(config.hidden_size, config.num_labels, config, name="qa_outputs")
        self.build()

    def _head_layers(self):
        return (self.qa_outputs,)

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
             start_positions=None, end_positions=None, output_attentions=None, output_hidden_states=None,
             return_dict=None, training=False):
        """start_logits, end_logits (B, T). start/end_positions (B,) token indices; positions outside
        [0, T) are clamped to T and ignored. Needs num_labels == 2."""
        with_loss = check_question_answering(self.config.num_labels, start_positions, end_positions)
        last, hidden_states, attentions = self._encode(
            input_ids, training, attention_mask=attention_mask, token_type_ids=token_type_ids,
            position_ids=position_ids, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states)
        logits = self.qa_outputs(last)
        start_logits, end_logits = (ops.squeeze(t, axis=-1) for t in ops.split(logits, 2, axis=-1))
        loss = question_answering_loss(start_logits, end_logits, start_positions, end_positions) if with_loss else None
        result = QuestionAnsweringModelOutput(loss, start_logits, end_logits, hidden_states, attentions)
        return self._package_output(result, return_dict)

    def _prediction(self, outputs):
        return outputs.start_logits, outputs.end_logits

    def _labels_loss(self, outputs, labels):
        """labels: {"start_positions": (B,), "end_positions": (B,)} or a (start, end) pair."""
        if isinstance(labels, dict):
            unknown = sorted(set(labels) - {"start_positions", "end_positions"})
            if unknown or len(labels) != 2:
                raise ValueError(f"question-answering labels must be a dict with start_positions and "
                                 f"end_positions, got keys {sorted(labels)}")
            start, end = labels["start_positions"], labels["end_positions"]
        elif isinstance(labels, (list, tuple)) and len(labels) == 2:
            start, end = labels
        else:
            raise ValueError("question-answering labels must be {'start_positions': ..., 'end_positions': ...} "
                             "or a (start_positions, end_positions) pair")
        return question_answering_loss(outputs.start_logits, outputs.end_logits, start, end)


class _MultipleChoice(_TaskModel):
    head = "multiple_choice"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.pooler = ContextPooler(config, name="pooler")
        self.dropout = keras.layers.Dropout(config.classifier_dropout, name="dropout")
        self.classifier = Linear(config.pooler_hidden_size, 1, config, name="classifier")
        self.build()

    def _head_layers(self):
        return self.pooler, self.classifier

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
             labels=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False):
        """Inputs (B, num_choices, T) (inputs_embeds (B, num_choices, T, E)) -> logits (B, num_choices).
        labels (B,): index of the right choice."""
        check_multiple_choice_inputs(None if input_ids is None else tuple(input_ids.shape),
                                     None if inputs_embeds is None else tuple(inputs_embeds.shape))
        B, num_choices = ops.shape(input_ids if input_ids is not None else inputs_embeds)[:2]

        def merge_choices(t):
            return None if t is None else ops.reshape(t, (-1, *ops.shape(t)[2:]))

        last, hidden_states, attentions = self._encode(
            merge_choices(input_ids), training, attention_mask=merge_choices(attention_mask),
            token_type_ids=merge_choices(token_type_ids), position_ids=merge_choices(position_ids),
            inputs_embeds=merge_choices(inputs_embeds), output_attentions=output_attentions,
            output_hidden_states=output_hidden_states)
        pooled = self.dropout(self.pooler(last, training=training), training=training)
        logits = ops.reshape(self.classifier(pooled), (B, num_choices))
        loss = multiple_choice_loss(logits, labels) if labels is not None else None
        return self._package_output(MultipleChoiceModelOutput(loss, logits, hidden_states, attentions), return_dict)

    def _labels_loss(self, outputs, labels):
        return multiple_choice_loss(outputs.logits, labels)


@keras.saving.register_keras_serializable(package="deberta_tf")
class TFDebertaForMaskedLM(_MaskedLM, TFDebertaPreTrainedModel):
    pass


@keras.saving.register_keras_serializable(package="deberta_tf")
class TFDebertaForSequenceClassification(_SequenceClassification, TFDebertaPreTrainedModel):
    pass


@keras.saving.register_keras_serializable(package="deberta_tf")
class TFDebertaForTokenClassification(_TokenClassification, TFDebertaPreTrainedModel):
    pass


@keras.saving.register_keras_serializable(package="deberta_tf")
class TFDebertaForQuestionAnswering(_QuestionAnswering, TFDebertaPreTrainedModel):
    pass


@keras.saving.register_keras_serializable(package="deberta_tf")
class TFDebertaV2ForMaskedLM(_MaskedLM, TFDebertaV2PreTrainedModel):
    pass


@keras.saving.register_keras_serializable(package="deberta_tf")
class TFDebertaV2ForSequenceClassification(_SequenceClassification, TFDebertaV2PreTrainedModel):
    pass


@keras.saving.register_keras_serializable(package="deberta_tf")
class TFDebertaV2ForTokenClassification(_TokenClassification, TFDebertaV2PreTrainedModel):
    pass


@keras.saving.register_keras_serializable(package="deberta_tf")
class TFDebertaV2ForQuestionAnswering(_QuestionAnswering, TFDebertaV2PreTrainedModel):
    pass


@keras.saving.register_keras_serializable(package="deberta_tf")
class TFDebertaV2ForMultipleChoice(_MultipleChoice, TFDebertaV2PreTrainedModel):
    pass
