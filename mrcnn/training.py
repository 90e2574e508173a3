"""Training helpers: layer selection, optimizer, weight decay, run folders.

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
    """SGD with momentum (Matterport) or Adam, each gradient clipped to clip_norm."""
    clip = clip_norm or None
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum, clipnorm=clip)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clip)
    raise ValueError(f"unknown optimizer {name!r}; expected 'sgd' or 'adam'")


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
    prefix = name.lower()
    runs = sorted(
        d for d in os.listdir(model_dir) if d.startswith(prefix) and
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


class EpochCheckpoint(keras.callbacks.Callback):
    """Save the weights after every epoch, atomically, Matterport-named."""

    def __init__(self, log_dir, name):
        super().__init__()
        self.log_dir = log_dir
        self.name = name
        self.last_path = None

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.log_dir, exist_ok=True)
        self.last_path = checkpoint_path(self.log_dir, self.name, epoch + 1)
        weights.save_weights(self.model, self.last_path)
