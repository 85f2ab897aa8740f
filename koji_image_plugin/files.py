"""Files that readers never see half-written, and work dirs a guest can reach.

``atomic_write`` writes beside the target and renames over it, so a mirror sync, a
second job or a crash sees the old file or the new one. ``shared_dir`` makes a private
work dir that libvirt's qemu (the ``libvirt-qemu`` user) can still traverse, which it
must to open the disks, kernels and seeds under it.
"""

from __future__ import annotations

import os
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
