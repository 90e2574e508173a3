import datetime
import os
import types

import keras
import numpy as np
import pytest

from mrcnn.checkpoint import hdf5
from mrcnn.engine import callbacks, optimizers, run, run_dir, schedule, trainable
from mrcnn.modeling import losses


def test_run_folder_and_checkpoint_names_follow_matterport(tmp_path):
    now = datetime.datetime(2026, 1, 2, 3, 4)
    log_dir = run_dir.new_log_dir(str(tmp_path), "Cityscapes", now)
    assert os.path.basename(log_dir) == "cityscapes20260102T0304"
    path = run_dir.checkpoint_path(log_dir, "Cityscapes", 7)
    assert os.path.basename(path) == "mask_rcnn_cityscapes_0007.h5"
    assert run_dir.parse_checkpoint_path(path) == (log_dir, 7)
    assert run_dir.parse_checkpoint_path(str(tmp_path / "mask_rcnn_coco.h5")) is None


def test_find_last_takes_the_latest_run_and_epoch(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint of 'shapes'"):
        run_dir.find_last(str(tmp_path), "shapes")
    def checkpoint(run, name, epoch):
        hdf5.write_legacy_h5(run_dir.checkpoint_path(str(tmp_path / run), name, epoch),
                             [("a", [("a/bias:0", np.zeros(2, np.float32))])])

    for run, epochs in (("shapes20260101T0000", [1, 2]), ("shapes20260102T0000", [1, 3])):
        os.makedirs(tmp_path / run)
        for e in epochs:
            checkpoint(run, "shapes", e)
    os.makedirs(tmp_path / "shapes20260103T0000")  # an empty, newer run
    assert run_dir.find_last(str(tmp_path), "shapes").endswith(
        os.path.join("shapes20260102T0000", "mask_rcnn_shapes_0003.h5"))
    # Without a name: the run with the latest time stamp, whatever its name.
    os.makedirs(tmp_path / "demo20260101T1200")
    checkpoint("demo20260101T1200", "demo", 9)
    assert run_dir.find_last(str(tmp_path)).endswith(
        os.path.join("shapes20260102T0000", "mask_rcnn_shapes_0003.h5"))
    os.makedirs(tmp_path / "demo20260104T0000")
    checkpoint("demo20260104T0000", "demo", 1)
    assert run_dir.find_last(str(tmp_path)).endswith(
        os.path.join("demo20260104T0000", "mask_rcnn_demo_0001.h5"))
    with pytest.raises(FileNotFoundError, match="no checkpoint under"):
        run_dir.find_last(str(tmp_path / "empty"))


def test_weight_decay_is_matterports_and_skips_gamma_beta():
    dense = keras.layers.Dense(2, name="d")
    bn = keras.layers.BatchNormalization(name="bn")
    dense.build((None, 3))
    bn.build((None, 2))
    dense.kernel.assign(np.full((3, 2), 2.0, np.float32))
    dense.bias.assign(np.array([1.0, 3.0], np.float32))
    bn.gamma.assign(np.full((2,), 5.0, np.float32))
    loss = losses.weight_decay_loss(dense.trainable_weights + bn.trainable_weights, 0.1)
    # kernel: 0.1 * 24 / 6, bias: 0.1 * 10 / 2; gamma and beta left out
    np.testing.assert_allclose(float(loss), 0.4 + 0.5, rtol=1e-6)


def test_optimizers_clip_by_the_global_norm():
    sgd = optimizers.make_optimizer("sgd", 0.01, momentum=0.8, clip_norm=5.0)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.global_clipnorm == 5.0
    assert sgd.clipnorm is None and sgd.momentum == 0.8
    adam = optimizers.make_optimizer("adam", 0.001, clip_norm=0)
    assert isinstance(adam, keras.optimizers.Adam) and adam.global_clipnorm is None
    with pytest.raises(ValueError, match="rmsprop"):
        optimizers.make_optimizer("rmsprop", 0.1)


def test_unknown_layer_selection_is_a_clear_error():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="mrcnn_x")])
    assert trainable.set_trainable(model, "heads") == ["mrcnn_x"]
    assert trainable.set_trainable(model, "3+") == ["mrcnn_x"]
    assert trainable.set_trainable(model, r"res.*") == []
    with pytest.raises(ValueError, match="neither"):
        trainable.set_trainable(model, "(")


class ResumedModel:
    """A training model continued from epoch 2 of a run whose process was
    killed after epoch 3's history row but before its checkpoint: `train`
    runs epoch 3 again (val loss 3.0) as MaskRCNN.train does."""

    def __init__(self, log_dir):
        self.log_dir, self.epoch = log_dir, 2
        self.config = types.SimpleNamespace(NAME="shapes")
        self.feed_skipped = []

    def train(self, train, val, lr, epochs, layers, custom_callbacks=(), **kwargs):
        path = os.path.join(self.log_dir, "history.csv")
        rows = [r for r in callbacks.read_history(path) if r["epoch"] <= self.epoch]
        callbacks._write_rows(path, [*rows, {"epoch": 3, "val_loss": 3.0}])
        for c in custom_callbacks:
            c.on_epoch_end(2, {"val_loss": 3.0})
        hdf5.write_legacy_h5(run_dir.checkpoint_path(self.log_dir, "shapes", 3),
                             [("a", [("a/bias:0", np.zeros(2, np.float32))])])
        self.epoch = epochs


def test_history_rows_after_the_continued_checkpoint_are_not_the_runs(tmp_path):
    log_dir = str(tmp_path / "shapes20260101T0000")
    os.makedirs(log_dir)
    callbacks._write_rows(os.path.join(log_dir, "history.csv"), [
        {"epoch": 1, "val_loss": 5.0}, {"epoch": 2, "val_loss": 4.0},
        {"epoch": 3, "val_loss": 1.0}])  # the killed attempt's row, no checkpoint
    summary = run.train_stages(ResumedModel(log_dir), None, None, [schedule.Stage("heads", 3)],
                               lr=0.01, log=lambda line: None)
    assert (summary["best_epoch"], summary["best_val_loss"]) == (3, 3.0)
