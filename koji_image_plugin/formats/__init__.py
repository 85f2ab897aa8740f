"""Output formats: one small module each, one registry, one enum that knows its facts.

Each format module provides a ``Writer`` with the same contract:
``commands(raw, dest, opts)`` (the argv, for tests and logs), ``write(raw, dest, opts,
runner) -> Digest`` (SHA-256 computed while writing where the format streams), and
``same_content(path, raw, raw_sha256, runner) -> bool`` (does the output expand to the
same disk as ``raw``).
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..checksums import Digest, HashingSink, HashingWriter
from ..runner import Runner


class ImageFormat(enum.StrEnum):
    QCOW2 = "qcow2"
    RAW_TAR_XZ = "raw.tar.xz"
    RAW_XZ = "raw.xz"

    @property
    def extension(self) -> str:
        return self.value

    @property
    def koji_archive_type(self) -> str:
        """The hub's archive type name (it matches files by extension on import)."""
        return {"qcow2": "qcow2", "raw.tar.xz": "tar", "raw.xz": "raw-xz"}[self.value]

    @property
    def compression(self) -> str:
        return {"qcow2": "zlib (qcow2 compressed clusters)", "raw.tar.xz": "xz",
                "raw.xz": "xz"}[self.value]

    @property
    def uses_xz(self) -> bool:
        return self.compression == "xz"

    @property
    def koji_name(self) -> str:
        """The name Koji's built-in ``image-build --format`` uses."""
        return {"qcow2": "qcow2", "raw.tar.xz": "raw.tar.xz", "raw.xz": "raw-xz"}[self.value]

    @classmethod
    def from_koji(cls, name: str) -> ImageFormat:
        return cls(from_koji_name(name))

    def writer(self) -> Writer:
        module = importlib.import_module(f".{_MODULES[self]}", __name__)
        writer: Writer = module.Writer()
        return writer


def from_koji_name(name: str) -> str:
    """This project's name for a Koji ``--format`` name; other names pass through, for
    the schema to report with the allowed values."""
    return {"raw-xz": "raw.xz"}.get(name, name)


_MODULES = {
    ImageFormat.QCOW2: "qcow2",
    ImageFormat.RAW_TAR_XZ: "rawtarxz",
    ImageFormat.RAW_XZ: "rawxz",
}


@dataclass(frozen=True)
class ConvertOptions:
    qcow2_compat: str = "1.1"
    xz_preset: int = 6
    #: xz threads per job; 0 = the cores shared among the xz jobs that run at once
    #: (convert_all decides).
    xz_threads: int = 0
    #: tar member mtime, so the same disk gives the same tar.
    mtime: int = 0


class Writer(Protocol):
    fmt: ImageFormat

    def commands(self, raw: Path, dest: Path, opts: ConvertOptions) -> list[list[str]]: ...

    def write(self, raw: Path, dest: Path, opts: ConvertOptions, runner: Runner,
              log_name: str) -> Digest: ...

    def same_content(self, path: Path, raw: Path, raw_sha256: str, runner: Runner,
                     log_name: str) -> bool: ...


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


def xz_argv(opts: ConvertOptions) -> list[str]:
    return [
        "xz",
        f"-{opts.xz_preset}",
        f"--threads={opts.xz_threads}",
        "--stdout",
    ]
