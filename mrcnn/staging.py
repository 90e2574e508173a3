"""A folder replaced as a whole: built aside, then moved into place.

    with staged("reports/val", log=print) as tmp:
        ...  # write the files into tmp
    # reports/val now holds exactly what was written into tmp

The folder is built in a staging folder beside it (same file system, so
the last step is a rename), `<name>.partial-XXXXXXXX/new`. At the end the
previous folder is moved to `<name>.partial-XXXXXXXX/old`, `new` takes its
place, and the staging folder (with the previous folder) is deleted. When
the block raises, the staging folder is deleted and the previous folder
stays. So `<name>` is always a whole folder (or absent), never half of one.

A process killed outright (SIGKILL, power loss) cannot delete its staging
folder; the next `staged` of the same name does. It must not delete the
staging folder of a run still going (two evaluations writing the same
report), so a staging folder is locked by its owner: an exclusive
`flock` on the folder, held from its creation until it is deleted, which
the operating system releases when the process ends, however it ends.
A staging folder whose lock can be taken is stale: if its run died in the
middle of the swap (`<name>` absent, `old` present), `old` is put back;
then the folder is deleted. A locked one is left alone. Only directories
named exactly `<name>.partial-` + 8 characters of `tempfile`'s alphabet
are considered. Where there is no flock (Windows), a staging folder is
taken as stale when it was last modified more than STALE_SECONDS ago.
"""

import contextlib
import os
import re
import shutil
import tempfile
import time

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

STAGING = ".partial-"
# Without flock: staging folders untouched for this long are stale.
STALE_SECONDS = 24 * 3600


@contextlib.contextmanager
def staged(folder, log=None):
    """Yield an empty folder to write; on success it replaces `folder` as a
    whole, on an exception it is deleted and `folder` is left as it was.
    Stale staging folders of `folder` (left by killed runs) are removed
    first, each named through `log` (a print-like function) when given."""
    folder = os.path.abspath(folder)
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    for name, restored in remove_stale(folder):
        if log:
            log(f"Removed {name}, the staging folder of an interrupted run"
                + (f" (its previous {os.path.basename(folder)} put back)" if restored else ""))
    stage, lock = _new_stage(folder)
    new, old = os.path.join(stage, "new"), os.path.join(stage, "old")
    try:
        os.mkdir(new)
        yield new
        _swap(folder, new, old)
    except BaseException:
        if os.path.isdir(old) and not os.path.lexists(folder):  # stopped mid-swap
            os.replace(old, folder)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        _unlock(lock)


def remove_stale(folder):
    """Delete the staging folders of `folder` that no live process holds.
    -> [(their names, whether the previous folder was put back)]."""
    folder = os.path.abspath(folder)
    parent, base = os.path.split(folder)
    pattern = re.compile(re.escape(base + STAGING) + r"[a-z0-9_]{8}")
    removed = []
    try:
        names = sorted(os.listdir(parent))
    except OSError:
        return removed
    for name in names:
        path = os.path.join(parent, name)
        if not pattern.fullmatch(name) or os.path.islink(path) or not os.path.isdir(path):
            continue
        lock = _try_lock(path)
        if lock is None:  # a live run's
            continue
        try:
            old = os.path.join(path, "old")
            restored = not os.path.exists(folder) and os.path.isdir(old)
            if restored:  # it died between moving the previous folder out and the new one in
                os.replace(old, folder)
            shutil.rmtree(path, ignore_errors=True)
            removed.append((name, restored))
        finally:
            _unlock(lock)
    return removed


def _swap(folder, new, old):
    """Move `folder` (if any) to `old` and `new` to `folder`. Another run
    may put its own folder there in between: then that one goes to `old`
    too (the last run to finish wins)."""
    for _ in range(10):
        if os.path.lexists(folder):
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
        try:
            os.replace(new, folder)
            return
        except OSError:
            if not os.path.lexists(folder):
                raise
    raise OSError(f"{folder}: could not be replaced (other runs kept writing it)")


def _new_stage(folder):
    """A new staging folder beside `folder`, locked: (path, lock)."""
    parent, base = os.path.split(folder)
    while True:
        stage = tempfile.mkdtemp(prefix=base + STAGING, dir=parent)
        try:
            lock = _lock(stage)
        except FileNotFoundError:  # a cleaner took it before we locked it
            continue
        try:
            if lock == NO_FLOCK or os.path.samestat(os.fstat(lock), os.stat(stage)):
                return stage, lock
        except FileNotFoundError:
            pass
        _unlock(lock)


# A lock is an open file descriptor of the folder holding its flock, or
# NO_FLOCK where there is none.
NO_FLOCK = -1


def _lock(path):
    """Hold an exclusive lock on folder `path`, waiting while a cleaner
    holds it (a moment). FileNotFoundError when `path` is gone."""
    if fcntl is None:
        os.stat(path)
        return NO_FLOCK
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _try_lock(path):
    """The lock of a staging folder when no live process holds it (it is
    stale), else None."""
    if fcntl is None:
        try:
            stale = time.time() - os.stat(path).st_mtime > STALE_SECONDS
        except OSError:
            return None
        return NO_FLOCK if stale else None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held by a live process
        os.close(fd)
        return None
    return fd


def _unlock(lock):
    if lock != NO_FLOCK:
        os.close(lock)  # releases the flock
