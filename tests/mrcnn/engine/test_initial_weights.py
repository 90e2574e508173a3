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


# ------------------------------------------------- files that lack layers
MASK_HEAD = ("mrcnn_mask_conv1", "mrcnn_mask_bn1", "mrcnn_mask_conv2", "mrcnn_mask_bn2",
             "mrcnn_mask_conv3", "mrcnn_mask_bn3", "mrcnn_mask_conv4", "mrcnn_mask_bn4",
             "mrcnn_mask_deconv", "mrcnn_mask")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A DemoConfig training model, and its weights written in full, without
    the mask head, with 4 classes' classifier, and with an extra layer."""
    import numpy as np

    from cityscapes.config import DemoConfig
    from mrcnn.checkpoint import hdf5
    from mrcnn.model import MaskRCNN

    folder = tmp_path_factory.mktemp("w")
    model = MaskRCNN("training", DemoConfig(), str(folder))
    full = folder / "full.h5"
    hdf5.save_weights(model.keras_model, full)
    groups = hdf5.read_legacy_h5(full)
    hdf5.write_legacy_h5(folder / "no_mask.h5", [g for g in groups if g[0] not in MASK_HEAD])
    other = [(name, [(w, np.zeros(v.shape[:-1] + (4,), v.dtype) if name == "mrcnn_class_logits"
                      else v) for w, v in weights]) for name, weights in groups]
    hdf5.write_legacy_h5(folder / "four_classes.h5", other)  # as COCO's 81 for our 11
    extra = groups + [("my_head", [("my_head/bias:0", np.zeros(3, np.float32))])]
    hdf5.write_legacy_h5(folder / "extra.h5", extra)
    return model, {p.stem: str(p) for p in folder.glob("*.h5")}


def test_a_file_without_the_mask_head_is_refused_naming_its_layers(demo):
    model, files = demo
    with pytest.raises(iw.PartialWeightsError) as e:
        iw.load(model, iw.choose(files["no_mask"], "resnet14", model.config.NUM_CLASSES))
    message = str(e.value)
    assert "has no weights for 10 layers of the model" in message
    assert all(repr(name) in message for name in MASK_HEAD) and "more" not in message
    assert "--allow_partial" in message


def test_allow_partial_loads_it_and_the_report_names_what_is_missing(demo, capsys):
    import numpy as np

    from mrcnn.checkpoint import hdf5

    model, files = demo
    choice = iw.choose(files["no_mask"], "resnet14", model.config.NUM_CLASSES,
                       allow_partial=True)
    report = iw.load(model, choice)
    assert report.missing_in_file == list(MASK_HEAD)
    assert f"10 not in file: {', '.join(map(repr, MASK_HEAD))})" in capsys.readouterr().out
    conv1 = dict(hdf5.read_legacy_h5(files["full"]))["conv1"][0][1]
    np.testing.assert_array_equal(model.keras_model.get_layer("conv1").kernel.numpy(), conv1)


def test_the_heads_of_another_class_count_are_dropped_without_allow_partial(demo):
    """COCO's heads for another class count: the policy drops them, so the
    model's heads keep their values and that is no partial load."""
    model, files = demo
    choice = iw.choose(files["four_classes"], "resnet14", model.config.NUM_CLASSES)
    assert choice.exclude == iw.HEAD_LAYERS and not choice.allow_partial
    report = iw.load(model, choice)
    assert report.excluded == ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_mask"]
    assert report.missing_in_file == []


def _variables(model, layer):
    from mrcnn.checkpoint import hdf5

    return [v for _, v in hdf5.group_weights(dict(hdf5.weight_groups(model.keras_model))[layer])]


def test_exclude_is_a_regex_of_whole_layer_names(demo):
    import numpy as np

    model, files = demo
    for v in _variables(model, "mrcnn_mask"):
        v.assign(np.full(v.shape, 7.0, np.float32))
    choice = iw.choose(files["full"], "resnet14", model.config.NUM_CLASSES, exclude="mrcnn_mask.*")
    report = iw.load(model, choice)
    assert report.excluded == list(MASK_HEAD) and report.missing_in_file == []
    assert all((v.numpy() == 7).all() for v in _variables(model, "mrcnn_mask"))  # not loaded
    # The file lacks them: excluded layers are not missing ones.
    iw.load(model, iw.choose(files["no_mask"], "resnet14", model.config.NUM_CLASSES,
                             exclude="mrcnn_mask.*"))
    with pytest.raises(iw.WeightsError, match="--exclude mrcnn_mas: matches no layer"):
        iw.load(model, iw.choose(files["full"], "resnet14", 11, exclude="mrcnn_mas"))


def test_extra_layers_point_to_exclude_and_bad_regexes_are_refused(demo):
    model, files = demo
    with pytest.raises(iw.WeightsError) as e:
        iw.load(model, iw.choose(files["extra"], "resnet14", model.config.NUM_CLASSES))
    assert "does not have: 'my_head' (1 in all). Pass --exclude 'my_head'" in str(e.value)
    assert "exclude=[" not in str(e.value)
    report = iw.load(model, iw.choose(files["extra"], "resnet14", model.config.NUM_CLASSES,
                                      exclude="my_.*"))
    assert report.excluded == ["my_head"]
    for spec, regex, message in ((files["full"], "(", "not a regular expression"),
                                 ("none", "x", "--weights none loads no")):
        with pytest.raises(iw.WeightsError, match=message):
            iw.choose(spec, "resnet14", 11, exclude=regex)


def test_inference_models_follow_the_same_rule(demo):
    from mrcnn.engine.inference import inference_model

    model, files = demo
    with pytest.raises(iw.PartialWeightsError, match="10 layers of the model"):
        inference_model(model.config, weights=files["no_mask"])
    inference_model(model.config, weights=files["no_mask"], allow_partial=True)
    with pytest.raises(ValueError, match="my_head.*Is it a checkpoint of this configuration"):
        inference_model(model.config, weights=files["extra"])
