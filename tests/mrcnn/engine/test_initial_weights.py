"""Tests for mrcnn/engine/initial_weights.py: the one weights policy."""

import pytest

from mrcnn.engine import initial_weights as iw
from tests.mrcnn.checkpoint.test_hdf5 import small_matterport_file


@pytest.fixture(scope="module")
def coco_r101(tmp_path_factory):
    """A file with the layout of Matterport's 81-class ResNet-101 COCO weights."""
    path = tmp_path_factory.mktemp("w") / "mask_rcnn_coco_like.h5"
    return str(small_matterport_file(path, "matterport_r101_coco81_layout.tsv"))


def test_random_weights_load_nothing():
    assert iw.choose("none", "resnet14", 11) == iw.InitialWeights("none")


def test_a_file_of_other_classes_loads_without_the_heads(coco_r101):
    choice = iw.choose(coco_r101, "resnet101", 11)
    assert choice.path == coco_r101 and not choice.imagenet
    assert choice.exclude == iw.HEAD_LAYERS
    assert iw.choose(coco_r101, "resnet101", 81).exclude == ()  # same classes: everything


def test_a_file_of_another_backbone_is_refused(coco_r101):
    with pytest.raises(iw.WeightsError, match="holds resnet101 weights but --backbone is "
                                              "resnet50; pass --backbone resnet101"):
        iw.choose(coco_r101, "resnet50", 11)
    # The checkpoint a run continues is checked too.
    with pytest.raises(iw.WeightsError, match="holds resnet101 weights"):
        iw.choose("last", "resnet50", 11, resume_from=coco_r101)


@pytest.mark.parametrize("spec, backbone, message", [
    ("coco", "resnet50", "COCO weights are ResNet-101"),
    ("imagenet", "resnet14", "no published ImageNet weights for resnet14"),
    ("nowhere.h5", "resnet50", "no such file, and not one of"),
])
def test_specs_that_cannot_serve_the_backbone(spec, backbone, message):
    with pytest.raises(iw.WeightsError, match=message):
        iw.choose(spec, backbone, 11)


def test_last_without_a_run():
    with pytest.raises(iw.WeightsError, match="no run to continue"):
        iw.choose("last", "resnet50", 11)
