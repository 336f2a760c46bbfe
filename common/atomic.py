"""Write files and folders so that readers see the old complete output or the new one, never a mix."""
import contextlib
import glob
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common.errors import FacemoodError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so what a killed run left is left alone
    fcntl = None

# A temporary folder this young may be one whose writer has not taken its lock yet.
ABANDONED_AFTER_S = 10


@dataclass(frozen=True)
class Marker:
    """What every earlier output of one kind holds: a file, with `text` in it when given. A file
    name alone is not enough where other tools write the same one (index.html, metadata.json)."""
    file: str
    text: str = ""

    def found_in(self, folder):
        path = folder / self.file
        if not path.is_file():
            return False
        try:
            return self.text in path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False

    def __str__(self):
        return f"{self.file} written by facemood" if self.text else self.file


@contextlib.contextmanager
def atomic_dir(target, marker=None):
    """Yield an empty temporary folder beside `target`, as an absolute path; on success swap it into place.

    `marker`: a Marker (or a file name) every earlier output of the caller's kind holds. An
    existing `target` is replaced only when it is an empty folder or holds it, so a mistyped --out
    never deletes an unrelated folder.
    On any exception the temporary folder is removed and `target` is left untouched.
    The swap is two renames (old -> backup, new -> target), each atomic on one file system.
    """
    target = Path(target)
    _recover_backups(target)
    check_replaceable(target, marker)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target)
    # Absolute: tools the caller runs in other working folders (Node.js bundlers) must write here too.
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent.absolute()))
    lock = _lock(tmp)
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the result should look like any folder
        yield tmp
        _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            os.close(lock)


def _lock(folder):
    """A descriptor of `folder` holding an exclusive lock on it, or None where there are no locks.
    The system drops the lock when the process ends, however it ends: a temporary folder nobody
    holds was left by a run that was killed outright (SIGKILL, the out-of-memory killer)."""
    if fcntl is None:
        return None
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _remove_abandoned(target):
    """Remove the temporary folders beside `target` that killed runs left (see `_lock`); those of a
    run still writing are kept."""
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.new-*"):
        try:
            if not leftover.is_dir() or time.time() - leftover.stat().st_mtime < ABANDONED_AFTER_S:
                continue
        except OSError:
            continue
        lock = _lock(leftover)
        if lock is not None:
            try:
                shutil.rmtree(leftover, ignore_errors=True)
            finally:
                os.close(lock)


def _recover_backups(target):
    """A run killed between the swap's two renames left the previous output aside, as
    .NAME.old-PID, and no NAME: it is put back. Beside a NAME, such a backup is stale and goes.
    Backups of a process still running are its own to put back or remove."""
    for backup in target.parent.glob(f".{glob.escape(target.name)}.old-*"):
        pid = backup.name.rpartition("-")[2]
        if not pid.isdigit() or int(pid) == os.getpid() or _running(int(pid)):
            continue
        with contextlib.suppress(OSError):
            if target.exists() or target.is_symlink():
                shutil.rmtree(backup, ignore_errors=True)
            else:
                os.replace(backup, target)


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def check_can_write(target):
    """Refuse, before any work, an output `target` that could not be written: a parent that is a
    file, or a place where nothing can be created (read-only, no permission). Found by making and
    removing a folder where the output's own would go, so it is named in the user's terms, not by
    the temporary name of a write that fails hours later."""
    target = Path(target)
    place = target.parent
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise FacemoodError(f"{target}: cannot be written: {place} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".{target.name}.probe-", dir=place))
    except OSError as e:
        raise FacemoodError(f"{target}: cannot be written: {place}: {e.strerror or e}") from None


def check_replaceable(target, marker):
    """Refuse, before anything is written, to replace what is not an earlier output of this kind, or
    to write where nothing can be (check_can_write)."""
    check_can_write(target)
    if target.is_symlink():
        raise FacemoodError(f"{target}: is a symbolic link; give the folder it points to")
    if not target.exists():
        return
    if not target.is_dir():
        raise FacemoodError(f"{target}: exists and is not a folder; not replacing it")
    here = Path.cwd().resolve()
    if target.resolve() in (here, *here.parents):
        raise FacemoodError(f"{target}: is the current folder or holds it; give an output folder of its own")
    marker = Marker(marker) if isinstance(marker, str) else marker
    if marker and marker.found_in(target):
        return
    if any(target.iterdir()):
        what = f"holds no {marker}" if marker else "is not empty"
        raise FacemoodError(f"{target}: not replacing this folder: it {what}, so it is not an earlier output "
                            f"of this step; give a new or empty folder")


def _swap(tmp, target):
    """Rename `tmp` to `target`, moving an old `target` aside first and putting it back on failure."""
    backup = target.parent / f".{target.name}.old-{os.getpid()}"
    moved = swapped = False
    try:
        if target.exists():
            os.replace(target, backup)
            moved = True
        os.replace(tmp, target)
        swapped = True
    except BaseException as e:  # an interrupt (Ctrl-C, SIGTERM) between the renames too
        if moved and not swapped:
            with contextlib.suppress(OSError):
                os.replace(backup, target)
        if isinstance(e, OSError):
            raise FacemoodError(f"{target}: cannot replace it with the new output ({e.strerror or e})") from None
        raise
    shutil.rmtree(backup, ignore_errors=True)


def check_can_write_file(path):
    """check_can_write for a file `path`, which must not be a folder either."""
    path = Path(path)
    if path.is_dir():
        raise FacemoodError(f"{path}: is a folder; give a file name")
    check_can_write(path)


def atomic_write_bytes(path, data):
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path, obj):
    """Write `obj` as pretty, key-sorted JSON atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path, what="file"):
    """Read a JSON file, turning a missing or malformed file into a one-line FacemoodError."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FacemoodError(f"{path}: {what} not found") from None
    except (OSError, ValueError) as e:
        raise FacemoodError(f"{path}: cannot read {what} ({e})") from None


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
