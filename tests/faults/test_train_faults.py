"""train.py under injected faults, as a database's durability tests do it.

Three seeds each choose reproducible points in a 4-epoch tiny run (64 x 128
synthetic scenes, ResNet-14 heads, 2 steps per epoch) and drive one chain
of train.py processes (mrcnn/engine/faults.py is the hook, $MRCNN_FAULT):

    1. a new run, SIGKILLed after training step N (epoch 2 or 3);
    2. `--weights last`, SIGKILLed in the middle of writing a checkpoint
       (epoch 3 or 4, a seeded fraction of its layers written);
    3. per seed, `--weights last` again: seed 0 with `--lr 1e30`, a NaN
       stop; seed 1 whose first checkpoint write fails with a full disk;
       seed 2 after its latest checkpoint was damaged (truncated or
       overwritten, seeded): it falls back to the one before and finishes.

After every process: each .h5 in the run folder reads whole (checksums
included), history.csv holds epochs 1..k once each, at most the epoch the
fault hit is lost. The chains (9 processes) run in parallel threads, about
3 minutes on 2 cores; each test below checks one property over them all.
"""

import math
import os
import random
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from cityscapes.synthetic import generate
from mrcnn import files
from mrcnn.checkpoint import hdf5
from mrcnn.engine import callbacks, faults, run_dir
from tests.commands import ENV, ROOT, train_cmd

pytestmark = pytest.mark.slow  # minutes of training in subprocesses

SEEDS = (0, 1, 2)
EPOCHS, STEPS = 4, 2
NAME = "cityscapes"


def tiny(dataset, logs, *extra):
    return ["--dataset", dataset, "--weights", "none", "--backbone", "resnet14",
            "--image_min_dim", "64", "--image_max_dim", "128", "--steps_per_epoch", str(STEPS),
            "--validation_steps", "1", "--layers", "heads", "--epochs", str(EPOCHS),
            "--logs", str(logs), "--mask_cache", "none", "--seed", "0", *extra]


def resume(dataset, logs, *extra):
    return ["--dataset", dataset, "--weights", "last", "--logs", str(logs), *extra]


def points(seed):
    """The seed's fault points: (step N to kill after, in epoch 2 or 3;
    which checkpoint write of the resumed run to kill, so that it is epoch
    3 or 4's; the fraction of its layers written by then)."""
    rng = random.Random(seed)
    step = rng.randint(STEPS + 1, (EPOCHS - 1) * STEPS)
    resumed = (step - 1) // STEPS  # the last checkpoint left by the kill
    write = rng.randint(max(1, 3 - resumed), EPOCHS - resumed)
    return step, write, round(rng.random(), 2)


def damage(path, seed):
    """Truncate `path` or overwrite bytes inside it (seeded). -> how"""
    rng = random.Random(seed)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        if rng.random() < 0.5:
            f.truncate(rng.randint(0, size - 1))
            return "truncated"
        f.seek(rng.randint(size // 4, 3 * size // 4))
        f.write(rng.randbytes(4096))
        return "overwritten"


def state(logs):
    """What a run folder holds: checkpoint epochs, history epochs, temporary
    files, .h5 files that do not read whole, and checkpoint stamps."""
    (run,) = [os.path.join(logs, d) for d in os.listdir(logs)]
    names = os.listdir(run)
    epochs = sorted(run_dir.parse_checkpoint_path(os.path.join(run, n))[1] for n in names
                    if n.startswith("mask_rcnn_") and n.endswith(".h5"))
    unreadable = []
    for n in names:
        if n.endswith(".h5"):
            try:
                hdf5.check_readable(os.path.join(run, n))
            except (OSError, hdf5.WeightsFileError) as e:
                unreadable.append(f"{n}: {e}")
    return {"run": run, "checkpoints": epochs,
            "history": [r["epoch"] for r in callbacks.read_history(
                os.path.join(run, "history.csv"))],
            "temporary": sorted(n for n in names if n.endswith(".tmp")),
            "unreadable": unreadable,
            "stamps": {e: os.stat(run_dir.checkpoint_path(run, NAME, e)).st_mtime_ns
                       for e in epochs}}


def train(args, fault=None, timeout=900):
    env = dict(ENV, **({faults.ENV: fault} if fault else {}))
    started = time.time()
    result = subprocess.run(train_cmd(*args), cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=timeout, check=False)
    return {"rc": result.returncode, "out": result.stdout, "err": result.stderr,
            "seconds": round(time.time() - started, 1)}


def chain(seed, dataset, logs):
    """The seed's train.py processes. -> list of (what, process result, state after)"""
    step, write, fraction = points(seed)
    steps = [("kill after step", train(tiny(dataset, logs), f"kill_after_step:{step}"))]
    steps[-1] += (state(logs),)
    steps.append(("kill in checkpoint", train(resume(dataset, logs),
                                              f"kill_in_checkpoint:{write}:{fraction}")))
    steps[-1] += (state(logs),)
    if seed == 0:
        steps.append(("nan", train(resume(dataset, logs, "--optimizer", "sgd", "--lr", "1e30"))))
    elif seed == 1:
        steps.append(("disk full", train(resume(dataset, logs), "enospc_in_checkpoint:1:0.5")))
    else:
        latest = run_dir.checkpoint_path(steps[-1][2]["run"], NAME, steps[-1][2]["checkpoints"][-1])
        steps.append((f"damaged {damage(latest, seed)}", train(resume(dataset, logs))))
    steps[-1] += (state(logs),)
    return steps


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    dataset = str(root / "cs")
    generate(dataset, seed=2, height=64, width=128, images={"train": 3, "val": 2, "test": 0})
    with ThreadPoolExecutor(len(SEEDS)) as pool:
        futures = {s: pool.submit(chain, s, dataset, root / f"logs{s}") for s in SEEDS}
        return {s: f.result() for s, f in futures.items()}


def where(seed, what, result):
    return f"seed {seed} ({points(seed)}), {what}: rc {result['rc']}\n{result['err'][-3000:]}"


def test_the_seeds_choose_different_points():
    assert len({points(s) for s in SEEDS}) == len(SEEDS)
    for s in SEEDS:
        step, write, _ = points(s)
        assert 2 <= (step - 1) // STEPS + write <= EPOCHS


def test_every_checkpoint_reads_whole_after_every_fault(chains):
    for seed, steps in chains.items():
        for what, result, after in steps:
            assert after["unreadable"] == [], where(seed, what, result)


def test_a_kill_after_step_n_loses_only_the_epoch_it_was_in(chains):
    for seed, steps in chains.items():
        what, result, after = steps[0]
        assert result["rc"] == -signal.SIGKILL, where(seed, what, result)
        epoch = (points(seed)[0] - 1) // STEPS + 1
        assert after["checkpoints"] == list(range(1, epoch)), where(seed, what, result)
        assert after["history"] == list(range(1, epoch))


def test_a_kill_in_a_checkpoint_write_leaves_the_previous_ones_and_no_half_file(chains):
    for seed, steps in chains.items():
        (_, _, killed), (what, result, after) = steps[:2]
        assert result["rc"] == -signal.SIGKILL, where(seed, what, result)
        resumed = killed["checkpoints"][-1]
        assert f"Continuing {after['run']} after epoch {resumed}" in result["out"]
        written = resumed + points(seed)[1]  # the epoch whose write was killed
        assert after["checkpoints"] == list(range(1, written)), where(seed, what, result)
        # Its history row was written before its checkpoint: the resume drops it.
        assert after["history"] == list(range(1, written + 1))
        assert len(after["temporary"]) == 1 and written == int(
            after["temporary"][0].split(".")[1][-4:]), after["temporary"]
        assert {e: after["stamps"][e] for e in killed["stamps"]} == killed["stamps"]


def test_a_nan_loss_stops_with_exit_3_and_keeps_every_checkpoint(chains):
    (_, _, killed), (what, result, after) = chains[0][1:]
    assert result["rc"] == 3, where(0, what, result)
    resumed = killed["checkpoints"][-1]
    assert f"Continuing {after['run']} after epoch {resumed}" in result["out"]
    message = result["err"].strip().splitlines()[-1]
    assert f"of epoch {resumed + 1}" in message and "learning rate 1e+30" in message, message
    assert after["checkpoints"] == killed["checkpoints"] and after["stamps"] == killed["stamps"]
    assert after["history"] == list(range(1, resumed + 1)) and after["temporary"] == []
    newest = run_dir.checkpoint_path(after["run"], NAME, resumed)
    for _, values in hdf5.read_legacy_h5(newest):
        assert all(math.isfinite(float(abs(v).max())) for _, v in values if v.size)


def test_a_full_disk_at_a_checkpoint_write_stops_with_one_line_and_keeps_the_last(chains):
    (_, _, killed), (what, result, after) = chains[1][1:]
    assert result["rc"] == 1, where(1, what, result)
    lines = result["err"].strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result["err"], result["err"][-3000:]
    resumed = killed["checkpoints"][-1]
    failed = run_dir.checkpoint_path(after["run"], NAME, resumed + 1)
    kept = run_dir.checkpoint_path(after["run"], NAME, resumed)
    assert lines[0].startswith("train.py: stopped:") and failed in lines[0] and kept in lines[0]
    assert "No space left on device" in lines[0]
    assert after["checkpoints"] == killed["checkpoints"]
    assert after["stamps"] == killed["stamps"] and after["temporary"] == []


def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(chains):
    (_, _, killed), (what, result, after) = chains[2][1:]
    assert result["rc"] == 0, where(2, what, result)
    damaged, previous = killed["checkpoints"][-1], killed["checkpoints"][-2]
    bad = run_dir.checkpoint_path(after["run"], NAME, damaged)
    good = run_dir.checkpoint_path(after["run"], NAME, previous)
    warning = [line for line in result["err"].splitlines() if line.startswith("Warning:")]
    assert len(warning) == 1 and bad in warning[0] and good in warning[0], result["err"][-3000:]
    assert f"Continuing {after['run']} after epoch {previous}" in result["out"]
    assert f"epochs {previous + 1}-{EPOCHS}" in result["out"].strip().splitlines()[-1]
    assert after["checkpoints"] == after["history"] == list(range(1, EPOCHS + 1))
    assert after["temporary"] == [], "the killed write's partial file is still there"
    assert f"Removed {os.path.join(after['run'], killed['temporary'][0])}" in result["out"]
    assert {e: after["stamps"][e] for e in range(1, previous + 1)} == {
        e: killed["stamps"][e] for e in range(1, previous + 1)}
    rows = callbacks.read_history(os.path.join(after["run"], "history.csv"))
    assert all(math.isfinite(r["loss"]) and math.isfinite(r["val_loss"]) for r in rows)
    summary = files.read_json(os.path.join(after["run"], "summary.json"))
    best = min(rows, key=lambda r: r["val_loss"])
    assert (summary["best_epoch"], summary["best_val_loss"]) == (best["epoch"], best["val_loss"])
    for name in ("config.json", "train_args.json"):
        assert os.path.isfile(os.path.join(after["run"], name))
    assert os.listdir(os.path.join(after["run"], "tensorboard"))
