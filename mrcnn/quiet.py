"""A quiet start for the command lines: TensorFlow without its banner.

    from mrcnn.quiet import quiet_start
    quiet_start()              # first thing train.py / evaluate.py / tuning do
    quiet_start(verbose=True)  # hides nothing

Where TensorFlow 2.21's start-up lines come from (CPU machine, measured
with train.py / evaluate.py on the demo) and how quiet_start hides them:

- `import tensorflow`: "WARNING: All log messages before
  absl::InitializeLog() ...", I port.cc (oneDNN custom operations),
  I cudart_stub.cc ("Could not find cuda drivers"), I cpu_feature_guard.cc
  (+ a "To enable the following instructions" line), each twice. absl's
  log is not set up yet, so TF_CPP_MIN_LOG_LEVEL does not apply: they go
  straight to file descriptor 2, which is kept aside during the import.
- the first device listing (first op, model build): E cuda_platform.cc
  "failed call to cuInit". quiet_start lists the devices itself, with
  file descriptor 2 still kept aside.
- the first graph with a bool Transpose (tf.data map functions, the
  model): E util.cc "oneDNN supports DT_BOOL only on platforms with
  AVX-512", logged once per process. quiet_start runs one such tiny graph
  in a CPU-only v1 Session (0.1 s; it neither starts the eager runtime
  nor touches a GPU, so tf.config stays modifiable) while fd 2 is aside.
- later C++ INFO / WARNING lines (grappler cost estimates ...):
  TF_CPP_MIN_LOG_LEVEL=2 (mrcnn/__init__.py). ERROR lines still show.
- absl / Keras Python logging printed nothing at start-up.

The lines kept aside are shown if a step fails. A GPU that is present but
unusable is a real problem and is reported in one line (`gpu_problem`), and
on a machine with an NVIDIA GPU each kept line saying that a CUDA library
did not load is shown too (`cuda_load_lines`); there TensorFlow's warnings
are kept (TF_CPP_MIN_LOG_LEVEL 1, unless the user set it: `tf_log_level`),
since "Cannot dlopen some GPU libraries" is one. A machine without a GPU
hears nothing about CUDA. Under another Keras backend (KERAS_BACKEND=jax)
nothing here imports TensorFlow; JAX warns about its GPU itself.
"""

import contextlib
import glob
import os
import re
import sys
import tempfile

_started = False


@contextlib.contextmanager
def _fd2_kept_aside():
    """Send file descriptor 2 to a temporary file; yields a function that
    returns what was written so far. Written back to stderr on an exception."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as kept:
        def text():
            sys.stderr.flush()
            kept.seek(0)
            return kept.read().decode(errors="replace")

        os.dup2(kept.fileno(), 2)
        try:
            yield text
        except BaseException:
            os.dup2(saved, 2)
            sys.stderr.write(text())
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _log_once_lines(tf):
    """Run a bool Transpose graph on CPU: TensorFlow's once-per-process oneDNN
    DT_BOOL notice is logged now (while fd 2 is aside) instead of mid-run."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.bool, [1, 2])
        y = tf.transpose(x)
    config = tf.compat.v1.ConfigProto(device_count={"GPU": 0})
    with tf.compat.v1.Session(graph=graph, config=config) as session:
        session.run(y, {x: [[True, False]]})


def nvidia_gpus(dev="/dev", proc="/proc/driver/nvidia/gpus"):
    """NVIDIA GPUs the kernel driver exposes: /dev/nvidia<N> device files, or
    else /proc/driver/nvidia/gpus/<bus id> entries. A few stat calls, no
    nvidia-smi (slow, and it can hang on a broken driver)."""
    found = sorted(glob.glob(os.path.join(dev, "nvidia[0-9]*")))
    return found or sorted(glob.glob(os.path.join(proc, "*")))


# Lines of TensorFlow's log that say why CUDA did not start, best first.
_REASONS = ("cuInit", "CUDA error", "Cannot dlopen", "Could not load dynamic library",
            "cuda drivers", "driver version")
_LOG_PREFIX = re.compile(r"^[IWEF]\d{4} [\d:. ]+\s+\d+ [\w.]+:\d+\] ")


# Lines of TensorFlow's log that say a CUDA library did not load.
_CUDA_LOAD = ("Cannot dlopen", "Could not load dynamic library", "dlerror", "cuInit",
              "CUDA error")


def cuda_load_lines(log):
    """The lines of a kept start-up log that say a CUDA library did not load,
    without absl's prefix, each once, in order."""
    lines = [_LOG_PREFIX.sub("", line).strip() for line in (log or "").splitlines()]
    found = [line for line in lines if any(key in line for key in _CUDA_LOAD)]
    return list(dict.fromkeys(found))


def tf_log_level(gpus, verbose=False):
    """TF_CPP_MIN_LOG_LEVEL before TensorFlow starts, where the user did not
    set it: "0" when verbose; "1" (warnings kept, for the CUDA ones) on a
    machine with GPUs; else "2"."""
    return "0" if verbose else "1" if gpus else "2"


def gpu_problem(gpus, tf_gpus, log="", visible=None, built_with_cuda=True):
    """One line reporting a GPU that is present but unusable, or None.

    gpus: GPUs the system has (`nvidia_gpus()`); tf_gpus: those TensorFlow
    lists; log: TensorFlow's start-up output, for the reason (None: it was
    shown, not kept); visible:
    $CUDA_VISIBLE_DEVICES ("" or "-1" hide the GPUs on purpose: no problem);
    built_with_cuda: `tf.test.is_built_with_cuda()`.
    """
    if not gpus or tf_gpus:
        return None
    if visible is not None and visible.strip() in ("", "-1"):
        return None
    if not built_with_cuda:
        reason = "this TensorFlow was built without CUDA (pip install 'tensorflow[and-cuda]')"
    else:
        lines = [_LOG_PREFIX.sub("", line).strip() for line in (log or "").splitlines()]
        found = [line for key in _REASONS for line in lines if key in line]
        reason = (found[0] if found else f"CUDA_VISIBLE_DEVICES={visible}" if visible
                  else "see TensorFlow's log above" if log is None
                  else "TensorFlow's log gives no reason")
    if len(reason) > 200:
        reason = reason[:197] + "..."
    return (f"GPU problem: {len(gpus)} NVIDIA GPU(s) present ({gpus[0]}) but TensorFlow "
            f"lists none, running on CPU: {reason}")


def quiet_start(verbose=False):
    """Import TensorFlow and list its devices, the command lines' first step.

    verbose=False hides TensorFlow's start-up lines (module docstring);
    verbose=True hides nothing (TF_CPP_MIN_LOG_LEVEL 0 unless the user set
    it). Either way a GPU that is present but unusable is reported on
    stderr in one line, and on a machine with a GPU the kept lines about
    CUDA libraries that did not load. Under a Keras backend other than
    TensorFlow it does nothing. Later calls do nothing.
    """
    global _started
    from mrcnn.engine.devices import backend_name

    if _started:
        return
    _started = True
    if backend_name() != "tensorflow":
        return
    import mrcnn

    gpus = nvidia_gpus()
    if not mrcnn.TF_LOG_LEVEL_FROM_USER and "tensorflow" not in sys.modules:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = tf_log_level(gpus, verbose)
    if verbose:
        import tensorflow as tf

        tf_gpus, log = tf.config.list_physical_devices("GPU"), None
    else:
        with _fd2_kept_aside() as kept:
            import tensorflow as tf

            tf_gpus = tf.config.list_physical_devices("GPU")
            _log_once_lines(tf)
            log = kept()
    problem = gpu_problem(gpus, tf_gpus, log, os.environ.get("CUDA_VISIBLE_DEVICES"),
                          tf.test.is_built_with_cuda())
    shown = [problem] if problem else []
    if gpus and log:
        shown += [f"CUDA: {line}" for line in cuda_load_lines(log)
                  if not problem or line[:100] not in problem]
    for line in shown:
        print(line, file=sys.stderr, flush=True)
