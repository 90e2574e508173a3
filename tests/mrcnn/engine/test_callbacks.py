"""Tests for mrcnn/engine/callbacks.py with a stand-in model (no network needed)."""

import math
import types

import pytest

from mrcnn.config import LOSS_NAMES
from mrcnn.engine import callbacks


def fake_model(lr=0.01):
    return types.SimpleNamespace(optimizer=types.SimpleNamespace(learning_rate=lr),
                                 stop_training=False)


def logs(loss, val=None):
    out = {"loss": loss, **{n: loss / 5 for n in LOSS_NAMES}}
    if val is not None:
        out.update(val_loss=val, **{f"val_{n}": val / 5 for n in LOSS_NAMES})
    return out


def test_non_finite_loss_names_epoch_step_and_lr():
    cb = callbacks.StopOnNonFinite()
    cb.set_model(fake_model(0.5))
    cb.on_epoch_begin(2)
    cb.on_train_batch_end(0, {"loss": 1.0})
    with pytest.raises(callbacks.NonFiniteLossError) as e:
        cb.on_train_batch_end(6, {"loss": float("nan")})
    assert (e.value.epoch, e.value.step, e.value.lr) == (3, 7, 0.5)
    assert "step 7 of epoch 3" in str(e.value) and "learning rate 0.5" in str(e.value)
    with pytest.raises(callbacks.NonFiniteLossError, match="val_loss became inf"):
        cb.on_epoch_end(2, logs(1.0, float("inf")))


def test_history_rows_and_resume_truncation(tmp_path):
    path = str(tmp_path / "history.csv")
    cb = callbacks.HistoryCSV(path)
    cb.set_model(fake_model(0.01))
    cb.on_train_begin()
    for epoch in range(3):
        cb.on_epoch_begin(epoch)
        cb.on_epoch_end(epoch, logs(3.0 - epoch, 4.0 - epoch))
    rows = callbacks.read_history(path)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[1]["loss"] == 2.0 and rows[1]["val_loss"] == 3.0 and rows[1]["lr"] == 0.01
    assert rows[2]["val_mrcnn_mask_loss"] == pytest.approx(2.0 / 5)
    # A run resumed from the checkpoint of epoch 2 drops the row of epoch 3.
    resumed = callbacks.HistoryCSV(path, start_epoch=2)
    resumed.set_model(fake_model(0.001))
    resumed.on_train_begin()
    assert [r["epoch"] for r in callbacks.read_history(path)] == [1, 2]
    resumed.on_epoch_begin(2)
    resumed.on_epoch_end(2, logs(0.5))  # no validation this epoch: empty val columns
    rows = callbacks.read_history(path)
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[2]["lr"] == 0.001
    assert math.isnan(rows[2]["val_loss"])


def test_best_epoch_early_stopping_across_calls_and_resume():
    history = [{"epoch": 1, "val_loss": 3.0}, {"epoch": 2, "val_loss": 2.0},
               {"epoch": 3, "val_loss": 2.5}]
    best = callbacks.BestEpoch(patience=2, history=history)
    assert (best.best_epoch, best.best, best.stopped) == (2, 2.0, False)
    model = fake_model()
    best.set_model(model)
    best.on_epoch_end(3, {"val_loss": 2.2})  # epoch 4: 2 epochs without progress
    assert best.stopped and model.stop_training and best.best_epoch == 2
    tracker = callbacks.BestEpoch(history=history + [{"epoch": 4, "val_loss": float("nan")}])
    assert tracker.best_epoch == 2 and not tracker.stopped  # no patience: never stops
