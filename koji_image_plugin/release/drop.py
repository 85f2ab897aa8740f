"""An image drop: which images go out together, and whether each booted.

A drop is either a milestone of a release (``19`` Alpha, Beta, Final) or a weekly of a
branch (``rawhide`` or ``19``, id ``YYYYMMDD.N``). Where its images come from is
``sources.py``; laying it out in the mirror is ``publish.py``.
"""

from __future__ import annotations

import datetime
import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import KojiImageError
from ..spec.arches import Arch
from ..spec.formats import ImageFormat
from ..spec.variants import Variant

MILESTONES = ("Alpha", "Beta", "Final")
WEEKLY_ID = re.compile(r"^(\d{8})\.(\d+)$")
RELEASE_RE = re.compile(r"^(rawhide|[1-9][0-9]*)$")
SAFE_NAME = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$")


class DropError(KojiImageError):
    """A drop that cannot be made (a download failed, the drop exists with other images)."""


class DropInputError(DropError):
    """A drop asked for with bad input: an option, a build, an unbooted image."""


class Verdict(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not run"


@dataclass(frozen=True)
class Upload:
    """Where an image was uploaded: an EC2 AMI in a region or a Glance image."""

    cloud: str  # "ec2" or "glance"
    where: str  # the region or the Glance cloud
    image_id: str
    name: str = ""
    public: bool | None = None


@dataclass(frozen=True)
class DropImage:
    file: str
    nvr: str
    arch: Arch
    variant: Variant
    format: ImageFormat
    size: int
    sha256: str
    #: a local path or a URL (http, https, file)
    source: str
    verdict: Verdict
    uploads: tuple[Upload, ...] = ()

    @property
    def type_dir(self) -> str:
        return self.variant.mirror_dir

    @property
    def relpath(self) -> str:
        """Where the image goes inside its drop: ``ARCH/TYPE/FILE``."""
        return f"{self.arch}/{self.type_dir}/{self.file}"


@dataclass(frozen=True)
class DropId:
    release: str  # "19" or "rawhide"
    milestone: str | None = None  # Alpha | Beta | Final
    weekly: str | None = None  # YYYYMMDD.N

    @property
    def relpath(self) -> str:
        """The drop's directory under the mirror root (Fedora's layout)."""
        if self.weekly:
            return f"weekly/{self.release}/{self.weekly}/Cloud"
        if self.milestone == "Final":
            return f"releases/{self.release}/Cloud"
        return f"releases/test/{self.release}_{self.milestone}/Cloud"

    @property
    def title(self) -> str:
        if self.weekly:
            return f"{self.release.capitalize()} weekly {self.weekly}"
        return f"{self.release} {self.milestone}"

    @property
    def kind(self) -> str:
        return "weekly" if self.weekly else "milestone"

    def as_dict(self) -> dict[str, str | None]:
        return {"release": self.release, "milestone": self.milestone, "weekly": self.weekly}


def drop_id(release: str, milestone: str | None = None, weekly: str | None = None) -> DropId:
    """Check the options that name a drop; each problem names its option."""
    if not RELEASE_RE.match(release or ""):
        raise DropInputError(f"--release: {release!r} is not a release; give a number (19) "
                             "or rawhide")
    if (milestone is None) == (weekly is None):
        raise DropInputError("--milestone/--weekly: give exactly one: --milestone "
                             f"{'|'.join(MILESTONES)} or --weekly YYYYMMDD.N")
    if milestone is not None and milestone not in MILESTONES:
        raise DropInputError(f"--milestone: {milestone!r} is not a milestone; use one of: "
                             + ", ".join(MILESTONES))
    if milestone is not None and release == "rawhide":
        raise DropInputError("--milestone: rawhide has no milestones; use --weekly YYYYMMDD.N")
    if weekly is not None:
        m = WEEKLY_ID.match(weekly)
        if not m or not _is_date(m.group(1)):
            raise DropInputError(f"--weekly: {weekly!r} is not a weekly id; use YYYYMMDD.N, "
                                 "e.g. 20261126.0")
    return DropId(release, milestone, weekly)


def _is_date(text: str) -> bool:
    try:
        datetime.datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Drop:
    id: DropId
    images: tuple[DropImage, ...]
    #: unbooted images were let in with --force
    forced: bool = False
    bug_url: str = ""
    description: str = ""
    sources: tuple[str, ...] = field(default=())

    @property
    def nvrs(self) -> list[str]:
        return sorted({i.nvr for i in self.images})


def make_drop(did: DropId, images: list[DropImage], *, force: bool = False,
              bug_url: str = "", description: str = "",
              sources: Iterable[str] = ()) -> Drop:
    """Check the images (unique names, booted unless forced) and make the drop."""
    if not images:
        raise DropInputError("BUILD: no images to publish; give at least one build")
    names: dict[str, DropImage] = {}
    for img in images:
        other = names.get(img.relpath)
        if other is not None and other.sha256 != img.sha256:
            raise DropInputError(f"BUILD: {img.file} comes from both {other.nvr} and {img.nvr}; "
                                 "give one of them")
        names[img.relpath] = img
    unbooted = sorted(i.file for i in names.values() if i.verdict is not Verdict.PASSED)
    if unbooted and not force:
        raise DropInputError(f"--force: {', '.join(unbooted)} did not pass a boot test; "
                             "rebuild with the boot test on, or publish with --force (the "
                             "page and README will say so)")
    return Drop(did, tuple(sorted(names.values(), key=lambda i: i.relpath)),
                forced=bool(unbooted), bug_url=bug_url, description=description,
                sources=tuple(sources))
