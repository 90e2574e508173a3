"""MaskRCNN.train on the JAX backend with TensorFlow absent (issue 16): the
PyDataset feeder from worker processes (FlipCrop, the mini-mask cache),
Keras' own compiled step, checkpoints; losses finite and falling; and the
per-image mask AP (mrcnn.evaluation.mask_ap) scores there too. The run:
tests/mrcnn/jax_training.py, started by the `jax_training` fixture
(tests/mrcnn/conftest.py)."""

import json
import os

import numpy as np
import pytest


def test_train_under_jax_without_tensorflow(jax_training):
    pytest.importorskip("jax")
    process, out = jax_training
    process.wait(timeout=900)
    assert process.returncode == 0, (out / "stderr").read_text()[-3000:]
    result = json.loads((out / "stdout").read_text().strip().splitlines()[-1])
    assert result["backend"] == "jax" and result["tf"] == []
    assert result["perfect_ap"] == [1.0] * 10
    loss = result["loss"]
    assert len(loss) == 2 and np.isfinite(loss).all() and loss[-1] < loss[0]
    assert {f"mask_rcnn_jax_000{i}.h5" for i in (1, 2)} <= set(result["files"])
    assert len(os.listdir(out / "cache")) == 8  # the workers filled the cache
