"""Base classes for every Keras DeBERTa model: input unpacking, `from_pretrained`, `save_pretrained`,
Keras serialization, training with `model.fit` and SavedModel export.

Checkpoints: `tf_model.h5` in the reference's layout (SPEC §4.3), or PyTorch weights (`model.safetensors`,
sharded or not, or `pytorch_model.bin`) converted in memory. Every tensor passes through the canonical
PyTorch keys and layouts of deberta_core.weight_names; deberta_core.tf_names holds the only name map and
transposes, shared with conversion/.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np
from keras import ops

from deberta_core import outputs as core_outputs
from deberta_core.checkpoint import TF_WEIGHTS
from deberta_core.config import BaseDebertaConfig, DebertaConfig, DebertaV2Config
from deberta_core.io import atomic_path
from deberta_core.pretrained import read_pretrained
from deberta_core.tf_names import layout_shape, model_scope, tf_weights, to_tf_layout, write_tf_h5
from deberta_core.weight_names import LoadingInfo, log_loading, plan_load, uses_position_table

from .ops import predict_outputs_as_dict, register_output_classes, tensor_spec
from .tuning import TrainingToolsMixin

logger = logging.getLogger("deberta_tf")

# Keras may now traverse the output dataclasses like dicts (symbolic builds, compiled metrics).
register_output_classes(core_outputs.OUTPUT_CLASSES)


def _is_id_list(values) -> bool:
    """A Python list of ids ([1, 2] or [[1, 2], [3, 4]]), as opposed to a list of input tensors."""
    if len(values) == 0:
        return True
    first = values[0]
    if isinstance(first, (list, tuple)):
        return all(isinstance(v, (int, np.integer)) for v in first)
    return isinstance(first, (int, np.integer))


def _as_tensor(value):
    """numpy arrays and Python lists become tensors; tensors, None and Python flags pass through."""
    if isinstance(value, (list, tuple)):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        return ops.convert_to_tensor(value)
    return value


def unpack_inputs(call):
    """Let `call` take its inputs the ways transformers' TF models do.

    The first argument may be a tensor or array (input_ids), a dict of named inputs, or a list/tuple of
    inputs in the order of `call`'s parameters (input_ids, attention_mask, token_type_ids, position_ids,
    inputs_embeds, ...). Other arguments may be given by keyword. numpy arrays and Python lists become
    tensors. Unknown names and names given twice raise ValueError.
    """
    names = [n for n in inspect.signature(call).parameters if n not in ("self", "training")]

    @functools.wraps(call)
    def wrapper(self, input_ids=None, *args, training=False, **kwargs):
        given = dict(zip(names[1:], args))
        given.update(kwargs)
        if isinstance(input_ids, Mapping):
            unknown = sorted(set(input_ids) - set(names))
            if unknown:
                raise ValueError(f"unknown input name(s) {unknown}; {type(self).__name__} takes {names}")
            _merge(given, input_ids)
            input_ids = given.pop("input_ids", None)
        elif isinstance(input_ids, (list, tuple)) and not _is_id_list(input_ids):
            if len(input_ids) > len(names):
                raise ValueError(f"{len(input_ids)} inputs given in a list; {type(self).__name__} takes at most "
                                 f"{len(names)}, in this order: {names}")
            _merge(given, dict(zip(names, input_ids)))
            input_ids = given.pop("input_ids", None)
        given = {k: _as_tensor(v) for k, v in given.items()}
        return call(self, _as_tensor(input_ids), training=training, **given)

    return wrapper


def _merge(given: dict, extra: Mapping) -> None:
    clash = sorted(k for k, v in extra.items() if v is not None and given.get(k) is not None)
    if clash:
        raise ValueError(f"input(s) {clash} given twice (in the inputs and as keyword arguments)")
    given.update({k: v for k, v in extra.items() if v is not None})


class _TFPreTrained(TrainingToolsMixin, keras.Model):
    """Shared machinery; use TFDebertaPreTrainedModel or TFDebertaV2PreTrainedModel.

    Models are built from the config when constructed (every variable exists, with its final name,
    before any data is seen), so `from_pretrained`, `save_pretrained` and `fit` need no dummy call.
    """

    config_class: type[BaseDebertaConfig] = BaseDebertaConfig
    base_model_prefix = "deberta"
    main_input_name = "input_ids"
    head: str | None = None  # which weight_names head this class carries (None: the base model)

    def __init__(self, config: BaseDebertaConfig, **kwargs):
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}")
        kwargs.setdefault("name", model_scope(type(self).__name__))
        super().__init__(**kwargs)
        self.config = config
        # Python lists of ids may be passed positionally, as to the reference TF classes.
        self._allow_non_tensor_positional_args = True

    # ------------------------------------------------------------- Keras serialization
    def get_config(self) -> dict:
        """Everything `from_config` needs: the DeBERTa config dict plus the Keras layer settings."""
        config = {"config": self.config.to_dict(), "name": self.name, "trainable": self.trainable,
                  "dtype": keras.dtype_policies.serialize(self.dtype_policy)}
        if self.lora_settings is not None:  # rebuilt with LoRA on, so a .keras file reloads its LoRA weights
            config["lora"] = self.lora_settings.as_dict()
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        model_config = cls.config_class.from_dict(config.pop("config"))
        lora = config.pop("lora", None)
        model = cls(model_config, **config)
        if lora is not None:
            model.enable_lora(**lora)
        return model

    # ----------------------------------------------------------------- weights by name
    def _variables_by_name(self) -> dict[str, keras.Variable]:
        """Keras variable path inside this model (e.g. "deberta/embeddings/word_embeddings/weight") -> variable."""
        prefix = self.path + "/"
        return {v.path[len(prefix):] if v.path.startswith(prefix) else v.path: v for v in self.weights}

    def get_input_embeddings(self):
        """The word-embedding layer (its table is `.weight`, (vocab_size, embedding_size))."""
        return self.deberta.embeddings.word_embeddings

    # ------------------------------------------------------------------------- saving
    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write `config.json` and `tf_model.h5` into `save_directory`, each atomically.

        The h5 file has the reference's layout and names (SPEC §4.3): the reference TF classes of
        transformers load it, and so do `from_pretrained` here and conversion/. The v2 unshared position
        projections are stored as `pos_proj`/`pos_q_proj`, the names those classes read.
        """
        directory = Path(save_directory)
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"{directory} exists and is not a directory")
        directory.mkdir(parents=True, exist_ok=True)
        variables = self._variables_by_name()
        arrays = {w.h5_name: self._export_value(variables[w.name])  # LoRA merged into the kernels
                  for w in tf_weights(self.config, self.head).values()}
        with atomic_path(directory / TF_WEIGHTS) as tmp:
            write_tf_h5(tmp, arrays, model_scope=model_scope(type(self).__name__))
        config = self.config.copy()
        config.extra["architectures"] = [type(self).__name__.removeprefix("TF")]
        config.save_pretrained(directory)
        return directory

    # ------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *, config: BaseDebertaConfig | None = None,
                        from_pt: bool = False, strict: bool = False, ignore_mismatched_sizes: bool = False,
                        output_loading_info: bool = False, **config_overrides):
        """Load a model from a directory holding `config.json` and weights (or a hub name, when
        huggingface_hub is installed).

        Reads `tf_model.h5` when present, else PyTorch weights converted in memory (`from_pt=True` prefers
        those). Keys with or without the `deberta.` prefix, legacy `LayerNorm.gamma/beta`, and both
        masked-LM layouts (picked from the keys) are accepted. Missing and unexpected weights are logged
        by name; `strict=True` refuses them. A shape mismatch is an error unless
        `ignore_mismatched_sizes=True` (e.g. a new `num_labels`). Extra keyword arguments override config
        fields (`num_labels=3`). Returns the model, and a `LoadingInfo` too when `output_loading_info=True`.
        """
        prefer = ("safetensors", "pytorch", "tf") if from_pt else ("tf", "safetensors", "pytorch")
        found = read_pretrained(pretrained_model_name_or_path, cls.config_class, cls.head, logger, config=config,
                                overrides=config_overrides, prefer=prefer)
        model = cls(found.config)
        info = model.load_checkpoint_state(found.state, strict=strict, ignore_mismatched_sizes=ignore_mismatched_sizes)
        return (model, info) if output_loading_info else model

    def load_checkpoint_state(self, state: dict[str, np.ndarray], strict: bool = False,
                              ignore_mismatched_sizes: bool = False) -> LoadingInfo:
        """Copy PyTorch-keyed, PyTorch-layout arrays into this model (key rules of deberta_core.weight_names)."""
        expected = tf_weights(self.config, self.head)
        variables = self._variables_by_name()
        name = type(self).__name__
        model_shapes = {k: layout_shape(tuple(variables[w.name].shape), w.kind) for k, w in expected.items()}
        info = plan_load({k: np.shape(v) for k, v in state.items()}, model_shapes,
                         uses_position_table(self.config, self.head), name, strict, ignore_mismatched_sizes)
        for target, source in info.mapping.items():
            variable = variables[expected[target].name]
            variable.assign(to_tf_layout(np.asarray(state[source]), expected[target].kind).astype(variable.dtype))
        log_loading(info, name, logger)
        return info

    # ----------------------------------------------------------------------- training
    def _prediction(self, outputs):
        """The tensor(s) a compiled Keras loss or metric sees: the logits."""
        return outputs.logits

    def _labels_loss(self, outputs, labels):
        """The head's own loss for labels given to `fit` as y (the same rule as `labels=` in call)."""
        raise ValueError(f"{type(self).__name__} has no built-in loss; compile it with loss=...")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """`fit` without a compiled loss trains with the head's own loss (the PyTorch rules).

        Labels come as y (`Dataset` of (inputs, labels); a dict of start/end positions for question
        answering) or inside the input dict (`labels`, `start_positions`, ...). A loss given to `compile`
        is applied to the logits instead.
        """
        if self._compile_loss is not None:
            return super().compute_loss(x, y, self._prediction(y_pred), sample_weight, training)
        if sample_weight is not None:
            raise ValueError("sample_weight needs a loss given to compile(); the built-in head losses are "
                             "unweighted means, as in PyTorch")
        if y is not None:
            loss = self._labels_loss(y_pred, y)
        elif getattr(y_pred, "loss", None) is not None:
            loss = y_pred.loss
        else:
            raise ValueError(f"{type(self).__name__} was fit without labels: pass (inputs, labels) batches, or "
                             "put the labels in the input dict, or compile with a loss")
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return loss

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        return super().compute_metrics(x, y, self._prediction(y_pred), sample_weight)

    def predict_step(self, *args):
        """`predict` returns a dict of the non-None output fields (a graph function cannot return dataclasses)."""
        return predict_outputs_as_dict(super().predict_step(*args))

    # ------------------------------------------------------------------------- export
    def serving_input_signature(self) -> dict:
        """Named int32 inputs of the SavedModel signature: input_ids, attention_mask, and token_type_ids
        when the model uses them; shape (batch, sequence), or (batch, choices, sequence) for multiple choice.
        """
        shape = (None, None, None) if self.head == "multiple_choice" else (None, None)
        names = ["input_ids", "attention_mask"] + (["token_type_ids"] if self.config.type_vocab_size > 0 else [])
        return {name: tensor_spec(shape, "int32", name) for name in names}

    def export(self, filepath, format="tf_saved_model", verbose=True, input_signature=None, **kwargs):
        """Write a SavedModel whose `serving_default` signature takes named inputs (see
        `serving_input_signature`) and returns a dict of the output tensors (logits, ...).

        Other formats go to Keras' own `Model.export`.
        """
        if format != "tf_saved_model":
            return super().export(filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)
        archive = keras.export.ExportArchive()
        archive.track(self)
        signature = [self.serving_input_signature()] if input_signature is None else input_signature

        def serve(inputs):
            return dict(self(inputs, training=False, return_dict=True).items())

        archive.add_endpoint("serve", serve, input_signature=signature)
        archive.write_out(filepath, verbose=verbose)


class TFDebertaPreTrainedModel(_TFPreTrained):
    """Base of every Keras DeBERTa v1 model (takes a `DebertaConfig`)."""

    config_class = DebertaConfig


class TFDebertaV2PreTrainedModel(_TFPreTrained):
    """Base of every Keras DeBERTa-v2/v3 model (takes a `DebertaV2Config`)."""

    config_class = DebertaV2Config
