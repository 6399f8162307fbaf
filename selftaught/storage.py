"""Writes that fail because the disk is full or broken: one line naming the path and the free space.

A full disk (ENOSPC, or EDQUOT over a quota), a file too large for the filesystem (EFBIG), a
read-only remount (EROFS) or an I/O error (EIO) is the machine's state, not a bug: the run stops
with a `UserError` (exit 2) that says what could not be written, where, and how much room is left.
The libraries that write checkpoints report it in their own ways: Python's OSError; torch.save,
given a file object, a RuntimeError whose context is the OSError; safetensors an error whose text
ends in "(os error 28)". `disk_errno` reads all three.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from .errors import UserError

DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})
_OS_ERROR_TEXT = re.compile(r"os error (\d+)")


def disk_errno(error: BaseException) -> int | None:
    """The errno of a full or failing disk behind `error` (itself, its cause or its context), or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_ERRNOS:
            return error.errno
        found = _OS_ERROR_TEXT.search(str(error))
        if found and int(found.group(1)) in DISK_ERRNOS:
            return int(found.group(1))
        error = error.__cause__ or error.__context__
    return None


def free_space(path: Path) -> str:
    """Free space on the filesystem that holds `path` (or its nearest existing parent), e.g. '1.3 MB'."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return "unknown"
    if free < 1024:
        return f"{free} bytes"
    size, unit = float(free), "bytes"
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1024
        if size < 1024:
            break
    return f"{size:.1f} {unit}"


def disk_failure(what: str, path: Path, code: int, advice: str = "") -> UserError:
    """The one line for a write the disk refused."""
    return UserError(f"{what} {path} could not be written: {os.strerror(code)} ({free_space(path)} free there); "
                     f"free some space or point output_dir elsewhere{advice}")


@contextmanager
def disk_writes(what: str, path: Path, advice: str = ""):
    """Turn a full or failing disk inside into `disk_failure`; any other error passes through."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - only the disk's errors are turned into a UserError
        code = disk_errno(error)
        if code is None:
            raise
        raise disk_failure(what, path, code, advice) from None
