"""raw.xz: the whole raw disk, xz-compressed (the EC2 upload input). Tool: xz."""

from __future__ import annotations

from pathlib import Path

from ...checksums import Digest
from ...runner import Runner
from ...spec.formats import ImageFormat
from .base import ConvertOptions, Writer, stream_sha256, write_stream, xz_argv


class RawXz(Writer):
    fmt = ImageFormat.RAW_XZ

    def commands(self, raw: Path, dest: Path, opts: ConvertOptions) -> list[list[str]]:
        return [[*xz_argv(opts), str(raw)]]

    def write(self, raw: Path, dest: Path, opts: ConvertOptions, runner: Runner,
              log_name: str) -> Digest:
        return write_stream(self.commands(raw, dest, opts), dest, runner, log_name)

    def same_content(self, path: Path, raw: Path, raw_sha256: str, runner: Runner,
                     log_name: str) -> bool:
        return stream_sha256([["xz", "--decompress", "--stdout", str(path)]], runner,
                             log_name) == raw_sha256
