"""Keras callbacks a trial adds to `MaskRCNN.train`'s own (mrcnn/engine/callbacks.py).

MaskRCNN.train runs its callbacks first: StopOnNonFinite, HistoryCSV,
TensorBoard, EpochCheckpoint (the epoch's checkpoint is on disk), then
these, in this order:

    ValAP           mask AP@0.5 of the epoch's checkpoint on the val subset -> logs["val_ap"]
    EpochLog        the epoch's logs as one line of epochs.jsonl (fsync'ed)
    PruneCheckpoints  removes the run folder's older checkpoints

then the callbacks Keras Tuner passes to `fit`, which see "val_ap" in the
logs. A checkpoint is removed only after a later epoch's line is written,
so after a kill the run folder always holds a checkpoint whose epoch has
its line: the trial continues from there. While the trial trains, the
checkpoint before the newest is kept too, to go on from should the newest
be damaged; the end of the trial leaves the newest alone.
"""

import json
import math
import os

import keras

from mrcnn import files
from tuning import layout


def read_epochs(path):
    """The rows of an epochs.jsonl, ascending by epoch; [] when absent.

    A last line cut short by a kill is ignored. -> list of dicts with "epoch" (int)
    """
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except ValueError:
                break
            rows.append(row)
    return sorted(rows, key=lambda r: r["epoch"])


def write_epochs(path, rows):
    """Rewrite an epochs.jsonl with `rows`, atomically."""
    files.write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


class EpochLog(keras.callbacks.Callback):
    """One JSON line per epoch: {"epoch": e (1-based), every numeric log}.

    start_epoch: epochs already done; lines after it (an epoch cut short by
    a kill, or an earlier attempt of the trial) are dropped at the start.
    """

    def __init__(self, path, start_epoch):
        super().__init__()
        self.path = path
        self.start_epoch = start_epoch

    def on_train_begin(self, logs=None):
        rows = read_epochs(self.path)
        kept = [r for r in rows if r["epoch"] <= self.start_epoch]
        if len(kept) != len(rows) or not os.path.exists(self.path):
            write_epochs(self.path, kept)

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        row.update({k: float(v) for k, v in (logs or {}).items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)})
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())


class PruneCheckpoints(keras.callbacks.Callback):
    """Keep the newest checkpoint of a run folder and, until training ends,
    the one before it."""

    def __init__(self, run):
        super().__init__()
        self.run = run

    def _keep_from(self, epoch):
        for old in layout.checkpoint_epochs(self.run):
            if old < epoch:
                for path in _checkpoint_files(self.run, old):
                    os.remove(path)

    def on_epoch_end(self, epoch, logs=None):
        self._keep_from(epoch)  # epoch + 1 ended: keep it and the one before

    def on_train_end(self, logs=None):
        saved = layout.checkpoint_epochs(self.run)
        if saved:
            self._keep_from(saved[-1])


def _checkpoint_files(run, epoch):
    suffix = f"_{epoch:04d}.h5"
    return [os.path.join(run, f) for f in os.listdir(run)
            if f.startswith("mask_rcnn_") and f.endswith(suffix)]


class ValAP(keras.callbacks.Callback):
    """logs[key] = mask AP@0.5 (Matterport's per-image protocol, evaluate.py's
    code path: cityscapes.evaluator.mask_ap50) of the epoch's checkpoint
    on `image_ids` of `dataset`.

    config: the trial's training Config; the inference model (one image a
    batch, one device) is built here, before training, outside any
    distribution scope, and reloaded from each epoch's checkpoint.
    """

    def __init__(self, config, dataset, image_ids, run, key="val_ap"):
        super().__init__()
        from mrcnn.engine.inference import inference_model

        self.infer = inference_model(config, model_dir=run)
        self.dataset, self.image_ids, self.run, self.key = dataset, list(image_ids), run, key

    def on_epoch_end(self, epoch, logs=None):
        from cityscapes.evaluator import mask_ap50

        path = layout.checkpoint(self.run, self.infer.config.NAME, epoch + 1)
        self.infer.load_weights(path, by_name=True)
        ap = mask_ap50(self.infer, self.dataset, self.image_ids)["mask_ap50"]
        if math.isnan(ap):
            raise ValueError(f"{self.key}: no image of the val subset has instances to score")
        if logs is not None:
            logs[self.key] = ap
