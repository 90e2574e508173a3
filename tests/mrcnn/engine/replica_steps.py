"""Optimizer steps on two logical CPUs, for tests/mrcnn/engine/test_replicas.py.

    python -m tests.mrcnn.engine.replica_steps OUT.json

A script, run in a subprocess: logical CPU devices can only be set up
before TensorFlow starts its runtime. Small Keras models (the optimizer's
logic does not depend on the model) trained one step by `fit` with
`mrcnn.engine.optimizers.make_optimizer`; writes OUT.json:

    overflow: for per-replica inputs [0.001, 100] and [100, 0.001] of a
        1-weight float16 model (w x, loss its mean: replica 1's scaled
        gradient overflows float16): the kernel on each replica after one
        step ("kernels"), the loss scale before and after, and the same
        with Keras' own LossScaleOptimizer ("keras_kernels", for contrast)
    clip: a Dense model's weights after one SGD step with clipping active
        (clip_norm far below the gradients' global norm), on the two replicas
        and on one device at the same global batch, jit off and on:
        "max_diff" (mirrored vs single, jit off), "jit_max_diff" (single
        device jit on vs off), "mirrored_jit_error" (TensorFlow's XLA
        cannot compile a step whose variables sit on a second logical CPU
        device: "located in device CPU:1 from device CPU:0"; empty if it
        could), "keras_max_diff" (Keras' own SGD mirrored vs single: it
        clips each replica's share), "moved" (size of the update),
        "update_norms" (norm of the whole update, single and mirrored),
        "clipped" (whether the single device's gradient norms exceed clip)
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
import numpy as np

from mrcnn.engine import optimizers

STRATEGY = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def _mean_prediction(y_true, y_pred):
    return keras.ops.mean(y_pred)


def overflow_step(inputs, keras_own=False):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        with STRATEGY.scope():
            model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
                1, use_bias=False, kernel_initializer="ones")])
            optimizer = optimizers.make_optimizer("sgd", 0.1, momentum=0.0, clip_norm=0)
            if keras_own:
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer.inner_optimizer)
            model.compile(optimizer=optimizer, loss=_mean_prediction)
            model.optimizer.build(model.trainable_variables)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    before = float(model.optimizer.dynamic_scale.numpy())
    x = np.array(inputs, np.float32)[:, None]
    model.fit(x, np.zeros_like(x), batch_size=2, epochs=1, verbose=0, shuffle=False)
    kernels = [float(v.numpy().ravel()[0])
               for v in STRATEGY.experimental_local_results(model.layers[0].kernel.value)]
    return {"kernels": kernels, "scale_before": before,
            "scale_after": float(model.optimizer.dynamic_scale.numpy())}


def dense_step(strategy, jit, keras_sgd=False):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5)).astype(np.float32)
    y = rng.normal(size=(4, 3)).astype(np.float32) * 10
    with strategy.scope():
        model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(
            3, kernel_initializer=keras.initializers.Constant(0.3), bias_initializer="ones")])
        optimizer = (keras.optimizers.SGD(0.1, clipnorm=0.01) if keras_sgd
                     else optimizers.make_optimizer("sgd", 0.1, momentum=0.0, clip_norm=0.01))
        model.compile(optimizer=optimizer, loss="mse", jit_compile=jit)
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
    return before, model.get_weights()


def main(out):
    result = {"overflow": {}}
    for name, inputs in (("small_first", [0.001, 100.0]), ("large_first", [100.0, 0.001])):
        result["overflow"][name] = overflow_step(inputs)
        result["overflow"][name]["keras_kernels"] = overflow_step(inputs, True)["kernels"]

    before, single = dense_step(tf.distribute.get_strategy(), jit=False)
    _, mirrored = dense_step(STRATEGY, jit=False)
    _, keras_mirrored = dense_step(STRATEGY, jit=False, keras_sgd=True)
    _, single_jit = dense_step(tf.distribute.get_strategy(), jit=True)
    flat = [np.concatenate([w.ravel() for w in ws]) for ws in (before, single, mirrored,
                                                                 single_jit, keras_mirrored)]
    try:  # TensorFlow's XLA cannot reach variables on a second logical CPU
        dense_step(STRATEGY, jit=True)
        mirrored_jit_error = ""
    except Exception as error:  # noqa: BLE001 - recorded for the test to check
        lines = [line for line in str(error).splitlines() if "located in device" in line]
        mirrored_jit_error = (lines or [str(error)])[0][-300:]
    result["clip"] = {
        "max_diff": float(np.abs(flat[2] - flat[1]).max()),
        "jit_max_diff": float(np.abs(flat[3] - flat[1]).max()),
        "keras_max_diff": float(np.abs(flat[4] - flat[1]).max()),
        "mirrored_jit_error": mirrored_jit_error,
        "moved": float(np.abs(flat[1] - flat[0]).max()),
        # Clipped by the global norm, the whole update has norm lr * clip
        # (1e-3); clipping each of the 2 variables alone would give more.
        "update_norms": [float(np.linalg.norm(f - flat[0])) for f in flat[1:3]],
        # SGD lr 0.1 on gradients clipped to 0.01 moves a weight <= 1e-3.
        "clipped": bool(np.abs(flat[1] - flat[0]).max() <= 0.1 * 0.01 + 1e-7),
        "replicas": STRATEGY.num_replicas_in_sync,
    }
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
