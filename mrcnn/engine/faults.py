"""A test hook: faults injected at reproducible points of training (tests/faults/).

The environment variable MRCNN_FAULT, read here and nowhere else, names one fault:

    kill_after_step:N              SIGKILL the process after the N-th training step it runs
    kill_in_checkpoint:K[:F]       SIGKILL it while it writes its K-th epoch checkpoint, after
                                   a fraction F (default 0.5) of the layers is in the file
    enospc_in_checkpoint:K[:F]     make that write raise OSError(ENOSPC) there (a full disk)

Counts are per process, from 1, over every `fit` it runs (stages, trials);
`reset()` starts them again (in-process tests). Unset, as everywhere outside
those tests, nothing here does anything: `callbacks()` is [] and
`checkpoint_progress()` is None.
"""

import errno
import math
import os
import signal

import keras

ENV = "MRCNN_FAULT"
ACTIONS = ("kill_after_step", "kill_in_checkpoint", "enospc_in_checkpoint")
_counts = {"steps": 0, "checkpoints": 0}


def reset():
    """Count steps and checkpoint writes from 0 again."""
    _counts.update(steps=0, checkpoints=0)


def fault():
    """(action, count, fraction) of $MRCNN_FAULT, or None when unset.
    ValueError naming the variable when it cannot be parsed."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return None
    parts = value.split(":")
    try:
        action, count = parts[0], int(parts[1])
        fraction = float(parts[2]) if len(parts) > 2 else 0.5
        if action not in ACTIONS or count < 1 or not 0 <= fraction <= 1 or len(parts) > 3:
            raise ValueError
    except (IndexError, ValueError):
        raise ValueError(f"${ENV}={value!r}: expected ACTION:COUNT[:FRACTION] with ACTION one "
                         f"of {', '.join(ACTIONS)}") from None
    return action, count, fraction


def _kill():
    os.kill(os.getpid(), signal.SIGKILL)


class _KillAfterStep(keras.callbacks.Callback):
    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        _counts["steps"] += 1
        if _counts["steps"] == self.step:
            _kill()


def callbacks():
    """The Keras callbacks of the fault (put them first): [] unless it is
    kill_after_step."""
    f = fault()
    return [_KillAfterStep(f[1])] if f and f[0] == "kill_after_step" else []


def checkpoint_progress():
    """A `progress(written, total)` for the next epoch checkpoint's write
    (mrcnn.checkpoint.hdf5.write_legacy_h5), or None: it kills the process
    or raises OSError(ENOSPC) once `fraction` of the layers is written."""
    f = fault()
    if not f or f[0] == "kill_after_step":
        return None
    _counts["checkpoints"] += 1
    action, count, fraction = f
    if _counts["checkpoints"] != count:
        return None

    def progress(written, total):
        if written == max(1, math.ceil(fraction * total)):
            if action == "kill_in_checkpoint":
                _kill()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return progress
