"""Which layers train: Matterport's named selections and freezing.

A selection is "heads" | "3+" | "4+" | "5+" | "all" or a regular
expression matched (fully) against the model's weight-layer names
(Matterport's names: res4a_branch2a, mrcnn_mask, rpn_conv_shared, ...).
"""

import re

from mrcnn.checkpoint import hdf5
from mrcnn.engine.schedule import FREEZABLE, LAYER_REGEX


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
    for name, layer in hdf5.weight_groups(model, grouped=()):
        on = bool(pattern.fullmatch(name)) and not any(f.fullmatch(name) for f in frozen)
        layer.trainable = on
        if on:
            trainable.append(name)
    return trainable
