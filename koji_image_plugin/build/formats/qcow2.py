"""qcow2 with compressed clusters (OpenStack, CloudStack, Eucalyptus). Tool: qemu-img."""

from __future__ import annotations

from pathlib import Path

from ...checksums import Digest, file_digest
from ...runner import Runner
from ...spec.formats import ImageFormat
from .base import ConvertOptions, Writer


class Qcow2(Writer):
    """``-W`` (out-of-order writes) lets qemu-img compress clusters on every core at
    once; without it each write waits for the one before."""

    fmt = ImageFormat.QCOW2

    def commands(self, raw: Path, dest: Path, opts: ConvertOptions) -> list[list[str]]:
        return [[
            "qemu-img", "convert",
            "-c",
            "-W",
            "-f", "raw",
            "-O", "qcow2",
            "-o", f"compat={opts.qcow2_compat}",
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
        # qemu-img seeks back to update tables, so the file cannot be hashed as a stream;
        # hashing it here, from the page cache, overlaps with the xz jobs still running.
        return file_digest(dest)

    def same_content(self, path: Path, raw: Path, raw_sha256: str, runner: Runner,
                     log_name: str) -> bool:
        out = runner.run([
            "qemu-img", "compare",
            "-f", "qcow2",
            "-F", "raw",
            str(path),
            str(raw),
        ], log_name=log_name, capture=True, ok_codes=(0, 1))
        return out.strip().startswith("Images are identical")
