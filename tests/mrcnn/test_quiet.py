"""Tests for mrcnn/quiet.py: no TensorFlow banner, one line for a broken GPU."""

import os
import re
import subprocess
import sys

from mrcnn import quiet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Imports through quiet_start, then reaches every stage that printed a line
# before: device listing, a graph with a bool Transpose (oneDNN DT_BOOL
# notice), a tf.data iterator, a Keras layer.
SCRIPT = """
import sys
from mrcnn.quiet import quiet_start
quiet_start(verbose=sys.argv[1] == "verbose")
import keras
import tensorflow as tf
tf.function(lambda x: tf.transpose(x), autograph=False)(tf.constant([[True, False]]))
next(iter(tf.data.Dataset.range(3).map(lambda i: tf.transpose([[i > 0]]), num_parallel_calls=2)))
keras.layers.Dense(2)(tf.zeros([1, 3]))
print("done")
"""
# absl's C++ log prefix (I0000 00:00:... port.cc:153]) and the banner's other lines.
BANNER = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog|To enable the following instructions|"
                    r"cuInit|cuda drivers|oneDNN", re.MULTILINE)


def test_quiet_start_hides_the_banner_and_verbose_shows_it():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = ROOT
    procs = {mode: subprocess.Popen([sys.executable, "-c", SCRIPT, mode], cwd=ROOT, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for mode in ("quiet", "verbose")}
    out = {mode: p.communicate(timeout=300) for mode, p in procs.items()}
    for mode, p in procs.items():
        assert p.returncode == 0 and out[mode][0].strip() == "done", out[mode][1][-3000:]
    stderr = out["quiet"][1]
    # Only a broken GPU may speak, in one line.
    assert all(line.startswith("GPU problem: ") for line in stderr.splitlines()), stderr
    assert not BANNER.search(stderr), stderr
    assert BANNER.search(out["verbose"][1]), out["verbose"][1]


def fake_system(tmp_path, dev=(), proc=()):
    for name in dev:
        (tmp_path / "dev").mkdir(parents=True, exist_ok=True)
        (tmp_path / "dev" / name).touch()
    for name in proc:
        (tmp_path / "gpus" / name).mkdir(parents=True)
    return quiet.nvidia_gpus(str(tmp_path / "dev"), str(tmp_path / "gpus"))


def test_nvidia_gpus_from_device_files_or_proc(tmp_path):
    assert fake_system(tmp_path / "none") == []
    # nvidiactl / nvidia-uvm exist without a GPU (driver loaded): not GPUs.
    assert fake_system(tmp_path / "ctl", dev=["nvidiactl", "nvidia-uvm"]) == []
    gpus = fake_system(tmp_path / "two", dev=["nvidia1", "nvidia0", "nvidiactl"])
    assert [os.path.basename(g) for g in gpus] == ["nvidia0", "nvidia1"]
    assert fake_system(tmp_path / "proc", proc=["0000:01:00.0"])[0].endswith("0000:01:00.0")


CUINIT_LOG = ("I0000 00:00:1796596938.1 3646 cudart_stub.cc:31] Could not find cuda drivers on "
              "your machine, GPU will not be used.\n"
              "E0000 00:00:1796596938.7 3646 cuda_platform.cc:52] failed call to cuInit: "
              "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")


def test_gpu_problem_only_when_a_present_gpu_is_not_listed():
    gpu = ["/dev/nvidia0"]
    assert quiet.gpu_problem([], [], CUINIT_LOG) is None             # no GPU: not a problem
    assert quiet.gpu_problem(gpu, ["GPU:0"], CUINIT_LOG) is None     # GPU works
    assert quiet.gpu_problem(gpu, [], CUINIT_LOG, visible="-1") is None  # hidden on purpose
    assert quiet.gpu_problem(gpu, [], CUINIT_LOG, visible="") is None
    line = quiet.gpu_problem(gpu, [], CUINIT_LOG)
    assert "\n" not in line and line.startswith("GPU problem: 1 NVIDIA GPU(s) present")
    # The most telling line of the log, without absl's prefix.
    assert line.endswith(": failed call to cuInit: INTERNAL: CUDA error: Failed call to "
                         "cuInit: UNKNOWN ERROR (303)")


def test_gpu_problem_reasons():
    gpu = ["/dev/nvidia0", "/dev/nvidia1"]
    assert quiet.gpu_problem(gpu, [], CUINIT_LOG, built_with_cuda=False).endswith(
        "built without CUDA (pip install 'tensorflow[and-cuda]')")
    assert quiet.gpu_problem(gpu, [], "", visible="7").endswith("CUDA_VISIBLE_DEVICES=7")
    assert quiet.gpu_problem(gpu, [], "").endswith("TensorFlow's log gives no reason")
    assert quiet.gpu_problem(gpu, [], None).endswith("see TensorFlow's log above")
    long = quiet.gpu_problem(gpu, [], "E0000 00:00:1.0 1 a.cc:1] CUDA error: " + "x" * 500)
    assert len(long) < 320 and long.endswith("...")


DLOPEN_LOG = ("W0000 00:00:1.0 1 gpu_device.cc:2342] Cannot dlopen some GPU libraries. Please "
              "make sure the missing libraries mentioned above are installed properly.\n"
              "I0000 00:00:1.0 1 cpu_feature_guard.cc:210] This TensorFlow binary is optimized\n"
              "W0000 00:00:1.0 1 gpu_device.cc:2342] Cannot dlopen some GPU libraries. Please "
              "make sure the missing libraries mentioned above are installed properly.\n")


def test_cuda_load_lines_each_once_without_prefix():
    assert quiet.cuda_load_lines(DLOPEN_LOG) == [
        ("Cannot dlopen some GPU libraries. Please make sure the missing libraries mentioned "
         "above are installed properly.")]
    assert quiet.cuda_load_lines(CUINIT_LOG)[-1].startswith("failed call to cuInit")
    assert quiet.cuda_load_lines("") == quiet.cuda_load_lines(None) == []


def test_warnings_are_kept_on_a_machine_with_a_gpu():
    assert quiet.tf_log_level(["/dev/nvidia0"]) == "1"  # "Cannot dlopen" is a warning
    assert quiet.tf_log_level([]) == "2"
    assert quiet.tf_log_level([], verbose=True) == quiet.tf_log_level(["/dev/nvidia0"], True) == "0"
