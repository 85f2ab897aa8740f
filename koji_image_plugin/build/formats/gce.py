"""gce: Google Compute Engine's ``.tar.gz`` of one sparse ``disk.raw``. Tools: tar, gzip.

GCE documents the archive as ``tar --format=oldgnu -Sczf``: the old GNU format, sparse,
gzip'd, with the one member named ``disk.raw``. gzip runs as its own process so the
archive is hashed while it is written.
"""

from __future__ import annotations

from pathlib import Path

from ...checksums import Digest
from ...runner import Runner
from ...spec.formats import ImageFormat
from .base import DISK_MEMBER, ConvertOptions, Writer, disk_tar_argv, stream_sha256, write_stream


class Gce(Writer):
    fmt = ImageFormat.GCE

    def commands(self, raw: Path, dest: Path, opts: ConvertOptions) -> list[list[str]]:
        return [
            disk_tar_argv(raw, opts, "--format=oldgnu"),
            [
                "gzip",
                f"-{opts.gzip_level}",
                "--no-name",
                "--stdout",
            ],
        ]

    def write(self, raw: Path, dest: Path, opts: ConvertOptions, runner: Runner,
              log_name: str) -> Digest:
        return write_stream(self.commands(raw, dest, opts), dest, runner, log_name)

    def same_content(self, path: Path, raw: Path, raw_sha256: str, runner: Runner,
                     log_name: str) -> bool:
        return stream_sha256([
            ["gzip", "--decompress", "--stdout", str(path)],
            ["tar", "--extract", "--to-stdout", "--file=-", DISK_MEMBER],
        ], runner, log_name) == raw_sha256
