"""Tests for cityscapes/trainer.py: options, checks and plans (no model built)."""

import json
import os

import pytest

from cityscapes import trainer
from cityscapes.synthetic import generate
from mrcnn.engine.schedule import Stage


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("cs")
    generate(out, seed=1, height=128, width=256, images={"train": 3, "val": 2, "test": 0})
    return str(out)


def options(**explicit):
    return trainer.resolve_options({"weights": "none", **explicit})


def test_precedence_flags_over_hparams_over_demo_over_defaults(tmp_path):
    o = trainer.resolve_options({"dataset": "demo"})
    assert o["backbone"] == "resnet14" and o["weights"] == "none"  # demo
    assert o["momentum"] == trainer.DEFAULTS["momentum"]           # default
    hp = tmp_path / "best.json"
    hp.write_text(json.dumps({"lr": 3e-5, "momentum": 0.95, "optimizer": "sgd"}))
    o = trainer.resolve_options({"dataset": "demo", "hparams": str(hp), "momentum": 0.8})
    assert (o["lr"], o["optimizer"], o["momentum"]) == (3e-5, "sgd", 0.8)


def test_dataset_from_environment(monkeypatch, root):
    monkeypatch.setenv("CITYSCAPES_DATASET", root)
    assert options()["dataset"] == root
    monkeypatch.delenv("CITYSCAPES_DATASET")
    with pytest.raises(trainer.UsageError, match="no dataset"):
        trainer.check_options(options())


@pytest.mark.parametrize("explicit, message", [
    (dict(lr=0.0), "--lr 0.0: must be a positive"),
    (dict(momentum=1.0), "--momentum"),
    (dict(epochs=0), "--epochs 0: must be a positive integer"),
    (dict(classes="car,plane"), r"unknown classes \['plane'\]"),
    (dict(freeze="rpn,heads"), r"unknown parts \['heads'\]"),
    (dict(weights="nowhere.h5"), "--weights nowhere.h5: no such file"),
    (dict(weights="coco", backbone="resnet50"), "COCO weights are ResNet-101"),
    (dict(weights="imagenet", backbone="resnet14"), "no published ImageNet weights for "
                                                    "resnet14 .* use --weights none"),
])
def test_bad_values(root, explicit, message):
    with pytest.raises(trainer.UsageError, match=message):
        trainer.check_options(options(dataset=root, **explicit))


def test_bad_hparams_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(trainer.UsageError, match="not valid JSON"):
        options(hparams=str(bad))
    bad.write_text(json.dumps({"lr": 1e-4, "learning_rat": 1}))
    with pytest.raises(trainer.UsageError, match=r"unknown option names \['learning_rat'\]"):
        options(hparams=str(bad))


def test_weights_for_another_backbone(tmp_path, root):
    from tests.mrcnn.checkpoint.test_hdf5 import small_matterport_file

    path = small_matterport_file(tmp_path / "r50.h5", "matterport_r50_coco81_layout.tsv")
    with pytest.raises(trainer.UsageError, match="holds resnet50 weights but --backbone is "
                                                 "resnet101"):
        trainer.check_options(options(dataset=root, weights=str(path)))


def test_layout_errors_name_the_folder(tmp_path):
    (tmp_path / "leftImg8bit" / "train").mkdir(parents=True)
    with pytest.raises(trainer.UsageError, match="gtFine/train: no such folder"):
        trainer.prepare(options(dataset=str(tmp_path)))


def test_resume_without_a_run(tmp_path, root):
    with pytest.raises(trainer.UsageError, match="--weights last: no checkpoint"):
        trainer.resolve_options({"dataset": root, "weights": "last", "logs": str(tmp_path)})


def test_plan_config_and_stages(root):
    plan = trainer.prepare(options(dataset=root, classes="car,person", image_min_dim=128,
                                   image_max_dim=256, images_per_gpu=2,
                                   schedule="heads:1,all:2x0.1"))
    config = plan["config"]
    assert plan["classes"] == ("person", "car") and config.NUM_CLASSES == 3
    assert (config.IMAGE_MIN_DIM, config.IMAGE_MAX_DIM, config.BATCH_SIZE) == (128, 256, 2)
    assert config.STEPS_PER_EPOCH == 2 and config.VALIDATION_STEPS == 1  # one pass each
    assert plan["stages"] == [Stage("heads", 1), Stage("all", 2, 0.1)]
    assert len(plan["train"].image_ids) == 3 and os.path.isdir(plan["root"])


def test_plan_on_an_instance_ids_only_folder(tmp_path):
    generate(tmp_path, seed=1, height=64, width=128, images={"train": 2, "val": 1, "test": 0},
             polygons=False)
    plan = trainer.prepare(options(dataset=str(tmp_path), image_min_dim=64, image_max_dim=128))
    for split, n in (("train", 2), ("val", 1)):
        assert plan[split].load_report["sources"] == {"polygons": 0, "instanceIds": n}
        assert plan[split].load_mask(0)[0].shape[:2] == (64, 128)
