"""Devices and numerics of a run: tf.distribute strategy, mixed precision."""

import keras
import tensorflow as tf


def make_strategy(gpus):
    """A tf.distribute strategy that trains on `gpus` devices, or None.

    gpus <= 1: None (TensorFlow's default strategy, one device). Otherwise
    a MirroredStrategy over the first `gpus` GPUs; without that many GPUs,
    over the first `gpus` logical CPU devices, if that many were configured
    (`tf.config.set_logical_device_configuration`, before TensorFlow starts:
    for tests). Raises ValueError when neither has `gpus` devices.
    Create the model in the strategy's scope:

        strategy = make_strategy(config.GPU_COUNT)
        with strategy.scope() if strategy else contextlib.nullcontext():
            model = MaskRCNN("training", config, model_dir)
        model.train(...)  # compiles and fits under the same strategy

    Batches of config.BATCH_SIZE images are split over the devices.
    """
    if gpus <= 1:
        return None
    for kind in ("GPU", "CPU"):
        devices = tf.config.list_logical_devices(kind)
        if len(devices) >= gpus:
            return tf.distribute.MirroredStrategy([d.name for d in devices[:gpus]])
    raise ValueError(
        f"{gpus} devices requested but TensorFlow found "
        f"{len(tf.config.list_logical_devices('GPU'))} GPU(s) and "
        f"{len(tf.config.list_logical_devices('CPU'))} logical CPU device(s)"
    )


def set_mixed_precision(enabled):
    """Set Keras' global dtype policy: "mixed_float16" or "float32".

    Call it before the model is built: layers take the policy in force when
    they are created. Under "mixed_float16" the layers compute in float16
    with float32 weights, `compile` wraps the optimizer in a
    LossScaleOptimizer, and the model casts what leaves its layers to
    float32 (see mrcnn/model.py).
    """
    keras.mixed_precision.set_global_policy("mixed_float16" if enabled else "float32")


def matmul_gflops(size=2048, repeats=5):
    """float32 matmul speed of TensorFlow's default device, in GFLOP/s (the
    median of `repeats` [size, size] products after one warm-up)."""
    import time

    a = tf.random.uniform([size, size])
    product = tf.function(tf.matmul)
    product(a, a).numpy()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        product(a, a).numpy()
        times.append(time.perf_counter() - started)
    return 2 * size ** 3 / sorted(times)[len(times) // 2] / 1e9


def machine_line():
    """One line on the machine a run trains on: devices and matmul speed
    (the figure the README's timings are given against)."""
    import os

    gpus = tf.config.list_physical_devices("GPU")
    where = f"{len(gpus)} GPU(s)" if gpus else f"{os.cpu_count()} CPU cores, no GPU"
    return f"Machine: {where}; float32 matmul (2048 x 2048) {matmul_gflops():.0f} GFLOP/s"
