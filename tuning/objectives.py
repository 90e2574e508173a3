"""What a sweep scores: the validation loss (default) or val mask AP@0.5.

    val_loss  the total validation loss of an epoch (Keras' "val_loss"), lower is better
    val_ap    mask AP@0.5, Matterport's per-image protocol, on the val subset, higher is better

A trial's score is its best epoch among those Hyperband asked it to train
(after `tuner/initial_epoch`); a trial whose loss turned NaN / Inf gets the
worst score, so Hyperband never continues it and the sweep goes on.
"""

import math

from cli import UsageError

DIRECTIONS = {"val_loss": "min", "val_ap": "max"}


def check(name):
    """The objective name, or UsageError."""
    if name not in DIRECTIONS:
        raise UsageError(f"--objective {name}: expected one of {list(DIRECTIONS)}")
    return name


def objective(name):
    """The keras_tuner.Objective of a name."""
    import keras_tuner

    return keras_tuner.Objective(check(name), direction=DIRECTIONS[name])


def worst(name):
    """The score of a trial that diverged: +inf for a loss, -inf for an AP."""
    return math.inf if DIRECTIONS[check(name)] == "min" else -math.inf


def is_better(name, a, b):
    """Whether score a beats score b."""
    return a < b if DIRECTIONS[name] == "min" else a > b


def best_row(name, rows):
    """The row (epochs.jsonl dict) with the best finite value of `name`, or None."""
    best = None
    for row in rows:
        value = row.get(name)
        if value is None or not math.isfinite(value):
            continue
        if best is None or is_better(name, value, best[name]):
            best = row
    return best
