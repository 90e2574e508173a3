"""train.py end to end in subprocesses: one-line errors for bad input;
--gpus 2 over --cpu_devices 2. A run killed, continued and stopped by a NaN
loss: tests/faults/test_train_faults.py."""

import pytest

from cityscapes.synthetic import generate
from tests.commands import run_train


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


TINY = ["--weights", "none", "--backbone", "resnet14", "--image_min_dim", "64",
        "--image_max_dim", "128", "--steps_per_epoch", "1", "--validation_steps", "1",
        "--layers", "heads", "--epochs", "1", "--mask_cache", "none", "--no-evaluate",
        "--seed", "0"]


def test_gpus_without_the_devices_is_a_usage_error(tmp_path, dataset):
    result = run_train("--dataset", dataset, "--logs", str(tmp_path), *TINY, "--gpus", "2")
    assert result.returncode == 2, result.stderr
    assert "replicas" not in result.stdout.splitlines()[0]
    assert result.stderr.strip().endswith("(--cpu_devices N splits the CPU)")


@pytest.mark.slow  # a step on 2 replicas, in a subprocess: 45-65 s on 2 cores
def test_gpus_over_logical_cpu_devices_trains_on_two_replicas(tmp_path, dataset):
    result = run_train("--dataset", dataset, "--logs", str(tmp_path), *TINY,
                       "--gpus", "2", "--cpu_devices", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    first = result.stdout.splitlines()[0]
    assert "2 logical CPU devices; replicas: 2 (CPU:0, CPU:1); precision: float32" in first
    assert "XLA: off (auto, no GPU)" in first
    assert "mask_rcnn_cityscapes_0001.h5" in result.stdout.splitlines()[-1]
