"""evaluate.py end to end on a tiny synthetic Cityscapes folder."""

import json
import os

import numpy as np
import pytest

import evaluate
from cityscapes import predictions, report
from cityscapes.dataset import CityscapesDataset
from cityscapes.labels import INSTANCE_CLASSES, ClassMap
from cityscapes.rasterize import INSTANCE_FACTOR
from cityscapes.synthetic import generate
from mrcnn.evaluation import rle


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("cs")
    generate(out, seed=3, height=128, width=256, images={"train": 1, "val": 4, "test": 0})
    return str(out)


def _val(root):
    ds = CityscapesDataset()
    ds.load_cityscapes(root, "val")
    ds.prepare()
    return ds


def perfect_results(root):
    """COCO-results entries that are exactly the ground-truth instances."""
    ds, cmap, entries = _val(root), ClassMap(), []
    for i in ds.image_ids:
        ids = ds.load_instance_ids(i)
        values = np.unique(ids)
        values = values[(values >= INSTANCE_FACTOR)
                        & np.isin(values // INSTANCE_FACTOR, cmap.label_ids)]
        for v, r in zip(values, rle.encode_label_image(ids, values)):
            entries.append({"image_id": ds.image_info[i]["id"],
                            "category_id": cmap.class_id(v // INSTANCE_FACTOR),
                            "segmentation": r, "score": 0.5 + 0.4 * (v % 7) / 7})
    return entries


def write(tmp_path, entries, name="preds.json"):
    path = tmp_path / name
    path.write_text(json.dumps(entries))
    return str(path)


def run(capsys, *argv):
    code = evaluate.main(list(argv))
    return code, capsys.readouterr()


def test_perfect_predictions_score_one_in_every_protocol(root, tmp_path, capsys):
    path = write(tmp_path, perfect_results(root))
    code, _ = run(capsys, "--dataset", root, "--predictions", path,
                  "--report", str(tmp_path / "rep"), "--samples", "1")
    assert code == 0
    r = json.loads((tmp_path / "rep" / "report.json").read_text())["models"]["preds"]
    m = r["matterport"]
    assert m["ap50"] == 1.0 and m["rap"] == 1.0
    assert set(m["ap_by_iou"]) == {f"{t:.2f}" for t in np.arange(0.5, 0.951, 0.05)}
    assert all(v in (1.0, None) for v in m["cap50"].values())
    assert r["coco"]["segm"]["AP"] == pytest.approx(1.0)
    assert r["coco"]["segm"]["AP50"] == pytest.approx(1.0)
    assert r["cityscapes"]["AP"] == pytest.approx(1.0)
    assert set(r["cityscapes"]["classes"]) == {"person", "rider", "car", "truck", "bus",
                                               "train", "motorcycle", "bicycle"}
    folder = tmp_path / "rep"
    for name in ("report.md", "ap50.csv", "cap50.csv", "ap_by_iou.csv", "coco.csv",
                 "cityscapes.csv", "pictures/pr_curves.png"):
        assert (folder / name).is_file(), name
    pictures = os.listdir(folder / "pictures")
    assert any(p.endswith("_vs_ground_truth.png") for p in pictures)
    md = (folder / "report.md").read_text()
    assert "| AP@0.5 | 100.0 |" in md and "rAP" in md


def test_two_files_give_two_columns_and_a_worse_model_scores_lower(root, tmp_path, capsys):
    entries = perfect_results(root)
    good = write(tmp_path, entries, "good.json")
    # Half the detections dropped, and a false positive with top score per image.
    worse = entries[::2] + [dict(e, score=0.99, category_id=e["category_id"] % 10 + 1)
                            for e in entries[1::6]]
    bad = write(tmp_path, worse, "bad.json")
    for path, name in ((good, "good"), (bad, "bad")):
        assert run(capsys, "--dataset", root, "--predictions", path,
                   "--report", str(tmp_path / name), "--samples", "0")[0] == 0
    g = json.loads((tmp_path / "good" / "report.json").read_text())["models"]["good"]
    b = json.loads((tmp_path / "bad" / "report.json").read_text())["models"]["bad"]
    for proto, key in (("matterport", "ap50"), ("cityscapes", "AP")):
        assert b[proto][key] < g[proto][key]
    assert b["coco"]["segm"]["AP"] < g["coco"]["segm"]["AP"]


def test_empty_predictions_score_zero(root, tmp_path, capsys):
    code, _ = run(capsys, "--dataset", root, "--predictions", write(tmp_path, []),
                  "--report", str(tmp_path / "rep"), "--samples", "0")
    assert code == 0
    r = json.loads((tmp_path / "rep" / "report.json").read_text())["models"]["preds"]
    assert r["matterport"]["ap50"] == 0.0
    assert r["coco"]["segm"]["AP"] == 0.0
    assert r["cityscapes"]["AP"] == 0.0


@pytest.mark.parametrize("change, message", [
    (lambda e: dict(e, image_id="nowhere_000000_000000"), "nowhere_000000_000000"),
    (lambda e: dict(e, category_id=11), "entry 0: category_id 11 is not a class id 1..10"),
    (lambda e: dict(e, segmentation=dict(e["segmentation"], size=[10, 10])), "size"),
])
def test_bad_predictions_exit_2_naming_the_problem(root, tmp_path, capsys, change, message):
    entries = perfect_results(root)
    entries[0] = change(entries[0])
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--dataset", root, "--predictions", write(tmp_path, entries)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_interrupted_report_leaves_the_previous_one(root, tmp_path, capsys, monkeypatch):
    path = write(tmp_path, perfect_results(root))
    folder = tmp_path / "rep"
    assert run(capsys, "--dataset", root, "--predictions", path, "--report", str(folder),
               "--samples", "0")[0] == 0
    before = (folder / "report.json").read_text()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "_pr_curves", crash)
    with pytest.raises(KeyboardInterrupt):
        evaluate.main(["--dataset", root, "--predictions", write(tmp_path, [], "e.json"),
                       "--report", str(folder), "--samples", "0"])
    assert (folder / "report.json").read_text() == before
    assert sorted(os.listdir(tmp_path)) == sorted(["e.json", "preds.json", "rep"])


def test_a_killed_runs_partial_report_is_removed_by_the_next_run(root, tmp_path, capsys):
    # What a SIGKILLed evaluate.py leaves (unlocked: its process is gone).
    stale = tmp_path / "rep.partial-k1ll3d00"
    (stale / "new").mkdir(parents=True)
    (stale / "new" / "report.json").write_text("{")
    code, captured = run(capsys, "--dataset", root, "--predictions",
                         write(tmp_path, perfect_results(root)), "--report",
                         str(tmp_path / "rep"), "--samples", "0")
    assert code == 0
    assert "Removed rep.partial-k1ll3d00, the staging folder of an interrupted run" in captured.out
    assert sorted(os.listdir(tmp_path)) == ["preds.json", "rep"]


def test_coco_export_round_trip(root, tmp_path, capsys):
    path = write(tmp_path, perfect_results(root))
    assert run(capsys, "--dataset", root, "--predictions", path, "--export", "coco",
               "--report", str(tmp_path / "rep"), "--samples", "0")[0] == 0
    exported = tmp_path / "rep" / "preds_coco_results.json"
    ds = _val(root)
    sizes = {ds.image_info[i]["id"]: (128, 256) for i in ds.image_ids}
    again = predictions.read_coco_results(str(exported), sizes, len(INSTANCE_CLASSES))
    first = predictions.read_coco_results(path, sizes, len(INSTANCE_CLASSES))
    for stem in sizes:
        np.testing.assert_array_equal(again[stem]["class_ids"], first[stem]["class_ids"])
        np.testing.assert_array_equal(rle.decode(again[stem]["rles"], 128, 256),
                                      rle.decode(first[stem]["rles"], 128, 256))


def _save_model(folder, config, classes=None):
    """A run folder as train.py leaves it: random weights, config.json,
    train_args.json."""
    from mrcnn.checkpoint import hdf5
    from mrcnn.model import MaskRCNN

    os.makedirs(folder, exist_ok=True)
    model = MaskRCNN("inference", config, str(folder))
    path = os.path.join(folder, "mask_rcnn_demo_0001.h5")
    hdf5.save_weights(model.keras_model, path)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config.to_dict(), f)
    if classes is not None:
        with open(os.path.join(folder, "train_args.json"), "w") as f:
            json.dump({"classes": classes}, f)
    return path


def test_checkpoints_are_run_and_scored_with_pictures_and_exports(root, tmp_path, capsys):
    from cityscapes.config import DemoConfig

    config = DemoConfig.from_dict({"DETECTION_MIN_CONFIDENCE": 0.0})
    a = _save_model(tmp_path / "run_a", config, list(INSTANCE_CLASSES))
    b = _save_model(tmp_path / "run_b", config, list(INSTANCE_CLASSES))
    code, out = run(capsys, "--dataset", root, "--weights", a, "--weights", b,
                    "--names", "first,second", "--images", "2", "--samples", "1",
                    "--export", "cityscapes", "--report", str(tmp_path / "rep"))
    assert code == 0, out.err
    folder = tmp_path / "rep"
    r = json.loads((folder / "report.json").read_text())["models"]
    assert list(r) == ["first", "second"]
    assert "| metric | first | second |" in (folder / "report.md").read_text()
    pictures = os.listdir(folder / "pictures")
    assert any(p.startswith("first_") and p.endswith("_proposals.png") for p in pictures)
    txts = [f for f in os.listdir(folder / "first_cityscapes_results") if f.endswith(".txt")]
    assert len(txts) == 2


def test_zero_shot_maps_coco_classes(root, tmp_path, capsys):
    from cityscapes.config import CityscapesConfig

    coco = CityscapesConfig.from_dict({"NUM_CLASSES": 81, "BACKBONE": "resnet50",
                                       "IMAGE_MIN_DIM": 128, "IMAGE_MAX_DIM": 256})
    path = _save_model(tmp_path / "coco", coco)
    code, out = run(capsys, "--dataset", root, "--weights", path, "--zero-shot",
                    "--backbone", "resnet50", "--image_min_dim", "128", "--image_max_dim", "256",
                    "--images", "1", "--samples", "0", "--report", str(tmp_path / "rep"))
    assert code == 0, out.err
    r = json.loads((tmp_path / "rep" / "report.json").read_text())["models"]
    z = next(iter(r.values()))["zero_shot"]
    assert z["no_coco_class"] == ["rider", "caravan", "trailer"]
    assert z["coco_class_ids"]["car"] == 3
    assert "no COCO class" in (tmp_path / "rep" / "report.md").read_text()


def test_weights_coco_needs_zero_shot_and_checkpoints_need_their_config(root, tmp_path, capsys):
    for argv, message in ((["--weights", "coco"], "--zero-shot"),
                          (["--weights", str(tmp_path / "missing.h5")], "no such file")):
        with pytest.raises(SystemExit) as e:
            evaluate.main(["--dataset", root] + argv)
        assert e.value.code == 2 and message in capsys.readouterr().err
    lone = tmp_path / "lone.h5"
    lone.write_bytes(b"")
    with pytest.raises(SystemExit):
        evaluate.main(["--dataset", root, "--weights", str(lone)])
    assert "no config.json beside it" in capsys.readouterr().err


def test_checkpoints_of_the_same_name_get_their_run_folder_as_prefix(root, tmp_path):
    from cityscapes import evaluator
    from cityscapes.config import DemoConfig

    paths = []
    for run_name in ("run_a", "run_b"):
        folder = tmp_path / run_name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(DemoConfig().to_dict()))
        (folder / "mask_rcnn_demo_0004.h5").write_bytes(b"")
        paths.append(str(folder / "mask_rcnn_demo_0004.h5"))
    plan = evaluator.prepare({"dataset": root, "weights": paths})
    assert [m["name"] for m in plan.models] == ["run_a/mask_rcnn_demo_0004",
                                                  "run_b/mask_rcnn_demo_0004"]
    assert plan.models[0]["classes"] == list(INSTANCE_CLASSES)


def test_unreadable_predictions_file_exit_2(root, tmp_path, capsys):
    bad = tmp_path / "broken.json"
    bad.write_text("[{")
    for path, message in ((bad, "not valid JSON"), (tmp_path / "none.json", "cannot read it")):
        with pytest.raises(SystemExit) as e:
            evaluate.main(["--dataset", root, "--predictions", str(path)])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert str(path) in err and message in err


def test_a_checkpoint_without_the_mask_head_needs_allow_partial(root, tmp_path, capsys):
    from cityscapes.config import DemoConfig
    from mrcnn.checkpoint import hdf5

    path = _save_model(tmp_path / "run", DemoConfig(), list(INSTANCE_CLASSES))
    groups = hdf5.read_legacy_h5(path)
    hdf5.write_legacy_h5(path, [g for g in groups if not g[0].startswith("mrcnn_mask")])
    argv = ["--dataset", root, "--weights", path, "--images", "1", "--samples", "0"]
    with pytest.raises(SystemExit) as e:
        evaluate.main(argv)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2
    assert "has no weights for 10 layers of the model: 'mrcnn_mask_conv1'" in line
    assert line.endswith("Pass --allow_partial to load it anyway")
    code, out = run(capsys, *argv, "--allow_partial")
    assert code == 0, out.err
    assert "10 not in file: 'mrcnn_mask_conv1'" in out.out
