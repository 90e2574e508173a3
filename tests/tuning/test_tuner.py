"""Tests for SweepTuner.run_trial / load_model with a stand-in hypermodel
(no network): where a trial starts (Hyperband's parent checkpoint, its own
checkpoint after a kill, epoch 0), what it hands to HyperModel.fit, and the
continuation of a diverged trial."""

import json
import math
import os

import keras_tuner
import numpy as np
import pytest

from cli import UsageError
from mrcnn.checkpoint import hdf5
from tuning import layout
from tuning.callbacks import EpochLog, read_epochs
from tuning.tuner import SweepTuner, TrialCallback, TrialUsageError


class FakeModel:
    def __init__(self):
        self.config = type("Config", (), {"NAME": "demo"})
        self.log_dir, self.epoch, self.loaded = None, 0, []

    def load_weights(self, path, by_name=False):
        self.loaded.append(path)


class FakeHyperModel(keras_tuner.HyperModel):
    def __init__(self, build_error=None):
        super().__init__()
        self.build_error, self.built, self.fits = build_error, [], []

    def declare_hyperparameters(self, hp):
        hp.Choice("lr", [1e-4, 1e-5])

    def build(self, hp):
        if self.build_error:
            raise self.build_error
        self.built.append(FakeModel())
        return self.built[-1]

    def fit(self, hp, model, *args, epochs, initial_epoch=0, callbacks=None, **kwargs):
        self.fits.append(dict(model=model, epochs=epochs, initial_epoch=initial_epoch,
                              callbacks=callbacks))
        return {"val_loss": 1.0}


@pytest.fixture
def tuner(tmp_path, monkeypatch):
    for name in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        monkeypatch.delenv(name, raising=False)
    return SweepTuner(FakeHyperModel(), "val_loss", max_epochs=6, factor=3,
                      directory=str(tmp_path), project_name="p")


def make_trial(trial_id, epochs, initial=0, parent=None, **metrics):
    hp = keras_tuner.HyperParameters()
    hp.values = {"lr": 1e-4, "tuner/epochs": epochs, "tuner/initial_epoch": initial}
    if parent is not None:
        hp.values["tuner/trial_id"] = parent
    trial = keras_tuner.engine.trial.Trial(hp, trial_id=trial_id)
    for name, value in metrics.items():
        trial.metrics.update(name, value)
    return trial


def write_checkpoint(run, epoch):
    """A small checkpoint file that reads whole (the fake model loads anything)."""
    path = layout.checkpoint(run, "demo", epoch)
    hdf5.write_legacy_h5(path, [("a", [("a/kernel:0", np.full(4, epoch, np.float32))])])
    return path


def fake_run(tuner, trial_id, epochs, checkpoint=None):
    """A finished trial the oracle knows, its run folder with epochs.jsonl
    lines 1..epochs and one checkpoint."""
    tuner.oracle.trials[trial_id] = make_trial(trial_id, epochs, val_loss=5.0 - epochs)
    run = layout.run_dir(tuner.project_dir, trial_id)
    os.makedirs(run, exist_ok=True)
    log = EpochLog(layout.epochs_file(run), 0)
    log.on_train_begin()
    for e in range(epochs):
        log.on_epoch_end(e, {"val_loss": 5.0 - e})
    if checkpoint:
        write_checkpoint(run, checkpoint)
    return run


def test_a_new_trial_starts_at_epoch_0(tuner):
    tuner.run_trial(make_trial("0", epochs=2))
    fit = tuner.hypermodel.fits[0]
    assert (fit["epochs"], fit["initial_epoch"], fit["model"].loaded) == (2, 0, [])
    assert fit["model"].log_dir == layout.run_dir(tuner.project_dir, "0")
    assert isinstance(fit["callbacks"][-1], TrialCallback)
    with open(layout.worker_file(tuner.project_dir, "0")) as f:
        assert json.load(f)["tuner_id"] == "tuner0"
    with open(layout.values_file(layout.run_dir(tuner.project_dir, "0"))) as f:
        assert json.load(f)["tuner/epochs"] == 2


def test_hyperbands_continuation_starts_from_the_parents_checkpoint(tuner):
    parent_run = fake_run(tuner, "0", 2, checkpoint=2)
    tuner.run_trial(make_trial("1", epochs=6, initial=2, parent="0"), callbacks=[])
    fit = tuner.hypermodel.fits[0]
    assert fit["initial_epoch"] == 2 and fit["epochs"] == 6
    assert fit["model"].loaded == [layout.checkpoint(parent_run, "demo", 2)]
    run = layout.run_dir(tuner.project_dir, "1")
    assert read_epochs(layout.epochs_file(run)) == read_epochs(layout.epochs_file(parent_run))


def test_a_killed_trial_goes_on_from_its_own_checkpoint(tuner):
    fake_run(tuner, "0", 2, checkpoint=2)
    trial = make_trial("1", epochs=6, initial=2, parent="0")
    run = layout.run_dir(tuner.project_dir, "1")
    tuner.run_trial(trial)  # first attempt: sets up the folder
    log = EpochLog(layout.epochs_file(run), 2)
    log.on_epoch_end(2, {"val_loss": 2.0})
    log.on_epoch_end(3, {"val_loss": 1.9})
    write_checkpoint(run, 4)
    tuner.run_trial(trial)  # the retry after the kill
    fit = tuner.hypermodel.fits[-1]
    assert fit["initial_epoch"] == 4 and fit["model"].loaded == [layout.checkpoint(run, "demo", 4)]


def test_a_missing_parent_checkpoint_trains_from_scratch(tuner, capsys):
    tuner.oracle.trials["0"] = make_trial("0", epochs=2, val_loss=3.0)
    tuner.run_trial(make_trial("1", epochs=6, initial=2, parent="0"))
    fit = tuner.hypermodel.fits[0]
    assert fit["initial_epoch"] == 0 and fit["model"].loaded == []
    assert "shared --directory" in capsys.readouterr().out


def test_the_continuation_of_a_diverged_trial_is_not_trained(tuner):
    tuner.oracle.trials["0"] = make_trial("0", epochs=2, val_loss=math.inf, non_finite_epoch=1.0)
    result = tuner.run_trial(make_trial("1", epochs=6, initial=2, parent="0"))
    assert result == {"val_loss": math.inf, "non_finite_epoch": 1.0}
    assert tuner.hypermodel.built == [] and tuner.hypermodel.fits == []


def test_unusable_options_stop_the_sweep(tmp_path, monkeypatch):
    monkeypatch.delenv("KERASTUNER_ORACLE_IP", raising=False)
    tuner = SweepTuner(FakeHyperModel(UsageError("--weights x.h5: broken")), "val_loss",
                       max_epochs=2, factor=3, directory=str(tmp_path), project_name="p")
    with pytest.raises(TrialUsageError, match="--weights x.h5: broken"):
        tuner.run_trial(make_trial("0", epochs=2))
    assert isinstance(TrialUsageError("x"), keras_tuner.errors.FatalError)


def test_load_model_takes_the_last_checkpoint(tuner):
    run = fake_run(tuner, "3", 4, checkpoint=4)
    model = tuner.load_model(make_trial("3", epochs=4))
    assert model.loaded == [layout.checkpoint(run, "demo", 4)]
    with pytest.raises(FileNotFoundError, match="trial 5 left no checkpoint"):
        tuner.load_model(make_trial("5", epochs=4))
