"""The optimizers of a run: SGD with momentum, and Adam with TensorFlow's
fused update kernel (`make_optimizer`, `FusedAdam`).

Keras 3's `Adam.update_step` is written with backend ops: about ten
elementwise kernels per variable, each a pass over the variable's memory
(plus `m` and `v`). TensorFlow's `ResourceApplyAdam` does the same update
in one kernel. Without XLA (crop_and_resize has no XLA kernel, so the
training step is never jit-compiled) that is what the update costs. On 2
CPU cores (benchmarks/bench_optimizer.py), with clipnorm 5: 82 -> 46 ms
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

import keras
import tensorflow as tf


def _handle(variable):
    """The resource handle of a Keras or tf variable (on the current device
    inside a distribution strategy's update)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle


@keras.saving.register_keras_serializable(package="mrcnn")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose dense updates run TensorFlow's fused
    `ResourceApplyAdam` kernel. Same arguments as `keras.optimizers.Adam`
    (and the same default name, so that its variables are named as Adam's)."""

    def __init__(self, *args, name="adam", **kwargs):
        super().__init__(*args, name=name, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
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
    update in one fused kernel: mrcnn/engine/optimizers.py), each gradient clipped
    to clip_norm."""
    clip = clip_norm or None
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, clipnorm=clip)
    if name == "adam":
        return FusedAdam(learning_rate=learning_rate, beta_1=momentum, clipnorm=clip)
    raise ValueError(f"unknown optimizer {name!r}; expected 'sgd' or 'adam'")
