"""MaskRCNN.train on the JAX backend with TensorFlow absent (issue 16): the
PyDataset feeder from worker processes (FlipCrop, the mini-mask cache),
Keras' own compiled step, checkpoints; losses finite and falling."""

import json
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = """
import json, os, sys
sys.modules["tensorflow"] = None  # importing it fails
import keras
from mrcnn.data.augmentation import FlipCrop
from mrcnn.data.shapes import ShapesDataset
from mrcnn.model import MaskRCNN
from tests.mrcnn.modeling.tiny import TinyConfig

class Config(TinyConfig):
    NAME = "jax"
    NUM_CLASSES = 4  # background and the 3 shapes
    STEPS_PER_EPOCH = 5  # more than the 4 batches of the 8 images: a second pass
    VALIDATION_STEPS = 1
    RPN_TRAIN_ANCHORS_PER_IMAGE = 256
    TRAIN_ROIS_PER_IMAGE = 32
    ROI_POSITIVE_RATIO = 0.33
    POST_NMS_ROIS_TRAINING = 100

class CachedShapes(ShapesDataset):
    def cache_version(self, image_id):
        return "1"

ds = CachedShapes()
ds.load_shapes(8, 64, 64, seed=1)
ds.prepare()
model = MaskRCNN("training", Config(), sys.argv[1])
history = model.train(ds, ds, 0.005, epochs=2, layers="all", augmentation=FlipCrop(),
                      mask_cache=os.path.join(sys.argv[1], "cache"))
print(json.dumps({"backend": keras.backend.backend(), "loss": history.history["loss"],
                  "files": sorted(os.listdir(model.log_dir)),
                  "tf": [m for m in sys.modules if m.startswith("tensorflow")
                         and sys.modules[m] is not None]}))
"""


def test_train_under_jax_without_tensorflow(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=900, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax" and result["tf"] == []
    loss = result["loss"]
    assert len(loss) == 2 and np.isfinite(loss).all() and loss[-1] < loss[0]
    assert {f"mask_rcnn_jax_000{i}.h5" for i in (1, 2)} <= set(result["files"])
    assert len(os.listdir(tmp_path / "cache")) == 8  # the workers filled the cache
