"""Tests for MaskRCNNHyperModel.fit and the tuner's TrialCallback with a
stand-in for MaskRCNN whose `train` runs the callbacks as Keras does (no
network): epochs and initial_epoch honoured, Keras Tuner's callbacks after
the trial's own with the objective in their logs, a NaN trial's worst
score."""

import json
import math
import types

import keras_tuner
import pytest

from cityscapes.options import TrainOptions
from mrcnn.engine.callbacks import NonFiniteLossError
from tuning import layout, spaces
from tuning.callbacks import EpochLog, read_epochs
from tuning.hypermodel import MaskRCNNHyperModel, SweepData
from tuning.tuner import TrialCallback


class FakeMaskRCNN:
    """MaskRCNN.train's contract: epochs from self.epoch + 1 to `epochs`,
    a checkpoint per epoch, then the custom callbacks, in order; their
    on_train_end after the last epoch."""

    def __init__(self, run, diverge_at=None):
        self.log_dir, self.epoch, self.config = str(run), 0, types.SimpleNamespace(NAME="demo")
        self.diverge_at, self.calls = diverge_at, []

    def train(self, train, val, learning_rate, epochs, layers, augmentation=None,
              custom_callbacks=None, freeze=(), mask_cache=None):
        self.calls.append(dict(lr=learning_rate, epochs=epochs, layers=layers, start=self.epoch,
                               callbacks=[type(c).__name__ for c in custom_callbacks]))
        for c in custom_callbacks:
            c.on_train_begin()
        for epoch in range(self.epoch, epochs):
            if epoch + 1 == self.diverge_at:
                raise NonFiniteLossError(epoch + 1, 1, learning_rate, "loss", math.nan)
            open(layout.checkpoint(self.log_dir, "demo", epoch + 1), "wb").close()
            logs = {"loss": 10.0 - epoch, "val_loss": 12.0 - epoch + (epoch == 2) * 5}
            for c in custom_callbacks:
                c.on_epoch_end(epoch, logs)
        for c in custom_callbacks:
            c.on_train_end()
        self.epoch = max(self.epoch, epochs)


class Recorder:
    """A Keras Tuner callback: what it saw at each epoch end."""

    def __init__(self):
        self.seen = []

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append((epoch, dict(logs)))

    def on_train_end(self, logs=None):
        pass


def hypermodel(objective="val_loss"):
    space = spaces.check_space({"lr": [1e-4], "optimizer": "sgd", "weights": "none"})
    base = TrainOptions(dataset="demo", layers="heads", augment="none", mask_cache="none")
    data = SweepData(train=types.SimpleNamespace(image_ids=[0, 1, 2]),
                     val=types.SimpleNamespace(image_ids=[0, 1]), classes=("car",),
                     root="nowhere")
    return MaskRCNNHyperModel(space, base, data, objective)


def hp_of(values):
    hp = keras_tuner.HyperParameters()
    hp.values = dict({"lr": 1e-4, "optimizer": "sgd", "weights": "none"}, **values)
    return hp


def test_fit_honours_epochs_initial_epoch_and_callbacks(tmp_path):
    model, recorder = FakeMaskRCNN(tmp_path), Recorder()
    hp = hp_of({"tuner/epochs": 4, "tuner/initial_epoch": 1, "tuner/trial_id": "7"})
    metrics = hypermodel().fit(hp, model, epochs=4, initial_epoch=1, callbacks=[recorder])
    call = model.calls[0]
    assert (call["lr"], call["epochs"], call["layers"], call["start"]) == (1e-4, 4, "heads", 1)
    assert call["callbacks"] == ["EpochLog", "PruneCheckpoints", "Recorder"]
    assert [e for e, _ in recorder.seen] == [1, 2, 3]  # 0-based, as Keras gives them
    assert all("val_loss" in logs for _, logs in recorder.seen)
    # epoch 3 (val 16) is worse than epoch 2 (val 11) and epoch 4 (val 9)
    assert metrics == {"val_loss": 9.0, "best_epoch": 4.0, "loss": 7.0}
    assert layout.checkpoint_epochs(str(tmp_path)) == [4]
    assert [r["epoch"] for r in read_epochs(layout.epochs_file(str(tmp_path)))] == [2, 3, 4]
    # What the trial trained with, for --export_best: its subsets' sizes and epochs.
    with open(tmp_path / "train_args.json") as f:
        recorded = json.load(f)["options"]
    assert (recorded["train_images"], recorded["val_images"], recorded["epochs"],
            recorded["lr"], recorded["layers"], recorded["dataset"]) == (3, 2, 4, 1e-4, "heads",
                                                                         "demo")


def test_fit_counts_epochs_done_before_an_interruption(tmp_path):
    # The trial asked for epochs 1-4; a first attempt got to epoch 2 (best so far).
    log = EpochLog(layout.epochs_file(str(tmp_path)), 0)
    log.on_train_begin()
    log.on_epoch_end(0, {"loss": 3.0, "val_loss": 5.0})
    log.on_epoch_end(1, {"loss": 2.0, "val_loss": 1.5})
    model = FakeMaskRCNN(tmp_path)
    hp = hp_of({"tuner/epochs": 4, "tuner/initial_epoch": 0})
    metrics = hypermodel().fit(hp, model, epochs=4, initial_epoch=2)
    assert model.calls[0]["start"] == 2
    assert metrics["val_loss"] == 1.5 and metrics["best_epoch"] == 2.0


def test_fit_of_a_finished_trial_trains_nothing(tmp_path):
    log = EpochLog(layout.epochs_file(str(tmp_path)), 0)
    log.on_train_begin()
    log.on_epoch_end(0, {"loss": 3.0, "val_loss": 2.0})
    model = FakeMaskRCNN(tmp_path)
    hp = hp_of({"tuner/epochs": 1, "tuner/initial_epoch": 0})
    assert hypermodel().fit(hp, model, epochs=1, initial_epoch=1)["val_loss"] == 2.0
    assert model.calls == []


def test_a_nan_trial_gets_the_worst_score(tmp_path):
    model = FakeMaskRCNN(tmp_path, diverge_at=2)
    hp = hp_of({"tuner/epochs": 3, "tuner/initial_epoch": 0})
    assert hypermodel().fit(hp, model, epochs=3, initial_epoch=0) == {
        "val_loss": math.inf, "non_finite_epoch": 2.0}
    with open(layout.non_finite_file(str(tmp_path))) as f:
        record = json.load(f)
    assert (record["epoch"], record["step"], record["loss"]) == (2, 1, "loss")
    assert "became nan at step 1 of epoch 2" in record["message"]


def test_fit_takes_no_data_arguments(tmp_path):
    with pytest.raises(TypeError, match="takes no data arguments"):
        hypermodel().fit(hp_of({}), FakeMaskRCNN(tmp_path), "x", epochs=1)


def test_trial_callback_drives_the_tuner_hooks():
    calls = []
    fake_tuner = types.SimpleNamespace(
        on_epoch_begin=lambda trial, model, epoch, logs=None: calls.append(("begin", epoch)),
        on_epoch_end=lambda trial, model, epoch, logs=None: calls.append(("end", epoch, logs)),
        on_batch_begin=lambda trial, model, batch, logs: calls.append(("batch", batch)),
        on_batch_end=lambda trial, model, batch, logs: calls.append(("batch_end", batch)))
    cb = TrialCallback(fake_tuner, trial="t")
    cb.on_epoch_begin(3)
    cb.on_train_batch_begin(0)
    cb.on_train_batch_end(0, {"loss": 1.0})
    cb.on_epoch_end(3, {"val_loss": 2.0})
    assert calls == [("begin", 3), ("batch", 0), ("batch_end", 0), ("end", 3, {"val_loss": 2.0})]

