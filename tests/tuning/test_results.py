"""Tests for tuning/results.py on trial.json files written as Keras Tuner
writes them: ranking, the Markdown / JSON results, --export_best read back
by train.py's --hparams."""

import json
import math

import keras_tuner
import pytest

from cityscapes import options
from mrcnn.engine.schedule import Stage
from tuning import layout, results

META = {"stage": "fine", "objective": "val_loss", "max_epochs": 20, "factor": 3,
        "train_images": 154, "val_images": 59, "project": "fine_sgd",
        "space": {"optimizer": "sgd", "lr": {}, "momentum": {}, "weight_decay": {}},
        "hparams": {"weights": "coco", "backbone": "resnet101"},
        "train_options": {"weights": "coco", "backbone": "resnet101", "image_min_dim": 512,
                          "train_images": 154, "dataset": "/data/cs", "seed": 3}}


def write_trial(project, trial_id, values, score=None, status="COMPLETED", metrics=None,
                message=None, worker=None):
    """trial_{id}/trial.json as Keras Tuner's Trial.get_state() writes it."""
    hp = keras_tuner.HyperParameters()
    hp.values = dict(values)
    trial = keras_tuner.engine.trial.Trial(hp, trial_id=trial_id, status=status,
                                           message=message)
    for name, value in (metrics or {}).items():
        trial.metrics.update(name, value)
    trial.score = score
    path = layout.trial_dir(str(project), trial_id)
    (project / f"trial_{trial_id}").mkdir()
    with open(f"{path}/trial.json", "w") as f:
        json.dump(trial.get_state(), f)
    if worker:
        with open(layout.worker_file(str(project), trial_id), "w") as f:
            json.dump({"tuner_id": worker}, f)


def sgd(lr, momentum=0.9, wd=1e-3, epochs=2, initial=0, parent=None):
    values = {"optimizer": "sgd", "lr": lr, "momentum": momentum, "weight_decay": wd,
              "tuner/epochs": epochs, "tuner/initial_epoch": initial}
    if parent is not None:
        values["tuner/trial_id"] = parent
    return values


@pytest.fixture
def project(tmp_path):
    write_trial(tmp_path, "00", sgd(3e-5), 2.5, metrics={"val_loss": 2.5}, worker="tuner0")
    write_trial(tmp_path, "01", sgd(9e-5, 0.95), 2.1, metrics={"val_loss": 2.1},
                worker="tuner1")
    # trial 02 continues 01 to 7 epochs: same configuration, better score
    write_trial(tmp_path, "02", sgd(9e-5, 0.95, epochs=7, initial=2, parent="01"), 1.7,
                metrics={"val_loss": 1.7}, worker="tuner0")
    write_trial(tmp_path, "03", sgd(1e-3), math.inf,
                metrics={"val_loss": math.inf, "non_finite_epoch": 1.0})
    write_trial(tmp_path, "04", sgd(2e-5), status="FAILED",
                message="Traceback (most recent call last):\n  ...\nMemoryError: OOM")
    write_trial(tmp_path, "05", sgd(4e-5), status="RUNNING")
    return tmp_path


def test_collect_reads_trials_and_workers(project):
    records = results.collect(str(project))
    assert [r["trial_id"] for r in records] == ["00", "01", "02", "03", "04", "05"]
    r = records[2]
    assert (r["values"], r["epochs"], r["initial_epoch"], r["continues"], r["worker"]) == (
        {"optimizer": "sgd", "lr": 9e-5, "momentum": 0.95, "weight_decay": 1e-3}, 7, 2,
        "01", "tuner0")
    assert records[3]["metrics"] == {"val_loss": math.inf, "non_finite_epoch": 1.0}
    assert records[4]["message"] == "MemoryError: OOM"


def test_ranking_keeps_each_configurations_best_trial(project):
    records = results.collect(str(project))
    assert [r["trial_id"] for r in results.ranking(records, "val_loss")] == ["02", "00"]
    assert [r["trial_id"] for r in filter(results.diverged, records)] == ["03"]


def test_ranking_for_a_maximised_objective(tmp_path):
    write_trial(tmp_path, "0", sgd(1e-5), 0.31, metrics={"val_ap": 0.31})
    write_trial(tmp_path, "1", sgd(2e-5), 0.42, metrics={"val_ap": 0.42})
    write_trial(tmp_path, "2", sgd(3e-5), -math.inf,
                metrics={"val_ap": -math.inf, "non_finite_epoch": 2.0})
    records = results.collect(str(tmp_path))
    assert [r["trial_id"] for r in results.ranking(records, "val_ap")] == ["1", "0"]


def test_markdown_table(project):
    text = results.to_markdown(META, results.collect(str(project)), top=10)
    lines = text.splitlines()
    assert lines[0] == "# Hyperband sweep `fine_sgd`: fine stage"
    assert ("at most 20 epochs per model, factor 3. 6 trials: 3 finished, 1 diverged "
            "(NaN / Inf loss), 1 failed, 1 unfinished." in text)
    assert "Base options (--hparams): backbone=resnet101, weights=coco." in text
    header = ("| rank | trial | optimizer | lr | momentum | weight_decay | epochs | val_loss |")
    i = lines.index(header)
    assert lines[i + 2] == "| 1 | 02 | sgd | 9e-05 | 0.95 | 0.001 | 7 | 1.7000 |"
    assert lines[i + 3] == "| 2 | 00 | sgd | 3e-05 | 0.9 | 0.001 | 2 | 2.5000 |"
    assert "| 03 | sgd | 0.001 | 0.9 | 0.001 | epoch 1 |" in text
    assert "| 04 | FAILED | MemoryError: OOM |" in text
    assert "## Best 1 of 2 configurations" in results.to_markdown(
        META, results.collect(str(project)), top=1)


def test_results_files_are_strict_json(project):
    md, js = results.write(str(project), META, results.collect(str(project)))
    with open(js) as f:
        data = json.loads(f.read(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert [b["trial_id"] for b in data["best"]] == ["02", "00"]
    assert data["best"][0]["rank"] == 1 and data["direction"] == "min"
    assert data["best"][0]["options"] == dict(META["train_options"], optimizer="sgd",
                                              lr=9e-5, momentum=0.95, weight_decay=1e-3,
                                              epochs=7, schedule=None)
    assert data["diverged"] == ["03"]
    assert data["trials"][3]["score"] is None  # +inf written as null
    assert open(md).read().startswith("# Hyperband sweep")


def test_export_best_is_read_by_train_py(project, tmp_path):
    path = tmp_path / "best.json"
    export = results.export_best(str(path), META, results.collect(str(project)))
    assert export["trial_id"] == "02" and export["score"] == 1.7
    hparams = options.read_hparams(str(path))
    assert hparams == {"weights": "coco", "backbone": "resnet101", "optimizer": "sgd",
                       "lr": 9e-5, "momentum": 0.95, "weight_decay": 1e-3, "epochs": 7,
                       "schedule": None, "image_min_dim": 512, "train_images": 154,
                       "dataset": "/data/cs", "seed": 3}
    o, _ = options.resolve({"hparams": str(path)})
    assert (o.lr, o.momentum, o.weight_decay, o.weights, o.epochs, o.dataset, o.train_images,
            o.seed) == (9e-5, 0.95, 1e-3, "coco", 7, "/data/cs", 154, 3)
    assert options.stages(o) == [Stage("heads", 7)]


def test_export_best_with_adam_beta_1(tmp_path):
    values = {"optimizer": "adam", "lr": 4e-6, "beta_1": 0.93, "weight_decay": 2e-4,
              "tuner/epochs": 3, "tuner/initial_epoch": 0}
    (tmp_path / "p").mkdir()
    write_trial(tmp_path / "p", "0", values, 1.0)
    path = tmp_path / "best.json"
    meta = dict(META, hparams={}, train_options={})
    results.export_best(str(path), meta, results.collect(str(tmp_path / "p")))
    assert options.read_hparams(str(path)) == {"optimizer": "adam", "lr": 4e-6,
                                               "momentum": 0.93, "weight_decay": 2e-4,
                                               "epochs": 3, "schedule": None}


def test_a_coco_trial_shows_its_resnet101(tmp_path):
    values = {"weights": "coco", "optimizer": "sgd", "lr": 1e-4, "tuner/epochs": 2,
              "tuner/initial_epoch": 0}
    write_trial(tmp_path, "0", values, 1.0)
    write_trial(tmp_path, "1", dict(values, weights="imagenet", backbone="resnet50"), 1.5)
    meta = dict(META, stage="coarse", hparams={},
                space={"weights": [], "backbone": [], "optimizer": [], "lr": []})
    lines = results.to_markdown(meta, results.collect(str(tmp_path))).splitlines()
    assert "| 1 | 0 | coco | resnet101 | sgd | 0.0001 | 2 | 1.0000 |" in lines
    assert "| 2 | 1 | imagenet | resnet50 | sgd | 0.0001 | 2 | 1.5000 |" in lines
    export = results.best_export(meta, results.collect(str(tmp_path)))
    assert export["hparams"]["backbone"] == "resnet101"


def test_nothing_to_export(tmp_path):
    write_trial(tmp_path, "0", sgd(1e-3), math.inf,
                metrics={"val_loss": math.inf, "non_finite_epoch": 1.0})
    path = tmp_path / "best.json"
    assert results.export_best(str(path), META, results.collect(str(tmp_path))) is None
    assert not path.exists()
    assert "No trial has finished with a finite score yet." in results.to_markdown(
        META, results.collect(str(tmp_path)))
