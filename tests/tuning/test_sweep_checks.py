"""Tests for tuning/sweep.py's checks: everything wrong with the input stops
the sweep before its first trial with one UsageError (exit 2); no model is
built here."""

import json
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from cityscapes.synthetic import generate
from cli import UsageError
from mrcnn.checkpoint import pretrained
from tuning import layout, spaces, sweep
from tuning.hypermodel import MaskRCNNHyperModel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("cs")
    generate(out, seed=3, height=64, width=128, images={"train": 3, "val": 2, "test": 0})
    return str(out)


@pytest.fixture(autouse=True)
def standalone(monkeypatch):
    for name in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        monkeypatch.delenv(name, raising=False)


def settings(tmp_path, stage="fine", optimizer="sgd", space=None, **options):
    space_path = None
    if space is not None:
        space_path = tmp_path / "space.json"
        space_path.write_text(json.dumps(space))
    return sweep.SweepSettings(
        stage=stage, optimizer=optimizer, space=space_path and str(space_path), max_epochs=2,
        train_images=0, val_images=0, directory=str(tmp_path / "sweeps"), project="p",
        oracle_seed=0, options={"weights": "none", "backbone": "resnet50", **options})


def test_prepare_a_fine_sweep(tmp_path, dataset):
    prepared = sweep.prepare(settings(tmp_path, dataset=dataset, image_min_dim=64,
                                      image_max_dim=128))
    assert prepared["role"] == "standalone"
    assert set(prepared["space"]) == {"optimizer", "lr", "momentum", "weight_decay"}
    assert len(prepared["data"].train.image_ids) == 3 and len(prepared["data"].val.image_ids) == 2
    assert prepared["record"]["base"]["image_min_dim"] == 64


def test_subsets_are_seeded_and_checked(tmp_path, dataset):
    s = settings(tmp_path, dataset=dataset)
    s.train_images, s.val_images = 2, 1
    data = sweep.prepare(s)["data"]
    assert (len(data.train.image_ids), len(data.val.image_ids)) == (2, 1)
    assert data.train.image_info == sweep.prepare(s)["data"].train.image_info
    s.train_images = 9
    with pytest.raises(UsageError, match="--train_images 9: subset of 9 items asked for, "
                                         "only 3 available"):
        sweep.prepare(s)


def test_default_subsets_fit_a_small_dataset(tmp_path, dataset):
    s = settings(tmp_path, dataset=dataset)
    s.train_images = s.val_images = None  # 154 / 59 by default: more than there are
    data = sweep.prepare(s)["data"]
    assert (len(data.train.image_ids), len(data.val.image_ids)) == (3, 2)


def test_coarse_combinations_respect_coco():
    space = spaces.check_space(spaces.coarse_space())
    combos = sweep.categorical_combinations(space)
    assert len(combos) == 6  # coco x 2 optimizers, imagenet x 2 backbones x 2 optimizers
    assert all("backbone" not in c for c in combos if c["weights"] == "coco")


@pytest.mark.parametrize("stage, space, options, message", [
    ("coarse", None, {"dataset": "demo"}, "the demo's narrow heads"),
    ("fine", None, {"weights": "coco"}, r"space \(optimizer=sgd, lr=1e-05, momentum=0.9, "
                                        r"weight_decay=0.0001\): --weights coco: Matterport"),
    ("fine", {"lr": 0.0}, {}, "space lr=0.0|--lr 0.0: must be a positive number"),
    ("fine", {"layers": "most"}, {}, "space layers='most': expected one of"),
    ("fine", None, {"weights": "last"}, "--weights last: a sweep starts every trial anew"),
    ("fine", None, {"gpus": 64}, "--gpus 64: 64 devices requested"),
])
def test_bad_sweeps(tmp_path, dataset, stage, space, options, message):
    s = settings(tmp_path, stage, space=space, **{"dataset": dataset, **options})
    with pytest.raises(UsageError, match=message):
        sweep.prepare(s)


def test_missing_weight_files_are_named_before_the_sweep(tmp_path, dataset, monkeypatch):
    def offline(kind, backbone, **kwargs):
        raise FileNotFoundError(f"{kind} weights of {backbone} not found (test)")

    monkeypatch.setattr(pretrained, "get_weights_file", offline)
    s = settings(tmp_path, "coarse", None, dataset=dataset)
    with pytest.raises(UsageError, match=r"--weights coco: coco weights of resnet101 not "
                                         r"found \(test\) \(the sweep's trials need coco "
                                         r"weights for resnet101"):
        sweep.prepare(s)


def test_worker_may_not_overwrite(tmp_path, dataset, monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    s = replace(settings(tmp_path, dataset=dataset), overwrite=True)
    with pytest.raises(UsageError, match="--overwrite: only the chief"):
        sweep.prepare(s)


def test_chief_loads_no_data(tmp_path, monkeypatch):
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    prepared = sweep.prepare(settings(tmp_path, dataset=str(tmp_path / "not-here")))
    assert prepared["role"] == "chief" and prepared["data"] is None


def test_a_rerun_must_match_the_sweep(tmp_path, dataset):
    s = settings(tmp_path, dataset=dataset)
    record = sweep.prepare(s)["record"]
    project = layout.project_dir(s.directory, s.project)
    os.makedirs(project)
    sweep.write_meta(project, record, s, {}, {})
    sweep.check_fingerprint(project, record)  # the same sweep: fine
    other = sweep.prepare(replace(s, max_epochs=5))["record"]
    with pytest.raises(UsageError, match=r"holds a sweep with other settings \(max_epochs: "
                                         r"2 -> 5\): use another --project, or --overwrite"):
        sweep.check_fingerprint(project, other)


def test_command_line_errors_are_one_line_exit_2(tmp_path):
    bad = tmp_path / "space.json"
    bad.write_text("{not json")
    result = subprocess.run(
        [sys.executable, "-m", "tuning", "--dataset", "demo", "--stage", "fine", "--optimizer",
         "sgd", "--space", str(bad), "--directory", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m tuning: error: --space ")
    assert "not valid JSON" in lines[0]


@pytest.mark.filterwarnings("ignore:currentThread:DeprecationWarning",
                            "ignore:getName:DeprecationWarning")  # Keras Tuner's own code
def test_crashing_trials_stop_the_sweep_with_results(tmp_path, dataset, monkeypatch):
    def crash(self, hp):
        raise MemoryError(f"no room for lr {hp.values['lr']:.2g} (test)")

    monkeypatch.setattr(MaskRCNNHyperModel, "build", crash)
    s = replace(settings(tmp_path, dataset=dataset), max_consecutive_failures=2)
    with pytest.raises(sweep.SweepError, match=r"stopped after 2 failed trials in a row "
                                               r"\(MemoryError: no room for lr .* \(test\)\)"):
        sweep.run(s, log=lambda line: None)
    project = layout.project_dir(s.directory, s.project)
    with open(os.path.join(project, "results.md")) as f:
        text = f.read()
    # Keras Tuner stops before it records the last failure: that trial is
    # retried by a re-run of the command.
    assert "2 trials: 0 finished, 0 diverged (NaN / Inf loss), 1 failed, 1 unfinished." in text
    assert "| 0000 | FAILED | MemoryError: no room for lr" in text
