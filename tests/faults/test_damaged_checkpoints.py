"""Damaged checkpoints, in-process (no model trained): every kind of damage
is found when the file is read, `--weights last` (run_dir.find_last) and a
tuning trial go on from the newest checkpoint that reads whole with a
warning naming both files, and a failed write keeps the previous file.
train.py end to end under the same faults: test_train_faults.py."""

import errno
import os
import random
from pathlib import Path

import h5py
import keras
import keras_tuner
import numpy as np
import pytest

from cityscapes import options
from cli import UsageError
from mrcnn.checkpoint import hdf5
from mrcnn.engine import callbacks, faults, run_dir
from tests.tuning import test_tuner
from tests.tuning.test_tuner import FakeHyperModel, make_trial
from tuning import layout
from tuning.callbacks import EpochLog
from tuning.tuner import TrialStoppedError

GROUPS = [(f"layer_{i}", [(f"layer_{i}/kernel:0", np.full((64, 64), i, np.float32)),
                          (f"layer_{i}/bias:0", np.full(64, i, np.float32))]) for i in range(6)]


@pytest.fixture(autouse=True)
def _fault_counts():
    faults.reset()  # $MRCNN_FAULT counts per process: each test from 0


def write(path):
    hdf5.write_legacy_h5(path, GROUPS)
    return str(path)


def data_offset(path, layer):
    """Where the first chunk of `layer`'s kernel lies in the file."""
    with h5py.File(path, "r") as f:
        return f[layer][f"{layer}/kernel:0"].id.get_chunk_info(0).byte_offset


def overwrite(path, offset, size, seed=0):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(random.Random(seed).randbytes(size))


@pytest.mark.parametrize("damage", ["truncated to 0", "truncated in the middle",
                                    "truncated by one byte", "garbage header",
                                    "garbage in a weight's bytes", "one byte of a weight"])
def test_every_kind_of_damage_is_found_when_the_file_is_read(tmp_path, damage):
    path = write(tmp_path / "ckpt.h5")
    size = os.path.getsize(path)
    if damage.startswith("truncated"):
        keep = {"truncated to 0": 0, "truncated in the middle": size // 2,
                "truncated by one byte": size - 1}[damage]
        os.truncate(path, keep)
    elif damage == "garbage header":
        overwrite(path, 0, 64)
    elif damage == "garbage in a weight's bytes":
        overwrite(path, data_offset(path, "layer_3") + 100, 512)
    else:
        offset = data_offset(path, "layer_5") + 7
        with open(path, "r+b") as f:
            f.seek(offset)
            byte = f.read(1)[0]
            f.seek(offset)
            f.write(bytes([byte ^ 0x10]))
    with pytest.raises(hdf5.WeightsFileError, match=str(path)):
        hdf5.check_readable(path)
    with pytest.raises(hdf5.WeightsFileError):
        hdf5.read_legacy_h5(path)


def test_an_intact_file_reads_whole_and_keeps_keras2s_layout(tmp_path):
    path = write(tmp_path / "ckpt.h5")
    hdf5.check_readable(path)
    got = hdf5.read_legacy_h5(path)
    assert [n for n, _ in got] == [n for n, _ in GROUPS]
    np.testing.assert_array_equal(got[3][1][0][1], GROUPS[3][1][0][1])
    with h5py.File(path, "r") as f:  # the checksum is a standard HDF5 filter
        assert f["layer_0"]["layer_0/kernel:0"].fletcher32


def run_folder(tmp_path, epochs, name="cityscapes"):
    run = tmp_path / f"{name}20260101T0000"
    run.mkdir()
    return [write(run_dir.checkpoint_path(str(run), name, e)) for e in epochs]


def test_weights_last_falls_back_to_the_newest_checkpoint_that_reads_whole(tmp_path):
    paths = run_folder(tmp_path, [1, 2, 3])
    os.truncate(paths[2], 1000)
    overwrite(paths[1], data_offset(paths[1], "layer_1"), 256)
    warnings = []
    assert run_dir.find_last(str(tmp_path), "cityscapes", warnings.append) == paths[0]
    assert len(warnings) == 2
    for bad, line in zip(paths[:0:-1], warnings):
        assert line.startswith(f"Warning: {bad}") and line.endswith(
            f"continuing from {paths[0]} instead")


def test_weights_last_with_no_checkpoint_that_reads_whole_is_a_one_line_error(tmp_path):
    paths = run_folder(tmp_path, [1, 2])
    for p in paths:
        os.truncate(p, 10)
    with pytest.raises(UsageError) as e:
        options.last_checkpoint(str(tmp_path), "cityscapes")
    message = str(e.value)
    assert message.startswith("--weights last: no checkpoint of ") and "\n" not in message
    assert all(p in message for p in paths)


def test_the_default_warning_goes_to_stderr(tmp_path, capsys):
    paths = run_folder(tmp_path, [1, 2])
    os.truncate(paths[1], 10)
    assert run_dir.find_last(str(tmp_path), "cityscapes") == paths[0]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and paths[1] in err[0] and paths[0] in err[0]


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    save = callbacks.EpochCheckpoint(str(tmp_path), "toy")
    save.set_model(model)
    save.on_epoch_end(0)
    first = run_dir.checkpoint_path(str(tmp_path), "toy", 1)
    before = Path(first).read_bytes()
    monkeypatch.setenv(faults.ENV, "enospc_in_checkpoint:1:1")
    with pytest.raises(callbacks.CheckpointWriteError) as e:
        save.on_epoch_end(1)
    second = run_dir.checkpoint_path(str(tmp_path), "toy", 2)
    assert str(e.value) == (f"cannot write {second} (No space left on device); the previous "
                            f"checkpoint, {first}, is kept: free some space and continue "
                            "from it")
    assert e.value.__cause__.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == [os.path.basename(first)]
    assert Path(first).read_bytes() == before


def test_a_failed_first_checkpoint_write_says_there_is_none_to_go_on_from(tmp_path, monkeypatch):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")])
    save = callbacks.EpochCheckpoint(str(tmp_path), "toy")
    save.set_model(model)
    monkeypatch.setenv(faults.ENV, "enospc_in_checkpoint:1:0")
    with pytest.raises(callbacks.CheckpointWriteError, match="no earlier checkpoint of this "
                       "run was written: free some space and start again"):
        save.on_epoch_end(0)
    assert os.listdir(tmp_path) == []


def test_a_bad_fault_spec_is_named_and_no_spec_does_nothing(monkeypatch):
    monkeypatch.setenv(faults.ENV, "kill_after:3")
    with pytest.raises(ValueError, match=r"\$MRCNN_FAULT='kill_after:3'"):
        faults.fault()
    monkeypatch.delenv(faults.ENV)
    assert faults.fault() is None and faults.callbacks() == [] and (
        faults.checkpoint_progress() is None)


# ---------------------------------------------------------------- tuning
tuner = test_tuner.tuner  # the fixture: a SweepTuner over FakeHyperModel
def trial_run(tuner, trial_id, epochs, checkpoints, start=0):
    """A trial's run folder as a kill leaves it: epochs.jsonl lines up to
    `epochs`, the checkpoints of `checkpoints`."""
    run = layout.run_dir(tuner.project_dir, trial_id)
    os.makedirs(run, exist_ok=True)
    log = EpochLog(layout.epochs_file(run), start)
    log.on_train_begin()
    for e in range(start, epochs):
        log.on_epoch_end(e, {"val_loss": 5.0 - e})
    return run, [write(layout.checkpoint(run, "demo", e)) for e in checkpoints]


def test_a_killed_trial_with_a_damaged_checkpoint_goes_on_from_the_one_before(tuner, capsys):
    trial = make_trial("1", epochs=6)
    tuner.run_trial(trial)  # the first attempt: its folder and values.json
    _, (older, newest) = trial_run(tuner, "1", 3, [2, 3])
    os.truncate(newest, 100)
    tuner.run_trial(trial)  # the retry after the kill
    fit = tuner.hypermodel.fits[-1]
    assert fit["initial_epoch"] == 2 and fit["model"].loaded == [older]
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"Warning: {newest}") and line.endswith(
        f"continuing from {older} instead")


def test_a_continuation_whose_own_checkpoint_is_damaged_goes_on_from_its_parents(tuner, capsys):
    _, (parent,) = trial_run(tuner, "0", 2, [2])
    tuner.oracle.trials["0"] = make_trial("0", epochs=2, val_loss=3.0)
    trial = make_trial("1", epochs=6, initial=2, parent="0")
    tuner.run_trial(trial)
    _, (own,) = trial_run(tuner, "1", 3, [3], start=2)
    overwrite(own, data_offset(own, "layer_2"), 128)
    tuner.run_trial(trial)
    fit = tuner.hypermodel.fits[-1]
    assert fit["initial_epoch"] == 2 and fit["model"].loaded == [parent]
    err = capsys.readouterr().err
    assert own in err and f"continuing from {parent} instead" in err


def test_a_damaged_parent_checkpoint_trains_the_continuation_from_epoch_0(tuner, capsys):
    _, (parent,) = trial_run(tuner, "0", 2, [2])
    tuner.oracle.trials["0"] = make_trial("0", epochs=2, val_loss=3.0)
    os.truncate(parent, 0)
    tuner.run_trial(make_trial("1", epochs=6, initial=2, parent="0"))
    fit = tuner.hypermodel.fits[-1]
    assert fit["initial_epoch"] == 0 and fit["model"].loaded == []
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"Warning: {parent}") and line.endswith(
        "continuing from epoch 0 instead")


def test_a_full_disk_in_a_trial_stops_the_sweep(tuner):
    class FullDisk(FakeHyperModel):
        def fit(self, hp, model, *args, **kwargs):
            raise callbacks.CheckpointWriteError("ckpt.h5", None, OSError(errno.ENOSPC, "full"))

    tuner.hypermodel = FullDisk()
    with pytest.raises(TrialStoppedError, match="trial_0: cannot write ckpt.h5 .full."):
        tuner.run_trial(make_trial("0", epochs=2))
    assert isinstance(TrialStoppedError("x"), keras_tuner.errors.FatalError)
