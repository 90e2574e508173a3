"""Run folders and checkpoint names (Matterport's conventions).

A run folder `{model_dir}/{name}{YYYYmmddTHHMM}` holds
`mask_rcnn_{name}_{epoch:04d}.h5`, one per epoch, numbered from 1;
`epochs` given to `train` is the cumulative total, so a run resumed from
`..._0003.h5` continues with epoch 4.
"""

import datetime
import os
import re

CHECKPOINT_RE = re.compile(r".*[/\\][\w-]+(\d{8}T\d{4})[/\\]mask_rcnn_[\w-]+_(\d{4})\.h5$")


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


def find_last(model_dir, name=None):
    """Latest checkpoint of the latest run of `name` under model_dir (None:
    of the run with the latest time stamp, whatever its name)."""
    pattern = re.escape(name.lower()) if name else r"[\w-]+?"
    run_re = re.compile(pattern + r"(\d{8}T\d{4})")
    runs = sorted(
        (m.group(1), d) for d in os.listdir(model_dir) if (m := run_re.fullmatch(d)) and
        os.path.isdir(os.path.join(model_dir, d))
    ) if os.path.isdir(model_dir) else []
    for _, run in reversed(runs):
        ckpts = sorted(
            f for f in os.listdir(os.path.join(model_dir, run))
            if f.startswith("mask_rcnn") and f.endswith(".h5")
        )
        if ckpts:
            return os.path.join(model_dir, run, ckpts[-1])
    what = f"of {name!r} " if name else ""
    raise FileNotFoundError(
        f"no checkpoint {what}under {os.path.abspath(model_dir)}: "
        "train first, or pass a weights file"
    )
