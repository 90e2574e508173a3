"""A distributed sweep on loopback: a chief serving Keras Tuner's oracle
(KERASTUNER_TUNER_ID=chief, KERASTUNER_ORACLE_IP=127.0.0.1, a free port)
and two workers (tuner0, tuner1) running `python -m tuning` on one shared
--directory finish one small Hyperband sweep together (max_epochs 2,
factor 3: two trials of two epochs, one per worker), scored by val mask
AP@0.5 (--objective val_ap). The chief writes the results."""

import json
import os
import socket
import subprocess

import pytest

from cityscapes import options
from cityscapes.synthetic import generate
from tests.tuning.test_sweep import ENV, tiny_sweep
from tuning import layout
from tuning.callbacks import read_epochs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPACE = {"weights": "none", "backbone": "resnet50",
         "lr": {"min": 1e-5, "max": 1e-4, "sampling": "log"}, "momentum": 0.9}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_chief_and_two_workers_share_one_sweep(tmp_path):
    data = tmp_path / "cs"
    generate(data, seed=4, height=64, width=128, images={"train": 3, "val": 2, "test": 0})
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPACE))
    best = tmp_path / "best.json"
    cmd = tiny_sweep(str(data), space, tmp_path / "sweeps", "--project", "shared",
                     "--max_epochs", "2", "--factor", "3", "--objective", "val_ap",
                     "--seed", "5", "--export_best", str(best))
    port = str(free_port())
    procs = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = dict(ENV, KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1",
                   KERASTUNER_ORACLE_PORT=port)
        log = open(tmp_path / f"{tuner_id}.log", "w+")
        procs[tuner_id] = (subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log,
                                            stderr=subprocess.STDOUT), log)
    try:
        for tuner_id, (proc, log) in procs.items():
            rc = proc.wait(timeout=500)
            log.seek(0)
            output = log.read()
            assert rc == 0, f"{tuner_id} exited with {rc}: {output[-3000:]}"
            if tuner_id != "chief":
                assert f"Worker {tuner_id} done: trials " in output
    finally:
        for proc, log in procs.values():
            if proc.poll() is None:
                proc.kill()
            log.close()

    project = str(tmp_path / "sweeps" / "shared")
    with open(os.path.join(project, "results.json")) as f:
        results = json.load(f)
    trials = results["trials"]
    assert [t["status"] for t in trials] == ["COMPLETED", "COMPLETED"]
    assert sorted(t["worker"] for t in trials) == ["tuner0", "tuner1"]
    assert results["direction"] == "max" and len(results["best"]) == 2
    for t in trials:
        assert 0.0 <= t["score"] <= 1.0 and t["epochs"] == 2
        rows = read_epochs(layout.epochs_file(layout.run_dir(project, t["trial_id"])))
        assert [r["epoch"] for r in rows] == [1, 2]
        assert t["score"] == max(r["val_ap"] for r in rows)
    with open(os.path.join(project, "results.md")) as f:
        assert "Objective: val_ap (higher is better" in f.read()
    exported = options.read_hparams(str(best))
    assert exported["lr"] == results["best"][0]["values"]["lr"]
    assert 1e-5 <= exported["lr"] <= 1e-4
