"""vhd: Azure's fixed VHD, xz-compressed (``.vhdfixed.xz``). Tools: qemu-img, xz.

Azure takes only fixed VHDs whose virtual size is a whole number of MiB. A fixed VHD is
the disk's bytes followed by a 512-byte footer, so the disk is padded with zeros up to
the next MiB: qemu-img creates the fixed VHD at the padded size (``force_size`` keeps
that size exact instead of rounding it to a CHS geometry) and copies the raw into it
(``-n``: into the existing target), which needs no padded copy of the raw.
"""

from __future__ import annotations

import hashlib
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ...checksums import Digest
from ...runner import Runner
from ...spec.formats import ImageFormat
from .base import ConvertOptions, Writer, write_stream, xz_argv

MIB = 1 << 20
FOOTER = 512
COOKIE = b"conectix"
FIXED = 2


def padded_size(raw_size: int) -> int:
    """The disk's size rounded up to a whole MiB, as Azure requires."""
    return -(-raw_size // MIB) * MIB


@dataclass(frozen=True)
class Footer:
    cookie: bytes
    current_size: int
    disk_type: int
    checksum_ok: bool


def parse_footer(data: bytes) -> Footer:
    """The fields of a VHD footer (Microsoft's VHD specification, all big-endian)."""
    if len(data) != FOOTER:
        raise ValueError(f"a VHD footer is {FOOTER} bytes, not {len(data)}")
    (stored,) = struct.unpack(">I", data[64:68])
    computed = ~sum(data[:64] + data[68:]) & 0xFFFFFFFF
    (current,) = struct.unpack(">Q", data[48:56])
    (disk_type,) = struct.unpack(">I", data[60:64])
    return Footer(data[:8], current, disk_type, stored == computed)


@dataclass
class _Check:
    """Checks a fixed VHD streamed through it: the first ``raw_size`` bytes hash to the
    raw's SHA-256, the padding is zeros, and the footer is a valid fixed-disk footer
    whose current size is the padded size."""

    raw_size: int
    raw_sha256: str
    pos: int = 0
    padding_zero: bool = True
    tail: bytearray = field(default_factory=bytearray)
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256)

    def __call__(self, chunk: bytes) -> None:
        end, data_end = self.pos + len(chunk), padded_size(self.raw_size)
        self._hash.update(chunk[:max(0, self.raw_size - self.pos)])
        pad = chunk[max(0, self.raw_size - self.pos):max(0, data_end - self.pos)]
        self.padding_zero = self.padding_zero and not pad.strip(b"\0")
        self.tail += chunk[max(0, data_end - self.pos):]
        self.pos = end

    def ok(self) -> bool:
        if len(self.tail) != FOOTER or not self.padding_zero:
            return False
        footer = parse_footer(bytes(self.tail))
        return (self._hash.hexdigest() == self.raw_sha256 and footer.cookie == COOKIE
                and footer.disk_type == FIXED and footer.checksum_ok
                and footer.current_size == padded_size(self.raw_size))


class Vhd(Writer):
    fmt = ImageFormat.VHD

    def commands(self, raw: Path, dest: Path, opts: ConvertOptions) -> list[list[str]]:
        """The fixed VHD is written to ``<dest>.vhd`` beside ``dest`` (VHD footers are
        written last, at an offset, so qemu-img cannot write to a pipe), then xz'd."""
        vhd = self._vhd(dest)
        return [
            [
                "qemu-img", "create",
                "-q",
                "-f", "vpc",
                "-o", "subformat=fixed,force_size=on",
                str(vhd),
                str(padded_size(raw.stat().st_size)),
            ],
            [
                "qemu-img", "convert",
                "-n",
                "-f", "raw",
                "-O", "vpc",
                str(raw),
                str(vhd),
            ],
            [*xz_argv(opts), str(vhd)],
        ]

    @staticmethod
    def _vhd(dest: Path) -> Path:
        return dest.with_name(dest.name + ".vhd")

    def write(self, raw: Path, dest: Path, opts: ConvertOptions, runner: Runner,
              log_name: str) -> Digest:
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as tmp:
            create, convert, xz = self.commands(raw, Path(tmp) / dest.name, opts)
            runner.run(create, log_name=log_name)
            runner.run(convert, log_name=log_name)
            return write_stream([xz], dest, runner, log_name)

    def same_content(self, path: Path, raw: Path, raw_sha256: str, runner: Runner,
                     log_name: str) -> bool:
        check = _Check(raw.stat().st_size, raw_sha256)
        runner.pipeline([["xz", "--decompress", "--stdout", str(path)]], log_name=log_name,
                        sink=check)
        return check.ok()
