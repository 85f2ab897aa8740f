"""vmdk: a streamOptimized VMDK (VMware, and the disk of a VirtualBox box). Tool: qemu-img."""

from __future__ import annotations

from pathlib import Path

from ...checksums import Digest, file_digest
from ...runner import Runner
from ...spec.formats import ImageFormat
from .base import ConvertOptions, Writer


class Vmdk(Writer):
    fmt = ImageFormat.VMDK

    def commands(self, raw: Path, dest: Path, opts: ConvertOptions) -> list[list[str]]:
        return [[
            "qemu-img", "convert",
            "-f", "raw",
            "-O", "vmdk",
            "-o", "subformat=streamOptimized",
            str(raw),
            str(dest),
        ]]

    def write(self, raw: Path, dest: Path, opts: ConvertOptions, runner: Runner,
              log_name: str) -> Digest:
        (argv,) = self.commands(raw, dest, opts)
        try:
            runner.run(argv, log_name=log_name)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return file_digest(dest)

    def same_content(self, path: Path, raw: Path, raw_sha256: str, runner: Runner,
                     log_name: str) -> bool:
        out = runner.run([
            "qemu-img", "compare",
            "-f", "vmdk",
            "-F", "raw",
            str(path),
            str(raw),
        ], log_name=log_name, capture=True, ok_codes=(0, 1))
        return out.strip().startswith("Images are identical")
