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

On Keras' JAX backend (``KERAS_BACKEND=jax``) the same step is a pure function of the variables' values
(``stateless_call`` under ``jax.value_and_grad``, ``optimizer.stateless_apply``) compiled by ``jax.jit``,
and ``--devices N`` > 1 sets ``keras.distribution.DataParallel`` over N JAX devices: the weights are
replicated, every micro-batch is sharded along its rows, and XLA inserts the all-reduce. Without
accelerators the N devices are host devices (``jax_num_cpu_devices``, set before JAX starts).
"""

from __future__ import annotations

import contextlib
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deberta_core.train.args import KERAS_BACKENDS
from deberta_core.train.data import shard
from deberta_core.train.job import OUTPUT_NAMES, build_model
from deberta_core.train.optim import BETAS, uses_weight_decay

STATE_FILE = "keras_state.npz"


@dataclass
class Distributed:
    rank: int
    world_size: int  # replicas in sync
    strategy: object  # tf.distribute strategy, or keras.distribution.DataParallel (None: one JAX device)
    devices: list


def setup(args) -> Distributed:
    """Create the devices (when asked for, before the backend initialises) and the strategy/distribution."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    backend = keras.backend.backend()
    if backend not in KERAS_BACKENDS:
        raise ValueError(f"--framework tf trains on Keras' TensorFlow or JAX backend; this process runs Keras on "
                         f"{backend!r}")
    if backend == "jax":
        return _setup_jax(args)
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


def _setup_jax(args) -> Distributed:
    import jax
    import keras

    n = args.devices
    if n > 1:
        try:  # host devices, used only where JAX finds no accelerator
            jax.config.update("jax_num_cpu_devices", max(n, jax.config.jax_num_cpu_devices))
        except RuntimeError:
            pass  # JAX already started: usable if it already has enough devices
    available = jax.devices()
    if n > len(available):
        raise ValueError(f"--devices {n}, but JAX sees {len(available)} {available[0].platform} device(s) (it "
                         f"started before deberta-train could ask for more: run it in a fresh process)")
    devices = available[:n]
    distribution = keras.distribution.DataParallel(devices=devices) if n > 1 else None
    keras.distribution.set_distribution(distribution)
    return Distributed(0, n, distribution, [str(d) for d in devices])


class Backend:
    """Model, AdamW and the replicated step, in one process."""

    framework = "tf"

    def __init__(self, args, spec, dist: Distributed):
        import keras

        self.keras = keras
        self.args, self.dist = args, dist
        self.replicas = dist.world_size
        self.jax = keras.backend.backend() == "jax"
        keras.utils.set_random_seed(args.seed)
        self._policy = keras.mixed_precision.dtype_policy().name
        if args.bf16:
            keras.mixed_precision.set_global_policy("mixed_bfloat16")
        # MirroredStrategy places the variables when they are made in its scope; DataParallel (JAX) is
        # global, set by setup.
        scope = contextlib.nullcontext() if self.jax else dist.strategy.scope()
        with scope:
            self.model = model = build_model(spec, "tf", seed=args.seed)
            self.variables = list(model.trainable_variables)
            no_decay = _no_decay_variables(model)
            self.optimizer = _adamw_class()(learning_rate=args.lr, weight_decay=args.weight_decay,
                                            beta_1=BETAS[0], beta_2=BETAS[1], epsilon=args.adam_epsilon)
            self.optimizer.exclude_from_weight_decay(var_list=no_decay)
            self.optimizer.build(self.variables)
        self._step = _JaxStep(self) if self.jax else _TensorFlowStep(self)
        precision = ", mixed_bfloat16" if args.bf16 else ""
        self.description = f"Keras {keras.__version__} / {self._step.description}{precision}"

    def train_step(self, batches, weights, lr: float, step: int) -> float:
        self.optimizer.learning_rate = lr
        return self._step.train(batches, weights)

    def predict(self, batch: dict[str, np.ndarray], names=OUTPUT_NAMES) -> dict[str, np.ndarray]:
        """The model's outputs ``names`` (those it has) on one batch, in inference mode, as float32 numpy."""
        return self._step.predict(batch, tuple(names))

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
        if self.jax:
            self.keras.distribution.set_distribution(None)


@functools.lru_cache(maxsize=None)
def _adamw_class():
    """Keras' AdamW with PyTorch's update: epsilon is added to the bias-corrected sqrt(v), not to sqrt(v).

    Keras computes lr * m_hat / (sqrt(v_hat) + epsilon / sqrt(1 - beta_2^t)): at a 128k vocabulary the
    tied output rows get gradients near epsilon, and the two rules then move them differently (torch and
    Keras runs of one recipe drifted 3e-3 in loss after two steps). Decoupled weight decay is Keras'
    own, applied before the step as torch does (p *= 1 - lr * weight_decay).
    """
    import keras
    from keras import ops

    class AdamW(keras.optimizers.AdamW):
        def update_step(self, gradient, variable, learning_rate):
            dtype = variable.dtype
            lr = ops.cast(learning_rate, dtype)
            gradient = ops.cast(gradient, dtype)
            step = ops.cast(self.iterations + 1, dtype)
            beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
            m = self._momentums[self._get_variable_index(variable)]
            v = self._velocities[self._get_variable_index(variable)]
            self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - beta_1))
            self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - beta_2))
            m_hat = ops.divide(m, 1 - ops.power(beta_1, step))
            v_hat = ops.divide(v, 1 - ops.power(beta_2, step))
            self.assign_sub(variable, ops.divide(ops.multiply(m_hat, lr), ops.add(ops.sqrt(v_hat), self.epsilon)))

    return AdamW


def _no_decay_variables(model) -> list:
    """The biases and LayerNorm parameters (deberta_core.train.optim.uses_weight_decay on the PyTorch
    keys), of a task model or of both halves of the pre-training pair."""
    from deberta_core.tf_names import tf_weights

    parts = (model.generator, model.discriminator) if hasattr(model, "discriminator") else (model,)
    out = []
    for part in parts:
        by_name = part._variables_by_name()
        out += [by_name[w.name] for key, w in tf_weights(part.config, part.head).items() if not uses_weight_decay(key)]
    return out


def _float32_outputs(outputs, names, cast) -> dict:
    return {name: cast(getattr(outputs, name)) for name in names if getattr(outputs, name, None) is not None}


class _TensorFlowStep:
    """The step on TensorFlow: ``strategy.run`` of one replica's accumulate / all-reduce / clip / apply."""

    def __init__(self, owner: Backend):
        import tensorflow as tf

        self.tf = tf
        self.model, self.variables, self.optimizer = owner.model, owner.variables, owner.optimizer
        self.strategy, self.replicas, self.max_grad_norm = owner.dist.strategy, owner.replicas, owner.args.max_grad_norm
        self._step = tf.function(self._distributed_step, reduce_retracing=True)
        self._forward = tf.function(self._predict, reduce_retracing=True)
        where = (f"MirroredStrategy over {self.replicas} replicas ({', '.join(owner.dist.devices)})"
                 if self.replicas > 1 else "1 device")
        self.description = f"TensorFlow {tf.__version__}, {where}"

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
        if self.max_grad_norm > 0:
            grads, _ = tf.clip_by_global_norm(grads, self.max_grad_norm)
        if self.replicas > 1:
            # apply_gradients sums the replicas' gradients again; each holds the full sum now
            grads = [g / self.replicas for g in grads]
        self.optimizer.apply_gradients(zip(grads, self.variables))
        return total

    def _distributed_step(self, inputs):
        per_replica = self.strategy.run(self._replica_step, args=inputs)
        return self.strategy.reduce(self.tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    def train(self, batches, weights) -> float:
        tf, n = self.tf, self.replicas
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

    def _predict(self, inputs, names):
        return _float32_outputs(self.model(inputs, training=False), names, lambda x: self.tf.cast(x, self.tf.float32))

    def predict(self, batch, names):
        outputs = self._forward({k: self.tf.constant(v) for k, v in batch.items()}, names)
        return {k: v.numpy() for k, v in outputs.items()}


class _JaxStep:
    """The step on JAX: a jitted pure function of the variables' values (what Keras' JAX ``fit`` runs),
    over micro-batches sharded across the DataParallel devices. One computation spans every device, so a
    micro-batch's loss is its mean over the whole micro-batch and its weight is the sum of its shards'."""

    def __init__(self, owner: Backend):
        import jax

        self.jax = jax
        self.model, self.optimizer = owner.model, owner.optimizer
        self.max_grad_norm = owner.args.max_grad_norm
        self.distribution = owner.dist.strategy
        self._step = jax.jit(self._pure_step)
        self._forward = jax.jit(self._pure_predict, static_argnums=3)
        where = (f"DataParallel over {owner.replicas} devices ({', '.join(owner.dist.devices)})"
                 if owner.replicas > 1 else f"1 device ({owner.dist.devices[0]})")
        self.description = f"JAX {jax.__version__}, {where}"

    def _values(self):
        model = self.model
        return ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
                [v.value for v in self.optimizer.variables])

    def _pure_step(self, trainable, non_trainable, optimizer_values, batches, weights):
        jnp = self.jax.numpy

        def loss_of(trainable, non_trainable, batch, weight):
            outputs, non_trainable = self.model.stateless_call(trainable, non_trainable, batch, training=True)
            return outputs.loss.astype("float32") * weight, non_trainable

        gradient_of = self.jax.value_and_grad(loss_of, has_aux=True)
        grads, total = None, jnp.float32(0.0)
        for batch, weight in zip(batches, weights):
            (loss, non_trainable), step_grads = gradient_of(trainable, non_trainable, batch, weight)
            grads = step_grads if grads is None else [a + b for a, b in zip(grads, step_grads)]
            total += loss
        if self.max_grad_norm > 0:  # as tf.clip_by_global_norm
            norm = jnp.sqrt(sum(jnp.sum(jnp.square(g.astype("float32"))) for g in grads))
            scale = self.max_grad_norm / jnp.maximum(norm, self.max_grad_norm)
            grads = [(g * scale).astype(g.dtype) for g in grads]
        trainable, optimizer_values = self.optimizer.stateless_apply(optimizer_values, grads, trainable)
        return total, trainable, non_trainable, optimizer_values

    def _put(self, batch: dict[str, np.ndarray]) -> dict:
        """The batch on the devices: rows sharded over DataParallel's mesh (replicated with one device)."""
        if self.distribution is None:
            return {k: self.jax.numpy.asarray(v) for k, v in batch.items()}
        from keras.distribution import distribute_tensor

        return {k: distribute_tensor(v, self.distribution.get_data_layout(v.shape)) for k, v in batch.items()}

    def train(self, batches, weights) -> float:
        inputs = [self._put(b) for b in batches]
        weights = [np.float32(sum(w)) for w in weights]
        total, trainable, non_trainable, optimizer_values = self._step(*self._values(), inputs, weights)
        for variables, values in ((self.model.trainable_variables, trainable),
                                  (self.model.non_trainable_variables, non_trainable),
                                  (self.optimizer.variables, optimizer_values)):
            for variable, value in zip(variables, values):
                variable.assign(value)
        return float(total)

    def _pure_predict(self, trainable, non_trainable, batch, names):
        outputs, _ = self.model.stateless_call(trainable, non_trainable, batch, training=False)
        return _float32_outputs(outputs, names, lambda x: x.astype("float32"))

    def predict(self, batch, names):
        trainable, non_trainable, _ = self._values()
        outputs = self._forward(trainable, non_trainable, self._put(batch), names)
        return {k: np.asarray(v) for k, v in outputs.items()}


__all__ = ["Backend", "Distributed", "setup"]
