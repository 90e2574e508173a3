"""Training and detect speed on whatever accelerator and backend is here.

    python -m benchmarks.gpu_check [--budget 420] [--json out.json]

One command for the GPU machines this project is sometimes lent: they carry
JAX with CUDA and no TensorFlow, so the model runs from in-memory batches
(synthetic images and ground truth in NumPy: no tf.data, no dataset on
disk) on the Keras backend that is installed (KERAS_BACKEND if set, else
TensorFlow if it imports, else JAX). Each figure is printed as soon as it is
measured (a run cut short still reports what it had), in this order:

1. required: training images/s, ResNet-50, mixed precision, compiled (XLA),
   batch 2, at 1024 x 1024 and 1024 x 2048; detect images/s at 1024 x 2048;
   peak accelerator memory;
2. as the time budget allows: ResNet-101, batch 1, the largest batch that
   fits (doubling from 4), float32.

Targets on one H100 (issue 16): training >= 20 images/s at 1024 x 1024 and
>= 10 at 1024 x 2048, detect <= 0.05 s per 1024 x 2048 frame. Without a GPU
it runs end to end on the CPU with tiny settings (128 x 128 and 128 x 256,
ResNet-14), and says so: the figures then only show that it works.
"""

import argparse
import importlib.util
import json
import os
import sys
import time

if "KERAS_BACKEND" not in os.environ and importlib.util.find_spec("tensorflow") is None:
    os.environ["KERAS_BACKEND"] = "jax"

import keras
import numpy as np

from benchmarks.timing import median_seconds
from mrcnn.config import Config
from mrcnn.data.image import compose_image_meta
from mrcnn.engine import devices, optimizers
from mrcnn.modeling import network

WARMUP, STEPS = 2, 8  # untimed steps (compilation), timed steps per figure


class CheckConfig(Config):
    """Matterport's defaults with Cityscapes' 8 instance classes."""

    NAME = "gpu_check"
    NUM_CLASSES = 1 + 8
    MAX_GT_INSTANCES = 64


class TinyCheckConfig(CheckConfig):
    """CPU: a run that only shows the script works."""

    BACKBONE = "resnet14"
    TOP_DOWN_PYRAMID_SIZE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 64
    RPN_CONV_DIM = 32
    MASK_CONV_DIM = 32
    PRE_NMS_LIMIT = 1000
    POST_NMS_ROIS_TRAINING = 100
    POST_NMS_ROIS_INFERENCE = 100
    TRAIN_ROIS_PER_IMAGE = 32
    MAX_GT_INSTANCES = 8


def say(text):
    print(text, flush=True)


def batch_inputs(config, batch, height, width, seed=0):
    """A synthetic training batch: noise images, MAX_GT_INSTANCES random boxes
    with elliptical 56 x 56 mini-masks. -> dict of NumPy arrays"""
    rng = np.random.default_rng(seed)
    m = config.MAX_GT_INSTANCES
    corners = np.sort(rng.uniform(0.0, 1.0, (batch, m, 2, 2)), axis=2)
    boxes = corners.reshape(batch, m, 4)[..., [0, 2, 1, 3]].astype(np.float32)
    yy, xx = np.mgrid[-1:1:56j, -1:1:56j]
    mask = (yy ** 2 + xx ** 2 <= 1.0).astype(np.uint8)
    meta = compose_image_meta(0, (height, width, 3), (height, width, 3), (0, 0, height, width),
                              1.0, np.ones(config.NUM_CLASSES))
    return {
        "image": rng.normal(0.0, 50.0, (batch, height, width, 3)).astype(np.float32),
        "image_meta": np.repeat(meta[None], batch, axis=0).astype(np.float32),
        "gt_class_ids": rng.integers(1, config.NUM_CLASSES, (batch, m)).astype(np.int32),
        "gt_boxes": boxes,
        "gt_masks": np.broadcast_to(mask, (batch, m, 56, 56)).copy(),
    }


def _config(base, backbone):
    config = base()
    config.BACKBONE = backbone
    return config


def _build(base, backbone, mode, precision):
    """(config, model) compiled with XLA under the precision policy."""
    config = _config(base, backbone)
    keras.mixed_precision.set_global_policy(precision)
    try:
        model = network.build_network(config, mode)
        if mode == "training":
            model.compile(optimizer=optimizers.make_optimizer("sgd", 1e-3), jit_compile=True)
        else:
            model.compile(jit_compile=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return config, model


def train_speed(base, backbone, precision, batch, height, width):
    """Training images/s of one compiled step on a fixed in-memory batch."""
    config, model = _build(base, backbone, "training", precision)
    inputs = batch_inputs(config, batch, height, width)

    def step():
        logs = model.train_on_batch(inputs, return_dict=True)
        float(logs["loss"])  # waits for the step

    seconds, spread = median_seconds(step, STEPS, WARMUP)
    return batch / seconds, spread


def detect_speed(base, backbone, precision, batch, height, width):
    config, model = _build(base, backbone, "inference", precision)
    inputs = batch_inputs(config, batch, height, width)
    inputs = {k: inputs[k] for k in ("image", "image_meta")}

    def step():
        np.asarray(model.predict_on_batch(inputs)["detections"])

    seconds, spread = median_seconds(step, STEPS, WARMUP)
    return batch / seconds, spread


def peak_memory_gib():
    """Peak accelerator memory so far (GiB), or None where not known."""
    backend = keras.backend.backend()
    try:
        if backend == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            peak = stats.get("peak_bytes_in_use")
        elif backend == "tensorflow":
            import tensorflow as tf

            peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
        else:
            peak = None
    except (ValueError, RuntimeError, KeyError, IndexError):
        peak = None
    return None if peak is None else peak / 2 ** 30


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=420.0,
                        help="seconds after which no new figure is started (default 420)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    gpus = devices.gpu_names()
    base = CheckConfig if gpus else TinyCheckConfig
    square, wide = ((1024, 1024), (1024, 2048)) if gpus else ((128, 128), (128, 256))
    mixed = "mixed_bfloat16" if not gpus else "mixed_float16"
    say(devices.startup_line(mixed, jit_compile=True))
    if not gpus:
        say("No GPU: tiny settings on the CPU (ResNet-14, 128 x 128 / 128 x 256); "
            "these figures only show that the check runs.")
    figures = {"backend": keras.backend.backend(), "gpus": gpus, "figures": []}

    def record(name, value, spread=None, unit="images/s"):
        figures["figures"].append({"name": name, "value": value, "spread": spread,
                                   "unit": unit})
        extra = f" (spread {spread:.3f} s/step)" if spread is not None else ""
        say(f"{name}: {value:.2f} {unit}{extra}  [{time.perf_counter() - start:.0f} s]")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=1)

    backbone = "resnet50" if gpus else "resnet14"
    required = [
        ("train", backbone, mixed, 2, square),
        ("train", backbone, mixed, 2, wide),
        ("detect", backbone, mixed, 1, wide),
    ]
    optional = [
        ("train", "resnet101" if gpus else backbone, mixed, 2, square),
        ("train", backbone, mixed, 1, wide),
        ("train", backbone, "float32", 2, square),
        ("detect", backbone, "float32", 1, wide),
    ]
    for i, (kind, net, precision, batch, (h, w)) in enumerate(required + optional):
        if i >= len(required) and time.perf_counter() - start > args.budget:
            say(f"time budget ({args.budget:.0f} s) spent: the remaining figures are skipped")
            break
        speed = train_speed if kind == "train" else detect_speed
        name = f"{kind} {net} {precision} batch {batch} {h}x{w}"
        try:
            value, spread = speed(base, net, precision, batch, h, w)
        except Exception as error:  # noqa: BLE001 - a figure that fails is reported, the rest go on
            say(f"{name}: FAILED {type(error).__name__}: {str(error)[:300]}")
            continue
        record(name, value, spread)
        if kind == "detect":
            record(f"{name} seconds per frame", 1.0 / value, unit="s")
        peak = peak_memory_gib()
        if peak is not None:
            record("peak accelerator memory", peak, unit="GiB")
    if gpus:
        largest = 4
        while time.perf_counter() - start < args.budget:
            try:
                value, _ = train_speed(base, backbone, mixed, largest, *square)
            except Exception:  # noqa: BLE001 - out of memory ends the search
                say(f"batch {largest} at {square[0]}x{square[1]} does not fit")
                break
            record(f"train {backbone} {mixed} batch {largest} {square[0]}x{square[1]}", value)
            largest *= 2
    say(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
