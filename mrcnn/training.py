"""Training helpers: layer selection, optimizer, weight decay, run folders,
devices (`make_strategy`) and mixed precision (`set_mixed_precision`).

Matterport's conventions: a run folder `{model_dir}/{name}{YYYYmmddTHHMM}`
holding `mask_rcnn_{name}_{epoch:04d}.h5`, one per epoch, numbered from 1;
`epochs` given to `train` is the cumulative total, so a run resumed from
`..._0003.h5` continues with epoch 4.
"""

import datetime
import os
import re

import keras
import tensorflow as tf

from mrcnn import weights
from mrcnn.optimizers import FusedAdam

# Matterport's named layer selections (regular expressions on layer names).
LAYER_REGEX = {
    "heads": r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "3+": r"(res3.*)|(bn3.*)|(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "4+": r"(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "5+": r"(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "all": ".*",
}
FREEZABLE = {"rpn": r"rpn\_.*", "fpn": r"fpn\_.*"}

CHECKPOINT_RE = re.compile(r".*[/\\][\w-]+(\d{8}T\d{4})[/\\]mask_rcnn_[\w-]+_(\d{4})\.h5$")


def set_trainable(model, layers, freeze=()):
    """Make only the selected weight layers trainable.

    layers: "heads" | "3+" | "4+" | "5+" | "all" or a regular expression
    matched (fully) against layer names; freeze: names from FREEZABLE whose
    layers stay frozen whatever `layers` says. Containers stay trainable so
    that their selected leaves train. Returns the names made trainable.
    """
    regex = LAYER_REGEX.get(layers, layers)
    try:
        pattern = re.compile(regex)
    except re.error as e:
        raise ValueError(f"layers={layers!r} is neither {sorted(LAYER_REGEX)} nor a regex: {e}")
    unknown = set(freeze) - set(FREEZABLE)
    if unknown:
        raise ValueError(f"freeze: unknown parts {sorted(unknown)}; expected {sorted(FREEZABLE)}")
    frozen = [re.compile(FREEZABLE[part]) for part in freeze]
    trainable = []
    for name, layer in weights.weight_groups(model, grouped=()):
        on = bool(pattern.fullmatch(name)) and not any(f.fullmatch(name) for f in frozen)
        layer.trainable = on
        if on:
            trainable.append(name)
    return trainable


def make_optimizer(name, learning_rate, momentum=0.9, clip_norm=5.0):
    """SGD with momentum (Matterport) or Adam with beta_1 = momentum (its
    update in one fused kernel: mrcnn/optimizers.py), each gradient clipped
    to clip_norm."""
    clip = clip_norm or None
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, clipnorm=clip)
    if name == "adam":
        return FusedAdam(learning_rate=learning_rate, beta_1=momentum, clipnorm=clip)
    raise ValueError(f"unknown optimizer {name!r}; expected 'sgd' or 'adam'")


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


def weight_decay_loss(variables, weight_decay):
    """Matterport's L2 term: sum over kernels of wd * sum(w^2) / size(w).

    BatchNorm gamma and beta are left out, as in Matterport.
    """
    terms = [
        weight_decay * tf.reduce_sum(tf.square(v)) / tf.cast(tf.size(v), tf.float32)
        for v in variables
        if not (v.path.endswith("gamma") or v.path.endswith("beta"))
    ]
    return tf.add_n(terms) if terms else tf.constant(0.0)


def new_log_dir(model_dir, name, now=None):
    """Run folder for a new run: {model_dir}/{name}{YYYYmmddTHHMM}."""
    now = now or datetime.datetime.now()
    return os.path.join(model_dir, f"{name.lower()}{now:%Y%m%dT%H%M}")


def checkpoint_path(log_dir, name, epoch):
    """Checkpoint of `epoch` (1-based) in a run folder."""
    return os.path.join(log_dir, f"mask_rcnn_{name.lower()}_{epoch:04d}.h5")


def parse_checkpoint_path(path):
    """(run folder, epoch) of a Matterport-style checkpoint path, else None."""
    m = CHECKPOINT_RE.match(os.path.abspath(path))
    if not m:
        return None
    return os.path.dirname(os.path.abspath(path)), int(m.group(2))


def find_last(model_dir, name):
    """Latest checkpoint of the latest run of `name` under model_dir."""
    run_re = re.compile(re.escape(name.lower()) + r"\d{8}T\d{4}")
    runs = sorted(
        d for d in os.listdir(model_dir) if run_re.fullmatch(d) and
        os.path.isdir(os.path.join(model_dir, d))
    ) if os.path.isdir(model_dir) else []
    for run in reversed(runs):
        ckpts = sorted(
            f for f in os.listdir(os.path.join(model_dir, run))
            if f.startswith("mask_rcnn") and f.endswith(".h5")
        )
        if ckpts:
            return os.path.join(model_dir, run, ckpts[-1])
    raise FileNotFoundError(
        f"no checkpoint of {name!r} under {os.path.abspath(model_dir)}: "
        "train first, or pass a weights file"
    )

