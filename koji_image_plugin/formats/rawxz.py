"""raw.xz: the whole raw disk, xz-compressed (the EC2 upload input). Tool: xz."""

from __future__ import annotations

from pathlib import Path

from ..checksums import Digest, HashingSink, HashingWriter
from ..runner import Runner
from . import ConvertOptions, ImageFormat, xz_argv


class Writer:
    fmt = ImageFormat.RAW_XZ

    def commands(self, raw: Path, dest: Path, opts: ConvertOptions) -> list[list[str]]:
        return [[*xz_argv(opts), str(raw)]]

    def write(self, raw: Path, dest: Path, opts: ConvertOptions, runner: Runner,
              log_name: str) -> Digest:
        sink = HashingWriter(dest)
        try:
            runner.pipeline(self.commands(raw, dest, opts), log_name=log_name, sink=sink)
        except BaseException:
            sink.abort()
            raise
        return sink.close()

    def same_content(self, path: Path, raw: Path, raw_sha256: str, runner: Runner,
                     log_name: str) -> bool:
        sink = HashingSink()
        runner.pipeline([["xz", "--decompress", "--stdout", str(path)]],
                        log_name=log_name, sink=sink)
        return sink.hexdigest() == raw_sha256
