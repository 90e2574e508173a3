"""Tests for cityscapes/options.py: the typed options, their precedence
(one test per pair of layers), the schedule rule, checks, --hparams files."""

import json
import os

import numpy as np
import pytest

from cityscapes import options
from cityscapes.options import DEFAULTS, DEMO, TrainOptions
from cli import UsageError
from mrcnn.checkpoint import hdf5
from mrcnn.engine.schedule import Stage, parse_schedule


def resolve(**explicit):
    return options.resolve(explicit)[0]


def hparams_file(tmp_path, **values):
    path = tmp_path / "hparams.json"
    path.write_text(json.dumps(values))
    return str(path)


def previous_run(logs, name="demo", **recorded):
    """A run folder with a checkpoint and the train_args.json train.py writes."""
    run = logs / f"{name}20260101T1200"
    run.mkdir(parents=True)
    # A small checkpoint that reads whole (--weights last passes over damaged ones).
    hdf5.write_legacy_h5(run / f"mask_rcnn_{name}_0002.h5",
                         [("a", [("a/bias:0", np.zeros(2, np.float32))])])
    (run / "train_args.json").write_text(json.dumps({"options": recorded}))
    return run / f"mask_rcnn_{name}_0002.h5"


def test_options_are_typed_and_every_field_has_a_flag_help():
    o = TrainOptions()
    assert (o.lr, o.epochs, o.weights) == (DEFAULTS["lr"], DEFAULTS["epochs"], "coco")
    assert all(f.metadata["help"] for f in options.FIELDS.values())
    assert set(DEMO) <= set(options.FIELDS)


# ------------------------------------------------------------- one per pair
def test_demo_over_defaults():
    o = resolve(dataset="demo")
    assert (o.backbone, o.weights, o.schedule) == ("resnet14", "none", DEMO["schedule"])
    assert o.momentum == DEFAULTS["momentum"]


def test_resumed_run_over_demo(tmp_path):
    ckpt = previous_run(tmp_path, lr=5e-4, backbone="resnet50")
    o, resumed = options.resolve({"dataset": "demo", "weights": "last", "logs": str(tmp_path)})
    assert resumed == str(ckpt)
    assert (o.lr, o.backbone, o.weights) == (5e-4, "resnet50", "last")
    assert o.optimizer == DEMO["optimizer"]


def test_hparams_over_resumed_run(tmp_path):
    previous_run(tmp_path / "logs", lr=5e-4, momentum=0.8)
    path = hparams_file(tmp_path, lr=3e-5)
    o = resolve(dataset="demo", weights="last", logs=str(tmp_path / "logs"), hparams=path)
    assert (o.lr, o.momentum) == (3e-5, 0.8)


def test_command_line_over_hparams(tmp_path):
    path = hparams_file(tmp_path, lr=3e-5, momentum=0.95, optimizer="sgd")
    o = resolve(dataset="demo", hparams=path, momentum=0.8)
    assert (o.lr, o.optimizer, o.momentum) == (3e-5, "sgd", 0.8)


def test_hparams_can_name_the_dataset(tmp_path, root):
    o = resolve(hparams=hparams_file(tmp_path, dataset=root, train_images=2, seed=4))
    assert (o.dataset, o.train_images, o.seed) == (root, 2, 4)


# ------------------------------------------------------------- schedule rule
def test_explicit_epochs_or_layers_replace_an_inherited_schedule():
    demo = options.stages(resolve(dataset="demo"))
    assert demo == parse_schedule(DEMO["schedule"]) and len(demo) == 2
    assert options.stages(resolve(dataset="demo", epochs=1)) == [Stage("all", 1)]
    assert options.stages(resolve(dataset="demo", layers="heads")) == [
        Stage("heads", DEMO["epochs"])]


def test_an_explicit_schedule_always_wins(tmp_path):
    o = resolve(dataset="demo", schedule="heads:2,all:3", epochs=1, layers="4+")
    assert options.stages(o) == [Stage("heads", 2), Stage("all", 3)]
    o = resolve(dataset="demo", hparams=hparams_file(tmp_path, epochs=5), schedule="heads:2")
    assert options.stages(o) == [Stage("heads", 2)]


def test_hparams_epochs_replace_the_demo_schedule_and_flags_replace_hparams_schedule(tmp_path):
    o = resolve(dataset="demo", hparams=hparams_file(tmp_path, epochs=3))
    assert options.stages(o) == [Stage("all", 3)]
    o = resolve(dataset="demo", hparams=hparams_file(tmp_path, schedule="heads:4,all:6"),
                epochs=2)
    assert options.stages(o) == [Stage("all", 2)]


def test_a_resumed_schedule_gives_way_to_explicit_epochs(tmp_path):
    previous_run(tmp_path, schedule="heads:2,all:4", layers="heads")
    o = resolve(dataset="demo", weights="last", logs=str(tmp_path))
    assert options.stages(o) == [Stage("heads", 2), Stage("all", 4)]
    o = resolve(dataset="demo", weights="last", logs=str(tmp_path), epochs=6)
    assert options.stages(o) == [Stage("heads", 6)]


# ------------------------------------------------------------------- checks
def test_dataset_from_environment(monkeypatch, root):
    monkeypatch.setenv("CITYSCAPES_DATASET", root)
    assert resolve(weights="none").dataset == root
    monkeypatch.delenv("CITYSCAPES_DATASET")
    with pytest.raises(UsageError, match="no dataset"):
        options.check(resolve(weights="none"))


@pytest.mark.parametrize("explicit, message", [
    (dict(lr=0.0), "--lr 0.0: must be a positive"),
    (dict(momentum=1.0), "--momentum"),
    (dict(epochs=0), "--epochs 0: must be a positive integer"),
    (dict(train_images=-1), "--train_images -1: must be 0 .the whole split. or a positive"),
    (dict(classes="car,plane"), r"unknown classes \['plane'\]"),
    (dict(freeze="rpn,heads"), r"unknown parts \['heads'\]"),
    (dict(annotations="xml"), r"--annotations xml: expected one of"),
    ({"jit_compile": "yes"}, r"--jit_compile yes: expected one of"),
    (dict(weights="nowhere.h5"), "--weights nowhere.h5: no such file"),
    (dict(weights="coco", backbone="resnet50"), "COCO weights are ResNet-101"),
    (dict(weights="imagenet", backbone="resnet14"), "no published ImageNet weights for "
                                                    "resnet14 .* use --weights none"),
    (dict(schedule="heads:3,all:2"), "--schedule heads:3,all:2"),
])
def test_bad_values(root, explicit, message):
    with pytest.raises(UsageError, match=message):
        options.check(resolve(dataset=root, **{"weights": "none", **explicit}))


def test_bad_hparams_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        resolve(hparams=str(bad))
    bad.write_text(json.dumps({"lr": 1e-4, "learning_rat": 1}))
    with pytest.raises(UsageError, match=r"unknown option names \['learning_rat'\]"):
        resolve(hparams=str(bad))


def test_weights_for_another_backbone(tmp_path, root):
    from tests.mrcnn.checkpoint.test_hdf5 import small_matterport_file

    path = small_matterport_file(tmp_path / "r50.h5", "matterport_r50_coco81_layout.tsv")
    with pytest.raises(UsageError, match="holds resnet50 weights but --backbone is resnet101"):
        options.check(resolve(dataset=root, weights=str(path)))


def test_resume_without_a_run(tmp_path, root):
    with pytest.raises(UsageError, match="--weights last: no checkpoint"):
        options.resolve({"dataset": root, "weights": "last", "logs": str(tmp_path)})


def test_config_fields_map_each_option_once():
    o = resolve(dataset="demo", lr=5e-3, gpus=2, images_per_gpu=2)
    fields = options.config_fields(o, num_classes=4, num_train=9, num_val=3)
    assert (fields["LEARNING_RATE"], fields["GPU_COUNT"], fields["IMAGES_PER_GPU"]) == (5e-3, 2, 2)
    assert (fields["BACKBONE"], fields["OPTIMIZER"], fields["NUM_CLASSES"]) == ("resnet14", "adam", 4)
    assert fields["STEPS_PER_EPOCH"] == DEMO["steps_per_epoch"]
    o = resolve(dataset="x", gpus=2, images_per_gpu=2)
    fields = options.config_fields(o, 4, 9, 3)
    assert (fields["STEPS_PER_EPOCH"], fields["VALIDATION_STEPS"]) == (3, 1)  # one pass


@pytest.mark.parametrize("flag, field", [(None, "auto"), ("on", True), ("off", False),
                                         ("auto", "auto")])
def test_jit_compile_reaches_the_config(flag, field):
    o = resolve(dataset="demo", **({"jit_compile": flag} if flag else {}))
    config = options.config_class("demo").from_dict(options.config_fields(o, 4, 9, 3))
    assert config.JIT_COMPILE == field and type(config.JIT_COMPILE) is type(field)


def test_parser_flags_come_from_the_options():
    import cli

    parser = cli.Parser("x")
    options.add_flags(parser)
    args = parser.parse_args(["--lr", "0.01", "--no-evaluate", "--mixed_precision"])
    assert options.given(args) == {"lr": 0.01, "evaluate": False, "mixed_precision": True}
    assert options.given(parser.parse_args(["--jit_compile", "off"])) == {"jit_compile": "off"}
    assert os.path.basename(options.MASK_CACHE) == "minimasks"


# ------------------------------------------------------------- run records
def journal(run, *lines):
    (run / "runs.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_last_takes_the_options_of_the_checkpoints_writer(tmp_path):
    """Not those of a later invocation that wrote no checkpoint (a NaN stop),
    nor train_args.json; --exclude and --allow_partial are not carried over."""
    ckpt = previous_run(tmp_path, lr=0.5)  # train_args.json: read only without a journal
    run = tmp_path / "demo20260101T1200"
    first = {"lr": 2e-3, "momentum": 0.8, "exclude": "mrcnn_mask.*", "allow_partial": True}
    journal(run, {"invocation": 1, "start_epoch": 0, "options": first, "config": {}},
            {"checkpoint": ckpt.name, "epoch": 2, "invocation": 1},
            {"invocation": 2, "start_epoch": 2, "options": {"lr": 1e30}, "config": {}})
    o = resolve(dataset="demo", weights="last", logs=str(tmp_path))
    assert (o.lr, o.momentum, o.exclude, o.allow_partial) == (2e-3, 0.8, None, False)
    assert options.recorded_run(ckpt)["invocation"] == 1
    o = resolve(dataset="demo", weights="last", logs=str(tmp_path), lr=1e-4)
    assert o.lr == 1e-4


def test_changes_and_their_description():
    o = TrainOptions(lr=1e30, epochs=3, weights="last")
    changed = options.changes({"lr": 1e-3, "epochs": 2, "weights": "coco"}, o)
    assert changed == {"weights": ["coco", "last"], "lr": [1e-3, 1e30], "epochs": [2, 3]}
    assert options.describe_changes(changed) == ("weights coco -> last, lr 0.001 -> 1e+30, "
                                                 "epochs 2 -> 3")
    assert options.changes(options.record(o), o) == {}
    assert options.describe_changes({}) == "nothing"
