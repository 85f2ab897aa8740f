"""raw.tar.xz: a sparse tar of ``disk.raw``, xz-compressed (mirrors). Tools: tar, xz."""

from __future__ import annotations

from pathlib import Path

from ...checksums import Digest
from ...runner import Runner
from ...spec.formats import ImageFormat
from .base import (
    DISK_MEMBER,
    ConvertOptions,
    Writer,
    disk_tar_argv,
    stream_sha256,
    write_stream,
    xz_argv,
)


class RawTarXz(Writer):
    fmt = ImageFormat.RAW_TAR_XZ

    def commands(self, raw: Path, dest: Path, opts: ConvertOptions) -> list[list[str]]:
        return [disk_tar_argv(raw, opts), xz_argv(opts)]

    def write(self, raw: Path, dest: Path, opts: ConvertOptions, runner: Runner,
              log_name: str) -> Digest:
        return write_stream(self.commands(raw, dest, opts), dest, runner, log_name)

    def same_content(self, path: Path, raw: Path, raw_sha256: str, runner: Runner,
                     log_name: str) -> bool:
        return stream_sha256([
            ["xz", "--decompress", "--stdout", str(path)],
            ["tar", "--extract", "--to-stdout", "--file=-", DISK_MEMBER],
        ], runner, log_name) == raw_sha256
