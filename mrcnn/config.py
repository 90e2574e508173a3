"""Mask R-CNN configuration: Matterport's fields and defaults, validated.

Subclass `Config` and override UPPERCASE attributes, as in Matterport:

    class CityscapesConfig(Config):
        NAME = "cityscapes"
        NUM_CLASSES = 1 + 10

Derived values (BATCH_SIZE, IMAGE_SHAPE, IMAGE_META_SIZE) are computed at
construction, and the whole configuration is checked there so that a bad
value fails before any model is built. `to_dict()` / `Config.from_dict()`
round-trip a configuration through plain JSON-able values (tuning, run
records).
"""

import numpy as np

RESIZE_MODES = ("none", "square", "pad64", "crop", "fit64")
BACKBONES = ("resnet14", "resnet50", "resnet101")
# The backbones with published ImageNet weights (keras-applications).
IMAGENET_BACKBONES = ("resnet50", "resnet101")
OPTIMIZERS = ("sgd", "adam")
LOSS_NAMES = (
    "rpn_class_loss",
    "rpn_bbox_loss",
    "mrcnn_class_loss",
    "mrcnn_bbox_loss",
    "mrcnn_mask_loss",
)
# Values computed from the others; never read back from a dict.
DERIVED = ("BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE")


class Config:
    """Base configuration. Override the attributes in a subclass."""

    # Name of the configuration, used in run folder and checkpoint names.
    NAME = None

    GPU_COUNT = 1
    IMAGES_PER_GPU = 2
    STEPS_PER_EPOCH = 1000
    VALIDATION_STEPS = 50

    # "resnet50" or "resnet101" (Matterport), or "resnet14" (one bottleneck
    # block per stage: for training from scratch on a CPU; no published weights).
    BACKBONE = "resnet101"
    # Matterport's hook for a callable BACKBONE; not read: the backbones are
    # the ResNets above, and the anchors follow any image size in the graph.
    COMPUTE_BACKBONE_SHAPE = None
    BACKBONE_STRIDES = [4, 8, 16, 32, 64]
    FPN_CLASSIF_FC_LAYERS_SIZE = 1024
    TOP_DOWN_PYRAMID_SIZE = 256
    # Width of the mask head's convolutions (256 in Matterport's weights;
    # detectron2's ROI_MASK_HEAD.CONV_DIM).
    MASK_CONV_DIM = 256
    # Width of the RPN's shared 3x3 convolution, run on every pyramid level
    # (512 in Matterport's weights).
    RPN_CONV_DIM = 512
    # Start the last batch norm's gamma of each ResNet block at 0 (each block
    # starts as its shortcut; torchvision's zero_init_residual). Only the
    # initial weights change: it matters when training from scratch.
    ZERO_INIT_RESIDUAL = False

    # Background included.
    NUM_CLASSES = 1

    # One anchor scale per pyramid level, in pixels of the molded image.
    RPN_ANCHOR_SCALES = (32, 64, 128, 256, 512)
    # Width / height ratios of the anchors at each location.
    RPN_ANCHOR_RATIOS = [0.5, 1, 2]
    RPN_ANCHOR_STRIDE = 1
    RPN_NMS_THRESHOLD = 0.7
    RPN_TRAIN_ANCHORS_PER_IMAGE = 256
    PRE_NMS_LIMIT = 6000
    POST_NMS_ROIS_TRAINING = 2000
    POST_NMS_ROIS_INFERENCE = 1000

    USE_MINI_MASK = True
    MINI_MASK_SHAPE = (56, 56)

    # "square" | "pad64" | "none" | "crop" | "fit64" (see mrcnn/data/image.py).
    IMAGE_RESIZE_MODE = "square"
    IMAGE_MIN_DIM = 800
    IMAGE_MAX_DIM = 1024
    IMAGE_MIN_SCALE = 0
    IMAGE_CHANNEL_COUNT = 3
    MEAN_PIXEL = np.array([123.7, 116.8, 103.9])

    TRAIN_ROIS_PER_IMAGE = 200
    ROI_POSITIVE_RATIO = 0.33
    # Add the ground-truth boxes to the proposals sampled for the heads
    # (detectron2 and the TF Model Garden do; Matterport does not).
    PROPOSALS_INCLUDE_GT = True

    POOL_SIZE = 7
    MASK_POOL_SIZE = 14
    MASK_SHAPE = [28, 28]

    MAX_GT_INSTANCES = 100

    RPN_BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])
    BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])

    DETECTION_MAX_INSTANCES = 100
    DETECTION_MIN_CONFIDENCE = 0.7
    DETECTION_NMS_THRESHOLD = 0.3

    # "sgd" (with momentum) or "adam".
    OPTIMIZER = "sgd"
    LEARNING_RATE = 0.001
    LEARNING_MOMENTUM = 0.9
    WEIGHT_DECAY = 0.0001

    LOSS_WEIGHTS = {
        "rpn_class_loss": 1.0,
        "rpn_bbox_loss": 1.0,
        "mrcnn_class_loss": 1.0,
        "mrcnn_bbox_loss": 1.0,
        "mrcnn_mask_loss": 1.0,
    }

    # Kept for Matterport compatibility (its samples set it); proposals
    # always come from the RPN here, so it is not read.
    USE_RPN_ROIS = True
    # Train BatchNorm statistics; off by default (small batches).
    TRAIN_BN = False
    # Gradients are scaled together so that their global norm is at most
    # this (0: no clipping), as Keras 2's clipnorm did for Matterport.
    GRADIENT_CLIP_NORM = 5.0

    # XLA compilation of the training step (`compile(jit_compile=...)`) and
    # of detect's graph: True, False, or "auto": on where the Keras backend
    # has a GPU, off otherwise (`mrcnn.engine.devices.resolve_jit_compile`;
    # train.py / evaluate.py / predict.py --jit_compile on|off|auto).
    JIT_COMPILE = "auto"

    def __init__(self):
        self.BATCH_SIZE = self.IMAGES_PER_GPU * self.GPU_COUNT
        c = self.IMAGE_CHANNEL_COUNT
        if self.IMAGE_RESIZE_MODE == "crop":
            self.IMAGE_SHAPE = np.array([self.IMAGE_MIN_DIM, self.IMAGE_MIN_DIM, c])
        else:
            self.IMAGE_SHAPE = np.array([self.IMAGE_MAX_DIM, self.IMAGE_MAX_DIM, c])
        # image_id, original shape (3), molded shape (3), window (4),
        # scale (1), active class ids (NUM_CLASSES); see mrcnn/data/image.py.
        self.IMAGE_META_SIZE = 1 + 3 + 3 + 4 + 1 + self.NUM_CLASSES
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self):
        """Raise ValueError naming the first field with a bad value."""

        def fail(field, why):
            raise ValueError(
                f"{type(self).__name__}.{field} = {getattr(self, field)!r}: {why}"
            )

        for field in ("GPU_COUNT", "IMAGES_PER_GPU", "NUM_CLASSES", "STEPS_PER_EPOCH"):
            if not isinstance(getattr(self, field), (int, np.integer)) or getattr(self, field) < 1:
                fail(field, "must be a positive integer")
        if self.NUM_CLASSES < 2:
            fail("NUM_CLASSES", "must count the background and at least one class")
        if self.BACKBONE not in BACKBONES:
            fail("BACKBONE", f"must be one of {BACKBONES}")
        if self.OPTIMIZER not in OPTIMIZERS:
            fail("OPTIMIZER", f"must be one of {OPTIMIZERS}")
        if self.IMAGE_RESIZE_MODE not in RESIZE_MODES:
            fail("IMAGE_RESIZE_MODE", f"must be one of {RESIZE_MODES}")
        if self.IMAGE_RESIZE_MODE == "square" and self.IMAGE_MAX_DIM % 64:
            fail(
                "IMAGE_MAX_DIM",
                "must be divisible by 64 (the FPN halves the image 6 times), "
                "e.g. 256, 320, 384, 448, 512, 576, 640, 704, 768, 1024",
            )
        if self.IMAGE_RESIZE_MODE in ("crop", "pad64") and self.IMAGE_MIN_DIM % 64:
            fail("IMAGE_MIN_DIM", "must be divisible by 64 in crop and pad64 modes")
        if self.IMAGE_MIN_DIM and self.IMAGE_MAX_DIM and self.IMAGE_MIN_DIM > self.IMAGE_MAX_DIM:
            fail("IMAGE_MIN_DIM", f"must not exceed IMAGE_MAX_DIM ({self.IMAGE_MAX_DIM})")
        if len(self.RPN_ANCHOR_SCALES) != len(self.BACKBONE_STRIDES):
            fail("RPN_ANCHOR_SCALES", "needs one scale per backbone stride (5 for P2..P6)")
        if len(np.asarray(self.MEAN_PIXEL)) != self.IMAGE_CHANNEL_COUNT:
            fail("MEAN_PIXEL", f"needs {self.IMAGE_CHANNEL_COUNT} values (IMAGE_CHANNEL_COUNT)")
        for field in ("RPN_NMS_THRESHOLD", "DETECTION_NMS_THRESHOLD", "DETECTION_MIN_CONFIDENCE"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                fail(field, "must lie in [0, 1]")
        if not 0.0 < self.ROI_POSITIVE_RATIO <= 1.0:
            fail("ROI_POSITIVE_RATIO", "must lie in (0, 1]")
        if self.LEARNING_RATE <= 0:
            fail("LEARNING_RATE", "must be positive")
        if self.WEIGHT_DECAY < 0:
            fail("WEIGHT_DECAY", "must not be negative")
        unknown = set(self.LOSS_WEIGHTS) - set(LOSS_NAMES)
        if unknown:
            fail("LOSS_WEIGHTS", f"unknown losses {sorted(unknown)}; known: {LOSS_NAMES}")
        if len(self.MINI_MASK_SHAPE) != 2 or len(self.MASK_SHAPE) != 2:
            fail("MASK_SHAPE", "MASK_SHAPE and MINI_MASK_SHAPE must be (height, width)")
        if not (self.JIT_COMPILE == "auto" or isinstance(self.JIT_COMPILE, bool)):
            fail("JIT_COMPILE", 'must be True, False or "auto"')
        if self.MASK_SHAPE[0] != 2 * self.MASK_POOL_SIZE:
            fail("MASK_SHAPE", f"must be twice MASK_POOL_SIZE ({self.MASK_POOL_SIZE}): "
                 "the mask head upsamples once")

    # ------------------------------------------------------------ dict / show
    def to_dict(self):
        """All UPPERCASE fields as plain Python values (JSON-able)."""
        out = {}
        for name in dir(self):
            if not name.isupper() or name.startswith("_"):
                continue
            value = getattr(self, name)
            if callable(value):
                value = getattr(value, "__name__", repr(value))
            out[name] = _plain(value)
        return out

    @classmethod
    def from_dict(cls, values):
        """A Config whose fields are `values` (derived fields recomputed).

        Unknown keys raise ValueError, so a typo in a tuning file is caught.
        """
        unknown = [k for k in values if not hasattr(cls, k) and k not in DERIVED]
        if unknown:
            raise ValueError(f"unknown Config fields: {sorted(unknown)}")
        attrs = {k: _restore(getattr(cls, k, None), v) for k, v in values.items()
                 if k not in DERIVED}
        return type(cls.__name__, (cls,), attrs)()

    def display(self):
        """Print every UPPERCASE field and its value, one per line, in
        alphabetical order (Matterport's format)."""
        print("\nConfigurations:")
        for name in dir(self):
            value = getattr(self, name)
            if name.isupper() and not name.startswith("_") and not callable(value):
                print(f"{name:30} {value}")
        print("\n")


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _restore(default, value):
    """Give `value` the container type of the class default (array, tuple)."""
    if isinstance(default, np.ndarray):
        return np.array(value, dtype=default.dtype)
    if isinstance(default, tuple):
        return tuple(value)
    return value
