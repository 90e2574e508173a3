import json

import numpy as np
import pytest

from mrcnn.config import Config


class Cityscapes(Config):
    NAME = "cityscapes"
    NUM_CLASSES = 1 + 10
    IMAGES_PER_GPU = 1


def test_matterport_defaults_and_derived_values():
    c = Cityscapes()
    assert c.BACKBONE == "resnet101" and c.MINI_MASK_SHAPE == (56, 56)
    assert c.RPN_ANCHOR_SCALES == (32, 64, 128, 256, 512)
    assert c.POST_NMS_ROIS_TRAINING == 2000 and c.POST_NMS_ROIS_INFERENCE == 1000
    assert c.BATCH_SIZE == 1
    assert c.IMAGE_SHAPE.tolist() == [1024, 1024, 3]
    assert c.IMAGE_META_SIZE == 12 + 11
    assert c.OPTIMIZER == "sgd" and c.GRADIENT_CLIP_NORM == 5.0
    assert c.JIT_COMPILE == "auto"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("IMAGE_MAX_DIM", 1000, "divisible by 64"),
        ("BACKBONE", "resnet18", "resnet50"),
        ("OPTIMIZER", "rmsprop", "sgd"),
        ("IMAGE_RESIZE_MODE", "stretch", "square"),
        ("NUM_CLASSES", 1, "background"),
        ("RPN_ANCHOR_SCALES", (32, 64), "one scale per backbone stride"),
        ("LOSS_WEIGHTS", {"rpn_loss": 1.0}, "unknown losses"),
        ("DETECTION_MIN_CONFIDENCE", 1.5, r"\[0, 1\]"),
        ("IMAGES_PER_GPU", 0, "positive integer"),
        ("JIT_COMPILE", "on", 'True, False or "auto"'),
    ],
)
def test_bad_values_fail_at_construction_naming_the_field(field, value, message):
    bad = type("Bad", (Cityscapes,), {field: value})
    with pytest.raises(ValueError, match=rf"Bad\.{field} = .*{message}"):
        bad()


def test_dict_round_trip_through_json():
    c = Cityscapes()
    values = json.loads(json.dumps(c.to_dict()))
    values["LEARNING_RATE"] = 0.02
    values["JIT_COMPILE"] = False
    back = Cityscapes.from_dict(values)
    assert back.LEARNING_RATE == 0.02 and back.JIT_COMPILE is False
    assert isinstance(back.MEAN_PIXEL, np.ndarray)
    np.testing.assert_array_equal(back.MEAN_PIXEL, c.MEAN_PIXEL)
    assert back.MINI_MASK_SHAPE == (56, 56)
    assert back.to_dict() == {**c.to_dict(), "LEARNING_RATE": 0.02, "JIT_COMPILE": False}


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match="LERNING_RATE"):
        Cityscapes.from_dict({"LERNING_RATE": 0.1})


def test_from_dict_validates():
    with pytest.raises(ValueError, match="IMAGE_MAX_DIM"):
        Cityscapes.from_dict({"IMAGE_MAX_DIM": 1000})


def test_display_lists_every_field(capsys):
    Cityscapes().display()
    out = capsys.readouterr().out
    assert "NUM_CLASSES" in out and "IMAGE_META_SIZE" in out and "OPTIMIZER" in out
