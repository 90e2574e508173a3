"""train.py's run records and weights checks, in-process on a tiny model
(ResNet-14, 64 x 128 scenes, one step an epoch): a continued run appends
to runs.jsonl and resumes with the options of the invocation that wrote
its checkpoint; weights files that lack layers stop train.py with exit 2."""

import json
import math

import pytest

import train
from cityscapes.synthetic import generate
from mrcnn.engine import callbacks, run_record

TINY = ["--weights", "none", "--backbone", "resnet14", "--image_min_dim", "64",
        "--image_max_dim", "128", "--steps_per_epoch", "1", "--validation_steps", "1",
        "--layers", "heads", "--optimizer", "sgd", "--mask_cache", "none", "--seed", "0"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("cs")
    generate(out, seed=2, height=64, width=128, images={"train": 2, "val": 1, "test": 0})
    return str(out)


@pytest.fixture(scope="module")
def first_run(dataset, tmp_path_factory):
    """A finished run of 2 epochs at lr 0.002: its logs folder."""
    logs = tmp_path_factory.mktemp("logs")
    assert train.main(["--dataset", dataset, "--logs", str(logs), *TINY, "--lr", "0.002",
                       "--epochs", "2"]) == 0
    return logs


def train_main(capsys, *argv):
    try:
        code = train.main(list(argv))
    except SystemExit as e:  # usage errors: argparse's exit
        code = e.code
    return code, capsys.readouterr()


def test_a_diverged_continuation_does_not_change_what_last_resumes(dataset, first_run, capsys):
    """The issue's scenario: a run; `--weights last --lr 1e30` diverges (exit
    3, no checkpoint); a plain `--weights last` resumes with the first
    invocation's lr, and every invocation's options are on record."""
    logs = first_run  # continued here; the other tests only read its first checkpoint
    common = ["--dataset", dataset, "--logs", str(logs)]
    (run,) = logs.iterdir()
    # As if killed in epoch 2: its checkpoint never written.
    (run / "mask_rcnn_cityscapes_0002.h5").unlink()
    config_json = (run / "config.json").read_text()

    code, out = train_main(capsys, *common, "--weights", "last", "--lr", "1e30")
    assert code == 3 and "learning rate 1e+30" in out.err, out.err
    assert ("Options of mask_rcnn_cityscapes_0001.h5: those of invocation 1, which wrote it; "
            "this command changes weights none -> last, lr 0.002 -> 1e+30") in out.out
    assert not (run / "mask_rcnn_cityscapes_0002.h5").exists()

    code, out = train_main(capsys, *common, "--weights", "last")
    assert code == 0, out.err
    assert ("Options of mask_rcnn_cityscapes_0001.h5: those of invocation 1, which wrote it; "
            "this command changes weights none -> last") in out.out
    rows = callbacks.read_history(run / "history.csv")
    assert [r["epoch"] for r in rows] == [1, 2] and math.isclose(rows[1]["lr"], 0.002, rel_tol=1e-6)

    entries = run_record.read(str(run))
    runs = run_record.invocations(entries)
    assert [runs[n]["options"]["lr"] for n in (1, 2, 3)] == [0.002, 1e30, 0.002]
    assert [runs[n]["start_epoch"] for n in (1, 2, 3)] == [0, 1, 1]
    assert "continues" not in runs[1]
    assert runs[2]["continues"] == {"checkpoint": "mask_rcnn_cityscapes_0001.h5", "invocation": 1}
    assert runs[2]["changed"] == {"weights": ["none", "last"], "lr": [0.002, 1e30]}
    assert runs[3]["changed"] == {"weights": ["none", "last"]}
    assert runs[2]["config"]["LEARNING_RATE"] == 1e30  # its Config too
    written = [(e["checkpoint"], e["invocation"]) for e in entries if "checkpoint" in e]
    assert written == [("mask_rcnn_cityscapes_0001.h5", 1), ("mask_rcnn_cityscapes_0002.h5", 1),
                       ("mask_rcnn_cityscapes_0002.h5", 3)]
    assert run_record.writer(str(run / "mask_rcnn_cityscapes_0002.h5"))["invocation"] == 3
    # The first invocation's files are not overwritten.
    assert (run / "config.json").read_text() == config_json
    assert json.loads((run / "train_args.json").read_text())["options"]["lr"] == 0.002


MASK_HEAD = ("mrcnn_mask_conv1", "mrcnn_mask_bn1", "mrcnn_mask_conv2", "mrcnn_mask_bn2",
             "mrcnn_mask_conv3", "mrcnn_mask_bn3", "mrcnn_mask_conv4", "mrcnn_mask_bn4",
             "mrcnn_mask_deconv", "mrcnn_mask")


def test_a_weights_file_without_the_mask_head_stops_train_with_exit_2(dataset, first_run,
                                                                      tmp_path, capsys):
    from mrcnn.checkpoint import hdf5

    (run,) = first_run.iterdir()
    groups = hdf5.read_legacy_h5(run / "mask_rcnn_cityscapes_0001.h5")
    partial = tmp_path / "no_mask.h5"
    hdf5.write_legacy_h5(partial, [g for g in groups if g[0] not in MASK_HEAD])
    args = ["--dataset", dataset, "--logs", str(tmp_path / "logs"), *TINY, "--weights",
            str(partial)]
    code, out = train_main(capsys, *args)
    assert code == 2
    (line,) = out.err.strip().splitlines()
    assert line.startswith(f"train.py: error: --weights {partial}: {partial} has no weights "
                           "for 10 layers of the model: 'mrcnn_mask_conv1', 'mrcnn_mask_bn1',")
    assert line.endswith("Pass --allow_partial to load it anyway")
    assert not (tmp_path / "logs").exists()  # nothing started


def test_allow_partial_and_exclude_reach_the_weights_policy(dataset, first_run):
    from cityscapes import options, trainer

    (run,) = first_run.iterdir()
    checkpoint = str(run / "mask_rcnn_cityscapes_0001.h5")
    args = train.build_parser().parse_args(["--weights", checkpoint, "--exclude", "mrcnn_mask.*",
                                            "--allow_partial", "--dataset", dataset,
                                            "--backbone", "resnet14"])
    plan = trainer.prepare(options.resolve(options.given(args))[0])
    choice = trainer.initial_weights_of(plan)
    assert (choice.path, choice.exclude_regex, choice.allow_partial) == (
        checkpoint, "mrcnn_mask.*", True)
    for weights, exclude, message in (("none", "x", "--exclude x: --weights none loads no"),
                                      (checkpoint, "(", r"--exclude \(: not a regular")):
        o = options.resolve({"dataset": dataset, "weights": weights, "exclude": exclude,
                             "backbone": "resnet14"})[0]
        with pytest.raises(options.UsageError, match=message):
            options.check(o)
