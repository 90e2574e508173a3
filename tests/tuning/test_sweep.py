"""python -m tuning end to end on the CPU: a tiny Hyperband sweep (64 x 128
synthetic scenes, ResNet-50 heads, 1 step per epoch) in which a trial
diverges, Hyperband continues a trial from its checkpoint, and a SIGKILL in
the middle of a trial's checkpoint write (the fault hook, tests/faults/) is
followed by a re-run of the same command that finishes the sweep without
running the finished trials again.

max_epochs 2, factor 2, --max_trials 4 and oracle seed 2 give, in order:
trial 0 (lr 1e-4, 1 epoch), trial 1 (lr 1e30: NaN, 1 epoch), trial 2
(continues trial 0 to epoch 2) and trial 3 (lr 3e-5, epochs 1-2, killed
while writing epoch 2's checkpoint)."""

import json
import math
import os
import re
import signal
import subprocess
import sys

import pytest

from cityscapes import options
from cityscapes.synthetic import generate
from mrcnn import files
from mrcnn.engine import faults
from mrcnn.engine.schedule import Stage
from tuning import layout
from tuning.callbacks import read_epochs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {k: v for k, v in os.environ.items()
       if k != "TF_CPP_MIN_LOG_LEVEL" and not k.startswith("KERASTUNER_")}
SPACE = {"weights": "none", "backbone": "resnet50", "lr": [1e-4, 1e30, 3e-5],
         "momentum": 0.9, "weight_decay": 1e-4}


def tiny_sweep(dataset, space, directory, *extra):
    return [sys.executable, "-m", "tuning", "--dataset", dataset, "--stage", "fine",
            "--optimizer", "sgd", "--space", str(space), "--train_images", "0",
            "--val_images", "0", "--image_min_dim", "64", "--image_max_dim", "128",
            "--steps_per_epoch", "1", "--validation_steps", "1", "--layers", "heads",
            "--mask_cache", "none", "--directory", str(directory), *extra]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("cs")
    generate(out, seed=2, height=64, width=128, images={"train": 3, "val": 2, "test": 0})
    return str(out)


def trial(project, trial_id):
    with open(os.path.join(layout.trial_dir(project, trial_id), "trial.json")) as f:
        return json.load(f)


def worker_pid(project, trial_id):
    with open(layout.worker_file(project, trial_id)) as f:
        return json.load(f)["pid"]


@pytest.mark.slow
def test_nan_continuation_kill_and_resume(tmp_path, dataset):
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPACE))
    best = tmp_path / "best.json"
    cmd = tiny_sweep(dataset, space, tmp_path / "sweeps", "--project", "tiny",
                     "--max_epochs", "2", "--factor", "2", "--max_trials", "4", "--seed", "2",
                     "--export_best", str(best))
    project = str(tmp_path / "sweeps" / "tiny")
    run3 = layout.run_dir(project, "3")

    # SIGKILL in the middle of the sweep's 4th checkpoint write (trial 0
    # epoch 1, trial 2 epoch 2, trial 3 epoch 1, trial 3 epoch 2): the hook
    # of mrcnn/engine/faults.py.
    first = subprocess.run(cmd, cwd=ROOT, env={**ENV, faults.ENV: "kill_in_checkpoint:4"},
                           capture_output=True, text=True, timeout=400, check=False)
    assert first.returncode == -signal.SIGKILL, first.stdout[-3000:] + first.stderr[-3000:]
    assert layout.checkpoint_epochs(run3) == [1]
    (partial,) = files.leftover_temp_files(run3)
    assert "mask_rcnn_cityscapes_0002.h5" in partial
    lrs = {t: trial(project, t)["hyperparameters"]["values"]["lr"] for t in "0123"}
    assert lrs == {"0": 1e-4, "1": 1e30, "2": 1e-4, "3": 3e-5}, (
        f"the oracle (seed 2) no longer gives the trial order this test expects: {lrs}")
    assert [trial(project, t)["status"] for t in "0123"] == ["COMPLETED"] * 3 + ["RUNNING"]
    done_before = {t: (worker_pid(project, t), trial(project, t)["score"]) for t in "012"}

    second = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=400)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    # Finished trials were not run again; the killed one went on from its epoch 1.
    assert {t: (worker_pid(project, t), trial(project, t)["score"])
            for t in "012"} == done_before
    assert worker_pid(project, "3") != done_before["0"][0]
    assert f"Removed {partial}" in second.stdout and not os.path.exists(partial)
    assert (f"trial_3 on tuner0: epochs 2-2 from {run3}/mask_rcnn_cityscapes_0001.h5"
            in second.stdout)
    assert "trial_0 on" not in second.stdout and "trial_2 on" not in second.stdout
    assert [r["epoch"] for r in read_epochs(layout.epochs_file(run3))] == [1, 2]
    assert layout.checkpoint_epochs(run3) == [2]

    # The NaN trial: worst score, never continued.
    nan = trial(project, "1")
    assert nan["status"] == "COMPLETED" and nan["score"] == math.inf
    with open(layout.non_finite_file(layout.run_dir(project, "1"))) as f:
        # lr 1e30 blows up at the first step: NaN or Inf, whichever loss comes first.
        assert re.search(r"became (nan|inf) ", json.load(f)["message"])

    # Hyperband's continuation: trial 2 started from trial 0's epoch-1 checkpoint.
    values = trial(project, "2")["hyperparameters"]["values"]
    assert (values["tuner/trial_id"], values["tuner/initial_epoch"], values["tuner/epochs"]) == (
        "0", 1, 2)
    run0, run2 = layout.run_dir(project, "0"), layout.run_dir(project, "2")
    assert layout.checkpoint_epochs(run0) == [1] and layout.checkpoint_epochs(run2) == [2]
    rows0, rows2 = read_epochs(layout.epochs_file(run0)), read_epochs(layout.epochs_file(run2))
    assert rows2[0] == rows0[0] and [r["epoch"] for r in rows2] == [1, 2]
    assert trial(project, "2")["score"] == rows2[1]["val_loss"]

    # Results and the export for train.py --hparams.
    with open(os.path.join(project, "results.json")) as f:
        data = json.load(f)
    scores = {t: trial(project, t)["score"] for t in "023"}
    expected = sorted(["2", "3"], key=scores.get)  # trial 0's configuration is trial 2's
    assert [b["trial_id"] for b in data["best"]] == expected and data["diverged"] == ["1"]
    with open(os.path.join(project, "results.md")) as f:
        text = f.read()
    assert "## Diverged (NaN / Inf loss)" in text and "| 1 | sgd | 1e+30 |" in text
    # The export holds everything train.py needs to train the best trial again.
    hparams = options.read_hparams(str(best))
    assert {k: hparams[k] for k in ("optimizer", "lr", "momentum", "weight_decay", "weights",
                                    "backbone")} == {
        "optimizer": "sgd", "lr": lrs[expected[0]], "momentum": 0.9, "weight_decay": 1e-4,
        "weights": "none", "backbone": "resnet50"}
    o, _ = options.resolve({"hparams": str(best)})
    assert (o.dataset, o.train_images, o.val_images, o.image_min_dim, o.image_max_dim,
            o.steps_per_epoch, o.layers, o.mask_cache) == (dataset, 3, 2, 64, 128, 1, "heads",
                                                          "none")
    assert options.stages(o) == [Stage("heads", trial(project, expected[0])[
        "hyperparameters"]["values"]["tuner/epochs"])]
