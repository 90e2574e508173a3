"""Train Mask R-CNN on synthetic shapes and check its detections (CPU, minutes).

    python -m samples.shapes [--images 4] [--epochs 4] [--logs logs]

The idea of Matterport's shapes sample: a ResNet-50 Mask R-CNN learns
squares, circles and triangles from scratch on a handful of 128 x 128
images, then `detect()` runs on them and the mask IoU of each ground-truth
instance with its best same-class detection is printed.
"""

import sys

import numpy as np

import cli
from mrcnn.config import Config
from mrcnn.data.shapes import CLASS_NAMES, ShapesDataset


class ShapesConfig(Config):
    """A small, fast configuration for 128 x 128 shape images."""

    NAME = "shapes"
    NUM_CLASSES = 1 + len(CLASS_NAMES)
    BACKBONE = "resnet50"
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    # Narrower than Matterport's 256 / 1024 / 256 / 512: from scratch on a
    # CPU the heads would cost more than the backbone.
    TOP_DOWN_PYRAMID_SIZE = 128
    FPN_CLASSIF_FC_LAYERS_SIZE = 256
    MASK_CONV_DIM = 128
    RPN_CONV_DIM = 128
    TRAIN_ROIS_PER_IMAGE = 32
    POST_NMS_ROIS_TRAINING = 200
    POST_NMS_ROIS_INFERENCE = 100
    OPTIMIZER = "adam"
    LEARNING_RATE = 0.001
    STEPS_PER_EPOCH = 60
    VALIDATION_STEPS = 1


# Detection threshold when checking (the training config keeps Matterport's 0.7).
DETECTION_MIN_CONFIDENCE = 0.5


def best_mask_ious(gt_masks, gt_class_ids, result):
    """Per ground-truth instance, the best mask IoU with a same-class detection.

    gt_masks: [H, W, N] bool; result: a dict from `MaskRCNN.detect`. -> [N]
    """
    gt = gt_masks.reshape(-1, gt_masks.shape[-1]).astype(np.float32)  # [HW, N]
    det = result["masks"].reshape(-1, result["masks"].shape[-1]).astype(np.float32)  # [HW, D]
    inter = gt.T @ det
    union = gt.sum(0)[:, None] + det.sum(0)[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    same = gt_class_ids[:, None] == result["class_ids"][None, :]
    return np.where(same, iou, 0.0).max(axis=1, initial=0.0)


def train_and_check(images=4, epochs=4, model_dir="logs", seed=1):
    """Train on `images` shape images (also used to check), return the IoUs.

    `seed` fixes the images and the initial weights.
    """
    import keras

    from mrcnn.engine import run
    from mrcnn.engine.inference import inference_model
    from mrcnn.engine.schedule import Stage

    keras.utils.set_random_seed(seed)
    dataset = ShapesDataset()
    dataset.load_shapes(images, 128, 128, seed=seed)
    dataset.prepare()
    config = ShapesConfig()
    model = run.training_model(config, model_dir)
    # Matterport's staged recipe: the last epoch at a tenth of the rate.
    stages = [Stage("all", epochs - 1), Stage("all", epochs, 0.1)]
    summary = run.train_stages(model, dataset, dataset, stages, config.LEARNING_RATE)
    infer = inference_model(summary["last_checkpoint"],
                            overrides={"DETECTION_MIN_CONFIDENCE": DETECTION_MIN_CONFIDENCE})
    ious = []
    for image_id in dataset.image_ids:
        masks, class_ids = dataset.load_mask(image_id)
        result = infer.detect([dataset.load_image(image_id)])[0]
        ious.append(best_mask_ious(masks, class_ids, result))
    return np.concatenate(ious)


def build_parser():
    parser = cli.Parser("python -m samples.shapes", __doc__)
    parser.add_argument("--images", type=int, default=4, help="shape images (default 4)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs (default 4)")
    parser.add_argument("--logs", default="logs", help="folder of the run folders (default logs)")
    return parser


def work(args):
    ious = train_and_check(args.images, args.epochs, args.logs)
    print(f"mask IoU per ground-truth instance: {np.round(ious, 2).tolist()}")
    print(f"mean {ious.mean():.3f}; recovered (IoU > 0.5): {(ious > 0.5).sum()} of {len(ious)}")


def main(argv=None):
    return cli.main(build_parser(), work, argv)


if __name__ == "__main__":
    sys.exit(main())
