"""mrcnn/command.py: the model flags of the commands that detect; --jit_compile,
--cpu_devices and the start-up line."""

import argparse
import json
import os
import subprocess
import sys

import pytest

from mrcnn import command
from mrcnn.engine.inference import coco_config


def _args(*argv):
    parser = command.Parser("test")
    command.add_model_flags(parser)
    return parser.parse_args(["--weights", "w.h5", *argv])


def test_model_flags_become_config_fields():
    args = _args("--min_confidence", "0.25", "--image_min_dim", "256", "--image_max_dim", "512")
    assert command.model_overrides(args) == {"DETECTION_MIN_CONFIDENCE": 0.25,
                                             "IMAGE_MIN_DIM": 256, "IMAGE_MAX_DIM": 512}
    assert command.model_overrides(_args()) == {}


@pytest.mark.parametrize("argv, message", [
    (["--min_confidence", "1.5"], "--min_confidence 1.5: must lie in [0, 1]"),
    (["--image_max_dim", "0"], "--image_max_dim 0: must be a positive integer"),
])
def test_bad_model_flags(argv, message):
    with pytest.raises(command.UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        command.model_overrides(_args(*argv))


def test_model_source_reads_the_run_config_with_the_flags_on_top(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(coco_config().to_dict()))
    (tmp_path / "w.h5").write_bytes(b"")
    args = argparse.Namespace(weights=str(tmp_path / "w.h5"), logs="logs", min_confidence=0.1,
                              image_min_dim=None, image_max_dim=None)
    path, config = command.model_source(args)
    assert path == str(tmp_path / "w.h5") and config.DETECTION_MIN_CONFIDENCE == 0.1
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "w.h5").write_bytes(b"")
    for weights, message in ((lone / "w.h5", "no config.json beside it"),
                             (tmp_path / "none.h5", "no such file")):
        with pytest.raises(command.UsageError, match=f"--weights {weights}: .*{message}"):
            command.model_source(argparse.Namespace(**{**vars(args), "weights": str(weights)}))


# ------------------------------------------------------ devices, precision, XLA
def test_jit_flag_values():
    parser = command.Parser("test")
    command.add_jit_flag(parser)
    assert parser.parse_args([]).jit_compile is None
    assert [command.jit_value(v) for v in ("on", "off", "auto")] == [True, False, "auto"]
    with pytest.raises(command.UsageError, match="--jit_compile yes: expected one of"):
        command.jit_value("yes")
    assert command.startup_line("off").endswith("; precision: float32; XLA: off")
    assert "precision: mixed_float16; XLA: off (auto, no GPU)" in command.startup_line(
        mixed_precision=True)


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_cpu_devices_must_be_a_positive_integer(value, capsys):
    parser = command.Parser("test")
    command.add_cpu_devices_flag(parser)
    assert parser.parse_args(["--cpu_devices", "3"]).cpu_devices == 3
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--cpu_devices", value])
    assert stop.value.code == command.EXIT_USAGE and "--cpu_devices" in capsys.readouterr().err


# A command's start under JAX with TensorFlow unimportable: the quiet start
# leaves TensorFlow alone, --cpu_devices 2 splits the CPU before JAX starts.
JAX_START = """
import argparse, sys
sys.modules["tensorflow"] = None
from mrcnn import command
command.start(argparse.Namespace(verbose=False, cpu_devices=2))
print(command.startup_line("auto", replicas=2))
"""


def test_start_under_jax_sets_up_the_cpu_devices_without_tensorflow():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": root}
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, "-c", JAX_START], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "(jax " in proc.stdout and "replicas: 2 (cpu:0, cpu:1)" in proc.stdout
