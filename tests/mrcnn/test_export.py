"""python -m mrcnn.export: the SavedModel, loaded in a fresh process by
TensorFlow alone (no Keras, no code of this project), detects what
MaskRCNN.detect detects."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from mrcnn import export
from mrcnn.checkpoint import hdf5
from mrcnn.config import Config
from mrcnn.engine.inference import inference_model
from tests.commands import exit_code


class TinyConfig(Config):
    """A small, fast model; "square" resizing, so every picture is resized."""

    NAME = "tiny"
    NUM_CLASSES = 4
    BACKBONE = "resnet14"
    IMAGE_RESIZE_MODE = "square"
    IMAGE_MIN_DIM = 64
    IMAGE_MAX_DIM = 128
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    TOP_DOWN_PYRAMID_SIZE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 64
    MASK_CONV_DIM = 16
    RPN_CONV_DIM = 32
    POST_NMS_ROIS_INFERENCE = 50
    # Random weights: keep every detection, so that there are some to compare,
    # and no cap on their number (random scores tie at the cap).
    DETECTION_MAX_INSTANCES = 50
    DETECTION_MIN_CONFIDENCE = 0.0


# Pictures of three sizes (each resized differently), and two of one size
# for the batched signature.
SHAPES = [(100, 150), (128, 96), (61, 203)]

# Loads the SavedModel with TensorFlow alone: Keras cannot be imported (a
# finder answers every `keras` import with ModuleNotFoundError, and makes
# TensorFlow see no Keras at all), this project is not on sys.path.
LOADER = textwrap.dedent("""
    import importlib.abc, importlib.machinery, importlib.util, json, sys

    class NoKeras(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("keras", "tf_keras"):
                return importlib.machinery.ModuleSpec(name, self)
        def create_module(self, spec):
            raise ModuleNotFoundError(f"No module named {spec.name!r}", name=spec.name)
        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, NoKeras())
    import numpy as np
    import tensorflow as tf

    assert importlib.util.find_spec("mrcnn") is None, "the project is importable"
    model = tf.saved_model.load(sys.argv[1])
    inputs = np.load(sys.argv[2])
    out = {}
    for i in range(len(inputs.files) - 1):
        r = model.signatures["serving_default"](image=tf.constant(inputs[f"image{i}"]))
        out.update({f"{k}{i}": v.numpy() for k, v in r.items()})
    r = model.signatures["serving_batch"](images=tf.constant(inputs["batch"]))
    out.update({f"batch_{k}": v.numpy() for k, v in r.items()})
    np.savez(sys.argv[3], **out)
    json.dump({"keras": sorted(m for m in sys.modules if m.split(".")[0] == "keras"),
               "signatures": sorted(model.signatures)}, open(sys.argv[4], "w"))
""")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A run folder as training leaves it: random weights and config.json."""
    folder = tmp_path_factory.mktemp("logs") / "tiny20260101T0000"
    folder.mkdir()
    keras.utils.set_random_seed(0)
    model = inference_model(TinyConfig())
    path = str(folder / "mask_rcnn_tiny_0001.h5")
    hdf5.save_weights(model.keras_model, path)
    (folder / "config.json").write_text(json.dumps(TinyConfig().to_dict()))
    return path


@pytest.fixture(scope="module")
def pictures():
    rng = np.random.default_rng(0)
    single = [rng.integers(0, 256, (*s, 3), np.uint8) for s in SHAPES]
    return single, rng.integers(0, 256, (2, 90, 120, 3), np.uint8)


@pytest.fixture(scope="module")
def served(checkpoint, pictures, tmp_path_factory):
    """The checkpoint exported by the command line, then run in a fresh
    process by TensorFlow alone. -> (outputs, loader's facts)"""
    folder = tmp_path_factory.mktemp("export")
    exported = folder / "saved_model"
    logs = os.path.dirname(os.path.dirname(checkpoint))
    assert exit_code(export.main, ["--weights", "last", "--logs", logs,
                                   "--output", str(exported)]) == 0
    single, batch = pictures
    np.savez(folder / "inputs.npz", batch=batch, **{f"image{i}": p for i, p in enumerate(single)})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-I", "-c", LOADER, str(exported), str(folder / "inputs.npz"),
         str(folder / "out.npz"), str(folder / "facts.json")],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    out = np.load(folder / "out.npz")
    return {k: out[k] for k in out.files}, json.loads((folder / "facts.json").read_text())


def _compare(detected, boxes, class_ids, scores, masks):
    """The served detections are detect()'s: the same classes and scores,
    boxes within 1 px, masks IoU > 0.99, one for one (random weights give
    equal scores, which may come in either order).
    -> number of non-empty masks compared"""
    n = len(detected["class_ids"])
    assert len(class_ids) == n and masks.shape == (n, *detected["masks"].shape[:2])
    theirs = np.moveaxis(detected["masks"], -1, 0).reshape(n, -1).astype(np.float32)
    ours = masks.reshape(n, -1).astype(bool).astype(np.float32)
    inter = theirs @ ours.T
    union = theirs.sum(1)[:, None] + ours.sum(1)[None] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    fits = ((detected["class_ids"][:, None] == class_ids[None])
            & (np.abs(detected["scores"][:, None] - scores[None]) < 1e-4)
            & (np.abs(detected["rois"][:, None] - boxes[None].astype(int)).max(-1) <= 1)
            & (iou > 0.99))
    rows, cols = linear_sum_assignment(fits, maximize=True)
    assert fits[rows, cols].all(), f"{int((~fits[rows, cols]).sum())} of {n} detections differ"
    return int((union[rows, cols] > 0).sum())


def test_the_saved_model_detects_what_detect_does_without_keras(checkpoint, pictures, served):
    out, facts = served
    assert facts["keras"] == []
    assert facts["signatures"] == ["serving_batch", "serving_default"]
    model = inference_model(checkpoint)
    single, batch = pictures
    compared = 0
    for i, picture in enumerate(single):
        detected = model.detect([picture])[0]
        assert out[f"num_detections{i}"] == len(detected["class_ids"]) > 0
        assert out[f"masks{i}"].dtype == np.uint8
        compared += _compare(detected, out[f"boxes{i}"], out[f"class_ids{i}"], out[f"scores{i}"],
                             out[f"masks{i}"])
    for b, picture in enumerate(batch):
        detected = model.detect([picture])[0]
        n = out["batch_num_detections"][b]
        assert n == len(detected["class_ids"]) > 0
        compared += _compare(detected, out["batch_boxes"][b, :n], out["batch_class_ids"][b, :n],
                             out["batch_scores"][b, :n], out["batch_masks"][b, :n])
        # Rows past an image's count are zeros.
        assert not out["batch_masks"][b, n:].any() and not out["batch_scores"][b, n:].any()
    assert compared >= 50  # there were masks to compare


def test_export_refuses_bad_weights(tmp_path, capsys):
    code = exit_code(export.main, ["--weights", str(tmp_path / "none.h5"),
                                   "--output", str(tmp_path / "out")])
    assert code == 2
    assert "none.h5: no such file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
