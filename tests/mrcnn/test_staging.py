"""Tests for mrcnn/staging.py: a folder replaced as a whole; staging
folders of killed runs removed by the next run, those of live runs kept."""

import os
import subprocess
import sys
import textwrap

import pytest

from mrcnn import staging

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write(folder, name, text):
    with open(os.path.join(folder, name), "w") as f:
        f.write(text)


def listing(path):
    return sorted(os.listdir(path))


def test_success_replaces_the_folder_as_a_whole(tmp_path):
    target = tmp_path / "rep"
    target.mkdir()
    write(target, "old.txt", "old")
    with staging.staged(target) as tmp:
        assert os.path.basename(tmp) == "new"
        assert os.path.basename(os.path.dirname(tmp)).startswith("rep.partial-")
        write(tmp, "new.txt", "new")
        assert listing(target) == ["old.txt"]
    assert listing(target) == ["new.txt"]
    assert listing(tmp_path) == ["rep"]


def test_an_exception_leaves_the_previous_folder_and_no_staging(tmp_path):
    target = tmp_path / "rep"
    target.mkdir()
    write(target, "old.txt", "old")
    with pytest.raises(KeyboardInterrupt), staging.staged(target) as tmp:
        write(tmp, "new.txt", "new")
        raise KeyboardInterrupt
    assert listing(target) == ["old.txt"]
    assert listing(tmp_path) == ["rep"]


def test_a_failed_swap_puts_the_previous_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "rep"
    target.mkdir()
    write(target, "old.txt", "old")
    real = os.replace

    def replace(src, dst):
        if os.path.basename(src) == "new":
            raise PermissionError("simulated")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(PermissionError), staging.staged(target) as tmp:
        write(tmp, "new.txt", "new")
    assert listing(target) == ["old.txt"]
    assert listing(tmp_path) == ["rep"]


def child(script, target, **kwargs):
    """A Python process running `script` with `staged` and `target` defined."""
    code = (f"import os, signal, sys\nfrom mrcnn.staging import staged\ntarget = {str(target)!r}\n"
            + textwrap.dedent(script))
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, **kwargs)


def test_the_staging_folder_of_a_killed_run_is_removed_by_the_next(tmp_path):
    target = tmp_path / "rep"
    target.mkdir()
    write(target, "old.txt", "old")
    killed = child("""
        with staged(target) as tmp:
            open(os.path.join(tmp, "half.txt"), "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
    """, target)
    killed.communicate(timeout=60)
    assert killed.returncode == -9
    (stale,) = [n for n in listing(tmp_path) if n != "rep"]
    messages = []
    with staging.staged(target, log=messages.append) as tmp:
        assert not (tmp_path / stale).exists()
        write(tmp, "new.txt", "new")
    assert messages == [f"Removed {stale}, the staging folder of an interrupted run"]
    assert listing(tmp_path) == ["rep"] and listing(target) == ["new.txt"]


def test_the_staging_folder_of_a_live_run_is_left_alone(tmp_path):
    target = tmp_path / "rep"
    live = child("""
        with staged(target) as tmp:
            open(os.path.join(tmp, "live.txt"), "w").close()
            print(os.path.dirname(tmp), flush=True)
            sys.stdin.readline()  # until the test says go on
    """, target)
    try:
        stage = live.stdout.readline().strip()
        assert os.path.isdir(stage)
        messages = []
        with staging.staged(target, log=messages.append) as tmp:
            write(tmp, "mine.txt", "mine")
        assert messages == [] and os.path.isdir(stage)
        assert staging.remove_stale(target) == []
        assert listing(target) == ["mine.txt"]
    finally:
        live.communicate("go\n", timeout=60)
    assert live.returncode == 0
    # The last run to finish wins; nothing else is left.
    assert listing(target) == ["live.txt"] and listing(tmp_path) == ["rep"]


def test_a_run_killed_mid_swap_gets_its_previous_folder_back(tmp_path):
    # The previous folder moved into the staging folder, the new one not yet in place.
    old = tmp_path / "rep.partial-abcd_123" / "old"
    old.mkdir(parents=True)
    write(old, "old.txt", "old")
    (tmp_path / "rep.partial-abcd_123" / "new").mkdir()
    assert staging.remove_stale(tmp_path / "rep") == [("rep.partial-abcd_123", True)]
    assert listing(tmp_path) == ["rep"] and listing(tmp_path / "rep") == ["old.txt"]


def test_only_our_own_staging_folders_are_touched(tmp_path):
    keep = ["rep.partial-notes", "rep.partial-abcdefghi", "rep.partial-ABCDEFGH",
            "other.partial-abcdefgh", "rep.old-abcdefgh"]
    for name in keep:
        (tmp_path / name).mkdir()
    (tmp_path / "rep.partial-file0000").write_text("a file")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "rep.partial-link0000").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "rep.partial-stale000").mkdir()
    assert staging.remove_stale(tmp_path / "rep") == [("rep.partial-stale000", False)]
    assert listing(tmp_path) == sorted(keep + ["elsewhere", "rep.partial-file0000",
                                               "rep.partial-link0000"])


def test_a_staging_folder_removed_before_it_was_locked_is_made_again(tmp_path, monkeypatch):
    # Another run's cleanup can take a new staging folder in the moment
    # between its creation and its lock: the owner notices and makes another.
    real, made = staging._lock, []

    def lock(path):
        made.append(path)
        if len(made) == 1:
            staging.remove_stale(tmp_path / "rep")
        return real(path)

    monkeypatch.setattr(staging, "_lock", lock)
    with staging.staged(tmp_path / "rep") as tmp:
        write(tmp, "a.txt", "a")
    assert len(made) == 2 and not os.path.exists(made[0])
    assert listing(tmp_path) == ["rep"] and listing(tmp_path / "rep") == ["a.txt"]
