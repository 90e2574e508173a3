"""One number, one code path: val mask AP@0.5 as train.py, tuning's val_ap
and evaluate.py report it agree on the same model and images.

The model is a stand-in whose detections are the ground truth, thinned,
shifted and padded with false positives (seeded), so the AP lies well
inside (0, 1) and any difference between the paths would show.
"""

import hashlib

import numpy as np
import pytest

from cityscapes import evaluator, options, trainer
from cityscapes.synthetic import generate
from mrcnn.data.masks import boxes_from_masks
from mrcnn.engine import inference
from mrcnn.evaluation.mask_ap import evaluate_model
from tuning.callbacks import ValAP


class Config:
    NAME = "fake"
    BATCH_SIZE = 1


class ImperfectModel:
    """detect() as an inference MaskRCNN's, from a dataset's ground truth."""

    config = Config()

    def __init__(self, dataset, seed=0):
        rng = np.random.default_rng(seed)
        self.results = {}
        for image_id in dataset.image_ids:
            image = dataset.load_image(image_id)
            masks, class_ids = dataset.load_mask(image_id)
            keep = (class_ids > 0) & (rng.random(len(class_ids)) < 0.8)
            masks, class_ids = masks[..., keep], class_ids[keep]
            shift = rng.integers(0, 6, len(class_ids))
            masks = np.stack([np.roll(m, s, axis=1) for m, s in
                              zip(np.moveaxis(masks, -1, 0), shift)], -1) if len(
                class_ids) else masks
            extra = np.zeros(image.shape[:2] + (2,), bool)  # false positives
            extra[5:25, 5:40, 0] = extra[60:90, 100:150, 1] = True
            masks = np.concatenate([masks, extra], -1)
            class_ids = np.concatenate([class_ids, [1, 3]]).astype(np.int32)
            scores = rng.uniform(0.5, 1.0, len(class_ids)).astype(np.float32)
            self.results[self._key(image)] = {
                "rois": boxes_from_masks(masks).numpy().astype(np.int32),
                "class_ids": class_ids, "scores": scores, "masks": masks,
                "proposals": np.zeros((0, 4), np.int32)}

    @staticmethod
    def _key(image):
        return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()

    def detect(self, images, verbose=0):
        return [self.results[self._key(image)] for image in images]

    def load_weights(self, *args, **kwargs):
        pass


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    root = tmp_path_factory.mktemp("cs")
    generate(root, seed=4, height=128, width=256, images={"train": 1, "val": 5, "test": 0})
    o, _ = options.resolve({"dataset": str(root), "weights": "none", "image_min_dim": 128,
                            "image_max_dim": 256})
    return trainer.prepare(o)


def test_train_tuning_and_evaluate_report_the_same_mask_ap(plan, tmp_path, monkeypatch):
    val = plan.val
    model = ImperfectModel(val)
    monkeypatch.setattr(inference, "inference_model", lambda *a, **k: model)

    # evaluate.py: the whole report, all three protocols.
    report = evaluator._score_all(
        evaluator.Plan(evaluator.EvalOptions(samples=0), plan.root, val, list(val.image_ids),
                       [{"name": "m", "path": "m.h5", "config": object(),
                         "classes": list(val.class_names[1:]), "zero_shot": False}]),
        None, log=lambda *_: None)
    from_report = report["models"]["m"]["matterport"]["ap50"]

    # train.py: the end-of-run evaluation of a checkpoint.
    from_train = trainer.evaluate_checkpoint(plan, str(tmp_path / "m.h5"))["mask_ap50"]

    # tuning: the val_ap callback after an epoch.
    callback = ValAP(Config(), val, val.image_ids, str(tmp_path))
    logs = {}
    callback.on_epoch_end(0, logs)

    # The generic path (any mrcnn Dataset: masks from load_mask).
    generic = float(evaluate_model(model, val)["ap"][0])

    assert 0.2 < from_report < 0.95
    assert from_train == pytest.approx(from_report, abs=1e-9)
    assert logs["val_ap"] == pytest.approx(from_report, abs=1e-9)
    assert generic == pytest.approx(from_report, abs=1e-6)
