"""Tests for tuning/spaces.py: the built-in stages, file overrides, checks,
Keras Tuner declarations and what a trial's values mean as train.py options."""

import json
import math
import sys

import keras_tuner
import pytest

from cityscapes.options import DEFAULTS
from cli import UsageError
from tuning import spaces


def log_range(low, high):
    return {"min": low, "max": high, "sampling": "log"}


def test_fine_stage_spaces_are_the_issues():
    assert spaces.fine_space("sgd") == {
        "optimizer": "sgd", "lr": log_range(1e-5, 1e-4),
        "momentum": {"min": 0.9, "max": 0.99, "sampling": "linear"},
        "weight_decay": log_range(1e-4, 1e-2)}
    assert spaces.fine_space("adam") == {
        "optimizer": "adam", "lr": log_range(1e-6, 1e-5),
        "beta_1": {"min": 0.9, "max": 0.99, "sampling": "linear"},
        "weight_decay": log_range(1e-4, 1e-2)}


def test_coarse_stage_space():
    assert spaces.coarse_space() == {
        "weights": ["coco", "imagenet"], "backbone": ["resnet50", "resnet101"],
        "optimizer": ["sgd", "adam"], "lr": [1e-3, 1e-4, 1e-5, 1e-6]}
    assert spaces.stage_space("coarse", "adam")["optimizer"] == "adam"
    with pytest.raises(UsageError, match="--stage medium"):
        spaces.stage_space("medium", "sgd")
    with pytest.raises(UsageError, match="--optimizer rmsprop"):
        spaces.stage_space("fine", "rmsprop")


def test_file_overrides_replace_and_remove(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"weights": "none", "backbone": None, "lr": [1e-4, 1e-5]}))
    merged = spaces.merge(spaces.coarse_space("sgd"), spaces.read_space_file(str(path)))
    assert merged == {"weights": "none", "optimizer": "sgd", "lr": [1e-4, 1e-5]}


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected an object"),
])
def test_bad_space_files(tmp_path, text, message):
    path = tmp_path / "space.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        spaces.read_space_file(str(path))
    with pytest.raises(UsageError, match="cannot read it"):
        spaces.read_space_file(str(tmp_path / "missing.json"))


def test_yaml_space_without_pyyaml_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml raises ImportError
    path = tmp_path / "space.yaml"
    path.write_text("lr: [0.0001, 0.00001]\n")
    with pytest.raises(UsageError, match="YAML files need PyYAML"):
        spaces.read_space_file(str(path))


def test_yaml_space_file(tmp_path):
    pytest.importorskip("yaml", reason="PyYAML is not installed: YAML space files are "
                                       "refused with a message instead (test above)")
    path = tmp_path / "space.yml"
    path.write_text("weights: none\nlr: [0.0001, 0.00001]\nmomentum: {min: 0.9, max: 0.95}\n")
    assert spaces.read_space_file(str(path)) == {
        "weights": "none", "lr": [1e-4, 1e-5], "momentum": {"min": 0.9, "max": 0.95}}


def test_check_space_normalises():
    checked = spaces.check_space({"lr": [1, 0.5], "momentum": {"min": 0.9, "max": 0.95},
                                  "weights": "none"})
    assert checked == {"lr": [1.0, 0.5], "weights": "none",
                       "momentum": {"min": 0.9, "max": 0.95, "sampling": "linear"}}
    assert all(isinstance(v, float) for v in checked["lr"])


@pytest.mark.parametrize("space, message", [
    ({"learning_rate": 1e-3}, r"unknown hyperparameters \['learning_rate'\]"),
    ({"epochs": 3}, "unknown hyperparameters"),
    ({"momentum": 0.9, "beta_1": 0.9}, "momentum and beta_1 are the same option"),
    ({"lr": {"min": 1e-3}}, "a range is"),
    ({"lr": {"min": 1e-3, "max": 1e-4}}, "min 0.001 must be below max 0.0001"),
    ({"lr": {"min": 0.0, "max": 1e-4, "sampling": "log"}}, "log sampling needs min > 0"),
    ({"lr": {"min": 1e-5, "max": 1e-4, "sampling": "cubic"}}, "sampling 'cubic'"),
    ({"lr": "fast"}, "space lr='fast': expected a finite number"),
    ({"lr": float("nan")}, "expected a finite number"),
    ({"lr": []}, "an empty list of choices"),
    ({"lr": [1e-4, 1e-4]}, "repeated choices"),
    ({"optimizer": ["sgd", "rmsprop"]}, r"space optimizer='rmsprop': expected one of"),
    ({"optimizer": {"min": 1, "max": 2}}, "a range needs a numeric hyperparameter"),
    ({"weights": "last"}, "space weights='last': no such file"),
    ({"weights": ["coco", "imagenet"], "backbone": "resnet50"}, "ResNet-101 only"),
    ({"weights": "coco", "backbone": ["resnet50", "resnet101"]}, "ResNet-101 only"),
])
def test_bad_spaces(space, message):
    with pytest.raises(UsageError, match=message):
        spaces.check_space(space)


def declared(space):
    return spaces.declare(keras_tuner.HyperParameters(), spaces.check_space(space))


def test_declare_kinds_and_the_coco_condition():
    hp = declared(spaces.coarse_space("sgd"))
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds == {"weights": "Choice", "backbone": "Choice", "optimizer": "Fixed",
                     "lr": "Choice"}
    backbone = next(p for p in hp.space if p.name == "backbone")
    assert [(c.name, c.values) for c in backbone.conditions] == [("weights", ["imagenet"])]
    hp.values["weights"] = "coco"
    assert not hp.is_active("backbone")
    hp.values["weights"] = "imagenet"
    assert hp.is_active("backbone")


def test_declared_ranges_sample_inside_them():
    hp = declared(spaces.fine_space("adam"))
    lr = next(p for p in hp.space if p.name == "lr")
    samples = [lr.random_sample(seed) for seed in range(200)]
    assert all(1e-6 <= s <= 1e-5 for s in samples)
    # log sampling: about as many samples below the geometric mean as above it
    below = sum(s < math.sqrt(1e-6 * 1e-5) for s in samples)
    assert 70 < below < 130


def test_options_of_a_trial():
    base = dict(DEFAULTS, backbone="resnet50", momentum=0.9)
    values = {"optimizer": "adam", "lr": 3e-6, "beta_1": 0.95, "weights": "coco",
              "tuner/epochs": 7, "tuner/trial_id": "0003"}
    options = spaces.options_of(values, base)
    assert (options["optimizer"], options["lr"], options["momentum"]) == ("adam", 3e-6, 0.95)
    assert options["backbone"] == "resnet101"  # COCO weights are ResNet-101
    assert "beta_1" not in options and "tuner/epochs" not in options
    assert spaces.options_of({"weights": "imagenet", "backbone": "resnet50"},
                             base)["backbone"] == "resnet50"


def test_exported_options_merge_the_base_hparams():
    exported = spaces.exported_options({"lr": 2e-5, "momentum": 0.95, "tuner/round": 1},
                                       {"weights": "coco", "backbone": "resnet101",
                                        "optimizer": "sgd", "lr": 1e-4})
    assert exported == {"weights": "coco", "backbone": "resnet101", "optimizer": "sgd",
                        "lr": 2e-5, "momentum": 0.95}
