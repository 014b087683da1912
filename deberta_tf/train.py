"""The Keras loop of deberta-train (the rest is framework-neutral: deberta_core.train).

The step is Keras ``fit``'s ``train_step`` (forward with ``training=True``, the head's own loss,
``GradientTape``, ``optimizer.apply_gradients``) run by ``strategy.run`` inside a ``tf.function``, the
way ``fit`` runs it, with three changes that ``fit`` cannot make: micro-batches are accumulated
inside the step (``--grad-accum``), each replica's loss is weighted by its share of the step's loss
items (so N replicas give the gradient of the mean over the global batch: the head losses are means
and ``fit`` would sum the replicas' gradients), and the global gradient norm is clipped after the
all-reduce (Keras' ``global_clipnorm`` clips each replica's part). ``--devices N`` > 1 runs it under
``tf.distribute.MirroredStrategy``: over N GPUs, or without GPUs over N logical CPU devices, which
must be created before TensorFlow initialises (:func:`setup` does it first thing).

Only the TensorFlow backend of Keras is supported: the step uses tf.GradientTape and tf.distribute.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deberta_core.train.data import shard
from deberta_core.train.optim import BETAS, EPSILON, uses_weight_decay

STATE_FILE = "keras_state.npz"
OUTPUT_NAMES = ("logits", "start_logits", "end_logits")


@dataclass
class Distributed:
    rank: int
    world_size: int  # replicas in sync
    strategy: object
    devices: list


def setup(args) -> Distributed:
    """Create the logical CPU devices (when asked for, before TensorFlow initialises) and the strategy."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"--framework tf trains with the TensorFlow backend of Keras (tf.distribute); this process "
                         f"runs Keras on {keras.backend.backend()!r}, which deberta-train does not support")
    import tensorflow as tf

    if args.threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        except RuntimeError:
            pass  # TensorFlow already initialised in this process (e.g. a second run): keep its threads
    gpus = tf.config.list_physical_devices("GPU")
    n = args.devices
    if gpus:
        if n > len(gpus):
            raise ValueError(f"--devices {n}, but TensorFlow sees {len(gpus)} GPU(s)")
        devices = [f"/gpu:{i}" for i in range(n)]
    else:
        cpu = tf.config.list_physical_devices("CPU")[0]
        if n > 1:
            try:
                tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
            except RuntimeError:
                pass  # already initialised: usable if it already has enough logical devices
        logical = tf.config.list_logical_devices("CPU")
        if len(logical) < n:
            raise ValueError(f"--devices {n}: TensorFlow was initialised with {len(logical)} logical CPU device(s) "
                             "before deberta-train could create more; run it in a fresh process")
        devices = [d.name for d in logical[:n]]
    strategy = tf.distribute.MirroredStrategy(devices) if n > 1 else tf.distribute.get_strategy()
    return Distributed(0, n, strategy, devices)


class Backend:
    """Model, AdamW and the replicated step, in one process."""

    framework = "tf"

    def __init__(self, args, spec, dist: Distributed):
        import keras
        import tensorflow as tf

        from deberta_core.pipelines.loading import model_class
        from deberta_core.tf_names import tf_weights

        self.tf, self.keras = tf, keras
        self.args, self.dist = args, dist
        self.strategy = dist.strategy
        self.replicas = dist.world_size
        keras.utils.set_random_seed(args.seed)
        self._policy = keras.mixed_precision.dtype_policy().name
        if args.bf16:
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        with self.strategy.scope():
            cls = model_class(spec.config, spec.head, "tf")
            model = cls(spec.config) if spec.source is None else cls.from_pretrained(spec.source, **spec.overrides)
            self.model = model
            self.variables = list(model.trainable_variables)
            by_name = model._variables_by_name()
            no_decay = [by_name[w.name] for key, w in tf_weights(spec.config, spec.head).items()
                        if not uses_weight_decay(key)]
            self.optimizer = keras.optimizers.AdamW(learning_rate=args.lr, weight_decay=args.weight_decay,
                                                    beta_1=BETAS[0], beta_2=BETAS[1], epsilon=EPSILON)
            self.optimizer.exclude_from_weight_decay(var_list=no_decay)
            self.optimizer.build(self.variables)
        self._step = tf.function(self._distributed_step, reduce_retracing=True)
        self._forward = tf.function(self._predict, reduce_retracing=True)
        where = (f"MirroredStrategy over {self.replicas} replicas ({', '.join(dist.devices)})" if self.replicas > 1
                 else "1 device")
        self.description = (f"Keras {keras.__version__} / TensorFlow {tf.__version__}, {where}"
                            f"{', mixed_bfloat16' if args.bf16 else ''}")

    # ------------------------------------------------------------------ training
    def _replica_step(self, batches, weights):
        tf = self.tf
        grads, total = None, tf.constant(0.0, tf.float32)
        for m, batch in enumerate(batches):
            with tf.GradientTape() as tape:
                loss = tf.cast(self.model(batch, training=True).loss, tf.float32) * weights[m]
            step_grads = [tf.convert_to_tensor(g) for g in tape.gradient(loss, self.variables)]
            grads = step_grads if grads is None else [a + b for a, b in zip(grads, step_grads)]
            total += loss
        context = tf.distribute.get_replica_context()
        if self.replicas > 1:
            grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
        if self.args.max_grad_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, self.args.max_grad_norm)
        if self.replicas > 1:
            # apply_gradients sums the replicas' gradients again; each holds the full sum now
            grads = [g / self.replicas for g in grads]
        self.optimizer.apply_gradients(zip(grads, self.variables))
        return total

    def _distributed_step(self, inputs):
        per_replica = self.strategy.run(self._replica_step, args=inputs)
        return self.strategy.reduce(self.tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def train_step(self, batches, weights, lr: float, step: int) -> float:
        tf = self.tf
        self.optimizer.learning_rate = lr
        n = self.replicas
        if n == 1:
            inputs = (tuple({k: tf.constant(v) for k, v in b.items()} for b in batches),
                      tf.constant([w[0] for w in weights], tf.float32))
        else:
            def replica_values(context):
                r = context.replica_id_in_sync_group
                return (tuple({k: tf.constant(v) for k, v in shard(b, r, n).items()} for b in batches),
                        tf.constant([w[r] for w in weights], tf.float32))

            inputs = self.strategy.experimental_distribute_values_from_function(replica_values)
        return float(self._step(inputs))

    # ------------------------------------------------------------------ evaluation
    def _predict(self, inputs):
        outputs = self.model(inputs, training=False)
        return {name: self.tf.cast(getattr(outputs, name), self.tf.float32) for name in OUTPUT_NAMES
                if getattr(outputs, name, None) is not None}

    def predict(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._forward({k: self.tf.constant(v) for k, v in batch.items()})
        return {k: v.numpy() for k, v in outputs.items()}

    # ------------------------------------------------------------------ checkpoints
    def save_pretrained(self, directory: Path) -> None:
        self.model.save_pretrained(directory)

    def _state_variables(self):
        """The optimizer's variables (iterations, learning rate, moments) and the dropout seed states."""
        return ([("optimizer", v) for v in self.optimizer.variables]
                + [("model", v) for v in self.model.non_trainable_variables])

    def save_state(self, directory: Path) -> None:
        arrays = {f"{kind}_{i:04d}": self.keras.ops.convert_to_numpy(v) for i, (kind, v) in
                  enumerate(self._state_variables())}
        names = np.array([f"{kind}:{v.path}" for kind, v in self._state_variables()])
        with open(Path(directory) / STATE_FILE, "wb") as handle:
            np.savez(handle, __names__=names, **arrays)

    def load_state(self, directory: Path) -> None:
        path = Path(directory) / STATE_FILE
        if not path.is_file():
            raise ValueError(f"--resume: {path} is missing (was the run trained with --framework pt?)")
        with np.load(path) as saved:
            variables = self._state_variables()
            if len(saved["__names__"]) != len(variables):
                raise ValueError(f"--resume: {path} holds {len(saved['__names__'])} optimizer/seed variables, this "
                                 f"model has {len(variables)}")
            for i, (kind, variable) in enumerate(variables):
                variable.assign(saved[f"{kind}_{i:04d}"])

    # ------------------------------------------------------------------ coordination
    def agree(self, flag: bool) -> bool:
        return bool(flag)  # one process

    def barrier(self) -> None:
        pass

    def close(self) -> None:
        self.keras.mixed_precision.set_global_policy(self._policy)


__all__ = ["Backend", "Distributed", "setup"]
