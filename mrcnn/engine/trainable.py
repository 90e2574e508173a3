"""Which layers train: Matterport's named selections and freezing.

A selection is "heads" | "3+" | "4+" | "5+" | "all" or a regular
expression matched (fully) against the model's weight-layer names
(Matterport's names: res4a_branch2a, mrcnn_mask, rpn_conv_shared, ...).
"""

import re

from mrcnn.checkpoint import hdf5

# Matterport's named layer selections (regular expressions on layer names).
LAYER_REGEX = {
    "heads": r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "3+": r"(res3.*)|(bn3.*)|(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "4+": r"(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "5+": r"(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "all": ".*",
}
FREEZABLE = {"rpn": r"rpn\_.*", "fpn": r"fpn\_.*"}


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
