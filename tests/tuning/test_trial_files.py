"""Tests for a trial's run folder (tuning/callbacks.py, tuning/tuner.py,
tuning/hypermodel.py): epochs.jsonl, checkpoint pruning, where a killed
trial goes on from, scores, and the chief / worker roles. No model built."""

import json
import math

import pytest

from cli import UsageError
from tuning import callbacks, layout, objectives, tuner
from tuning.hypermodel import metrics_of


def touch_checkpoint(run, epoch, name="cityscapes"):
    path = layout.checkpoint(str(run), name, epoch)
    open(path, "wb").close()
    return path


def log_epochs(run, *epochs, start=0):
    log = callbacks.EpochLog(layout.epochs_file(str(run)), start)
    log.on_train_begin()
    for e in epochs:
        log.on_epoch_end(e - 1, {"loss": 3.0 / e, "val_loss": 4.0 / e, "note": "x"})
    return log


def test_epoch_log_rows_and_restart(tmp_path):
    log_epochs(tmp_path, 1, 2, 3)
    rows = callbacks.read_epochs(layout.epochs_file(str(tmp_path)))
    assert rows == [{"epoch": e, "loss": 3.0 / e, "val_loss": 4.0 / e} for e in (1, 2, 3)]
    log_epochs(tmp_path, 2, start=1)  # a retried trial that went on from epoch 1
    rows = callbacks.read_epochs(layout.epochs_file(str(tmp_path)))
    assert [r["epoch"] for r in rows] == [1, 2]


def test_read_epochs_ignores_a_line_cut_by_a_kill(tmp_path):
    log_epochs(tmp_path, 1, 2)
    path = layout.epochs_file(str(tmp_path))
    with open(path, "a") as f:
        f.write('{"epoch": 3, "val_lo')
    assert [r["epoch"] for r in callbacks.read_epochs(path)] == [1, 2]
    assert callbacks.read_epochs(str(tmp_path / "absent.jsonl")) == []


def test_prune_keeps_the_one_before_the_newest_until_training_ends(tmp_path):
    for e in (1, 2, 3):
        touch_checkpoint(tmp_path, e)
    (tmp_path / ".mask_rcnn_cityscapes_0004.h5.tmp").write_text("being written")
    prune = callbacks.PruneCheckpoints(str(tmp_path))
    prune.on_epoch_end(2)  # epoch 3 ended
    assert layout.checkpoint_epochs(str(tmp_path)) == [2, 3]
    prune.on_train_end()
    assert layout.checkpoint_epochs(str(tmp_path)) == [3]
    assert (tmp_path / ".mask_rcnn_cityscapes_0004.h5.tmp").exists()


def test_resume_epochs_need_checkpoint_and_line(tmp_path):
    assert tuner.resume_epochs(str(tmp_path / "none"), 0, 5) == []
    log_epochs(tmp_path, 1, 2)
    touch_checkpoint(tmp_path, 1)
    touch_checkpoint(tmp_path, 2)
    assert tuner.resume_epochs(str(tmp_path), 0, 5) == [2, 1]
    touch_checkpoint(tmp_path, 3)  # epoch 3's line never written: killed in between
    assert tuner.resume_epochs(str(tmp_path), 0, 5) == [2, 1]
    assert tuner.resume_epochs(str(tmp_path), 1, 5) == [2]  # after tuner/initial_epoch only
    assert tuner.resume_epochs(str(tmp_path), 0, 1) == [1]  # up to tuner/epochs


def test_prepare_run_folder_keeps_same_values_only(tmp_path):
    run = tmp_path / "run"
    values = {"lr": 1e-4, "tuner/epochs": 3, "tuner/initial_epoch": 0}
    tuner.prepare_run_folder(str(run), values)
    touch_checkpoint(run, 1)
    tuner.prepare_run_folder(str(run), dict(values))
    assert layout.checkpoint_epochs(str(run)) == [1]
    tuner.prepare_run_folder(str(run), dict(values, lr=1e-5))  # another trial, same id
    assert layout.checkpoint_epochs(str(run)) == []
    assert json.loads((run / "values.json").read_text())["lr"] == 1e-5


def test_metrics_of_the_best_epoch():
    rows = [{"epoch": 2, "loss": 3.0, "val_loss": 2.0, "val_ap": 0.2},
            {"epoch": 3, "loss": 2.5, "val_loss": 2.2, "val_ap": 0.3}]
    assert metrics_of("val_loss", rows) == {"val_loss": 2.0, "best_epoch": 2.0, "loss": 3.0}
    assert metrics_of("val_ap", rows)["best_epoch"] == 3.0
    with pytest.raises(ValueError, match="no epoch with a finite val_loss"):
        metrics_of("val_loss", [{"epoch": 1, "val_loss": math.nan}])


def test_objectives():
    assert objectives.worst("val_loss") == math.inf and objectives.worst("val_ap") == -math.inf
    assert objectives.objective("val_ap").direction == "max"
    with pytest.raises(UsageError, match="--objective mAP"):
        objectives.check("mAP")


@pytest.mark.parametrize("env, expected", [
    ({}, "standalone"),
    ({"KERASTUNER_ORACLE_IP": "10.0.0.1", "KERASTUNER_ORACLE_PORT": "8000",
      "KERASTUNER_TUNER_ID": "chief"}, "chief"),
    ({"KERASTUNER_ORACLE_IP": "10.0.0.1", "KERASTUNER_ORACLE_PORT": "8000",
      "KERASTUNER_TUNER_ID": "tuner3"}, "worker"),
])
def test_role(monkeypatch, env, expected):
    for name in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tuner.role() == expected


def test_role_with_missing_variables(monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "10.0.0.1")
    monkeypatch.delenv("KERASTUNER_ORACLE_PORT", raising=False)
    monkeypatch.delenv("KERASTUNER_TUNER_ID", raising=False)
    with pytest.raises(UsageError, match="KERASTUNER_ORACLE_PORT and KERASTUNER_TUNER_ID not"):
        tuner.role()
