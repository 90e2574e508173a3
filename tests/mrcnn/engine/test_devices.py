"""mrcnn/engine/devices.py: the start-up line, the XLA switch, the CPU
devices (TensorFlow in-process; JAX in a subprocess without TensorFlow)."""

import json
import os
import subprocess
import sys

import keras
import pytest
import tensorflow as tf

from mrcnn.engine import devices

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_startup_line_names_backend_devices_precision_and_xla():
    line = devices.startup_line("mixed_float16", False)
    assert "\n" not in line
    assert line.startswith(f"Keras {keras.__version__} (tensorflow {tf.__version__}); ")
    assert f"devices: CPU only, {os.cpu_count()} cores" in line  # this machine has no GPU
    assert "precision: mixed_float16" in line and line.endswith("XLA: off")
    assert "replicas" not in line and "CUDA" not in line
    assert devices.startup_line("float32", True).endswith("precision: float32; XLA: on")
    # Without a precision: Keras' global policy.
    assert "precision: float32;" in devices.startup_line(jit_compile="auto")


def test_auto_jit_is_off_without_a_gpu():
    assert devices.resolve_jit_compile("auto") is False
    assert devices.startup_line().endswith("XLA: off (auto, no GPU)")
    assert devices.resolve_jit_compile(True) is True
    assert devices.resolve_jit_compile(False) is False
    for bad in ("on", 1, None):
        with pytest.raises(ValueError, match="JIT_COMPILE"):
            devices.resolve_jit_compile(bad)


def test_device_and_xla_texts():
    h100 = "NVIDIA H100 80GB HBM3"
    assert devices.devices_text([h100, h100, "NVIDIA A100"], 1, 16) == (
        f"2 x {h100}, 1 x NVIDIA A100")
    assert devices.devices_text([], 1, 2) == "CPU only, 2 cores"
    assert devices.devices_text([], 4, 2) == "CPU only, 2 cores, 4 logical CPU devices"
    assert devices.xla_text("auto", True) == "on (auto, GPU)"
    assert devices.xla_text(False, False) == "off"


def test_replicas_only_for_several_devices_that_exist():
    assert devices.replicas_text(1) is None
    assert devices.replicas_text(1000) is None  # the run's own check says why
    with pytest.raises(ValueError, match=r"1000 devices requested .* \(--cpu_devices N splits"):
        devices.replica_devices(1000)


def test_backend_name_before_keras_is_imported(monkeypatch, tmp_path):
    monkeypatch.delitem(sys.modules, "keras")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert devices.backend_name() == "jax"
    monkeypatch.delenv("KERAS_BACKEND")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert devices.backend_name() == "tensorflow"  # no keras.json
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    assert devices.backend_name() == "torch"


def test_xla_device_count_flag_keeps_the_others(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x --xla_force_host_platform_device_count=8")
    devices._set_xla_device_count(2)
    assert os.environ["XLA_FLAGS"] == (
        "--xla_dump_to=/tmp/x --xla_force_host_platform_device_count=2")


def test_cpu_devices_too_late_for_tensorflow():
    tf.constant(1.0) + 1.0  # the runtime has started
    with pytest.raises(RuntimeError, match="TensorFlow started before"):
        devices.setup_cpu_devices(3)
    with pytest.raises(ValueError, match="positive integer"):
        devices.setup_cpu_devices(0)


# Under JAX, with TensorFlow made unimportable: the CPU split, the line and
# the replicas come from Keras and JAX alone.
JAX_SCRIPT = """
import sys
sys.modules["tensorflow"] = None
from mrcnn.engine import devices
devices.setup_cpu_devices(2)
print(devices.startup_line(jit_compile="auto", replicas=2))
print(devices.replica_devices(2), devices.resolve_jit_compile("auto"))
print("tensorflow" in sys.modules and sys.modules["tensorflow"] is not None)
"""


def test_under_jax_without_tensorflow():
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": ROOT}
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line, replicas, imported = proc.stdout.strip().splitlines()
    assert line.startswith(f"Keras {keras.__version__} (jax ")
    assert "devices: CPU only" in line and "2 logical CPU devices" in line
    assert "replicas: 2 (cpu:0, cpu:1)" in line
    assert "precision: float32" in line and line.endswith("XLA: off (auto, no GPU)")
    assert replicas == "['cpu:0', 'cpu:1'] False" and imported == "False"
