"""The optimizers of a run: SGD with momentum, and Adam with TensorFlow's
fused update kernel (`make_optimizer`, `FusedAdam`), correct on several
replicas (`ReduceFirst`).

Several replicas (tf.distribute): Keras 3's optimizers all-reduce the
gradients in their update, after the clipping (so each replica's share is
clipped, not the global batch's gradient), and its LossScaleOptimizer
decides "finite or skip" from each replica's own gradients, assuming they
are reduced already (so an overflow on one replica alone can write inf into
the weights, or skip the step on one replica only). `ReduceFirst` sums the
gradients across the replicas first, in `apply`, and the rest of the step
(the finite check and loss-scale update, clipping by the global norm, the
update) then works
on the global gradient, the same in every replica: a step on N replicas
equals the step on one device at the same global batch.

Keras 3's `Adam.update_step` is written with backend ops: about ten
elementwise kernels per variable, each a pass over the variable's memory
(plus `m` and `v`). TensorFlow's `ResourceApplyAdam` does the same update
in one kernel. Without XLA (crop_and_resize has no XLA kernel, so the
training step is never jit-compiled) that is what the update costs. On 2
CPU cores (benchmarks/bench_optimizer.py), with per-variable clipnorm 5: 82 -> 46 ms
per step for the demo model with ResNet-50 (27.6 M trainable weights), 45
-> 23 ms with ResNet-14 (12.1 M).

Both compute, for step t (from 1) and each variable:

    m <- beta_1 m + (1 - beta_1) g
    v <- beta_2 v + (1 - beta_2) g^2
    variable <- variable - lr sqrt(1 - beta_2^t) / (1 - beta_1^t) m / (sqrt(v) + epsilon)

so a `FusedAdam` is a `keras.optimizers.Adam` (same slots, same
configuration, same checkpoints) whose dense float updates take the one
kernel. Sparse gradients (`IndexedSlices`) and `amsgrad` go through Keras'
own update.
"""

import threading

import keras

# Whether this replica's thread is inside ReduceFirst.apply, its gradients
# summed already (MirroredStrategy runs each replica in its own thread).
_state = threading.local()


def _replicas():
    """Replicas of the current replica context (1 outside one, and on
    backends other than TensorFlow)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    return context.num_replicas_in_sync if context is not None else 1


class ReduceFirst:
    """Mixin for a Keras optimizer (TensorFlow backend): sum the gradients
    across replicas at the start of `apply`, then run the optimizer on them
    without its own all-reduce (module docstring)."""

    def apply(self, grads, trainable_variables=None):
        if getattr(_state, "reduced", False) or _replicas() == 1:
            return super().apply(grads, trainable_variables)
        import tensorflow as tf

        grads = list(grads)
        present = [i for i, g in enumerate(grads) if g is not None]
        summed = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.SUM, [grads[i] for i in present])
        for i, g in zip(present, summed):
            grads[i] = g
        _state.reduced = True
        try:
            return super().apply(grads, trainable_variables)
        finally:
            _state.reduced = False

    def _all_reduce_sum_gradients(self, grads_and_vars):
        if getattr(_state, "reduced", False):
            return list(grads_and_vars)
        return super()._all_reduce_sum_gradients(grads_and_vars)


@keras.saving.register_keras_serializable(package="mrcnn")
class SGD(ReduceFirst, keras.optimizers.SGD):
    """`keras.optimizers.SGD`, correct on several replicas (`ReduceFirst`)."""

    def __init__(self, *args, name="SGD", **kwargs):
        super().__init__(*args, name=name, **kwargs)


@keras.saving.register_keras_serializable(package="mrcnn")
class LossScaleOptimizer(ReduceFirst, keras.optimizers.LossScaleOptimizer):
    """`keras.optimizers.LossScaleOptimizer` whose finite check and scale
    update see the summed gradients: they agree across replicas."""


def _handle(variable):
    """The resource handle of a Keras or tf variable (on the current device
    inside a distribution strategy's update)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle


@keras.saving.register_keras_serializable(package="mrcnn")
class FusedAdam(ReduceFirst, keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose dense updates run TensorFlow's fused
    `ResourceApplyAdam` kernel. Same arguments as `keras.optimizers.Adam`
    (and the same default name, so that its variables are named as Adam's);
    correct on several replicas (`ReduceFirst`)."""

    def __init__(self, *args, name="adam", **kwargs):
        super().__init__(*args, name=name, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        import tensorflow as tf

        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


def make_optimizer(name, learning_rate, momentum=0.9, clip_norm=5.0):
    """SGD with momentum (Matterport) or Adam with beta_1 = momentum (its
    update in one fused TensorFlow kernel; Keras' own Adam on other
    backends); in a LossScaleOptimizer under the mixed_float16 policy.

    Gradients are clipped by their global norm (all of them scaled by
    clip_norm / norm where their joint norm exceeds clip_norm; 0 or None:
    no clipping), after the sum over replicas. That is what Matterport
    trained with: Keras 2's `clipnorm` took the norm over all gradients
    together (`Optimizer.get_gradients`), where Keras 3's `clipnorm` clips
    each variable's gradient on its own; Keras 3 calls the global one
    `global_clipnorm`.
    """
    clip = clip_norm or None
    if name == "sgd":
        optimizer = SGD(learning_rate=learning_rate, momentum=momentum, global_clipnorm=clip)
    elif name == "adam":
        adam = FusedAdam if keras.backend.backend() == "tensorflow" else keras.optimizers.Adam
        optimizer = adam(learning_rate=learning_rate, beta_1=momentum, global_clipnorm=clip)
    else:
        raise ValueError(f"unknown optimizer {name!r}; expected 'sgd' or 'adam'")
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        optimizer = LossScaleOptimizer(optimizer)
    return optimizer
