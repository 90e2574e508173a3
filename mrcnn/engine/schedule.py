"""Staged training schedules: which layers train up to which epoch, at what rate.

Matterport's COCO sample trains in stages, each a `MaskRCNN.train` call with
a cumulative epoch count: the heads to epoch 40, then ResNet stage 4 and up
to epoch 120, then all layers at a tenth of the rate to epoch 160. A
schedule string writes that as

    heads:40,4+:120,all:160x0.1

one `LAYERS:EPOCH[xFACTOR]` per stage, where EPOCH is the last epoch of the
stage (cumulative, increasing) and FACTOR multiplies the base learning rate
(default 1). `PRESETS` names common schedules.
"""

import dataclasses
import re

# Matterport's named layer selections (regular expressions on layer names).
LAYER_REGEX = {
    "heads": r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "3+": r"(res3.*)|(bn3.*)|(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "4+": r"(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "5+": r"(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "all": ".*",
}
FREEZABLE = {"rpn": r"rpn\_.*", "fpn": r"fpn\_.*"}
PRESETS = {
    # Matterport's samples/coco/coco.py.
    "matterport": "heads:40,4+:120,all:160x0.1",
}
_STAGE_RE = re.compile(r"(?P<layers>[^:]+):(?P<epoch>\d+)(?:x(?P<factor>[0-9.eE+-]+))?")


@dataclasses.dataclass(frozen=True)
class Stage:
    """Train `layers` until epoch `epochs` (cumulative) at base lr * lr_factor."""

    layers: str
    epochs: int
    lr_factor: float = 1.0

    def __str__(self):
        factor = "" if self.lr_factor == 1 else f"x{self.lr_factor:g}"
        return f"{self.layers}:{self.epochs}{factor}"


def parse_schedule(text):
    """Stages of a schedule string or preset name. -> list of Stage

    Raises ValueError naming the bad part: unknown layer selection (one of
    LAYER_REGEX), epochs not increasing, factor not positive.
    """
    text = PRESETS.get(text.strip(), text)
    stages = []
    for part in text.split(","):
        m = _STAGE_RE.fullmatch(part.strip())
        if not m:
            raise ValueError(f"schedule stage {part.strip()!r}: expected LAYERS:EPOCH[xFACTOR], "
                             f"e.g. {PRESETS['matterport']!r} (presets: {sorted(PRESETS)})")
        layers, epochs = m["layers"], int(m["epoch"])
        if layers not in LAYER_REGEX:
            raise ValueError(f"schedule stage {part.strip()!r}: layers must be one of "
                             f"{list(LAYER_REGEX)}")
        try:
            factor = float(m["factor"]) if m["factor"] else 1.0
        except ValueError:
            factor = -1.0
        if not factor > 0:
            raise ValueError(f"schedule stage {part.strip()!r}: the lr factor must be a "
                             "positive number")
        if epochs < 1 or (stages and epochs <= stages[-1].epochs):
            raise ValueError(f"schedule stage {part.strip()!r}: end epochs must be >= 1 and "
                             "increase from stage to stage (they are cumulative)")
        stages.append(Stage(layers, epochs, factor))
    return stages


def remaining(stages, epoch):
    """The stages still to run after `epoch` epochs are done (resume)."""
    return [s for s in stages if s.epochs > epoch]
