"""predict.py end to end: pictures, folders, videos and bad files, and the
predictions file that evaluate.py reads back."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import evaluate
import predict
from cityscapes import export, predictions, predictor
from cityscapes.labels import INSTANCE_CLASSES, ClassMap
from cityscapes.synthetic import generate
from mrcnn import media
from mrcnn.checkpoint.pretrained import COCO_CLASS_NAMES
from tests.commands import exit_code


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("cs")
    generate(out, seed=5, height=128, width=256, images={"train": 1, "val": 2, "test": 0})
    return str(out)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A run folder as train.py leaves it (random weights that keep every
    detection, config.json, train_args.json naming the classes)."""
    import keras

    from cityscapes.config import DemoConfig
    from mrcnn.checkpoint import hdf5
    from mrcnn.model import MaskRCNN

    folder = tmp_path_factory.mktemp("logs") / "demo20260101T0000"
    folder.mkdir()
    config = DemoConfig.from_dict({"DETECTION_MIN_CONFIDENCE": 0.0,
                                   "DETECTION_MAX_INSTANCES": 12})
    keras.utils.set_random_seed(1)
    model = MaskRCNN("inference", config, str(folder))
    path = str(folder / "mask_rcnn_demo_0001.h5")
    hdf5.save_weights(model.keras_model, path)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    (folder / "train_args.json").write_text(json.dumps({"classes": list(INSTANCE_CLASSES)}))
    return path


def _picture(path, shape, seed=0):
    data = np.random.default_rng(seed).integers(0, 256, (*shape, 3), np.uint8)
    Image.fromarray(data).save(path)
    return data


def _truncated(path):
    _picture(path, (64, 64), seed=9)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:len(data) // 2])


def _entries(path):
    return sorted(json.load(open(path)), key=lambda e: (e["image_id"], -e["score"]))


def test_val_pictures_give_what_detect_gives_and_evaluate_reads_it(root, checkpoint, tmp_path,
                                                                   capsys):
    from mrcnn.engine.inference import inference_model

    out = tmp_path / "out"
    val = os.path.join(root, "leftImg8bit", "val")
    assert exit_code(predict.main, ["--weights", checkpoint, "--input", val,
                                    "--output", str(out), "--format", "cityscapes"]) == 0
    assert "2 images (2 pictures)" in capsys.readouterr().out
    pictures = sorted(media.collect([val]).images)
    assert sorted(os.listdir(out)) == sorted(
        [os.path.basename(p) for p in pictures]
        + [predictor.PREDICTIONS, predictor.SUMMARY, predictor.OFFICIAL])
    # predictions.json holds detect()'s detections, by image id = the Cityscapes stem.
    model = inference_model(checkpoint)
    expected = []
    for path in pictures:
        stem = os.path.basename(path).removesuffix("_leftImg8bit.png")
        r = model.detect([np.asarray(Image.open(path).convert("RGB"))])[0]
        expected += predictions.coco_results(stem, predictions.from_detections(r))
    assert expected and _entries(out / predictor.PREDICTIONS) == sorted(
        expected, key=lambda e: (e["image_id"], -e["score"]))
    # The official layout: one txt per picture, label ids of Cityscapes.
    labels, _, masks = export.read_cityscapes_results(
        out / predictor.OFFICIAL / f"{expected[0]['image_id']}_pred.txt")
    assert len(labels) and set(labels) <= set(ClassMap().label_ids)
    assert masks.shape[:2] == (128, 256)
    # evaluate.py scores the file (it stops with exit 2 on an entry it cannot use).
    capsys.readouterr()
    assert exit_code(evaluate.main, ["--dataset", root, "--predictions",
                                     str(out / predictor.PREDICTIONS), "--samples", "0"]) == 0
    assert "predictions: AP@0.5" in capsys.readouterr().out


def test_a_folder_of_pictures_of_two_sizes_a_video_and_bad_files(checkpoint, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _picture(folder / "a.png", (128, 256), seed=1)
    _picture(folder / "b.jpg", (100, 150), seed=2)
    _truncated(folder / "c.png")
    (folder / "notes.txt").write_text("not a picture")
    with media.VideoWriter(str(folder / "clip.mp4"), fps=5) as video:
        for seed in range(3):
            video.write(np.random.default_rng(seed).integers(0, 256, (64, 96, 3), np.uint8))
    out = tmp_path / "out"
    assert exit_code(predict.main, ["--weights", "last", "--logs", os.path.dirname(
        os.path.dirname(checkpoint)), "--input", str(folder), "--output", str(out), "--batch", "2",
        "--skip_bad", "--classes", "motorcycle,car"]) == 0
    line = capsys.readouterr().out
    assert "5 images (2 pictures, 3 frames of 1 video)" in line
    assert f"skipped 1 bad file: {folder / 'c.png'}" in line and "ignored 1 file" in line
    summary = json.loads((out / predictor.SUMMARY).read_text())
    assert summary["skipped"][0]["file"] == str(folder / "c.png")
    assert "cannot decode it" in summary["skipped"][0]["reason"]
    assert summary["ignored_files"] == [str(folder / "notes.txt")]
    assert summary["classes"]["3"] == "car" and summary["classes_kept"] == ["car", "motorcycle"]
    entries = _entries(out / predictor.PREDICTIONS)
    assert {e["image_id"] for e in entries} <= {"a", "b", "clip_000000", "clip_000001",
                                                "clip_000002"}
    assert entries and {e["category_id"] for e in entries} <= {3, 9}
    assert summary["detections"] == len(entries)
    sizes = {e["image_id"]: e["segmentation"]["size"] for e in entries}
    assert sizes.get("b", [100, 150]) == [100, 150]
    assert Image.open(out / "b.jpg").size == (150, 100)
    assert len(list(media.open_video(str(out / "clip.mp4")).frames())) == 3
    assert not (out / "c.png").exists()


def test_an_undecodable_picture_stops_the_run_after_writing_what_came_before(checkpoint,
                                                                            tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _picture(folder / "a.png", (128, 256), seed=1)
    _truncated(folder / "b.png")
    _picture(folder / "c.png", (128, 256), seed=2)
    out = tmp_path / "out"
    assert exit_code(predict.main, ["--weights", checkpoint, "--input", str(folder),
                                    "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"predict.py: error: {folder / 'b.png'}: cannot decode it" in err
    assert "--skip_bad" in err and err.count("\n") == 1
    assert (out / "a.png").exists() and not (out / "c.png").exists()
    assert {e["image_id"] for e in _entries(out / predictor.PREDICTIONS)} == {"a"}
    assert json.loads((out / predictor.SUMMARY).read_text())["stopped_at"] == str(folder / "b.png")


def test_bad_input_is_one_line_and_exit_2_before_any_model(checkpoint, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    for name in ("x", "y"):
        (tmp_path / name).mkdir()
        _picture(tmp_path / name / "same.png", (8, 8))
    cases = [
        (["--input", str(tmp_path / "empty")],
         "no pictures or videos (1 file without a picture or video extension)"),
        (["--input", str(tmp_path / "x"), "--classes", "cat"], "the model has no class ['cat']"),
        (["--input", str(tmp_path / "x"), str(tmp_path / "y")], "would share the output file"),
        (["--input", str(tmp_path / "x"), "--output", str(tmp_path / "x")], "would overwrite"),
        (["--input", str(tmp_path / "nowhere")], "no such file or folder"),
        (["--input", str(tmp_path / "x"), "--min_confidence", "2"], "must lie in [0, 1]"),
        (["--input", str(tmp_path / "x"), "--batch", "0"], "must be a positive integer"),
    ]
    for argv, message in cases:
        argv = ["--weights", checkpoint, "--output", str(tmp_path / "out"), *argv]
        assert exit_code(predict.main, argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    assert exit_code(predict.main, ["--weights", str(tmp_path / "none.h5"), "--input",
                                    str(tmp_path / "x"), "--output", str(tmp_path / "out")]) == 2
    assert "none.h5: no such file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_class_names_come_from_the_run_record_or_coco(checkpoint, tmp_path):
    assert predictor.class_names(checkpoint, checkpoint, 11) == list(INSTANCE_CLASSES)
    coco = predictor.class_names("coco", "unused.h5", 81)
    assert coco == list(COCO_CLASS_NAMES[1:]) and coco[2] == "car" and len(coco) == 80
    lone = tmp_path / "mask_rcnn_x_0001.h5"  # no train_args.json beside it
    assert predictor.class_names(str(lone), str(lone), 11) == list(INSTANCE_CLASSES)
    assert predictor.class_names(str(lone), str(lone), 3) == ["class 1", "class 2"]
    with pytest.raises(predictor.cli.UsageError, match="names 10 classes but the model has 4"):
        predictor.class_names(checkpoint, checkpoint, 5)


def test_classes_keeps_only_the_detections_of_those_classes():
    result = {"rois": np.arange(12).reshape(3, 4), "class_ids": np.array([2, 5, 2]),
              "scores": np.array([0.9, 0.8, 0.7]), "masks": np.zeros((4, 5, 3), bool)}
    result["masks"][0, 0] = [True, False, True]
    kept = predictor._kept(result, (2,))
    np.testing.assert_array_equal(kept["class_ids"], [2, 2])
    np.testing.assert_array_equal(kept["scores"], [0.9, 0.7])
    np.testing.assert_array_equal(kept["rois"], result["rois"][[0, 2]])
    assert kept["masks"].shape == (4, 5, 2) and kept["masks"][0, 0].all()
    assert predictor._kept(result, None) is result


def test_a_checkpoint_without_the_mask_head_stops_unless_allow_partial(root, checkpoint, tmp_path,
                                                                       capsys):
    from mrcnn.checkpoint import hdf5

    folder = tmp_path / "demo20260101T0001"
    folder.mkdir()
    for name in ("config.json", "train_args.json"):
        (folder / name).write_bytes((Path(checkpoint).parent / name).read_bytes())
    partial = folder / "mask_rcnn_demo_0001.h5"
    hdf5.write_legacy_h5(partial, [g for g in hdf5.read_legacy_h5(checkpoint)
                                   if not g[0].startswith("mrcnn_mask")])
    picture = tmp_path / "a.png"
    _picture(picture, (64, 96))
    argv = ["--weights", str(partial), "--input", str(picture), "--output", str(tmp_path / "o")]
    assert exit_code(predict.main, argv) == 2
    err = capsys.readouterr().err
    assert "has no weights for 10 layers" in err and "Pass --allow_partial" in err
    assert "mrcnn_mask" in err
    assert exit_code(predict.main, argv + ["--allow_partial"]) == 0
