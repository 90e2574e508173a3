"""Bad images in train.py, evaluate.py and python -m tuning, in-process on a
tiny synthetic Cityscapes folder: a truncated PNG (valid header, half the
bytes) is found when loading, before a model is built (exit 2 naming it),
or skipped with --skip_bad (counted and named in the output and the run's
skipped.json); files that fail to load during training (changed under the
run) stop it with exit 2 past 1 % of the images, the checkpoints kept."""

import json
import logging
from pathlib import Path

import pytest

import evaluate
import train
from cityscapes import options, trainer
from cityscapes.config import DemoConfig
from cityscapes.dataset import CityscapesDataset
from cityscapes.synthetic import generate
from mrcnn.engine import skipped
from tests.commands import exit_code
from tuning import __main__ as tuning_main
from tuning import sweep

TRUNCATED = "cannot be decoded: image file is truncated"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """3 train and 2 val scenes of 64 x 128; one train image truncated."""
    root = tmp_path_factory.mktemp("cs")
    generate(root, seed=4, height=64, width=128, images={"train": 3, "val": 2, "test": 0})
    bad = sorted((root / "leftImg8bit" / "train").rglob("*_leftImg8bit.png"))[1]
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    return str(root), str(bad)


def tiny(root, logs, cache, *extra):
    return ["--dataset", root, "--weights", "none", "--backbone", "resnet14",
            "--image_min_dim", "64", "--image_max_dim", "128", "--steps_per_epoch", "1",
            "--validation_steps", "1", "--layers", "heads", "--epochs", "1",
            "--logs", str(logs), "--mask_cache", "none", "--decode_cache", str(cache),
            "--seed", "0", *extra]


def test_train_stops_before_the_model_then_skips_and_trains(dataset, tmp_path, capsys,
                                                             monkeypatch, caplog):
    root, bad = dataset
    logs, cache = tmp_path / "logs", tmp_path / "decoded.json"
    monkeypatch.setattr(options, "config_class", lambda dataset: DemoConfig)  # small heads
    built = []
    monkeypatch.setattr(trainer, "build_model",
                        lambda plan, build=trainer.build_model: built.append(1) or build(plan))

    assert exit_code(train.main, tiny(root, logs, cache)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("train.py: error: --dataset ")
    assert f"{bad}: {TRUNCATED} (--skip_bad leaves bad images out)" in err[0]
    assert not built and not logs.exists()  # no model, no run folder

    assert exit_code(train.main, tiny(root, logs, cache, "--skip_bad")) == 0
    out = capsys.readouterr().out
    named = f"1 image skipped (1 at load time): {bad} ({TRUNCATED})"
    # The first image decoded fine before the stop: the cache knows it.
    assert "train: 2 images (2 decoded in " in out and f"1 known to the decode cache); {named}"
    assert "val: 2 images (2 decoded in " in out
    (run,) = logs.iterdir()
    assert out.strip().splitlines()[-1].endswith(f"; {named} (listed in skipped.json)")
    assert [(e["path"], e["reason"], e["stage"], e["split"]) for e in skipped.read(run)] == [
        (bad, TRUNCATED, "load", "train")]
    summary = json.loads((run / "summary.json").read_text())
    assert [e["path"] for e in summary["skipped"]] == [bad]
    first = run / "mask_rcnn_demo_0001.h5"
    stamp = first.read_bytes()

    # Files changed under the run: every train image fails to load in
    # epoch 2 (2 of 2 > 1 %): exit 2 naming them, epoch 1's checkpoint as
    # it was, no checkpoint of epoch 2.
    def broken(self, image_id):
        if "/train/" in self.image_info[image_id]["path"]:
            raise OSError("image file is truncated")
        return load_image(self, image_id)

    load_image = CityscapesDataset.load_image
    monkeypatch.setattr(trainer, "build_model", lambda plan, build=trainer.build_model: (
        monkeypatch.setattr(CityscapesDataset, "load_image", broken), build(plan))[1])
    with caplog.at_level(logging.WARNING, logger="mrcnn.data.feed_failures"):
        assert exit_code(train.main, ["--dataset", root, "--weights", "last", "--logs",
                                      str(logs), "--epochs", "2"]) == 2
    captured = capsys.readouterr()
    assert "train: 2 images (1 decoded in" in captured.out  # the bad one, again
    assert "val: 2 images (0 decoded in" in captured.out
    err = captured.err.strip().splitlines()
    assert err[-1].startswith("train.py: error: 1 of 2 train images failed to load during "
                              "training (more than 1% of them): ")
    assert err[-1].endswith("training stopped, the checkpoints written so far are kept "
                            f"(listed in {run / 'skipped.json'})")
    # The first failure is counted, warned about, and (1 > 1 % of 2) stops the run.
    warnings = [r.getMessage() for r in caplog.records if r.name == "mrcnn.data.feed_failures"]
    assert len(warnings) == 1 and warnings[0].endswith(
        f"{TRUNCATED} (1 of 2 images failed to load so far; more than 0 stops the run)")
    assert first.read_bytes() == stamp and not (run / "mask_rcnn_demo_0002.h5").exists()
    feed = [e for e in skipped.read(run) if e["stage"] == "feed"]
    assert len(feed) == 1 and feed[0]["split"] == "train" and feed[0]["reason"] == TRUNCATED
    assert feed[0]["path"] in err[-1] and feed[0]["times"] == 1


def test_evaluate_names_or_skips_the_bad_image(dataset, tmp_path, capsys):
    root, _ = dataset
    val = min(Path(root, "leftImg8bit", "val").rglob("*_leftImg8bit.png"))
    predictions = tmp_path / "empty.json"
    predictions.write_text("[]")
    argv = ["--dataset", root, "--predictions", str(predictions), "--decode_cache", "none"]
    saved = val.read_bytes()
    try:
        val.write_bytes(saved[: len(saved) // 2])
        assert exit_code(evaluate.main, argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("evaluate.py: error: --dataset ") and f"{val}: {TRUNCATED}" in err
        report = tmp_path / "report"
        assert exit_code(evaluate.main, [*argv, "--skip_bad", "--report", str(report)]) == 0
        out = capsys.readouterr().out
        assert f"1 image skipped (1 at load time): {val} ({TRUNCATED}): not scored" in out
        assert "over 1 images" in out
        assert [e["path"] for e in skipped.read(report)] == [str(val)]
    finally:
        val.write_bytes(saved)


def test_tuning_takes_skip_bad_and_leaves_the_image_out_of_every_trial(dataset, tmp_path,
                                                                       capsys, monkeypatch):
    root, bad = dataset
    for name in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        monkeypatch.delenv(name, raising=False)
    argv = ["--stage", "fine", "--optimizer", "sgd", "--dataset", root, "--weights", "none",
            "--backbone", "resnet50", "--directory", str(tmp_path), "--decode_cache", "none",
            "--train_images", "0", "--val_images", "0"]
    assert exit_code(tuning_main.main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m tuning: error: --dataset ") and f"{bad}: {TRUNCATED}" in err

    settings = tuning_main.settings_of(tuning_main.build_parser().parse_args([*argv,
                                                                              "--skip_bad"]))
    assert settings.options["skip_bad"] is True
    data = sweep.prepare(settings)["data"]
    assert len(data.train.image_ids) == 2 and data.train.skipped == [(bad, TRUNCATED)]
    monkeypatch.setattr(sweep, "make_tuner", lambda s, p: _NoTrials(tmp_path / "fine_sgd"))
    monkeypatch.setattr(sweep.results, "write", lambda *a: ("results.md", "results.json"))
    sweep.run(settings)
    assert f"1 image skipped (1 at load time): {bad} ({TRUNCATED})" in capsys.readouterr().out
    assert [e["path"] for e in skipped.read(tmp_path / "fine_sgd")] == [bad]


class _NoTrials:
    """A tuner with nothing to search (the trials are tested in tests/tuning/)."""

    def __init__(self, project_dir):
        self.project_dir = str(project_dir)

    def search(self):
        pass
