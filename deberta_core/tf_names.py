"""PyTorch state-dict keys <-> Keras/TensorFlow variable names, the layout change between them, and the
`tf_model.h5` file layout (SPEC §4.3). Framework-neutral: numpy only (h5py is imported when a file is
read or written), so `deberta_tf` and `conversion/` share one implementation.

Every name comes from one rule applied to the canonical keys of `deberta_core.weight_names`:

  PT key                                          TF name (no model scope, no ":0")
  deberta.embeddings.word_embeddings.weight       deberta/embeddings/word_embeddings/weight
  deberta.embeddings.position_embeddings.weight   deberta/embeddings/position_embeddings/embeddings
  deberta.encoder.rel_embeddings.weight           deberta/encoder/rel_embeddings.weight  (one variable)
  deberta.encoder.layer.3.attention.self.X        deberta/encoder/layer_._3/attention/self/X
  <linear>.weight (out, in)                       <linear>/kernel (in, out)           transposed
  encoder.conv.conv.weight (out, in/g, k)         encoder/conv/conv/kernel (k, in/g, out)  axes (2, 1, 0)
  <...>.LayerNorm.weight / .bias                  <...>/LayerNorm/gamma / beta

Base-model keys (no `deberta.` prefix) get it: the Keras models, like the reference TF classes, always
nest the encoder in a main layer named `deberta`.

Two spellings of the unshared v2 position projections. The reference TF classes
(`modeling_tf_deberta_v2.py`) build `pos_key_proj` / `pos_query_proj` with the Keras names `pos_proj` /
`pos_q_proj` (v1's names), so their `tf_model.h5` files disagree with every PyTorch checkpoint. Our Keras
variables follow the PyTorch attribute (`name`); `tf_model.h5` files are written with the reference
spelling (`h5_name`) so the reference TF classes load them, and both spellings are read back.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np

from .config import BaseDebertaConfig
from .weight_names import BASE_PREFIX, model_weights

# Names the reference TF v2 classes give the unshared relative projections (see the module docstring).
_V2_REFERENCE_SPELLING = {"pos_key_proj": "pos_proj", "pos_query_proj": "pos_q_proj"}
_V2_FROM_REFERENCE = {v: k for k, v in _V2_REFERENCE_SPELLING.items()}

# Embedding tables whose TF variable is not called "embeddings".
_TABLE_VARIABLES = {"word_embeddings": "weight"}
# The relative table is a variable of the encoder itself, whose name contains a dot.
_REL_TABLE_KEY = "encoder.rel_embeddings.weight"
_REL_TABLE_TF = "encoder/rel_embeddings.weight"

# torch's ModuleList index `layer.3` is the Keras layer `layer_._3` (the reference's naming).
_LAYER_PT = re.compile(r"(^|/)layer/(\d+)(?=/|$)")
_LAYER_TF = re.compile(r"(^|/)layer_\._(\d+)(?=/|$)")

# HDF5 cannot hold an attribute larger than this many bytes; longer name lists are split in chunks
# named weight_names0, weight_names1, ... (the tf-keras h5 convention the reference reads).
HDF5_OBJECT_HEADER_LIMIT = 64512


@dataclass(frozen=True)
class TFWeight:
    """One tensor as the Keras models hold it.

    key: the canonical PyTorch key (task-model form, `deberta.`-prefixed for encoder tensors).
    name: the Keras variable path inside the model, e.g. "deberta/encoder/layer_._0/attention/self/query_proj/kernel".
    h5_name: the name in `tf_model.h5`, as the reference TF classes spell it (equal to `name` except for
        the v2 unshared position projections).
    kind: the weight_names layout kind; shape: the TF-layout shape.
    """

    key: str
    name: str
    h5_name: str
    kind: str
    shape: tuple[int, ...]


def tf_name(key: str, kind: str) -> str:
    """The Keras variable path for a task-model PyTorch key (encoder keys `deberta.`-prefixed) of the
    given layout kind, in the PyTorch attribute spelling."""
    if key == BASE_PREFIX + _REL_TABLE_KEY:
        return BASE_PREFIX[:-1] + "/" + _REL_TABLE_TF
    module, _, param = key.rpartition(".")
    if kind in ("linear", "conv1d"):
        param = "kernel" if param == "weight" else param
    elif kind == "embedding":
        param = _TABLE_VARIABLES.get(module.rpartition(".")[2], "embeddings")
    elif module.endswith("LayerNorm"):
        param = {"weight": "gamma", "bias": "beta"}[param]
    return _LAYER_PT.sub(r"\1layer_._\2", module.replace(".", "/")) + "/" + param


def h5_name(name: str, family: str) -> str:
    """The reference TF spelling of a Keras variable path (v2 unshared position projections renamed)."""
    if family != "v2":
        return name
    parts = name.split("/")
    if len(parts) >= 3 and parts[-3] == "self" and parts[-2] in _V2_REFERENCE_SPELLING:
        parts[-2] = _V2_REFERENCE_SPELLING[parts[-2]]
    return "/".join(parts)


def tf_name_to_key(name: str, family: str) -> str:
    """The PyTorch key for a TF variable name, in either spelling of the v2 projections.

    Accepts names with or without the ":0" suffix; the model scope must already be removed. Encoder keys
    come back `deberta.`-prefixed (deberta_core.weight_names.match_keys strips it for base models).
    """
    name = name[:-2] if name.endswith(":0") else name
    if name.endswith("/" + _REL_TABLE_TF):
        return name[: -len(_REL_TABLE_TF)].replace("/", ".") + _REL_TABLE_KEY
    parts = name.split("/")
    param = parts[-1]
    module = parts[:-1]
    if family == "v2" and len(module) >= 2 and module[-2] == "self" and module[-1] in _V2_FROM_REFERENCE:
        module[-1] = _V2_FROM_REFERENCE[module[-1]]
    if param in ("kernel", "gamma", "embeddings"):
        param = "weight"
    elif param == "beta":
        param = "bias"
    path = _LAYER_TF.sub(r"\1layer/\2", "/".join(module))
    return path.replace("/", ".") + "." + param


def to_tf_layout(array: np.ndarray, kind: str) -> np.ndarray:
    """PyTorch layout -> Keras layout: Linear (out, in) -> kernel (in, out); Conv1d (out, in/g, k) -> (k, in/g, out)."""
    if kind == "linear":
        return np.ascontiguousarray(np.transpose(array))
    if kind == "conv1d":
        return np.ascontiguousarray(np.transpose(array, (2, 1, 0)))
    return array


def from_tf_layout(array: np.ndarray, name: str) -> np.ndarray:
    """Keras layout -> PyTorch layout, decided from the TF name and rank (the inverse of `to_tf_layout`)."""
    if name.removesuffix(":0").endswith("/kernel"):
        if array.ndim == 2:
            return np.ascontiguousarray(np.transpose(array))
        if array.ndim == 3:
            return np.ascontiguousarray(np.transpose(array, (2, 1, 0)))
    return array


def layout_shape(shape: tuple[int, ...], kind: str) -> tuple[int, ...]:
    """The shape `to_tf_layout` gives an array of this shape; the same permutation maps a TF shape back."""
    if kind == "linear":
        return tuple(reversed(shape))
    if kind == "conv1d":
        return (shape[2], shape[1], shape[0])
    return tuple(shape)


def tf_weights(config: BaseDebertaConfig, head: str | None = None) -> dict[str, TFWeight]:
    """Every tensor of a Keras model for this config and head, keyed by its canonical PyTorch key.

    Keys are those of `deberta_core.weight_names.model_weights(config, head)`, so a base model's keys
    have no `deberta.` prefix while every `name` has the `deberta/` scope.
    """
    out = {}
    for key, spec in model_weights(config, head).items():
        name = tf_name(key if head is not None else BASE_PREFIX + key, spec.kind)
        out[key] = TFWeight(key=key, name=name, h5_name=h5_name(name, config.family), kind=spec.kind,
                            shape=layout_shape(spec.shape, spec.kind))
    return out


def state_dict_from_tf(named_arrays: dict[str, np.ndarray], family: str) -> dict[str, np.ndarray]:
    """TF-named arrays (either v2 spelling) -> PyTorch keys and layouts (`deberta.`-prefixed encoder keys).

    Raises ValueError when two TF names land on one key (e.g. a file holding both spellings).
    """
    state: dict[str, np.ndarray] = {}
    origin: dict[str, str] = {}
    for name, array in named_arrays.items():
        key = tf_name_to_key(name, family)
        if key in state:
            raise ValueError(f"TF weights {origin[key]!r} and {name!r} both map to {key!r}")
        state[key] = from_tf_layout(np.asarray(array), name)
        origin[key] = name
    return state


# ---------------------------------------------------------------------------------------- tf_model.h5
def _read_name_list(group, attr: str) -> list[str]:
    if attr in group.attrs:
        values = list(group.attrs[attr])
    else:
        values, chunk = [], 0
        while f"{attr}{chunk}" in group.attrs:
            values.extend(group.attrs[f"{attr}{chunk}"])
            chunk += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _write_name_list(group, attr: str, names: list[str]) -> None:
    data = np.asarray([n.encode("utf8") for n in names]) if names else np.asarray([], dtype="S1")
    chunks = 1
    parts = np.array_split(data, chunks)
    while any(p.nbytes > HDF5_OBJECT_HEADER_LIMIT for p in parts):
        chunks += 1
        parts = np.array_split(data, chunks)
    if chunks == 1:
        group.attrs[attr] = data
    else:
        for i, part in enumerate(parts):
            group.attrs[f"{attr}{i}"] = part


def model_scope(class_name: str) -> str:
    """The first component of every name in a `tf_model.h5`: the snake-case Keras class name, as the
    reference's default model names are (TFDebertaV2ForMaskedLM -> tf_deberta_v2_for_masked_lm)."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", class_name)
    return re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name).lower()


def read_tf_h5(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every weight of a Keras-2-style `tf_model.h5` (the reference's format), keyed by TF name.

    The file holds one group per top-level layer, listed in the root attribute `layer_names`; each group
    lists its weights in `weight_names` as "<model scope>/<name>:0". The model scope and ":0" are removed
    here, so keys look like "deberta/embeddings/word_embeddings/weight". A weight listed by two groups (the
    reference's tied MLM decoder lists the embeddings under `cls` too) is read once.
    """
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is not a readable HDF5 file: {err}") from None
    out: dict[str, np.ndarray] = {}
    with handle:
        layer_names = _read_name_list(handle, "layer_names")
        if not layer_names and "layer_names" not in handle.attrs:
            raise ValueError(f"{path} is not a Keras weights file (no 'layer_names' attribute)")
        for layer in layer_names:
            group = handle[layer]
            for weight in _read_name_list(group, "weight_names"):
                name = weight.split("/", 1)[1] if "/" in weight else weight
                name = name[:-2] if name.endswith(":0") else name
                if name not in out:
                    out[name] = np.asarray(group[weight])
    return out


def write_tf_h5(path: str | os.PathLike, named_arrays: dict[str, np.ndarray], model_scope: str) -> None:
    """Write TF-named arrays as a reference-style `tf_model.h5` (see `read_tf_h5`).

    named_arrays: TF name (no scope, no ":0") -> array, in the order to store them. model_scope: the
    first path component of every stored name (the reference uses the snake-case class name, e.g.
    "tf_deberta_v2_for_sequence_classification"); readers drop it. Top-level groups are the first
    component of each name ("deberta", "cls", "pooler", "classifier", ...).

    The reference's masked-LM head (`cls`) holds the embeddings layer it is tied to, so its group lists
    the `deberta/embeddings/*` weights too, and the reference loader reports them missing when they are
    not there. They are added here as HDF5 hard links: listed twice, stored once.
    """
    import h5py

    groups: dict[str, list[str]] = {}
    for name in named_arrays:
        groups.setdefault(name.split("/", 1)[0], []).append(name)
    tied = {"cls": [n for n in named_arrays if n.startswith("deberta/embeddings/")]} if "cls" in groups else {}
    with h5py.File(path, "w") as handle:
        _write_name_list(handle, "layer_names", list(groups))
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["keras_version"] = b"2.21.0"
        datasets = {}
        for layer, names in groups.items():
            group = handle.create_group(layer)
            for name in names:
                array = np.asarray(named_arrays[name])
                datasets[name] = group.create_dataset(f"{model_scope}/{name}:0", data=array, dtype=array.dtype)
        for layer, names in groups.items():
            group = handle[layer]
            linked = [n for n in tied.get(layer, []) if n not in names]
            for name in linked:
                group[f"{model_scope}/{name}:0"] = datasets[name]
            _write_name_list(group, "weight_names", [f"{model_scope}/{name}:0" for name in names + linked])
