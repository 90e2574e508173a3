"""The assembled model: training steps, detect(), checkpoints, layer
selection, and Matterport weight files loaded by name."""

import os

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn import model as modellib
from mrcnn import utils
from mrcnn.checkpoint import hdf5, pretrained
from mrcnn.config import LOSS_NAMES, Config
from mrcnn.data import pipeline
from mrcnn.data.dataset import Dataset
from mrcnn.data.shapes import ShapesDataset
from mrcnn.engine import trainable
from mrcnn.model import MaskRCNN
from mrcnn.modeling import anchors, box_ops, targets
from samples.shapes import ShapesConfig

DATA = os.path.join(os.path.dirname(__file__), "..", "data")


class TinyConfig(ShapesConfig):
    NAME = "tiny"
    TRAIN_ROIS_PER_IMAGE = 16
    POST_NMS_ROIS_TRAINING = 100
    POST_NMS_ROIS_INFERENCE = 50
    STEPS_PER_EPOCH = 1
    VALIDATION_STEPS = 1


class TinyInferenceConfig(TinyConfig):
    IMAGE_RESIZE_MODE = "pad64"
    IMAGE_MIN_DIM = 64
    DETECTION_MIN_CONFIDENCE = 0.0


class EmptyShapes(ShapesDataset):
    """Shapes images whose listed ids have no instances at all."""

    def __init__(self, empty_ids):
        super().__init__()
        self.empty_ids = set(empty_ids)

    def load_mask(self, image_id):
        masks, class_ids = super().load_mask(image_id)
        if image_id in self.empty_ids:
            return masks[..., :0], class_ids[:0]
        return masks, class_ids


def shapes(count, empty=()):
    ds = EmptyShapes(empty)
    ds.load_shapes(count, 128, 128, seed=3)
    ds.prepare()
    return ds


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained for epoch 1 on images without any instance, then
    for epochs 2 and 3 on a batch with one empty image."""
    logs = str(tmp_path_factory.mktemp("logs"))
    model = MaskRCNN("training", TinyConfig(), logs)
    empty = model.train(shapes(2, empty=[0, 1]), shapes(2, empty=[0, 1]), 1e-4,
                        epochs=1, layers="all")
    mixed = model.train(shapes(2, empty=[1]), shapes(2), 1e-4, epochs=2, layers="heads")
    km = model.keras_model
    model.stage_2 = (km.optimizer, km.train_function, int(km.optimizer.iterations))
    # Epoch 3: the same layers at lr / 10 (a staged schedule's last stage),
    # with Matterport's custom_callbacks and no_augmentation_sources.
    model.epochs_seen = []
    seen = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: model.epochs_seen.append(epoch))
    model.train(shapes(2, empty=[1]), shapes(2), 1e-5, epochs=3, layers="heads",
                custom_callbacks=[seen], no_augmentation_sources=["shapes"])
    return model, mixed.history, empty.history, logs


def test_train_runs_custom_callbacks(trained):
    model, _, _, _ = trained
    assert model.epochs_seen == [2]  # Keras counts from 0: the third epoch


def test_a_stage_with_the_same_layers_keeps_the_compiled_step(trained):
    model, _, _, _ = trained
    km = model.keras_model
    optimizer, train_function, iterations = model.stage_2
    assert km.optimizer is optimizer and km.train_function is train_function
    assert float(km.optimizer.learning_rate) == pytest.approx(1e-5)
    assert int(km.optimizer.iterations) == iterations + TinyConfig.STEPS_PER_EPOCH


def test_train_step_gives_finite_losses_with_an_empty_image(trained):
    _, history, _, _ = trained
    for name in ("loss", *LOSS_NAMES):
        assert np.isfinite(history[name][0]), name
        assert np.isfinite(history["val_" + name][0]), name
    assert history["mrcnn_mask_loss"][0] > 0


def test_images_without_instances_train_with_zero_box_and_mask_losses(trained):
    _, _, history, _ = trained
    assert history["rpn_bbox_loss"] == [0.0]
    assert history["mrcnn_bbox_loss"] == [0.0]
    assert history["mrcnn_mask_loss"] == [0.0]
    assert history["rpn_class_loss"][0] > 0  # negatives still train
    assert history["mrcnn_class_loss"][0] > 0
    assert np.isfinite(history["loss"][0])


def test_one_checkpoint_per_epoch_and_numbering_continues(trained):
    model, _, _, logs = trained
    runs = os.listdir(logs)
    assert len(runs) == 1 and runs[0].startswith("tiny")
    files = sorted(f for f in os.listdir(os.path.join(logs, runs[0])) if f.endswith(".h5"))
    assert files == ["mask_rcnn_tiny_0001.h5", "mask_rcnn_tiny_0002.h5", "mask_rcnn_tiny_0003.h5"]
    assert model.find_last().endswith("mask_rcnn_tiny_0003.h5")
    assert model.epoch == 3

    resumed = MaskRCNN("training", TinyConfig(), logs)
    resumed.load_weights(model.find_last(), by_name=True)
    assert resumed.epoch == 3 and resumed.log_dir == os.path.join(logs, runs[0])


def test_detect_returns_documented_shapes_for_images_of_any_size(trained):
    model, _, _, logs = trained
    infer = MaskRCNN("inference", TinyInferenceConfig(), logs)
    infer.load_weights(model.find_last(), by_name=True)
    images = [shapes(1).load_image(0), np.full((100, 150, 3), 90, np.uint8)]
    results = infer.detect(images)
    assert len(results) == 2
    for image, r in zip(images, results):
        n = len(r["class_ids"])
        assert r["rois"].shape == (n, 4) and r["rois"].dtype == np.int32
        assert r["class_ids"].dtype == np.int32 and r["scores"].shape == (n,)
        assert r["masks"].shape == (*image.shape[:2], n) and r["masks"].dtype == bool
        if n:
            assert (r["rois"][:, 2] <= image.shape[0]).all()
            assert (r["rois"][:, 3] <= image.shape[1]).all()
            assert set(r["class_ids"]) <= {1, 2, 3}


def test_detect_under_xla_gives_the_same_detections(trained):
    """JIT_COMPILE=True compiles detect's graph with XLA; same detections
    as without (on this CPU "auto" is off, the default elsewhere)."""
    model, _, _, logs = trained
    images = [shapes(2).load_image(i) for i in range(2)]
    results = {}
    for jit in (False, True):
        config = type("Jit", (TinyInferenceConfig,), {"JIT_COMPILE": jit})()
        infer = MaskRCNN("inference", config, logs)
        infer.load_weights(model.find_last(), by_name=True)
        results[jit] = infer.detect(images)
        assert infer._infer.jit_compile is jit
    for off, on in zip(results[False], results[True]):
        # The RPN's proposals (this tiny model may detect nothing), within a pixel.
        assert on["proposals"].shape == off["proposals"].shape == (
            TinyInferenceConfig.POST_NMS_ROIS_INFERENCE, 4)
        assert np.abs(on["proposals"] - off["proposals"]).max() <= 1
        np.testing.assert_array_equal(on["class_ids"], off["class_ids"])
        np.testing.assert_allclose(on["scores"], off["scores"], atol=1e-4)
        assert np.abs(on["rois"] - off["rois"]).max(initial=0) <= 1
        assert (on["masks"] != off["masks"]).sum() <= 1e-3 * on["masks"].size


def test_detect_rejects_bad_input(trained):
    model, _, _, logs = trained
    infer = MaskRCNN("inference", TinyInferenceConfig(), logs)
    good = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="BATCH_SIZE = 2"):
        infer.detect([good])
    with pytest.raises(ValueError, match=r"uint8 array of shape \[H, W, 3\]"):
        infer.detect([good, np.zeros((64, 64), np.float64)])
    with pytest.raises(ValueError, match="mode='inference'"):
        model.detect([good, good])


def test_layer_selection_and_freezing(trained):
    model, _, _, _ = trained
    km = model.keras_model

    def trainable_prefixes():
        return {v.path.split("/")[-2][:3] for v in km.trainable_weights}

    names = trainable.set_trainable(km, "heads")
    assert names and all(n.startswith(("mrcnn_", "rpn_", "fpn_")) for n in names)
    assert trainable_prefixes() == {"mrc", "rpn", "fpn"}
    names = trainable.set_trainable(km, "4+")
    assert any(n.startswith("res4") for n in names) and not any(n.startswith("res3") for n in names)
    names = trainable.set_trainable(km, "all", freeze=("rpn", "fpn"))
    assert not any(n.startswith(("rpn_", "fpn_")) for n in names)
    assert any(n.startswith("res2") for n in names)
    with pytest.raises(ValueError, match="freeze"):
        trainable.set_trainable(km, "all", freeze=("backbone",))
    trainable.set_trainable(km, "all")


# ------------------------------------------------------ Matterport weights
def read_layout(name):
    rows = []
    with open(os.path.join(DATA, name)) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            layer, weight, shape = line.rstrip("\n").split("\t")
            rows.append((layer, weight, tuple(int(s) for s in shape.strip("()").split(",") if s)))
    return rows


class CityscapesLike(Config):
    NAME = "cityscapes"
    NUM_CLASSES = 1 + 10
    IMAGES_PER_GPU = 1
    BACKBONE = "resnet101"


HEADS = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"]


@pytest.fixture(scope="module")
def coco_file(tmp_path_factory):
    """A file in the exact layout of Matterport's mask_rcnn_coco.h5, written
    with raw h5py, filled with random values."""
    rows = read_layout("matterport_r101_coco81_layout.tsv")
    path = str(tmp_path_factory.mktemp("weights") / "mask_rcnn_coco.h5")
    rng = np.random.default_rng(0)
    values = {}
    with h5py.File(path, "w") as f:
        layers = list(dict.fromkeys(r[0] for r in rows))
        f.attrs["layer_names"] = np.array([n.encode() for n in layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.6"
        for layer in layers:
            group = f.create_group(layer)
            names = [w for l, w, _ in rows if l == layer]
            group.attrs["weight_names"] = np.array([w.encode() for w in names])
        for layer, weight, shape in rows:
            value = rng.standard_normal(shape, dtype=np.float32)
            f[layer].create_dataset(weight, data=value)
            values[(layer, weight)] = value
    return path, values


def test_matterport_coco_layout_loads_by_name_with_exclude(coco_file, tmp_path):
    path, values = coco_file
    model = MaskRCNN("training", CityscapesLike(), str(tmp_path))
    before = {n: [w.numpy().copy() for _, w in hdf5.group_weights(layer)]
              for n, layer in hdf5.weight_groups(model.keras_model) if n in HEADS}
    report = model.load_weights(path, by_name=True, exclude=HEADS)
    assert len(report.loaded) == len({k[0] for k in values}) - 3  # 3 of HEADS are weighted
    for name, layer in hdf5.weight_groups(model.keras_model):
        stored = hdf5.group_weights(layer)
        if name in HEADS:
            for (_, var), old in zip(stored, before[name]):
                np.testing.assert_array_equal(var.numpy(), old)
            continue
        for weight_name, var in stored:
            np.testing.assert_array_equal(var.numpy(), values[(name, weight_name)])


def test_our_layer_names_and_shapes_are_matterports(coco_file, tmp_path):
    rows = read_layout("matterport_r101_coco81_layout.tsv")

    class Coco(CityscapesLike):
        NUM_CLASSES = 81

    model = MaskRCNN("inference", Coco(), str(tmp_path))
    ours = [
        (name, weight_name, tuple(var.shape))
        for name, layer in hdf5.weight_groups(model.keras_model)
        for weight_name, var in hdf5.group_weights(layer)
    ]
    assert sorted(ours) == sorted(rows)


def test_a_renamed_layer_makes_the_load_fail_loudly(coco_file, tmp_path):
    path, _ = coco_file
    renamed = str(tmp_path / "renamed.h5")
    with h5py.File(path, "r") as src, h5py.File(renamed, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        names = [n.decode() for n in src.attrs["layer_names"]]
        for name in names:
            src.copy(src[name], dst, name="fpn_c5p5_old" if name == "fpn_c5p5" else name)
        dst.attrs["layer_names"] = np.array(
            [("fpn_c5p5_old" if n == "fpn_c5p5" else n).encode() for n in names])
    model = MaskRCNN("inference", CityscapesLike(), str(tmp_path))
    with pytest.raises(hdf5.WeightsLoadError, match="fpn_c5p5_old"):
        model.load_weights(renamed, by_name=True, exclude=HEADS)


def test_missing_weights_file_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MRCNN_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="mask_rcnn_coco.h5"):
        pretrained.get_weights_file("coco", download=False)


def test_config_rejects_sizes_not_divisible_by_64():
    class Bad(Config):
        NUM_CLASSES = 2
        IMAGE_MAX_DIM = 1000

    with pytest.raises(ValueError, match="IMAGE_MAX_DIM.*divisible by 64"):
        Bad()


def test_a_dataset_without_images_is_rejected():
    empty = Dataset()
    empty.prepare()
    with pytest.raises(ValueError, match="no images"):
        pipeline.build_dataset(empty, TinyConfig())


def test_imagenet_resnet50_weights_map_onto_our_backbone(tmp_path):
    import keras

    app = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))
    groups = [
        (layer.name, [(f"{layer.name}/{v.name}:0", v.numpy()) for v in layer.weights])
        for layer in app.layers
    ]
    path = str(tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    hdf5.write_legacy_h5(path, groups)

    class R50(CityscapesLike):
        BACKBONE = "resnet50"

    model = MaskRCNN("inference", R50(), str(tmp_path))
    report = model.load_weights(path)
    assert len(report.loaded) == sum(1 for _, w in groups if w)
    ours = dict(hdf5.weight_groups(model.keras_model))
    for app_name, our_name in (("conv1_conv", "conv1"), ("conv1_bn", "bn_conv1"),
                               ("conv4_block6_2_conv", "res4f_branch2b"),
                               ("conv5_block1_0_bn", "bn5a_branch1")):
        for a, b in zip(app.get_layer(app_name).weights, ours[our_name].weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_rpn_targets_are_computed_in_the_model_from_the_batch(trained):
    model, _, _, _ = trained
    config = TinyConfig()
    batch = next(iter(pipeline.build_dataset(shapes(2), config, shuffle=False)))
    km = model.keras_model
    shape = tf.shape(batch["image"])[1:3]
    rpn_match, deltas = km._rpn_targets(batch["gt_class_ids"], batch["gt_boxes"], shape)
    n_anchors = anchors.num_anchors(*batch["image"].shape[1:3], config.BACKBONE_STRIDES, 3)
    assert rpn_match.shape == (2, n_anchors) and deltas.shape == (2, 256, 4)
    pixel_anchors = anchors.pyramid_anchors(shape, config.RPN_ANCHOR_SCALES,
                                            config.RPN_ANCHOR_RATIOS, config.BACKBONE_STRIDES,
                                            normalized=False)
    rpn_match = rpn_match.numpy()
    for b in range(2):
        boxes = box_ops.denormalize(batch["gt_boxes"][b], shape, rounded=False)
        expected, _ = targets.rpn_targets(
            pixel_anchors, batch["gt_class_ids"][b], boxes,
            anchors_per_image=config.RPN_TRAIN_ANCHORS_PER_IMAGE,
            std_dev=config.RPN_BBOX_STD_DEV.tolist())
        # Negatives are a random sample; the (few) positives are all kept.
        np.testing.assert_array_equal(rpn_match[b] == 1, expected.numpy() == 1)
        assert 0 < (rpn_match[b] == 1).sum() and (rpn_match[b] != 0).sum() <= 256


# ---------------------------------------------- Matterport's mrcnn.model API
@pytest.fixture(scope="module")
def infer(trained):
    model, _, _, logs = trained
    infer = MaskRCNN("inference", TinyInferenceConfig(), logs)
    infer.load_weights(model.find_last(), by_name=True)
    return infer


def test_detect_verbose_prints_matterports_log_lines(infer, capsys):
    images = [shapes(1).load_image(0), np.full((100, 150, 3), 90, np.uint8)]
    infer.detect(images, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    lines = [line for line in lines if not line.startswith("Loaded")]
    assert lines[0] == "Processing 2 images"
    assert lines[1] == ("image                    shape: (128, 128, 3)         "
                        f"min: {images[0].min():10.5f}  max: {images[0].max():10.5f}  uint8")
    assert lines[2].startswith("image                    shape: (100, 150, 3)  ")
    assert lines[3].startswith("molded_images            shape: (2, 128, 192, 3)  ")
    assert lines[3].endswith("float32")
    assert lines[4].startswith("image_metas              shape: (2, 16)  ")
    n_anchors = anchors.num_anchors(128, 192, TinyInferenceConfig.BACKBONE_STRIDES, 3)
    assert lines[5].startswith(f"anchors                  shape: {(2, n_anchors, 4)!s:20}  ")


def test_log_formats_empty_arrays_and_plain_text(capsys):
    modellib.log("plain")
    modellib.log("empty", np.zeros((0, 4), np.int32))
    assert capsys.readouterr().out.splitlines() == [
        "plain", f"{'empty':25}shape: {'(0, 4)':20}  min: {'':10}  max: {'':10}  int32"]


def test_run_graph_returns_the_named_layers(infer, capsys):
    images = [shapes(2).load_image(i) for i in range(2)]
    km = infer.keras_model
    out = infer.run_graph(images, [
        ("proposals", "ROI"),
        ("rpn_class", "rpn_class"),
        ("detections", "mrcnn_detection"),
        ("res4f", "res4f_out"),
        ("p2", km.backbone.get_layer("fpn_p2").output),
    ])
    n_anchors = anchors.num_anchors(128, 128, TinyInferenceConfig.BACKBONE_STRIDES, 3)
    assert list(out) == ["proposals", "rpn_class", "detections", "res4f", "p2"]
    assert out["proposals"].shape == (2, TinyInferenceConfig.POST_NMS_ROIS_INFERENCE, 4)
    assert out["rpn_class"].shape == (2, n_anchors, 2)
    np.testing.assert_allclose(out["rpn_class"].sum(-1), 1.0, rtol=1e-5)
    assert out["detections"].shape == (2, TinyInferenceConfig.DETECTION_MAX_INSTANCES, 6)
    assert out["res4f"].shape == (2, 8, 8, 1024)
    assert out["p2"].shape == (2, 32, 32, TinyInferenceConfig.TOP_DOWN_PYRAMID_SIZE)
    assert capsys.readouterr().out.splitlines()[0].startswith(f"{'proposals':25}shape: ")
    with pytest.raises(ValueError, match="no layer"):
        infer.run_graph(images, [("x", "no_such_layer")])
    # As the inspect notebooks write it: get_layer(name).output, for graph
    # tensors and backbone layers alike.
    again = infer.run_graph(images, [("proposals", km.get_layer("ROI").output),
                                     ("res4f", km.get_layer("res4f_out").output)])
    np.testing.assert_array_equal(again["proposals"], out["proposals"])
    np.testing.assert_array_equal(again["res4f"], out["res4f"])
    with pytest.raises(ValueError, match="No such layer"):
        km.get_layer("no_such_layer")


def test_detect_molded_works_in_molded_pixels(infer):
    ds = shapes(2)
    config = TinyInferenceConfig()
    gts = [modellib.load_image_gt(ds, config, i) for i in range(2)]
    molded = np.stack([modellib.mold_image(g[0], config) for g in gts])
    np.testing.assert_array_equal(modellib.unmold_image(molded[0], config), gts[0][0])
    results = infer.detect_molded(molded, np.stack([g[1] for g in gts]))
    for r in results:
        assert r["masks"].shape[:2] == molded.shape[1:3]
    meta = modellib.parse_image_meta(gts[0][1][None])
    assert meta["image_shape"][0].tolist() == list(molded.shape[1:])


def test_load_image_gt_with_and_without_mini_masks():
    ds = shapes(1)
    config = TinyConfig()
    image, meta, class_ids, bbox, mask = modellib.load_image_gt(ds, config, 0)
    n = len(ds.load_mask(0)[1])
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert meta.shape == (config.IMAGE_META_SIZE,)
    assert class_ids.shape == (n,) and bbox.shape == (n, 4) and bbox.dtype == np.int32
    assert mask.shape == (128, 128, n) and mask.dtype == bool
    ys, xs = np.nonzero(mask[..., 0])
    assert bbox[0].tolist() == [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]
    _, _, _, mini_bbox, mini = modellib.load_image_gt(ds, config, 0, use_mini_mask=True)
    assert mini.shape == (*config.MINI_MASK_SHAPE, n)
    np.testing.assert_array_equal(mini_bbox, bbox)


def test_data_generator_gives_matterports_inputs():
    config = TinyConfig()
    inputs, outputs = next(modellib.data_generator(shapes(3), config, shuffle=False,
                                                   batch_size=2))
    images, metas, rpn_match, rpn_bbox, class_ids, boxes, masks = inputs
    m, n_anchors = config.MAX_GT_INSTANCES, anchors.num_anchors(128, 128,
                                                                config.BACKBONE_STRIDES, 3)
    assert outputs == []
    assert images.shape == (2, 128, 128, 3) and images.dtype == np.float32
    assert metas.shape == (2, config.IMAGE_META_SIZE)
    assert rpn_match.shape == (2, n_anchors, 1)
    assert rpn_bbox.shape == (2, config.RPN_TRAIN_ANCHORS_PER_IMAGE, 4)
    assert class_ids.shape == (2, m) and boxes.shape == (2, m, 4)
    assert masks.shape == (2, *config.MINI_MASK_SHAPE, m)
    for b in range(2):
        n = (class_ids[b] > 0).sum()
        assert n == len(shapes(3).load_mask(b)[1]) and masks[b, ..., :n].any(axis=(0, 1)).all()
        positives = (rpn_match[b, :, 0] == 1).sum()
        # Every ground-truth box has an anchor (the best one, at least).
        assert positives >= 1 and np.abs(rpn_bbox[b, :positives]).sum() > 0
        assert not rpn_bbox[b, positives:].any()


def test_ancestor_and_trainable_layers(infer):
    backbone = infer.keras_model.backbone
    p2 = backbone.get_layer("fpn_p2").output
    found = infer.ancestor(p2, r"res2\w_out")
    assert found._keras_history.operation.name == "res2c_out"
    assert infer.ancestor(p2, "no_such_layer") is None
    layers = infer.get_trainable_layers()
    names = [layer.name for layer in layers]
    assert "conv1" in names and "mrcnn_mask" in names and "rpn_conv_shared" in names
    assert not any(isinstance(layer, keras.layers.TimeDistributed) for layer in layers)
    assert all(layer.weights for layer in layers)


MATTERPORT_FIELDS = ["NAME", "GPU_COUNT", "IMAGES_PER_GPU", "STEPS_PER_EPOCH", "VALIDATION_STEPS", "BACKBONE", "COMPUTE_BACKBONE_SHAPE", "BACKBONE_STRIDES", "FPN_CLASSIF_FC_LAYERS_SIZE", "TOP_DOWN_PYRAMID_SIZE", "NUM_CLASSES", "RPN_ANCHOR_SCALES", "RPN_ANCHOR_RATIOS", "RPN_ANCHOR_STRIDE", "RPN_NMS_THRESHOLD", "RPN_TRAIN_ANCHORS_PER_IMAGE", "PRE_NMS_LIMIT", "POST_NMS_ROIS_TRAINING", "POST_NMS_ROIS_INFERENCE", "USE_MINI_MASK", "MINI_MASK_SHAPE", "IMAGE_RESIZE_MODE", "IMAGE_MIN_DIM", "IMAGE_MAX_DIM", "IMAGE_MIN_SCALE", "IMAGE_CHANNEL_COUNT", "MEAN_PIXEL", "TRAIN_ROIS_PER_IMAGE", "ROI_POSITIVE_RATIO", "POOL_SIZE", "MASK_POOL_SIZE", "MASK_SHAPE", "MAX_GT_INSTANCES", "RPN_BBOX_STD_DEV", "BBOX_STD_DEV", "DETECTION_MAX_INSTANCES", "DETECTION_MIN_CONFIDENCE", "DETECTION_NMS_THRESHOLD", "LEARNING_RATE", "LEARNING_MOMENTUM", "WEIGHT_DECAY", "LOSS_WEIGHTS", "USE_RPN_ROIS", "TRAIN_BN", "GRADIENT_CLIP_NORM", "BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE"]


def test_config_has_every_matterport_field_and_displays_as_matterport(capsys):
    config = TinyConfig()
    missing = [f for f in MATTERPORT_FIELDS if not hasattr(config, f)]
    assert not missing
    config.display()
    out = capsys.readouterr().out
    assert out.startswith("\nConfigurations:\n") and out.endswith("\n\n\n")
    lines = out.strip("\n").splitlines()[1:]
    names = [line[:30].rstrip() for line in lines]
    assert names == sorted(names) and set(MATTERPORT_FIELDS) <= set(names)
    assert f"{'MEAN_PIXEL':30} {config.MEAN_PIXEL}" in lines
    assert f"{'GPU_COUNT':30} 1" in lines


def test_data_generator_random_rois_and_detection_targets():
    config = TinyConfig()
    gen = modellib.data_generator(shapes(3), config, shuffle=False, batch_size=2,
                                  random_rois=64, detection_targets=True)
    inputs, (class_ids, bbox, masks) = next(gen)
    *_, gt_class_ids, gt_boxes, _, rpn_rois, rois = inputs
    t, c = config.TRAIN_ROIS_PER_IMAGE, config.NUM_CLASSES
    assert rpn_rois.shape == (2, 64, 4) and rois.shape == (2, t, 4)
    assert class_ids.shape == (2, t, 1) and bbox.shape == (2, t, c, 4)
    assert masks.shape == (2, t, *config.MASK_SHAPE, c)
    h, w = config.IMAGE_SHAPE[:2]
    assert (rpn_rois[..., :2] >= 0).all() and (rpn_rois[..., 2] <= h).all()
    assert (rpn_rois[..., 3] <= w).all() and (rpn_rois[..., 2:] - rpn_rois[..., :2] >= 2).all()
    ids = class_ids[..., 0]
    positive = ids > 0
    assert positive.any() and (~positive).any()
    # Each positive's box deltas and mask sit in its class's row / channel only.
    others = np.ones([2, t, c], bool)
    others[np.nonzero(positive) + (ids[positive],)] = False
    assert not bbox[others].any() and not np.moveaxis(masks, -1, 2)[others].any()
    pos_masks = np.moveaxis(masks, -1, 2)[np.nonzero(positive) + (ids[positive],)]
    assert pos_masks.reshape(len(pos_masks), -1).any(-1).all()
    # A positive ROI overlaps a ground-truth box of its class by IoU >= 0.5.
    for b in range(2):
        iou = utils.compute_overlaps(rois[b][positive[b]], gt_boxes[b][gt_class_ids[b] > 0])
        same = ids[b][positive[b]][:, None] == gt_class_ids[b][gt_class_ids[b] > 0][None]
        assert (np.where(same, iou, 0).max(1) >= 0.5 - 0.05).all()  # rounded to pixels


def test_random_rois_cluster_around_the_ground_truth():
    rng = np.random.default_rng(0)
    rois = modellib.generate_random_rois((100, 200), 100, np.array([1]),
                                         np.array([[40, 90, 60, 110]]), rng)
    near = rois[:90]  # 90 % around the one box: inside it grown by its size
    assert (near[:, :2] >= [20, 70]).all() and (near[:, 2:] <= [80, 130]).all()
    assert rois.dtype == np.int32 and ((rois[:, 2:] - rois[:, :2]) >= 2).all()
