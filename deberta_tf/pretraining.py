"""DeBERTa-v3 pre-training: the replaced-token-detection discriminator and the generator + discriminator pair.

Legend: B batch, T length, C hidden size, V vocabulary.

`TFDebertaV2ForReplacedTokenDetection` is the discriminator: the encoder and the original's
`mask_predictions` head (variables mask_predictions/{dense,LayerNorm,classifier}), so a released v3
checkpoint loads whole. `TFDebertaV2ForRTDPretraining` holds a generator (`TFDebertaV2ForMaskedLM`,
normally `use_emd=True, legacy=False`) and a discriminator and computes one step of the joint
objective. Every rule it follows (sampling, labels, losses, embedding sharing) is stated and defined in
numpy in deberta_core.pretraining; the torch twin is deberta_torch/pretraining.py, whose state-dict keys
(the original RTDModel's) `state_dict` / `load_state` here read and write.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import ops

from deberta_core import pretraining as rules
from deberta_core.config import DebertaV2Config
from deberta_core.losses import IGNORE_INDEX
from deberta_core.outputs import ReplacedTokenDetectionOutput, RTDPretrainingOutput, resolve_output_flags
from deberta_core.tf_names import from_tf_layout, tf_weights, to_tf_layout

from .backbone import TFDebertaV2Model, build_masks
from .heads import TFDebertaV2ForMaskedLM, _TaskModel
from .layers import LayerNorm, Linear, get_activation
from .pretrained import TFDebertaV2PreTrainedModel, unpack_inputs

_EMBEDDINGS = "deberta.embeddings."


class MaskPredictionHead(keras.layers.Layer):
    """`mask_predictions` (the original's LMMaskPredictionHead): one "replaced" logit per token.

    logits = classifier(act(dense(LayerNorm(h + h[:, 0])))): each token's state plus the [CLS] state,
    normalised, then dense (C -> C), the hidden activation and classifier (C -> 1). (B, T, C) -> (B, T).
    """

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.dense = Linear(config.hidden_size, config.hidden_size, config, name="dense")
        self.transform_act_fn = get_activation(config.hidden_act)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.classifier = Linear(config.hidden_size, 1, config, name="classifier")

    def build(self, input_shape=None):
        self.dense.build()
        self.LayerNorm.build()
        self.classifier.build()

    def call(self, hidden_states):
        states = self.LayerNorm(hidden_states[:, :1] + hidden_states)
        return ops.squeeze(self.classifier(self.transform_act_fn(self.dense(states))), axis=-1)


def replaced_token_loss(logits, labels, attention_mask=None):
    """Sigmoid cross-entropy of logits (B, T) against 0/1 labels (B, T), averaged over the tokens with
    attention_mask != 0 whose label is not negative (deberta_core.pretraining.rtd_loss); 0 if none."""
    logits = ops.cast(logits, "float32")
    labels = ops.cast(labels, "float32")
    keep = labels >= 0
    if attention_mask is not None:
        keep = ops.logical_and(keep, build_masks(attention_mask)[0])
    keep = ops.cast(keep, "float32")
    y = ops.maximum(labels, 0.0)
    per_token = ops.maximum(logits, 0.0) - logits * y + ops.log1p(ops.exp(-ops.abs(logits)))
    return ops.sum(per_token * keep) / ops.maximum(ops.sum(keep), 1.0)


def masked_lm_loss(logits, labels):
    """Cross-entropy over the targets (labels != -100), averaged; 0 when there are none
    (deberta_core.pretraining.mlm_loss)."""
    labels = ops.cast(labels, "int32")
    keep = ops.cast(labels != IGNORE_INDEX, "float32")
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    picked = ops.take_along_axis(log_probs, ops.maximum(labels, 0)[..., None], axis=-1)[..., 0]
    return -ops.sum(picked * keep) / ops.maximum(ops.sum(keep), 1.0)


def sample_tokens(logits, temperature: float = rules.SAMPLING_TEMPERATURE, uniform=None, seed=None):
    """One token per row of logits (..., V) from softmax(logits / temperature), by the Gumbel-max trick
    on uniform noise of the same shape (deberta_core.pretraining.sample_tokens), or without noise by
    the inverse CDF with `seed` (deberta_core.pretraining.sample_by_cdf). int (...)."""
    logits = ops.cast(ops.stop_gradient(logits), "float32")
    if uniform is None:  # the same distribution by its inverse CDF: one uniform per row, not per logit
        cdf = ops.cumsum(ops.softmax(logits / temperature, axis=-1), axis=-1)
        u = keras.random.uniform(ops.shape(cdf)[:-1] + (1,), seed=seed) * cdf[..., -1:]
        return ops.minimum(ops.sum(ops.cast(cdf <= u, "int32"), axis=-1), ops.shape(cdf)[-1] - 1)
    tiny, below_one = float(np.finfo(np.float32).tiny), 1.0 - float(np.finfo(np.float32).epsneg)
    u = ops.clip(ops.cast(uniform, "float32"), tiny, below_one)  # (0, 1), as numpy's
    return ops.argmax(logits / temperature - ops.log(-ops.log(u)), axis=-1)


@keras.saving.register_keras_serializable(package="deberta_tf")
class TFDebertaV2ForReplacedTokenDetection(_TaskModel, TFDebertaV2PreTrainedModel):
    """The DeBERTa-v3 discriminator: encoder + `mask_predictions`, logits (B, T)."""

    head = "replaced_token_detection"

    def __init__(self, config, **kwargs):
        super().__init__(config, **kwargs)
        self.mask_predictions = MaskPredictionHead(config, name="mask_predictions")
        self.build()

    def _head_layers(self):
        return (self.mask_predictions,)

    @unpack_inputs
    def call(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, inputs_embeds=None,
             labels=None, output_attentions=None, output_hidden_states=None, return_dict=None, training=False):
        """logits (B, T), > 0 meaning "replaced". labels (B, T): 1 replaced, 0 original, negative
        ignored; the loss averages over the tokens the attention mask keeps ([CLS]/[SEP] included)."""
        last, hidden_states, attentions = self._encode(
            input_ids, training, attention_mask=attention_mask, token_type_ids=token_type_ids,
            position_ids=position_ids, inputs_embeds=inputs_embeds, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states)
        logits = self.mask_predictions(last)
        loss = replaced_token_loss(logits, labels, attention_mask) if labels is not None else None
        return self._package_output(ReplacedTokenDetectionOutput(loss, logits, hidden_states, attentions), return_dict)

    def _labels_loss(self, outputs, labels):
        return replaced_token_loss(outputs.logits, labels)


class DisentangledEmbedding(keras.layers.Layer):
    """A GDES table: weight = stop_gradient(source.weight) + `_weight`, the delta starting at zero.

    `source` is the generator's Embedding layer; it is referenced, not tracked, so its variable belongs
    to the generator alone."""

    def __init__(self, source, **kwargs):
        super().__init__(**kwargs)
        object.__setattr__(self, "source", source)
        self.num_embeddings, self.embedding_dim = source.num_embeddings, source.embedding_dim
        self.padding_idx = source.padding_idx

    def build(self, input_shape=None):
        self._weight = self.add_weight(name=rules.GDES_DELTA, shape=(self.num_embeddings, self.embedding_dim),
                                       initializer="zeros")

    @property
    def weight(self):
        return ops.stop_gradient(ops.convert_to_tensor(self.source.weight)) + self._weight

    def call(self, ids):
        return ops.cast(ops.take(self.weight, ids, axis=0), self.compute_dtype)


def _set_layer(owner, name: str, layer) -> None:
    """Swap the sublayer `owner.<name>` of a built layer: the old one (and its variables) leaves the
    layer's tracked sublayers, the new one joins them."""
    old = getattr(owner, name)
    locked = owner._tracker.locked
    owner._tracker.unlock()
    try:
        delattr(owner, name)
        owner._layers[:] = [sub for sub in owner._layers if sub is not old]
        setattr(owner, name, layer)
    finally:
        if locked:
            owner._tracker.lock()


class TFDebertaV2ForRTDPretraining(keras.Model):
    """A generator (masked LM) and a discriminator (replaced-token detection) trained together.

    generator_config / discriminator_config: DebertaV2Config each (one vocabulary; one embedding width
    unless embedding_sharing="none"). embedding_sharing: "none", "es" (the discriminator embeds with the
    generator's tables) or "gdes" (stop_gradient(generator table) + a zero-initialised delta); the word
    table is shared, and the absolute position table too where both models have one. rtd_lambda and
    temperature: see deberta_core.pretraining. seed: for the generator samples (keras.random).
    """

    def __init__(self, generator_config: DebertaV2Config, discriminator_config: DebertaV2Config,
                 embedding_sharing: str = "gdes", rtd_lambda: float = rules.RTD_LAMBDA,
                 temperature: float = rules.SAMPLING_TEMPERATURE, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        rules.check_pair(generator_config, discriminator_config, embedding_sharing)
        self.embedding_sharing = embedding_sharing
        self.rtd_lambda = float(rtd_lambda)
        self.temperature = float(temperature)
        self.generator = TFDebertaV2ForMaskedLM(generator_config)
        self.discriminator = TFDebertaV2ForReplacedTokenDetection(discriminator_config)
        self.seed_generator = keras.random.SeedGenerator(seed)
        if embedding_sharing != "none":
            embeddings = self.discriminator.deberta.embeddings
            for name in self._shared_tables():
                source = getattr(self.generator.deberta.embeddings, name)
                shared = source
                if embedding_sharing == "gdes":
                    shared = DisentangledEmbedding(source, name=name)
                    with keras.name_scope(self.discriminator.name), keras.name_scope("deberta"), \
                            keras.name_scope("embeddings"):
                        shared.build()  # variable path .../deberta/embeddings/word_embeddings/_weight
                _set_layer(embeddings, name, shared)

    def _shared_tables(self) -> list[str]:
        """The embedding tables both models hold: the word table, and the position table when both have one."""
        names = ["word_embeddings"]
        if (self.generator.deberta.embeddings.position_embeddings is not None
                and self.discriminator.deberta.embeddings.position_embeddings is not None):
            names.append("position_embeddings")
        return names

    @unpack_inputs
    def call(self, input_ids, attention_mask=None, labels=None, token_type_ids=None, position_ids=None,
             sampling_noise=None, return_dict=None, training=False):
        """One step of the joint objective.

        input_ids (B, T): the masked ids (deberta_core.pretraining.mask_tokens); labels (B, T): the
        original id at each target, -100 elsewhere (or a dict holding input_ids, attention_mask, labels).
        The generator's head projects only the N targets' rows (row-major), as the original gathers them:
        generator_logits is (N, V). sampling_noise: uniform (N, V) or (B, T, V) in (0, 1) for the
        generator samples (drawn from the seed generator when None). Returns RTDPretrainingOutput; the
        loss is mlm_loss + rtd_lambda * rtd_loss, and under "gdes" the RTD term sends no gradient to the
        generator (its samples and the shared table are stopped).
        """
        if labels is None:
            raise ValueError("RTD pre-training needs labels: the original ids at the masked positions, -100 elsewhere")
        input_ids = ops.convert_to_tensor(input_ids)
        labels = ops.cast(labels, input_ids.dtype)
        states, _, _ = self.generator.decoder_states(input_ids, training, attention_mask=attention_mask,
                                                     token_type_ids=token_type_ids, position_ids=position_ids)
        targets = labels != IGNORE_INDEX
        flat_targets = ops.reshape(targets, (-1,))
        # the targets' rows only (a dynamic count: TensorFlow graphs allow it, jax.jit does not)
        positions = ops.nonzero(flat_targets)[0]
        width = ops.shape(states)[-1]
        generator_logits = self.generator.project(ops.take(ops.reshape(states, (-1, width)), positions, axis=0))
        target_ids = ops.take(ops.reshape(labels, (-1,)), positions, axis=0)
        mlm = masked_lm_loss(generator_logits, target_ids)
        noise = sampling_noise
        if noise is not None and len(ops.shape(noise)) == 3:
            noise = ops.take(ops.reshape(noise, (-1, ops.shape(noise)[-1])), positions, axis=0)
        samples = ops.cast(sample_tokens(generator_logits, self.temperature, noise, seed=self.seed_generator),
                           input_ids.dtype)
        flat = ops.scatter(positions[:, None], samples, ops.shape(flat_targets))
        replaced = ops.stop_gradient(ops.where(targets, ops.reshape(flat, ops.shape(input_ids)), input_ids))
        rtd_labels = ops.cast(ops.logical_and(targets, replaced != labels), "float32")
        discriminator = self.discriminator(replaced, attention_mask=attention_mask, token_type_ids=token_type_ids,
                                           position_ids=position_ids, return_dict=True, training=training)
        rtd = replaced_token_loss(discriminator.logits, rtd_labels, attention_mask)
        result = RTDPretrainingOutput(mlm + self.rtd_lambda * rtd, mlm, rtd, generator_logits, discriminator.logits,
                                      replaced, rtd_labels)
        return result if resolve_output_flags(self.discriminator.config, return_dict=return_dict)[2] \
            else result.to_tuple()

    # --------------------------------------------------------------------- weights by torch key
    def _discriminator_arrays(self, fold: bool) -> dict[str, np.ndarray]:
        """The discriminator's tensors under DebertaV2ForReplacedTokenDetection keys, PyTorch layouts.

        A shared table comes out folded (its `weight`) with fold=True; otherwise a GDES table gives its
        delta under `..._weight` and an "es" table is left to the generator (the torch twin's keys)."""
        model = self.discriminator
        variables = model._variables_by_name()
        embeddings = model.deberta.embeddings
        shared = set(self._shared_tables()) if self.embedding_sharing != "none" else set()
        out = {}
        for key, w in tf_weights(model.config, model.head).items():
            table = key.removeprefix(_EMBEDDINGS).removesuffix(".weight") if key.startswith(_EMBEDDINGS) else None
            if table in shared:
                layer = getattr(embeddings, table)
                if fold:
                    out[key] = ops.convert_to_numpy(layer.weight)
                elif self.embedding_sharing == "gdes":
                    out[key[: -len("weight")] + rules.GDES_DELTA] = ops.convert_to_numpy(layer._weight)
                continue
            out[key] = from_tf_layout(ops.convert_to_numpy(variables[w.name]), w.name)
        return out

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every tensor under the torch twin's keys (`generator.*`, `discriminator.*`, the GDES delta
        `discriminator.deberta.embeddings.word_embeddings._weight`), as numpy in PyTorch layouts."""
        generator = self.generator
        variables = generator._variables_by_name()
        out = {"generator." + key: from_tf_layout(ops.convert_to_numpy(variables[w.name]), w.name)
               for key, w in tf_weights(generator.config, generator.head).items()}
        out.update({"discriminator." + k: v for k, v in self._discriminator_arrays(fold=False).items()})
        if self.embedding_sharing == "es":  # torch lists a shared module under both owners
            for table in self._shared_tables():
                key = f"{_EMBEDDINGS}{table}.weight"
                out["discriminator." + key] = out["generator." + key]
        return out

    def load_state(self, state: dict) -> None:
        """Assign tensors keyed as `state_dict` gives them (e.g. the torch twin's state dict, as numpy);
        every tensor of this model must be there, with its shape."""
        state = {k: np.asarray(v) for k, v in state.items()}
        prefix = "generator."
        self.generator.load_checkpoint_state({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)},
                                             strict=True)
        own = self.state_dict()
        model = self.discriminator
        variables = model._variables_by_name()
        expected = tf_weights(model.config, model.head)
        for key in own:
            if not key.startswith("discriminator."):
                continue
            if key not in state:
                raise ValueError(f"state lacks {key}")
            if tuple(state[key].shape) != tuple(own[key].shape):
                raise ValueError(f"{key}: state {tuple(state[key].shape)} vs model {tuple(own[key].shape)}")
            sub = key[len("discriminator."):]
            if sub.endswith("." + rules.GDES_DELTA):
                table = sub[len(_EMBEDDINGS):-len(rules.GDES_DELTA) - 1]
                getattr(model.deberta.embeddings, table)._weight.assign(state[key])
            elif sub in expected and not (self.embedding_sharing == "es" and sub.startswith(_EMBEDDINGS)
                                          and sub[len(_EMBEDDINGS):-len(".weight")] in self._shared_tables()):
                w = expected[sub]
                variables[w.name].assign(to_tf_layout(state[key], w.kind))

    # ------------------------------------------------------------------------------ export
    def discriminator_state_dict(self) -> dict[str, np.ndarray]:
        """The discriminator as a plain DebertaV2ForReplacedTokenDetection checkpoint (numpy, PyTorch keys
        and layouts): shared tables written out, a GDES table folded (generator table + delta)."""
        return self._discriminator_arrays(fold=True)

    def export_discriminator(self, save_directory, with_head: bool = False) -> Path:
        """Save the discriminator for fine-tuning: a TFDebertaV2Model checkpoint (with_head: the whole
        TFDebertaV2ForReplacedTokenDetection), embeddings folded; any DebertaV2 class loads it."""
        config = self.discriminator.config.copy()
        model = TFDebertaV2ForReplacedTokenDetection(config) if with_head else TFDebertaV2Model(config)
        model.load_checkpoint_state(self.discriminator_state_dict(), strict=True)
        return model.save_pretrained(save_directory)

    def save_pretrained(self, save_directory) -> Path:
        """generator/ (TFDebertaV2ForMaskedLM), discriminator/ (TFDebertaV2ForReplacedTokenDetection, tables
        folded) and rtd_pretraining.json (sharing, rtd_lambda, temperature): the torch twin's layout."""
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.generator.save_pretrained(directory / "generator")
        self.export_discriminator(directory / "discriminator", with_head=True)
        rules.write_pretraining_settings(directory, self.embedding_sharing, self.rtd_lambda, self.temperature)
        return directory

    @classmethod
    def from_pretrained(cls, directory, **settings):
        """Rebuild from save_pretrained's folders (either framework's); a GDES delta is recovered as
        discriminator - generator (exact up to float rounding of the fold)."""
        directory = Path(directory)
        saved = rules.read_pretraining_settings(directory)
        saved.update(settings)
        generator = TFDebertaV2ForMaskedLM.from_pretrained(directory / "generator")
        discriminator = TFDebertaV2ForReplacedTokenDetection.from_pretrained(directory / "discriminator")
        model = cls(generator.config, discriminator.config, **saved)
        state = {"generator." + k: v for k, v in _arrays(generator).items()}
        folded = _arrays(discriminator)
        for table in model._shared_tables() if model.embedding_sharing != "none" else ():
            key = f"{_EMBEDDINGS}{table}.weight"
            value = folded.pop(key)
            if model.embedding_sharing == "gdes":
                folded[key[: -len("weight")] + rules.GDES_DELTA] = value - state["generator." + key]
            else:
                folded[key] = state["generator." + key]
        state.update({"discriminator." + k: v for k, v in folded.items()})
        model.load_state(state)
        return model


def _arrays(model) -> dict[str, np.ndarray]:
    """A plain model's tensors under its PyTorch keys and layouts."""
    variables = model._variables_by_name()
    return {key: from_tf_layout(ops.convert_to_numpy(variables[w.name]), w.name)
            for key, w in tf_weights(model.config, model.head).items()}
