"""Keras callbacks of a training run: checkpoints, history, stops.

A run folder (see training.py) gets, from `MaskRCNN.train`:

    mask_rcnn_{name}_{epoch:04d}.h5   EpochCheckpoint: after every epoch, atomically
    runs.jsonl                        RecordCheckpoint: which invocation wrote it (run_record.py)
    history.csv                       HistoryCSV: one row per epoch, every loss
    tensorboard/                      keras.callbacks.TensorBoard: losses, learning rate

`StopOnNonFinite` ends training at the first NaN / Inf loss by raising
`NonFiniteLossError` (so no checkpoint of that epoch is written and the last
good one stays), a checkpoint that cannot be written (a full disk) ends it
with `CheckpointWriteError` (the previous one stays), and `BestEpoch`
follows the validation loss across several `train` calls (stages) and stops
after `patience` epochs without progress.
Epochs are numbered from 1 here, as in checkpoint names.
"""

import csv
import math
import os
import time

import keras

from mrcnn import files
from mrcnn.checkpoint import hdf5
from mrcnn.config import LOSS_NAMES
from mrcnn.engine import faults, run_dir, run_record

HISTORY_COLUMNS = (
    ("epoch", "lr", "loss") + LOSS_NAMES + ("val_loss",) + tuple(f"val_{n}" for n in LOSS_NAMES)
    + ("seconds",)
)


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or Inf at (epoch, step) with learning rate lr."""

    def __init__(self, epoch, step, lr, name, value):
        self.epoch, self.step, self.lr, self.name, self.value = epoch, step, lr, name, value
        where = f"step {step} of epoch {epoch}" if step else f"the end of epoch {epoch}"
        super().__init__(f"{name} became {value} at {where} (learning rate {lr:g}); "
                         "training stopped, the last good checkpoint is kept. "
                         "A lower learning rate usually helps.")


class CheckpointWriteError(RuntimeError):
    """An epoch's checkpoint could not be written (e.g. a full disk); the
    previous checkpoint (None: there is none) is kept as it was."""

    def __init__(self, path, previous, error):
        self.path, self.previous = path, previous
        then = (f"the previous checkpoint, {previous}, is kept: free some space and "
                "continue from it" if previous else
                "no earlier checkpoint of this run was written: free some space and start again")
        super().__init__(f"cannot write {path} ({error.strerror or error}); {then}")


def _learning_rate(model):
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


class StopOnNonFinite(keras.callbacks.Callback):
    """Raise NonFiniteLossError at the first non-finite training or validation loss.

    Put it before EpochCheckpoint so that a bad epoch is never saved.
    """

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def _check(self, logs, names, step):
        for name in names:
            value = (logs or {}).get(name)
            if value is not None and not math.isfinite(float(value)):
                raise NonFiniteLossError(self.epoch, step, _learning_rate(self.model), name,
                                         float(value))

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, ("loss",), batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, ("loss", "val_loss"), None)


class EpochCheckpoint(keras.callbacks.Callback):
    """Save the weights after every epoch, atomically, Matterport-named.

    A write that fails (OSError: a full disk, a quota) raises
    CheckpointWriteError; the previous checkpoint is untouched.
    """

    def __init__(self, log_dir, name):
        super().__init__()
        self.log_dir = log_dir
        self.name = name

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.log_dir, exist_ok=True)
        path = run_dir.checkpoint_path(self.log_dir, self.name, epoch + 1)
        try:
            hdf5.save_weights(self.model, path, faults.checkpoint_progress())
        except OSError as e:
            previous = run_dir.checkpoint_path(self.log_dir, self.name, epoch)
            raise CheckpointWriteError(path, previous if os.path.exists(previous) else None,
                                       e) from e


class RecordCheckpoint(keras.callbacks.Callback):
    """After EpochCheckpoint: note in runs.jsonl that `invocation` wrote the
    epoch's checkpoint (not reached when writing it failed)."""

    def __init__(self, log_dir, name, invocation):
        super().__init__()
        self.log_dir, self.name, self.invocation = log_dir, name, invocation

    def on_epoch_end(self, epoch, logs=None):
        path = run_dir.checkpoint_path(self.log_dir, self.name, epoch + 1)
        run_record.checkpoint_written(self.log_dir, self.invocation, path)


def read_history(path):
    """Rows of a history.csv as dicts of floats (epoch as int); [] if absent."""
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: (int(v) if k == "epoch" else float(v) if v != "" else math.nan)
                 for k, v in row.items()} for row in csv.DictReader(f)]


def _write_rows(path, rows):
    """Rewrite history.csv atomically with `rows`."""
    with files.atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, HISTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


class HistoryCSV(keras.callbacks.Callback):
    """One row per epoch in history.csv: learning rate, every train and val loss.

    start_epoch: epochs already done (resume); rows after it, left by an
    epoch that was interrupted after its row but before its checkpoint,
    are dropped so each epoch appears once.
    """

    def __init__(self, path, start_epoch=0):
        super().__init__()
        self.path = path
        self.start_epoch = start_epoch
        self._started = None

    def on_train_begin(self, logs=None):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        rows = read_history(self.path)
        if not os.path.exists(self.path) or any(r["epoch"] > self.start_epoch for r in rows):
            _write_rows(self.path, [r for r in rows if r["epoch"] <= self.start_epoch])

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        row = {"epoch": epoch + 1, "lr": _learning_rate(self.model),
               "seconds": round(time.time() - self._started, 3)}
        for name in HISTORY_COLUMNS[2:-1]:
            row[name] = float(logs[name]) if name in logs else ""
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, HISTORY_COLUMNS).writerow(row)
            f.flush()
            os.fsync(f.fileno())
        self.start_epoch = epoch + 1


class BestEpoch(keras.callbacks.Callback):
    """Follow the best (lowest) validation loss; stop after `patience` epochs
    without improvement when patience is set.

    One instance serves all the stages of a run (it keeps its state across
    `fit` calls); `history` rows (read_history) restore it on resume.
    `stopped` tells the caller to skip the remaining stages.
    """

    def __init__(self, patience=None, monitor="val_loss", history=()):
        super().__init__()
        self.patience = patience or None
        self.monitor = monitor
        self.best, self.best_epoch, self.last_epoch = math.inf, None, 0
        self.stopped = False
        for row in history:
            self._update(row["epoch"], row.get(monitor))

    def _update(self, epoch, value):
        self.last_epoch = epoch
        if value is not None and math.isfinite(value) and value < self.best:
            self.best, self.best_epoch = value, epoch
        since = epoch - (self.best_epoch or 0)
        self.stopped = bool(self.patience and since >= self.patience)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        self._update(epoch + 1, None if value is None else float(value))
        if self.stopped:
            self.model.stop_training = True
