"""MaskRCNN.train on the JAX backend with TensorFlow absent: the run that
tests/mrcnn/test_model_jax.py checks.

    KERAS_BACKEND=jax python -m tests.mrcnn.jax_training OUT_DIR

Trains the tiny network on 8 synthetic shapes images for 2 epochs of 5
steps (more than the 4 batches of the 8 images: a second pass) with the
PyDataset feeder from worker processes (FlipCrop, the mini-mask cache in
OUT_DIR/cache), then scores a perfect prediction with the per-image mask AP
(train.py's validation score). Prints one JSON line: backend, losses per
epoch, the AP at each IoU threshold, the run folder's files and the
TensorFlow modules imported (none may be).
"""

import json
import os
import sys

sys.modules["tensorflow"] = None  # any import of TensorFlow fails

import keras
import numpy as np

from mrcnn.data.augmentation import FlipCrop
from mrcnn.evaluation import mask_ap
from mrcnn.model import MaskRCNN
from tests.mrcnn.modeling.tiny import CachedShapes, TinyConfig


class Config(TinyConfig):
    NAME = "jax"
    NUM_CLASSES = 4  # background and the 3 shapes
    STEPS_PER_EPOCH = 5
    VALIDATION_STEPS = 1
    RPN_TRAIN_ANCHORS_PER_IMAGE = 256
    TRAIN_ROIS_PER_IMAGE = 32
    ROI_POSITIVE_RATIO = 0.33
    POST_NMS_ROIS_TRAINING = 100


def main(out_dir):
    ds = CachedShapes()
    ds.load_shapes(8, 64, 64, seed=1)
    ds.prepare()
    model = MaskRCNN("training", Config(), out_dir)
    history = model.train(ds, ds, 0.005, epochs=2, layers="all", augmentation=FlipCrop(),
                          mask_cache=os.path.join(out_dir, "cache"))
    gt = np.zeros((8, 8, 2), bool)
    gt[:4, :4, 0] = gt[4:, 4:, 1] = True
    ap = mask_ap.image_ap(gt, np.array([1, 2]), gt, np.array([1, 2]), np.array([0.9, 0.8]),
                          mask_ap.IOU_THRESHOLDS)
    print(json.dumps({
        "backend": keras.backend.backend(), "loss": history.history["loss"],
        "perfect_ap": ap.tolist(), "files": sorted(os.listdir(model.log_dir)),
        "tf": [m for m in sys.modules if m.startswith("tensorflow") and sys.modules[m] is not None],
    }))


if __name__ == "__main__":
    main(sys.argv[1])
