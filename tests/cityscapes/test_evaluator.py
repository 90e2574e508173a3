"""Tests for cityscapes/evaluator.py helpers (evaluate.py end to end: tests/test_evaluate.py)."""

import threading
import time

import numpy as np
import pytest

from cityscapes import evaluator


def test_read_ahead_keeps_order_and_reads_in_other_threads():
    seen = []

    def slow(i):
        time.sleep(0.01 * (i % 3))
        seen.append(threading.current_thread().name)
        return i * i

    assert list(evaluator.read_ahead(slow, range(10))) == [i * i for i in range(10)]
    assert threading.current_thread().name not in seen


def test_read_ahead_passes_errors_on():
    def fail_on_3(i):
        if i == 3:
            raise ValueError("bad file 3")
        return i

    got = []
    with pytest.raises(ValueError, match="bad file 3"):
        for v in evaluator.read_ahead(fail_on_3, range(6)):
            got.append(v)
    assert got == [0, 1, 2]


def test_coco_detections_become_cityscapes_classes():
    masks = np.zeros((4, 5, 4), bool)
    masks[0, 0, :] = True
    r = {"rois": np.arange(16).reshape(4, 4), "class_ids": np.array([1, 3, 5, 8]),
         "scores": np.array([0.9, 0.8, 0.7, 0.6]), "masks": masks}
    out = evaluator._coco_to_cityscapes(r)
    # person -> person (1), car -> car (3), airplane dropped, truck -> truck (4).
    assert out["class_ids"].tolist() == [1, 3, 4]
    assert out["scores"].tolist() == [0.9, 0.8, 0.6]
    assert out["masks"].shape == (4, 5, 3) and out["rois"].shape == (3, 4)


def test_instance_ids_only_folder_is_evaluated(tmp_path):
    """No polygons JSON needed: perfect predictions read back from the PNGs score 1."""
    import json

    from cityscapes.synthetic import generate
    from tests.test_evaluate import perfect_results

    root = tmp_path / "ids_only"
    generate(root, seed=3, height=64, width=128, images={"train": 0, "val": 3, "test": 0},
             polygons=False)
    entries = perfect_results(str(root))
    assert entries  # image 1 has no instances, the others do
    (tmp_path / "p.json").write_text(json.dumps(entries))
    plan = evaluator.prepare({"dataset": str(root), "predictions": str(tmp_path / "p.json")})
    assert plan.dataset.load_report["sources"] == {"polygons": 0, "instanceIds": 3}
    result = evaluator.run(plan, log=lambda *args: None)["models"]["p"]
    assert result["matterport"]["ap50"] == 1.0
    assert result["cityscapes"]["AP"] == pytest.approx(1.0)
