"""What a build makes, as typed objects that flow one way: the pipeline fills them, the
manifest (``outputs.py``) and the Koji record (``koji/record.py``) are written from them.
Each knows its own serialized form (``as_dict``); an image record read back from a
manifest or a Koji build is parsed once, by :meth:`ImageFile.from_dict`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..spec.arches import Arch
from ..spec.firmware import Firmware
from ..spec.formats import ImageFormat
from ..spec.image import ImageSpec
from ..spec.variants import Variant
from .boot.checks import Check


@dataclass(frozen=True)
class Progress:
    arch: str | None
    stage: str
    message: str
    done: int = 0
    total: int = 0


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class ImageFile:
    """One image a build wrote: the file name, what it is, its size and SHA-256."""

    file: str
    arch: Arch
    variant: Variant
    format: ImageFormat
    size: int
    sha256: str
    #: what the image boots with (records written before firmware was one: BIOS)
    firmware: Firmware = Firmware.BIOS

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "arch": self.arch.value, "variant": self.variant.value,
                "format": self.format.value, "size": self.size, "sha256": self.sha256,
                "koji_archive_type": self.format.koji_archive_type,
                "firmware": self.firmware.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImageFile:
        """An image record of a manifest or a Koji build; ValueError names what is wrong."""
        try:
            return cls(file=str(data["file"]), arch=Arch(data["arch"]),
                       variant=Variant(data["variant"]), format=ImageFormat(data["format"]),
                       size=int(data["size"]), sha256=str(data["sha256"]),
                       firmware=Firmware(data.get("firmware", Firmware.BIOS.value)))
        except KeyError as exc:
            raise ValueError(f"an image record has no {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"an image record is damaged: {exc}") from None


@dataclass(frozen=True)
class BootResult:
    """One boot of one image as one cloud's instance (``boot/run.py``)."""

    image: str
    arch: str
    variant: str
    passed: bool
    seconds: float
    accel: str
    detail: str
    console_log: str
    profile: str = "nocloud"
    #: every check's verdict, the ssh login first
    checks: tuple[Check, ...] = ()
    #: the checks' lines and the probe's output, in the log dir
    checks_log: str = ""
    #: the firmware it booted under (``seabios``, ``ovmf``, ``aavmf``)
    firmware: str = "seabios"
    #: machine-id and ssh host key fingerprints, to compare boots of one image (not
    #: recorded)
    identity: tuple[str, frozenset[str]] = field(default=("", frozenset()), repr=False,
                                                 compare=False)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "identity"}
        out["checks"] = [c.as_dict() for c in self.checks]
        return out

    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


@dataclass(frozen=True)
class InstallInfo:
    """The install of one arch: its guest, how long it took, and what it left to keep
    (the Oz template and logs, in the build's log dir)."""

    guest: str
    seconds: float
    domain_type: str
    tdl: Path
    console_log: Path
    oz_log: Path
    #: the prepared kickstart/preseed the installer read (None: Oz's default)
    auto_file: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"guest": self.guest, "seconds": round(self.seconds, 1),
                "domain_type": self.domain_type}


@dataclass
class ArchResult:
    arch: Arch
    outputs: list[ImageFile] = field(default_factory=list)
    packages: list[dict[str, Any]] = field(default_factory=list)
    boot_tests: list[BootResult] = field(default_factory=list)
    verified: dict[str, str] = field(default_factory=dict)
    customized: dict[str, list[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    install: InstallInfo | None = None

    @property
    def passed(self) -> bool:
        return all(b.passed for b in self.boot_tests)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Time what runs inside into ``timings[stage]`` (also when it fails)."""
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.timings[stage] = round(time.monotonic() - t0, 1)

    def failed_boots(self) -> list[BootResult]:
        return [b for b in self.boot_tests if not b.passed]

    def summary(self) -> dict[str, Any]:
        """The arch's part of the manifest (``arches.ARCH``)."""
        return {"packages": self.packages, "timings": self.timings,
                "install": self.install.as_dict() if self.install else {},
                "verified": self.verified, "customized": self.customized}


@dataclass
class BuildResult:
    spec: ImageSpec
    output: Path
    arches: list[ArchResult]
    manifest: Path
    checksum: Path

    @property
    def passed(self) -> bool:
        return all(a.passed for a in self.arches)
