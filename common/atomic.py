"""Write files and folders so that readers see the old complete output or the new one, never a mix."""
import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_dir(target):
    """Yield an empty temporary folder beside `target`; on success swap it into place.

    On any exception the temporary folder is removed and `target` is left untouched.
    The swap is two renames (old -> backup, new -> target), each atomic on one file system.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; the result should look like any folder
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    backup = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        os.replace(target, backup)
    os.replace(tmp, target)
    shutil.rmtree(backup, ignore_errors=True)


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
    from common.errors import FacemoodError

    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FacemoodError(f"{path}: {what} not found") from None
    except (OSError, ValueError) as e:
        raise FacemoodError(f"{path}: cannot read {what} ({e})") from None


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
