"""SHA-256 computed while an output is written, and Fedora's CHECKSUM file format."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class Digest:
    size: int
    sha256: str


class HashingWriter:
    """A sink for a tool's stdout: writes the bytes to ``path`` and hashes them on the way."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] = open(path, "wb")
        self._hash = hashlib.sha256()
        self._size = 0

    def __call__(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self._file.write(chunk)
        self._size += len(chunk)

    def close(self) -> Digest:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return Digest(self._size, self._hash.hexdigest())

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class HashingSink:
    """Hashes a stream without keeping it (for expanding an output to verify it)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def __call__(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def file_digest(path: Path) -> Digest:
    """Hash a file that a tool wrote in place (qcow2 is not streamable)."""
    with open(path, "rb") as f:
        h = hashlib.file_digest(f, "sha256")
    return Digest(path.stat().st_size, h.hexdigest())


def checksum_text(entries: Iterable[tuple[str, Digest]]) -> str:
    """Fedora's CHECKSUM: ``# FILE: SIZE bytes`` then ``SHA256 (FILE) = HEX``.

    ``sha256sum -c`` accepts it (it reads the BSD-style lines and skips the comments).
    """
    lines = []
    for name, digest in sorted(entries):
        lines.append(f"# {name}: {digest.size} bytes")
        lines.append(f"SHA256 ({name}) = {digest.sha256}")
    return "\n".join(lines) + "\n"
