"""Matterport's samples, written as their users write them, on this API.

Each scenario is a user's script against `from mrcnn import model as
modellib, utils, visualize` and `from mrcnn.config import Config`, in the
style of Matterport's samples (balloon.py, the shapes notebook, coco.py's
evaluation loop), shrunk to 64 x 64 images, a ResNet-14 and one or two
training steps per epoch so that the whole file runs in about a minute on
two CPU cores. The models are barely trained: the tests check that the
flow runs and its outputs are consistent, not detection quality (the
overfit check is tests/samples/test_shapes.py).
"""

import json
import os

import keras
import matplotlib
import numpy as np
import pytest
import skimage.color
import skimage.draw
import skimage.io
from pycocotools import mask as maskUtils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn import model as modellib
from mrcnn import utils, visualize
from mrcnn.config import Config
from mrcnn.data.shapes import ShapesDataset

matplotlib.use("Agg")


class TinyConfig(Config):
    """What a user's Config adds to make a CPU test fast."""

    BACKBONE = "resnet14"
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 64
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    TOP_DOWN_PYRAMID_SIZE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 64
    MASK_CONV_DIM = 32
    RPN_CONV_DIM = 32
    TRAIN_ROIS_PER_IMAGE = 16
    POST_NMS_ROIS_TRAINING = 100
    POST_NMS_ROIS_INFERENCE = 50
    STEPS_PER_EPOCH = 1
    VALIDATION_STEPS = 1


def assert_detection_shapes(r, image):
    n = len(r["class_ids"])
    assert r["rois"].shape == (n, 4)
    assert r["scores"].shape == (n,) and r["class_ids"].shape == (n,)
    assert r["masks"].shape == (*image.shape[:2], n) and r["masks"].dtype == bool
    assert ((r["scores"] >= 0) & (r["scores"] <= 1)).all()


# ----------------------------------------------------------------- balloon
# balloon.py: a VIA polygon dataset, train the heads, detect, color splash.

class BalloonConfig(TinyConfig):
    NAME = "balloon"
    IMAGES_PER_GPU = 2
    NUM_CLASSES = 1 + 1  # background + balloon
    DETECTION_MIN_CONFIDENCE = 0.0  # barely trained: keep whatever it finds


class BalloonDataset(utils.Dataset):

    def load_balloon(self, dataset_dir, subset):
        self.add_class("balloon", 1, "balloon")
        assert subset in ["train", "val"]
        dataset_dir = os.path.join(dataset_dir, subset)
        with open(os.path.join(dataset_dir, "via_region_data.json")) as f:
            annotations = list(json.load(f).values())
        annotations = [a for a in annotations if a["regions"]]  # VIA keeps unannotated images
        for a in annotations:
            # VIA 1.x stores regions as a dict, 2.x as a list.
            regions = a["regions"].values() if isinstance(a["regions"], dict) else a["regions"]
            polygons = [r["shape_attributes"] for r in regions]
            image_path = os.path.join(dataset_dir, a["filename"])
            height, width = skimage.io.imread(image_path).shape[:2]
            self.add_image("balloon", image_id=a["filename"], path=image_path,
                           width=width, height=height, polygons=polygons)

    def load_mask(self, image_id):
        info = self.image_info[image_id]
        if info["source"] != "balloon":
            return super().load_mask(image_id)
        mask = np.zeros([info["height"], info["width"], len(info["polygons"])], dtype=np.uint8)
        for i, p in enumerate(info["polygons"]):
            rr, cc = skimage.draw.polygon(p["all_points_y"], p["all_points_x"])
            mask[rr, cc, i] = 1
        return mask.astype(bool), np.ones([mask.shape[-1]], dtype=np.int32)

    def image_reference(self, image_id):
        info = self.image_info[image_id]
        if info["source"] == "balloon":
            return info["path"]
        return super().image_reference(image_id)


def color_splash(image, mask):
    """The sample's effect: colour inside the instances, grey elsewhere."""
    gray = skimage.color.gray2rgb(skimage.color.rgb2gray(image)) * 255
    if mask.shape[-1] > 0:
        mask = np.sum(mask, -1, keepdims=True) >= 1
        return np.where(mask, image, gray).astype(np.uint8)
    return gray.astype(np.uint8)


def balloon_polygon(cy, cx, ry, rx, points=12):
    angles = np.linspace(0, 2 * np.pi, points, endpoint=False)
    return {"name": "polygon",
            "all_points_x": [round(cx + rx * np.cos(a)) for a in angles],
            "all_points_y": [round(cy + ry * np.sin(a)) for a in angles]}


def write_via_subset(folder, images):
    """images: {filename: [polygon, ...]}; writes the images and VIA 1.x JSON."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(len(images))
    via = {}
    for name, polygons in images.items():
        image = np.full((48, 64, 3), (90, 140, 200), np.uint8)  # sky, 64 wide x 48 high
        image = (image + rng.integers(0, 20, image.shape)).astype(np.uint8)
        for p in polygons:
            rr, cc = skimage.draw.polygon(p["all_points_y"], p["all_points_x"], image.shape[:2])
            image[rr, cc] = (220, 30, 40)
        skimage.io.imsave(str(folder / name), image, check_contrast=False)
        size = os.path.getsize(folder / name)
        via[f"{name}{size}"] = {
            "filename": name, "size": size, "file_attributes": {},
            "regions": {str(i): {"shape_attributes": p, "region_attributes": {}}
                        for i, p in enumerate(polygons)},
        }
    (folder / "via_region_data.json").write_text(json.dumps(via))


@pytest.fixture(scope="module")
def balloon_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("balloon")
    write_via_subset(root / "train", {
        "a.jpg": [balloon_polygon(20, 20, 12, 9), balloon_polygon(28, 46, 10, 8)],
        "b.png": [balloon_polygon(24, 32, 14, 11)],
        "empty.jpg": [],  # no regions: skipped, as VIA files have them
    })
    write_via_subset(root / "val", {"c.png": [balloon_polygon(22, 18, 9, 7),
                                              balloon_polygon(30, 44, 11, 9)]})
    return root


def test_balloon_via_dataset_loads_polygons_as_masks(balloon_dir):
    dataset = BalloonDataset()
    dataset.load_balloon(str(balloon_dir), "train")
    dataset.prepare()
    assert dataset.class_names == ["BG", "balloon"]
    assert [info["id"] for info in dataset.image_info] == ["a.jpg", "b.png"]
    for image_id in dataset.image_ids:
        image = dataset.load_image(image_id)
        masks, class_ids = dataset.load_mask(image_id)
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8
        assert masks.shape == (48, 64, len(dataset.image_info[image_id]["polygons"]))
        assert (class_ids == 1).all()
        # The balloons were painted red from the same polygons (JPEG blurs the edges).
        inside, outside = image[masks.any(-1)].mean(0), image[~masks.any(-1)].mean(0)
        assert inside[0] > 180 and inside[2] < 100 and outside[2] > 180, (inside, outside)
    assert dataset.image_reference(1).endswith("b.png")


def test_balloon_train_heads_then_detect_and_color_splash(balloon_dir, tmp_path):
    keras.utils.set_random_seed(0)
    logs = str(tmp_path / "logs")
    config = BalloonConfig()
    dataset_train = BalloonDataset()
    dataset_train.load_balloon(str(balloon_dir), "train")
    dataset_train.prepare()
    dataset_val = BalloonDataset()
    dataset_val.load_balloon(str(balloon_dir), "val")
    dataset_val.prepare()

    model = modellib.MaskRCNN(mode="training", config=config, model_dir=logs)
    model.train(dataset_train, dataset_val, learning_rate=config.LEARNING_RATE,
                epochs=1, layers="heads")

    class InferenceConfig(BalloonConfig):
        GPU_COUNT = 1
        IMAGES_PER_GPU = 1

    model = modellib.MaskRCNN(mode="inference", config=InferenceConfig(), model_dir=logs)
    weights_path = model.find_last()
    assert os.path.basename(weights_path) == "mask_rcnn_balloon_0001.h5"
    model.load_weights(weights_path, by_name=True)

    image = skimage.io.imread(str(balloon_dir / "val" / "c.png"))
    r = model.detect([image], verbose=1)[0]
    assert_detection_shapes(r, image)
    assert set(r["class_ids"]) <= {1}

    splash = color_splash(image, r["masks"])
    assert splash.shape == image.shape and splash.dtype == np.uint8
    inside = r["masks"].any(-1)
    np.testing.assert_array_equal(splash[inside], image[inside])
    outside = splash[~inside].astype(int)
    assert (np.abs(outside[:, 0] - outside[:, 1]) <= 1).all()  # grey
    assert (np.abs(outside[:, 1] - outside[:, 2]) <= 1).all()
    skimage.io.imsave(str(tmp_path / "splash.png"), splash, check_contrast=False)


class Fliplr:
    """imgaug.augmenters.Fliplr's public interface (imgaug 0.4 does not import
    under NumPy 2): coco.py and nucleus.py pass such an augmenter to train()."""

    def __init__(self, p=0.5):
        self.p = p
        self.images = 0

    def to_deterministic(self):
        return self

    def augment_image(self, image, hooks=None):
        self.images += 1
        return image[:, ::-1].copy()

    def augment(self, return_batch=False, hooks=None, **kwargs):
        return self.augment_image(kwargs["image"])

    def __call__(self, *args, **kwargs):
        return self.augment(*args, **kwargs)


def test_balloon_train_with_an_imgaug_augmenter_as_coco_py_does(balloon_dir, tmp_path):
    config = BalloonConfig()
    dataset_train = BalloonDataset()
    dataset_train.load_balloon(str(balloon_dir), "train")
    dataset_train.prepare()
    model = modellib.MaskRCNN(mode="training", config=config, model_dir=str(tmp_path))
    augmenter = Fliplr(0.5)
    model.train(dataset_train, dataset_train, learning_rate=config.LEARNING_RATE,
                epochs=1, layers="heads", augmentation=augmenter)
    assert model.find_last().endswith("mask_rcnn_balloon_0001.h5")
    assert augmenter.images > 0  # train() wrapped it (ImgaugAugmentation) and used it


# ------------------------------------------------------------------ shapes
# The shapes notebook: heads then all (cumulative epochs), find_last,
# ground truth, compute_ap, display_instances.

class ShapesConfig(TinyConfig):
    NAME = "shapes"
    GPU_COUNT = 1
    IMAGES_PER_GPU = 2
    NUM_CLASSES = 1 + 3  # background + 3 shapes
    STEPS_PER_EPOCH = 2


class ShapesInferenceConfig(ShapesConfig):
    GPU_COUNT = 1
    IMAGES_PER_GPU = 1
    DETECTION_MIN_CONFIDENCE = 0.0  # barely trained: keep whatever it finds


def shapes_dataset(count, seed):
    # mrcnn.data.shapes.ShapesDataset has the notebook's API:
    # load_shapes(count, height, width), load_image, load_mask, image_reference.
    dataset = ShapesDataset()
    dataset.load_shapes(count, 64, 64, seed=seed)
    dataset.prepare()
    return dataset


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    """The notebook's training: heads for epoch 1, then all layers for epoch 2;
    returns the inference model on the last checkpoint."""
    keras.utils.set_random_seed(1)
    logs = str(tmp_path_factory.mktemp("logs"))
    config = ShapesConfig()
    dataset_train = shapes_dataset(4, seed=1)
    dataset_val = shapes_dataset(2, seed=2)

    model = modellib.MaskRCNN(mode="training", config=config, model_dir=logs)
    model.train(dataset_train, dataset_val, learning_rate=config.LEARNING_RATE,
                epochs=1, layers="heads")
    model.train(dataset_train, dataset_val, learning_rate=config.LEARNING_RATE / 10,
                epochs=2, layers="all")

    inference_config = ShapesInferenceConfig()
    model = modellib.MaskRCNN(mode="inference", config=inference_config, model_dir=logs)
    model_path = model.find_last()
    model.load_weights(model_path, by_name=True)
    return model, model_path, inference_config, dataset_train, dataset_val


def test_shapes_heads_then_all_continues_the_epochs(shapes_run):
    model, model_path, _, _, _ = shapes_run
    run = os.path.dirname(model_path)
    assert os.path.basename(run).startswith("shapes")
    assert sorted(f for f in os.listdir(run) if f.endswith(".h5")) == [
        "mask_rcnn_shapes_0001.h5", "mask_rcnn_shapes_0002.h5"]
    assert model_path.endswith("mask_rcnn_shapes_0002.h5")
    assert model.epoch == 2  # loading a checkpoint continues its run


def test_shapes_compute_ap_and_display_instances(shapes_run, tmp_path):
    import matplotlib.pyplot as plt

    model, _, inference_config, dataset_train, dataset_val = shapes_run
    image_id = dataset_val.image_ids[0]
    original_image, image_meta, gt_class_id, gt_bbox, gt_mask = modellib.load_image_gt(
        dataset_val, inference_config, image_id, use_mini_mask=False)
    np.testing.assert_array_equal(gt_bbox, utils.extract_bboxes(gt_mask))
    assert original_image.shape == (64, 64, 3)
    assert image_meta.shape == (inference_config.IMAGE_META_SIZE,)
    assert gt_mask.shape == (64, 64, len(gt_class_id)) and len(gt_class_id) >= 1
    assert gt_bbox.shape == (len(gt_class_id), 4)

    visualize.display_instances(original_image, gt_bbox, gt_mask, gt_class_id,
                                dataset_train.class_names, figsize=(4, 4))
    plt.savefig(tmp_path / "ground_truth.png")
    plt.close("all")

    r = model.detect([original_image], verbose=1)[0]
    assert_detection_shapes(r, original_image)
    _, ax = plt.subplots(1, figsize=(4, 4))
    visualize.display_instances(original_image, r["rois"], r["masks"], r["class_ids"],
                                dataset_val.class_names, r["scores"], ax=ax)
    plt.savefig(tmp_path / "detections.png")
    plt.close("all")
    for name in ("ground_truth.png", "detections.png"):
        assert skimage.io.imread(str(tmp_path / name)).shape[:2] == (400, 400)

    AP, precisions, recalls, overlaps = utils.compute_ap(
        gt_bbox, gt_class_id, gt_mask, r["rois"], r["class_ids"], r["scores"], r["masks"])
    assert 0 <= AP <= 1
    n = len(r["class_ids"])
    assert precisions.shape == recalls.shape == (n + 2,)
    assert overlaps.shape == (n, len(gt_class_id))
    # The same ground truth as a perfect prediction scores 1.
    perfect, _, _, _ = utils.compute_ap(
        gt_bbox, gt_class_id, gt_mask, gt_bbox, gt_class_id,
        np.ones(len(gt_class_id), np.float32), gt_mask)
    assert perfect == 1.0


# -------------------------------------------------------------------- COCO
# coco.py's evaluate_coco: detect each image, encode masks as RLE, load the
# results with COCO.loadRes, run COCOeval on segmentations.

class CocoLikeDataset(utils.Dataset):
    """coco.py's CocoDataset, reduced to what evaluate_coco reads."""

    def load_coco(self, annotation_file, image_dir):
        coco = COCO(annotation_file)
        for class_id in sorted(coco.getCatIds()):
            self.add_class("coco", class_id, coco.loadCats(class_id)[0]["name"])
        for i in sorted(coco.imgs):
            self.add_image("coco", image_id=i,
                           path=os.path.join(image_dir, coco.imgs[i]["file_name"]),
                           width=coco.imgs[i]["width"], height=coco.imgs[i]["height"],
                           annotations=coco.loadAnns(coco.getAnnIds(imgIds=[i], iscrowd=None)))
        return coco

    def load_mask(self, image_id):
        info = self.image_info[image_id]
        masks, class_ids = [], []
        for ann in info["annotations"]:
            class_ids.append(self.map_source_class_id(f"coco.{ann['category_id']}"))
            masks.append(self.annToMask(ann, info["height"], info["width"]))
        if not masks:
            return super().load_mask(image_id)
        return np.stack(masks, axis=2).astype(bool), np.array(class_ids, dtype=np.int32)

    def annToMask(self, ann, height, width):
        return maskUtils.decode(ann["segmentation"])


def build_coco_results(dataset, image_ids, rois, class_ids, scores, masks):
    """One results dict per detection, as coco.py builds them."""
    results = []
    for image_id in image_ids:
        for i in range(rois.shape[0]):
            bbox = np.around(rois[i], 1)
            results.append({
                "image_id": image_id,
                "category_id": dataset.get_source_class_id(class_ids[i], "coco"),
                "bbox": [bbox[1], bbox[0], bbox[3] - bbox[1], bbox[2] - bbox[0]],
                "score": scores[i],
                "segmentation": maskUtils.encode(np.asfortranarray(masks[:, :, i])),
            })
    return results


def evaluate_coco(results, coco, coco_image_ids, eval_type="segm"):
    coco_results = coco.loadRes(results)
    coco_eval = COCOeval(coco, coco_results, eval_type)
    coco_eval.params.imgIds = coco_image_ids
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return coco_eval.stats


@pytest.fixture(scope="module")
def coco_files(tmp_path_factory):
    """Shape images as PNG files with a COCO instances JSON (category ids 11,
    12, 13; image ids from 100) written from the shapes' own masks."""
    root = tmp_path_factory.mktemp("coco")
    shapes = shapes_dataset(3, seed=5)
    gt = {"images": [], "annotations": [], "categories": [
        {"id": 10 + i, "name": name} for i, name in enumerate(shapes.class_names) if i]}
    for image_id in shapes.image_ids:
        image = shapes.load_image(image_id)
        name = f"{image_id}.png"
        skimage.io.imsave(str(root / name), image, check_contrast=False)
        coco_id = 100 + int(image_id)
        gt["images"].append({"id": coco_id, "file_name": name, "height": 64, "width": 64})
        masks, class_ids = shapes.load_mask(image_id)
        for i, box in enumerate(utils.extract_bboxes(masks)):
            rle = maskUtils.encode(np.asfortranarray(masks[:, :, i].astype(np.uint8)))
            gt["annotations"].append({
                "id": len(gt["annotations"]) + 1, "image_id": coco_id,
                "category_id": 10 + int(class_ids[i]), "iscrowd": 0,
                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
                "area": float(maskUtils.area(rle)),
                "bbox": [int(box[1]), int(box[0]), int(box[3] - box[1]), int(box[2] - box[0])],
            })
    (root / "instances.json").write_text(json.dumps(gt))
    return str(root / "instances.json"), str(root)


def test_coco_evaluation_loop_on_detections(shapes_run, coco_files):
    model, _, _, _, _ = shapes_run
    dataset = CocoLikeDataset()
    coco = dataset.load_coco(*coco_files)
    dataset.prepare()
    image_ids = dataset.image_ids
    coco_image_ids = [dataset.image_info[i]["id"] for i in image_ids]
    assert coco_image_ids == [100, 101, 102]

    results = []
    for i, image_id in enumerate(image_ids):
        image = dataset.load_image(image_id)
        r = model.detect([image], verbose=0)[0]
        results.extend(build_coco_results(dataset, coco_image_ids[i:i + 1], r["rois"],
                                          r["class_ids"], r["scores"],
                                          r["masks"].astype(np.uint8)))
    # COCO.loadRes fails on an empty list; the model (threshold 0) finds something.
    assert results
    assert {res["category_id"] for res in results} <= {11, 12, 13}
    stats = evaluate_coco(results, coco, coco_image_ids, "segm")
    assert len(stats) == 12
    assert 0.0 <= stats[0] <= 1.0


def test_coco_evaluation_of_the_ground_truth_itself_is_perfect(coco_files):
    dataset = CocoLikeDataset()
    coco = dataset.load_coco(*coco_files)
    dataset.prepare()
    coco_image_ids = [dataset.image_info[i]["id"] for i in dataset.image_ids]
    results = []
    for i, image_id in enumerate(dataset.image_ids):
        masks, class_ids = dataset.load_mask(image_id)
        results.extend(build_coco_results(
            dataset, coco_image_ids[i:i + 1], utils.extract_bboxes(masks), class_ids,
            np.ones(len(class_ids), np.float32), masks.astype(np.uint8)))
    assert len(results) == len(coco.anns)
    for eval_type in ("segm", "bbox"):
        stats = evaluate_coco(results, coco, coco_image_ids, eval_type)
        assert stats[0] == pytest.approx(1.0), eval_type  # AP@[.5:.95]
        assert stats[1] == pytest.approx(1.0), eval_type  # AP@.5
