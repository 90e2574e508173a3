"""train.py end to end in subprocesses: one-line errors for bad input.
A run killed, continued and stopped by a NaN loss: tests/faults/test_train_faults.py."""

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
