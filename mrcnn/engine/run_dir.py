"""Run folders and checkpoint names (Matterport's conventions).

A run folder `{model_dir}/{name}{YYYYmmddTHHMM}` holds
`mask_rcnn_{name}_{epoch:04d}.h5`, one per epoch, numbered from 1;
`epochs` given to `train` is the cumulative total, so a run resumed from
`..._0003.h5` continues with epoch 4.

A run is continued from its newest checkpoint that reads whole
(`readable_checkpoint`: every array, checksums included); a damaged newer
one is named in a warning together with the one used instead.
"""

import datetime
import os
import re
import sys

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


def readable_checkpoint(paths):
    """The first of `paths` (newest first) whose file reads whole
    (mrcnn.checkpoint.hdf5.check_readable), and the damaged ones before it.
    -> (path or None, [(damaged path, why), ...])"""
    from mrcnn.checkpoint import hdf5

    damaged = []
    for path in paths:
        try:
            hdf5.check_readable(path)
        except (OSError, hdf5.WeightsFileError) as e:
            damaged.append((path, str(e)))
        else:
            return path, damaged
    return None, damaged


def damaged_warning(why, instead):
    """The one-line warning for a damaged checkpoint passed over (`why`, from
    readable_checkpoint, names the file)."""
    return f"Warning: {why}; continuing from {instead} instead"


def _warn(line):
    print(line, file=sys.stderr)


def find_last(model_dir, name=None, warn=_warn):
    """Latest checkpoint of the latest run of `name` under model_dir (None:
    of the run with the latest time stamp, whatever its name) that reads
    whole; `warn(line)` names each damaged newer one passed over.
    FileNotFoundError when there is no checkpoint, or none of the latest
    run's reads whole."""
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
            path, damaged = readable_checkpoint(
                [os.path.join(model_dir, run, c) for c in reversed(ckpts)])
            if path is None:
                raise FileNotFoundError(
                    f"no checkpoint of {os.path.join(model_dir, run)} reads whole: "
                    + "; ".join(why for _, why in damaged))
            for _, why in damaged:
                warn(damaged_warning(why, path))
            return path
    what = f"of {name!r} " if name else ""
    raise FileNotFoundError(
        f"no checkpoint {what}under {os.path.abspath(model_dir)}: "
        "train first, or pass a weights file"
    )
