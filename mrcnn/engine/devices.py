"""Devices and numerics of a run: which devices train, precision, XLA, and
the start-up line every command prints.

    setup_cpu_devices(2)             # --cpu_devices 2: before the backend starts
    strategy = make_strategy(2)      # --gpus 2: MirroredStrategy (TensorFlow)
    set_mixed_precision(True)        # --mixed_precision: mixed_float16
    resolve_jit_compile("auto")      # --jit_compile auto: True where a GPU is present
    print(startup_line("float32", "auto", replicas=2))
    # Keras 3.15.1 (tensorflow 2.21.0); devices: CPU only, 2 cores, 2 logical CPU
    # devices; replicas: 2 (CPU:0, CPU:1); precision: float32; XLA: off (auto, no GPU)

Nothing here imports Keras, TensorFlow or JAX at module level:
`setup_cpu_devices` must run before the backend starts, and under
KERAS_BACKEND=jax only Keras and JAX are imported (`make_strategy` is
TensorFlow's tf.distribute; `matmul_gflops` runs on any backend).
"""

import importlib
import json
import os
import sys
import time

XLA_DEVICE_COUNT = "--xla_force_host_platform_device_count"


# ------------------------------------------------------------------ backend
def backend_name():
    """Keras' backend ("tensorflow", "jax", "torch"): `keras.backend.backend()`
    once Keras is imported; before that the one it will choose, without
    importing it: $KERAS_BACKEND, else keras.json's "backend" ($KERAS_HOME,
    else ~/.keras), else "tensorflow"."""
    if "keras" in sys.modules:
        import keras

        return keras.backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def backend_version(name):
    """The version of backend `name`'s library (e.g. "2.21.0")."""
    return getattr(importlib.import_module(name), "__version__", "?")


def gpu_names():
    """Names of the GPUs the Keras backend computes on, one per GPU, e.g.
    ["NVIDIA H100 80GB HBM3"]; [] without a usable GPU."""
    name = backend_name()
    if name == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    if name == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    import tensorflow as tf

    return [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")]


def cpu_device_count():
    """Logical CPU devices of the backend: 1 unless `setup_cpu_devices`
    split the CPU. (Does not start TensorFlow's runtime.)"""
    name = backend_name()
    if name == "jax":
        import jax

        return len(jax.devices("cpu"))
    if name != "tensorflow":
        return 1
    import tensorflow as tf

    return len(tf.config.get_logical_device_configuration(
        tf.config.list_physical_devices("CPU")[0]) or [None])


# ------------------------------------------------------------------ devices
def setup_cpu_devices(count):
    """Split the CPU into `count` logical devices (--cpu_devices N), so that
    `--gpus N` can mirror over them on a machine without GPUs.

    Must run before the backend starts: under JAX before `jax` is
    imported (XLA_FLAGS --xla_force_host_platform_device_count=N), under
    TensorFlow before its runtime starts (the first op, or listing the
    logical devices). RuntimeError when it is too late, ValueError for a
    count below 1 or another backend."""
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"{count}: must be a positive integer")
    name = backend_name()
    if name == "jax":
        _set_xla_device_count(count)
        if "jax" in sys.modules and cpu_device_count() != count:
            raise RuntimeError("JAX started before the CPU devices were set up")
        return
    if name != "tensorflow":
        raise ValueError(f"not supported on the {name} backend")
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as e:
        raise RuntimeError(f"TensorFlow started before the CPU devices were set up ({e})")


def _set_xla_device_count(count):
    """XLA_FLAGS with --xla_force_host_platform_device_count=count (other flags kept)."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith(XLA_DEVICE_COUNT)]
    os.environ["XLA_FLAGS"] = " ".join(flags + [f"{XLA_DEVICE_COUNT}={count}"])


def replica_devices(count):
    """The `count` devices `make_strategy` mirrors over: the first `count`
    GPUs on a machine with GPUs, else the first `count` logical CPU devices
    (`setup_cpu_devices`). -> device names ("/device:GPU:0", ...).
    ValueError when there are fewer."""
    name = backend_name()
    if name == "jax":
        import jax

        found = {"GPU": [f"gpu:{d.id}" for d in jax.devices() if d.platform == "gpu"],
                 "CPU": [f"cpu:{d.id}" for d in jax.devices("cpu")]}
    else:
        import tensorflow as tf

        found = {kind: [d.name for d in tf.config.list_logical_devices(kind)]
                 for kind in ("GPU", "CPU")}
    kind = "GPU" if found["GPU"] else "CPU"
    if len(found[kind]) < count:
        raise ValueError(
            f"{count} devices requested but {name} found {len(found['GPU'])} GPU(s) and "
            f"{len(found['CPU'])} logical CPU device(s) (--cpu_devices N splits the CPU)")
    return found[kind][:count]


def make_strategy(gpus):
    """A tf.distribute strategy that trains on `gpus` devices, or None.

    gpus <= 1: None (TensorFlow's default strategy, one device). Otherwise
    a MirroredStrategy over `replica_devices(gpus)`: GPUs, or on a machine
    without GPUs the logical CPU devices of `setup_cpu_devices`. Raises
    ValueError when there are not `gpus` devices. Create the model in the
    strategy's scope:

        strategy = make_strategy(config.GPU_COUNT)
        with strategy.scope() if strategy else contextlib.nullcontext():
            model = MaskRCNN("training", config, model_dir)
        model.train(...)  # compiles and fits under the same strategy

    Batches of config.BATCH_SIZE images are split over the devices.
    """
    if gpus <= 1:
        return None
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(replica_devices(gpus))


# ----------------------------------------------------------- numerics, XLA
def precision_policy(mixed_precision):
    """The Keras dtype policy of --mixed_precision: "mixed_float16" or "float32"."""
    return "mixed_float16" if mixed_precision else "float32"


def set_mixed_precision(enabled):
    """Set Keras' global dtype policy: "mixed_float16" or "float32".

    Call it before the model is built: layers take the policy in force when
    they are created. Under "mixed_float16" the layers compute in float16
    with float32 weights, `compile` wraps the optimizer in a
    LossScaleOptimizer, and the model casts what leaves its layers to
    float32 (see mrcnn/model.py).
    """
    import keras

    keras.mixed_precision.set_global_policy(precision_policy(enabled))


def resolve_jit_compile(value):
    """Config.JIT_COMPILE -> whether to compile with XLA: True / False as
    given; "auto": on where the Keras backend has a GPU, off otherwise."""
    if not (value == "auto" or isinstance(value, bool)):
        raise ValueError(f'JIT_COMPILE {value!r}: expected True, False or "auto"')
    return bool(gpu_names()) if value == "auto" else value


# --------------------------------------------------------- the start-up line
def devices_text(gpus, cpu_devices, cores):
    """"2 x NVIDIA H100 80GB HBM3" or "CPU only, 2 cores[, N logical CPU devices]"."""
    if gpus:
        names = sorted(set(gpus), key=gpus.index)
        return ", ".join(f"{gpus.count(n)} x {n}" for n in names)
    text = f"CPU only, {cores} cores"
    return text + (f", {cpu_devices} logical CPU devices" if cpu_devices > 1 else "")


def xla_text(value, resolved):
    """"on", "off", or with auto "on (auto, GPU)" / "off (auto, no GPU)"."""
    text = "on" if resolved else "off"
    return text + (f" (auto, {'GPU' if resolved else 'no GPU'})" if value == "auto" else "")


def replicas_text(count):
    """"2 (CPU:0, CPU:1)", or None for one replica or too few devices."""
    if count <= 1:
        return None
    try:
        names = replica_devices(count)
    except ValueError:
        return None
    return f"{count} ({', '.join(n.split('device:')[-1] for n in names)})"


def startup_line(precision=None, jit_compile="auto", replicas=1):
    """The one line each command prints first: Keras and its backend's
    versions, the devices, the replicas (when more than one), the precision
    policy (None: Keras' global policy) and whether XLA compiles
    (`resolve_jit_compile(jit_compile)`). E.g.

        Keras 3.15.1 (tensorflow 2.21.0); devices: CPU only, 2 cores;
        precision: float32; XLA: off (auto, no GPU)
    """
    import keras

    name = keras.backend.backend()
    parts = [f"Keras {keras.__version__} ({name} {backend_version(name)})",
             f"devices: {devices_text(gpu_names(), cpu_device_count(), os.cpu_count())}"]
    replicas = replicas_text(replicas or 1)
    if replicas:
        parts.append(f"replicas: {replicas}")
    precision = precision or keras.mixed_precision.global_policy().name
    parts.append(f"precision: {precision}")
    parts.append(f"XLA: {xla_text(jit_compile, resolve_jit_compile(jit_compile))}")
    return "; ".join(parts)


# ------------------------------------------------------------------ speed
def matmul_gflops(size=2048, repeats=5):
    """float32 matmul speed of the backend's default device, in GFLOP/s
    (the median of `repeats` [size, size] products after one warm-up)."""
    import keras
    import numpy as np

    # From NumPy: Keras' own random state is left as it was.
    a = keras.ops.convert_to_tensor(np.random.default_rng(0).random((size, size), np.float32))
    keras.ops.convert_to_numpy(keras.ops.matmul(a, a))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        keras.ops.convert_to_numpy(keras.ops.matmul(a, a))
        times.append(time.perf_counter() - started)
    return 2 * size ** 3 / sorted(times)[len(times) // 2] / 1e9


def matmul_text():
    """"float32 matmul (2048 x 2048) N GFLOP/s": the figure the README's
    timings are given against."""
    return f"float32 matmul (2048 x 2048) {matmul_gflops():.0f} GFLOP/s"


def machine_line():
    """One line on the machine: devices and matmul speed (benchmarks)."""
    gpus = gpu_names()
    where = f"{len(gpus)} GPU(s)" if gpus else f"{os.cpu_count()} CPU cores, no GPU"
    return f"Machine: {where}; {matmul_text()}"
