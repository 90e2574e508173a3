"""Configurations for Cityscapes: full resolution, and the small CPU demo.

    from cityscapes.config import CityscapesConfig
    config = CityscapesConfig()                      # 10 classes, 1024 x 2048
    config = CityscapesConfig.from_dict({"NUM_CLASSES": 1 + 8, "BACKBONE": "resnet50"})

Cityscapes frames are 1024 x 2048; the "fit64" resize mode (mrcnn/data/image.py)
keeps their aspect ratio at any IMAGE_MIN_DIM / IMAGE_MAX_DIM (512 / 1024
halves them) and pads to multiples of 64 only when needed, so batches of
several images share one size. Everything else is Matterport's default
(ResNet-101, SGD at 0.001, momentum 0.9, weight decay 1e-4, 56 x 56
mini-masks, 28 x 28 masks), with room for Cityscapes' crowded frames.
"""

from cityscapes.labels import INSTANCE_CLASSES
from mrcnn.config import Config


class CityscapesConfig(Config):
    """Cityscapes, the 10 instance classes, full resolution."""

    NAME = "cityscapes"
    NUM_CLASSES = 1 + len(INSTANCE_CLASSES)
    BACKBONE = "resnet101"
    IMAGES_PER_GPU = 1
    IMAGE_RESIZE_MODE = "fit64"
    IMAGE_MIN_DIM = 1024
    IMAGE_MAX_DIM = 2048
    # Real frames have up to ~100 annotated instances (cars parked in rows).
    MAX_GT_INSTANCES = 128
    DETECTION_MAX_INSTANCES = 100
    STEPS_PER_EPOCH = 1000
    VALIDATION_STEPS = 50


class DemoConfig(CityscapesConfig):
    """The synthetic demo scenes (256 x 512, trained at half size) from
    scratch on a CPU in minutes.

    ResNet-14 (ResNet-50 with one block per stage: from scratch, in the
    few minutes a CPU has, more steps of it beat fewer of ResNet-50: val
    AP@0.5 0.48 against 0.41 over 200 scenes, docs/benchmarks.md), anchors
    for 128 x 256 frames, fewer proposals and ROIs, and narrower heads: a
    64-channel pyramid, 256-wide classifier, 64-wide mask head and
    128-wide RPN conv (on a CPU at this size Matterport's 256 / 1024 / 256
    made the heads cost more than the backbone; RPN 512 -> 128 and mask
    head 128 -> 64 cut the demo's step by a third, the pyramid 128 -> 64
    another ~15 %). Batch normalisation trains (TRAIN_BN; Matterport
    freezes it, which suits pretrained weights, not random ones): +0.02-0.03
    AP@0.5 and +5 COCO AP over 200 scenes at the same steps. Adam (faster
    from random weights than SGD). Such a model does not load Matterport's
    published weights: the demo trains from scratch.
    """

    NAME = "demo"
    BACKBONE = "resnet14"
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 256
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    TOP_DOWN_PYRAMID_SIZE = 64
    FPN_CLASSIF_FC_LAYERS_SIZE = 256
    MASK_CONV_DIM = 64
    RPN_CONV_DIM = 128
    RPN_TRAIN_ANCHORS_PER_IMAGE = 128
    PRE_NMS_LIMIT = 2000
    POST_NMS_ROIS_TRAINING = 500
    POST_NMS_ROIS_INFERENCE = 300
    TRAIN_ROIS_PER_IMAGE = 32
    MAX_GT_INSTANCES = 32
    DETECTION_MIN_CONFIDENCE = 0.3
    OPTIMIZER = "adam"
    TRAIN_BN = True

