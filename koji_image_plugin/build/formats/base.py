"""The contract every output format's module keeps, and the helpers they share.

A format module defines one :class:`Writer` subclass with ``fmt`` set to its
:class:`ImageFormat`; defining it registers it (``__init_subclass__``), so the registry
is filled by the modules themselves. Each writer gives ``commands(raw, dest, opts)``
(the argv, for tests and logs), ``write(...) -> Digest`` (SHA-256 computed while writing
where the format streams) and ``same_content(...)`` (does the output expand to the same
disk as ``raw``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ...checksums import Digest, HashingSink, HashingWriter
from ...runner import Runner
from ...spec.formats import ImageFormat


@dataclass(frozen=True)
class ConvertOptions:
    qcow2_compat: str = "1.1"
    xz_preset: int = 6
    #: xz threads per job; 0 = the cores shared among the xz jobs that run at once
    #: (convert_all decides).
    xz_threads: int = 0
    #: tar member mtime, so the same disk gives the same tar.
    mtime: int = 0
    gzip_level: int = 6
    #: the arch of the disk (a VirtualBox box's descriptor names a 32- or 64-bit guest)
    arch: str = "x86_64"


class Writer:
    fmt: ClassVar[ImageFormat]
    registry: ClassVar[dict[ImageFormat, type[Writer]]] = {}

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "fmt" in cls.__dict__:  # not a base that formats share
            Writer.registry[cls.fmt] = cls

    def check(self, opts: ConvertOptions) -> None:
        """Refuse options this format cannot write, before any work is done."""

    def commands(self, raw: Path, dest: Path, opts: ConvertOptions) -> list[list[str]]:
        raise NotImplementedError

    def write(self, raw: Path, dest: Path, opts: ConvertOptions, runner: Runner,
              log_name: str) -> Digest:
        raise NotImplementedError

    def same_content(self, path: Path, raw: Path, raw_sha256: str, runner: Runner,
                     log_name: str) -> bool:
        raise NotImplementedError


def write_stream(cmds: list[list[str]], dest: Path, runner: Runner, log_name: str) -> Digest:
    """Run a pipeline whose stdout is the output file; hash it on the way to disk."""
    sink = HashingWriter(dest)
    try:
        runner.pipeline(cmds, log_name=log_name, sink=sink)
    except BaseException:
        sink.abort()
        raise
    return sink.close()


def stream_sha256(cmds: list[list[str]], runner: Runner, log_name: str) -> str:
    """SHA-256 of a pipeline's stdout (an output expanded back to its disk)."""
    sink = HashingSink()
    runner.pipeline(cmds, log_name=log_name, sink=sink)
    return sink.hexdigest()


#: the one member of the tarballs (raw.tar.xz, GCE's tar.gz)
DISK_MEMBER = "disk.raw"


def disk_tar_argv(raw: Path, opts: ConvertOptions, *options: str) -> list[str]:
    """tar of ``raw`` alone, as the member ``disk.raw``, sparse, owned by root, with the
    build's mtime (so the same disk gives the same tar); ``options`` add to it."""
    return [
        "tar",
        "--create",
        *options,
        "--sparse",
        "--file=-",
        f"--directory={raw.parent}",
        f"--transform=s|^{raw.name}$|{DISK_MEMBER}|",
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "--mode=0644",
        f"--mtime=@{opts.mtime}",
        raw.name,
    ]


def xz_argv(opts: ConvertOptions) -> list[str]:
    return [
        "xz",
        f"-{opts.xz_preset}",
        f"--threads={opts.xz_threads}",
        "--stdout",
    ]
