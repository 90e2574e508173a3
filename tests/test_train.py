"""train.py end to end in subprocesses: one-line errors, run folder, SIGKILL
and resume, NaN stop. A tiny configuration (128 x 256 synthetic scenes,
ResNet-50, heads only, 3 steps per epoch) keeps each run under a minute."""

import math
import os
import signal
import subprocess
import sys
import time

import pytest

from cityscapes.synthetic import generate
from mrcnn.checkpoint import hdf5
from mrcnn.engine import callbacks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_cmd(*args):
    return [sys.executable, os.path.join(ROOT, "train.py"), *args]


# As a user's shell has it: train.py's own TF_CPP_MIN_LOG_LEVEL default applies.
ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def run_train(*args, timeout=300):
    return subprocess.run(train_cmd(*args), capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=ENV)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("cs")
    generate(out, seed=2, height=128, width=256, images={"train": 4, "val": 2, "test": 0})
    return str(out)


@pytest.mark.parametrize("args, message", [
    (["--optimizer", "rmsprop"], "argument --optimizer: invalid choice: 'rmsprop'"),
    (["--dataset", "{tmp}"], "leftImg8bit/train: no such folder"),
    (["--dataset", "{data}", "--weights", "coco", "--backbone", "resnet50"],
     "COCO weights are ResNet-101"),
])  # the other checks are tested in-process: tests/cityscapes/test_trainer.py
def test_bad_input_one_line_exit_2(tmp_path, dataset, args, message):
    args = [a.format(tmp=tmp_path, data=dataset) for a in args]
    result = run_train(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("train.py: error:") and message in lines[0]


def tiny(dataset, logs, *extra):
    return ["--dataset", dataset, "--weights", "none", "--backbone", "resnet50",
            "--image_min_dim", "128", "--image_max_dim", "256", "--steps_per_epoch", "3",
            "--validation_steps", "1", "--layers", "heads", "--logs", str(logs),
            "--mask_cache", "none", "--seed", "0", *extra]


def wait_for(path, proc, timeout):
    end = time.time() + timeout
    while not os.path.exists(path):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < end, f"{path} did not appear in {timeout} s"
        time.sleep(0.2)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_then_nan_stop(tmp_path, dataset):
    logs = tmp_path / "logs"
    proc = subprocess.Popen(train_cmd(*tiny(dataset, logs, "--epochs", "3")), cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        (run,) = _wait_for_run(logs, proc)
        first = run / "mask_rcnn_cityscapes_0001.h5"
        wait_for(first, proc, 240)
        time.sleep(1.5)  # into epoch 2 (3 steps of about 1 s)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (run / "mask_rcnn_cityscapes_0002.h5").exists(), "killed too late"
    stamp = first.stat().st_mtime_ns
    assert [r["epoch"] for r in callbacks.read_history(run / "history.csv")] == [1]

    # --weights last continues the run: same folder, epochs 2 and 3, options from the run.
    result = run_train("--dataset", dataset, "--weights", "last", "--logs", str(logs))
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Continuing {run} after epoch 1" in result.stdout
    assert f"Run {run}: epochs 2-3" in result.stdout.strip().splitlines()[-1]
    assert first.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in run.glob("*.h5")) == [
        f"mask_rcnn_cityscapes_{e:04d}.h5" for e in (1, 2, 3)]
    rows = callbacks.read_history(run / "history.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["val_loss"]) for r in rows)
    for name in ("config.json", "train_args.json", "summary.json"):
        assert (run / name).is_file()
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))

    # A learning rate of 1e30 makes the loss non-finite in epoch 4: exit 3,
    # a message naming epoch, step and rate, and epoch 3's checkpoint intact.
    result = run_train("--dataset", dataset, "--weights", "last", "--logs", str(logs),
                       "--epochs", "4", "--optimizer", "sgd", "--lr", "1e30")
    assert result.returncode == 3, result.stderr[-3000:]
    message = result.stderr.strip().splitlines()[-1]
    assert "of epoch 4" in message and "learning rate 1e+30" in message, message
    assert not (run / "mask_rcnn_cityscapes_0004.h5").exists()
    for _, values in hdf5.read_legacy_h5(run / "mask_rcnn_cityscapes_0003.h5"):
        assert all(math.isfinite(float(abs(v).max())) for _, v in values if v.size)


def _wait_for_run(logs, proc, timeout=120):
    end = time.time() + timeout
    while not (logs.exists() and list(logs.iterdir())):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < end, "no run folder"
        time.sleep(0.2)
    return list(logs.iterdir())
