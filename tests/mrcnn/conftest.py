"""A fixture shared by tests/mrcnn's modules: the JAX training run."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def jax_training(tmp_path_factory):
    """tests/mrcnn/jax_training.py in a subprocess, started on first request:
    (the Popen, its output folder). Its stdout and stderr go to files there.
    test_backends.py requests it without waiting, so that it runs beside
    that module's two subprocesses: their compiles are single-threaded, and
    a 2-core machine would otherwise idle through much of them."""
    out = tmp_path_factory.mktemp("jax_training")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    with open(out / "stdout", "w") as stdout, open(out / "stderr", "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "tests.mrcnn.jax_training", str(out)],
                                   cwd=REPO, env=env, stdout=stdout, stderr=stderr)
    yield process, out
    process.kill()
