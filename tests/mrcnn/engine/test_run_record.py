"""Tests for mrcnn/engine/run_record.py: the run folder's journal, and the
Config of each checkpoint (mrcnn/engine/inference.py run_config)."""

import json

import pytest

from mrcnn import files
from mrcnn.config import Config
from mrcnn.engine import run_record
from mrcnn.engine.inference import RunRecordError, run_config


class Small(Config):
    NAME = "small"
    NUM_CLASSES = 3


def config(**fields):
    return Small.from_dict(fields)


def checkpoint(run, epoch):
    return str(run / f"mask_rcnn_small_{epoch:04d}.h5")


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "small20260101T1200"
    folder.mkdir()
    return folder


def test_invocations_append_and_config_json_is_written_once(run):
    assert run_record.start(str(run), config(IMAGE_MAX_DIM=832), 0, {"options": {"lr": 1}}) == 1
    first = (run / "config.json").read_text()
    assert run_record.start(str(run), config(IMAGE_MAX_DIM=1024), 3) == 2
    assert (run / "config.json").read_text() == first
    assert json.loads(first)["IMAGE_MAX_DIM"] == 832
    lines = [json.loads(line) for line in (run / "runs.jsonl").read_text().splitlines()]
    assert [(e["invocation"], e["start_epoch"]) for e in lines] == [(1, 0), (2, 3)]
    assert lines[0]["options"] == {"lr": 1} and "options" not in lines[1]
    assert list(lines[0]) == ["invocation", "started", "start_epoch", "options", "config"]


def test_each_checkpoint_has_its_writer_the_latest_one(run):
    one = run_record.start(str(run), config(), 0)
    for epoch in (1, 2):
        run_record.checkpoint_written(str(run), one, checkpoint(run, epoch))
    two = run_record.start(str(run), config(), 1)  # continues from epoch 1, rewrites epoch 2
    run_record.checkpoint_written(str(run), two, checkpoint(run, 2))
    assert run_record.writer(checkpoint(run, 1))["invocation"] == 1
    assert run_record.writer(checkpoint(run, 2))["invocation"] == 2
    assert json.loads((run / "runs.jsonl").read_text().splitlines()[-1]) == {
        "checkpoint": "mask_rcnn_small_0002.h5", "epoch": 2, "invocation": 2}


def test_a_checkpoint_without_its_line_goes_to_the_last_invocation_before_its_epoch(run):
    """A crash between the checkpoint file and its line."""
    run_record.start(str(run), config(), 0)
    run_record.start(str(run), config(), 2)
    run_record.start(str(run), config(), 5)  # stopped before writing one
    assert run_record.writer(checkpoint(run, 2))["invocation"] == 1
    assert run_record.writer(checkpoint(run, 3))["invocation"] == 2
    assert run_record.writer(str(run / "other.h5")) is None
    assert run_record.writer(checkpoint(run.parent, 1)) is None  # no journal


def test_a_line_cut_short_is_skipped_with_a_warning_and_the_next_starts_afresh(run, capsys):
    run_record.start(str(run), config(), 0)
    with open(run / "runs.jsonl", "a") as f:
        f.write('{"checkpoint": "mask_rcnn_sm')  # a crash in the middle of a write
    assert run_record.start(str(run), config(), 0) == 2
    assert [e["invocation"] for e in run_record.read(str(run))] == [1, 2]
    assert f"{run / 'runs.jsonl'}:2: not a JSON object" in capsys.readouterr().err


def test_append_line_creates_and_appends(tmp_path):
    path = tmp_path / "log.txt"
    files.append_line(path, "a")
    files.append_line(path, "b")
    assert path.read_text() == "a\nb\n"


def test_run_config_is_the_config_of_the_checkpoints_writer(run):
    """A run continued with another image size: each checkpoint is detected
    at the size it was trained at."""
    for number, (size, epoch) in enumerate(((832, 1), (1024, 2)), 1):
        run_record.start(str(run), config(IMAGE_MAX_DIM=size), epoch - 1)
        run_record.checkpoint_written(str(run), number, checkpoint(run, epoch))
    assert run_config(checkpoint(run, 1)).IMAGE_MAX_DIM == 832
    assert run_config(checkpoint(run, 2)).IMAGE_MAX_DIM == 1024
    (run / "runs.jsonl").unlink()  # a folder from before the journal: config.json
    assert run_config(checkpoint(run, 2)).IMAGE_MAX_DIM == 832
    (run / "config.json").write_text("{")
    with pytest.raises(RunRecordError, match="config.json: not valid JSON"):
        run_config(checkpoint(run, 2))
