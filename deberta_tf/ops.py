"""The only backend-specific code of deberta_tf: everything else is `keras.ops`.

Each helper says what it does on TensorFlow and on JAX; model files call these instead of branching on
`keras.config.backend()`.
"""

from __future__ import annotations

import keras
import ml_dtypes
import numpy as np
from keras import ops

# How `take_along_last_axis` gathers: "gather" (take_along_axis) everywhere by default; "onehot" turns
# the gather into a one-hot matmul, which XLA on TPU runs far faster than a gather (SPEC §7 #12).
GATHER_STRATEGIES = ("gather", "onehot")
_gather_strategy = "gather"


def set_gather_strategy(name: str) -> None:
    """Choose how relative-position scores are gathered: one of GATHER_STRATEGIES (same numbers)."""
    global _gather_strategy
    if name not in GATHER_STRATEGIES:
        raise ValueError(f"unknown gather strategy {name!r}; choose one of {GATHER_STRATEGIES}")
    _gather_strategy = name


def take_along_last_axis(x, index):
    """out[..., i, j] = x[..., i, index[i, j]].

    x: (B, H, T, R) scores against every relative row; index: int (T, S) rows. Returns (B, H, T, S).
    """
    if _gather_strategy == "onehot":
        one_hot = ops.one_hot(index, ops.shape(x)[-1], dtype=x.dtype)  # (T, S, R)
        return ops.einsum("bhtr,tsr->bhts", x, one_hot)
    return ops.take_along_axis(x, index[None, None], axis=-1)


def dtype_min(dtype) -> float:
    """The most negative finite value of a float dtype (the masked-score fill, as in the torch models)."""
    return float(ml_dtypes.finfo(keras.backend.standardize_dtype(dtype)).min)


def has_value(x) -> bool:
    """True when x holds concrete values (eager tensor, numpy array), False while tracing a graph.

    TensorFlow: False inside tf.function / model.fit / export graphs. JAX: False for jit tracers.
    """
    if x is None or isinstance(x, np.ndarray):
        return True
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly() and not isinstance(x, keras.KerasTensor)
    if keras.config.backend() == "jax":
        import jax

        return not isinstance(x, (jax.core.Tracer, keras.KerasTensor))
    return not isinstance(x, keras.KerasTensor)


def assert_in_range(x, low: int, high: int, message: str):
    """In a TensorFlow graph, fail at run time unless low <= x < high; a no-op elsewhere.

    Eager inputs are checked in Python before this (deberta_core.validation). XLA drops the assertion,
    so jit-compiled graphs rely on the caller; on CPU an out-of-range id then still fails in the gather.
    """
    if keras.config.backend() != "tensorflow":
        return x
    import tensorflow as tf

    checks = [tf.debugging.assert_greater_equal(x, tf.cast(low, x.dtype), message=message),
              tf.debugging.assert_less(x, tf.cast(high, x.dtype), message=message)]
    with tf.control_dependencies(checks):
        return tf.identity(x)


def tensor_spec(shape, dtype: str, name: str):
    """A named input spec for SavedModel export (a tf.TensorSpec: export always writes a TF graph)."""
    import tensorflow as tf

    return tf.TensorSpec(shape, tf.as_dtype(dtype), name=name)


def register_output_classes(classes) -> None:
    """Let Keras (and JAX) traverse the output dataclasses like dicts of their non-None fields.

    Keras' tree utilities use optree with the "keras" namespace: needed when Keras traces a model
    symbolically, e.g. to build metrics given to `compile`. On the JAX backend the outputs also cross
    jax.jit and value_and_grad boundaries in fit, so they must be JAX pytrees too.
    """

    def flatten(obj):
        names = tuple(obj.keys())
        return tuple(getattr(obj, n) for n in names), names

    def flatten_with_keys(obj):  # optree also wants the child names
        children, names = flatten(obj)
        return children, names, names

    try:
        import optree
    except ImportError:
        optree = None
    for cls in classes:
        def unflatten(names, children, cls=cls):
            return cls(**dict(zip(names, children)))

        try:
            if optree is not None:
                optree.register_pytree_node(cls, flatten_with_keys, unflatten, namespace="keras")
            if keras.config.backend() == "jax":
                import jax

                jax.tree_util.register_pytree_node(cls, flatten, unflatten)
        except ValueError:
            pass  # already registered (module re-import)


def predict_outputs_as_dict(result):
    """Turn what Keras' `predict_step` returns into plain dicts of output tensors.

    TensorFlow (and torch) return the outputs; JAX returns (outputs, non-trainable state). A graph
    function cannot return dataclasses, and `predict` then gives a dict of numpy arrays on every backend.
    """
    def as_dict(outputs):
        return dict(outputs.items()) if hasattr(outputs, "items") else outputs  # tuples (return_dict=False) stay

    if keras.config.backend() == "jax":
        outputs, state = result
        return as_dict(outputs), state
    return as_dict(result)
