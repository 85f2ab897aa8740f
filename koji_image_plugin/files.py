"""Files that readers never see half-written, and work dirs a guest can reach.

``atomic_write`` writes beside the target and renames over it, so a mirror sync, a
second job or a crash sees the old file or the new one. ``shared_dir`` makes a private
work dir that libvirt's qemu (the ``libvirt-qemu`` user) can still traverse, which it
must to open the disks, kernels and seeds under it.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path


def atomic_write(path: Path, text: str, *, mode: int = 0o644,
                 only_if_changed: bool = False) -> bool:
    """Write ``text`` to ``path`` through a temporary file and a rename; True when the
    file was written (``only_if_changed``: not when it already holds ``text``)."""
    if only_if_changed:
        try:
            if path.read_text(encoding="utf-8") == text:
                return False
        except OSError:
            pass
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def shared_dir(parent: Path, prefix: str) -> Path:
    """A new directory under ``parent`` that only we write but libvirt's qemu can enter."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    path.chmod(0o755)
    return path


def remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def within(directory: Path, name: str) -> tuple[Path, str | None]:
    """``directory/name`` and why it cannot be read as a file of that directory: None
    when it is a regular file inside it (symlinks followed), else "missing", "outside"
    (through ``..``, an absolute path or a symlink) or "not a file"."""
    path = directory / name
    if not _inside(os.path.abspath(path), os.path.abspath(directory)):
        return path, "outside"  # by its name, whether or not it exists
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return path, "missing"
    if not real.is_relative_to(directory.resolve()):
        return path, "outside"
    if not real.is_file():
        return path, "not a file"
    return path, None


def _inside(path: str, directory: str) -> bool:
    return os.path.commonpath([path, directory]) == directory


def read_regular(path: Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the regular file ``path`` (one more than allowed, so
    the caller can tell a file over its limit). A FIFO, a device or a directory is an
    OSError ("not a regular file") before anything is read: opening without blocking and
    checking the opened file means a pipe cannot hang the reader, nor a swap in between
    fool it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit + 1)
    finally:
        os.close(fd)
