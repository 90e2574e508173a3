"""Tests for cityscapes/trainer.py: plans from options (no model built)."""

import os

import pytest

from cityscapes import options, trainer
from cityscapes.synthetic import generate
from cli import UsageError
from mrcnn.engine.schedule import Stage


def resolve(**explicit):
    return options.resolve({"weights": "none", **explicit})[0]


def test_layout_errors_name_the_folder(tmp_path):
    (tmp_path / "leftImg8bit" / "train").mkdir(parents=True)
    with pytest.raises(UsageError, match="gtFine/train: no such folder"):
        trainer.prepare(resolve(dataset=str(tmp_path)))


def test_plan_config_and_stages(root):
    plan = trainer.prepare(resolve(dataset=root, classes="car,person", image_min_dim=128,
                                   image_max_dim=256, images_per_gpu=2,
                                   schedule="heads:1,all:2x0.1"))
    config = plan.config
    assert plan.classes == ("person", "car") and config.NUM_CLASSES == 3
    assert (config.IMAGE_MIN_DIM, config.IMAGE_MAX_DIM, config.BATCH_SIZE) == (128, 256, 2)
    assert config.STEPS_PER_EPOCH == 2 and config.VALIDATION_STEPS == 1  # one pass each
    assert plan.stages == [Stage("heads", 1), Stage("all", 2, 0.1)]
    assert len(plan.train.image_ids) == 3 and os.path.isdir(plan.root)


def test_subsets_are_seeded_and_checked(root):
    plan = trainer.prepare(resolve(dataset=root, train_images=2, val_images=1, seed=5))
    again = trainer.prepare(resolve(dataset=root, train_images=2, val_images=1, seed=5))
    assert len(plan.train.image_ids) == 2 and len(plan.val.image_ids) == 1
    ids = [i["id"] for i in plan.train.image_info]
    assert ids == [i["id"] for i in again.train.image_info]
    with pytest.raises(UsageError, match="--train_images 9: .*only 3 available"):
        trainer.prepare(resolve(dataset=root, train_images=9))


def test_plan_on_an_instance_ids_only_folder(tmp_path):
    generate(tmp_path, seed=1, height=64, width=128, images={"train": 2, "val": 1, "test": 0},
             polygons=False)
    plan = trainer.prepare(resolve(dataset=str(tmp_path), image_min_dim=64, image_max_dim=128))
    for split, n in (("train", 2), ("val", 1)):
        dataset = getattr(plan, split)
        assert dataset.load_report["sources"] == {"polygons": 0, "instanceIds": n}
        assert dataset.load_mask(0)[0].shape[:2] == (64, 128)
    with pytest.raises(UsageError, match="instanceIds"):
        trainer.prepare(resolve(dataset=str(tmp_path), annotations="polygons"))
