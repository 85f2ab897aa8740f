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

from ..errors import InputError, KojiImageError, quote
from ..spec.arches import Arch
from ..spec.firmware import Firmware
from ..spec.formats import ImageFormat
from ..spec.schema import FILE_NAME_RE
from ..spec.variants import Variant

MILESTONES = ("Alpha", "Beta", "Final")
WEEKLY_ID = re.compile(r"^(\d{8})\.(\d+)\Z")
RELEASE_RE = re.compile(r"^(rawhide|[1-9][0-9]*)\Z")
SAFE_NAME = re.compile(FILE_NAME_RE)
#: the product in images.json's compose id
PRODUCT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\Z")
#: where a mirror is served (the feed's links): a web or file URL, one line
BASE_URL_RE = re.compile(r"^(https?|file)://[^\s<>\"'\x00-\x1f\x7f]+\Z")
#: where to report bugs (the README's link): a web URL, one line
BUG_URL_RE = re.compile(r"^https?://[^\s<>\"'\x00-\x1f\x7f]+\Z")


class DropError(KojiImageError):
    """A drop that cannot be made (a download failed, the drop exists with other images)."""


class DropInputError(DropError, InputError):
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
    #: where the boot verdict comes from: a Koji task, or a local build's manifest
    verdict_from: str = ""
    #: the image and its verdict are Koji's (traced in Koji), not a local build's word
    in_koji: bool = False
    #: where its packages came from: a Koji repo of the build tag, or not Koji's
    content_from: str = ""
    #: the boot-test profiles (clouds) it passed, e.g. ``openstack``
    booted_on: tuple[str, ...] = ()
    #: what it boots with, and the firmware it passed its boots under (``seabios``, ...)
    firmware: Firmware = Firmware.BIOS
    booted_under: tuple[str, ...] = ()

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
        raise DropInputError(f"--release: {quote(release)} is not a release; give a number (19) "
                             "or rawhide")
    if (milestone is None) == (weekly is None):
        raise DropInputError("--milestone/--weekly: give exactly one: --milestone "
                             f"{'|'.join(MILESTONES)} or --weekly YYYYMMDD.N")
    if milestone is not None and milestone not in MILESTONES:
        raise DropInputError(f"--milestone: {quote(milestone)} is not a milestone; use one of: "
                             + ", ".join(MILESTONES))
    if milestone is not None and release == "rawhide":
        raise DropInputError("--milestone: rawhide has no milestones; use --weekly YYYYMMDD.N")
    if weekly is not None:
        m = WEEKLY_ID.match(weekly)
        if not m or not _is_date(m.group(1)):
            raise DropInputError(f"--weekly: {quote(weekly)} is not a weekly id; use YYYYMMDD.N, "
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
              local_builds: bool = False, bug_url: str = "", description: str = "",
              sources: Iterable[str] = ()) -> Drop:
    """Check the images (unique names, booted unless forced, from Koji for a milestone
    unless ``local_builds``) and make the drop."""
    if not images:
        raise DropInputError("BUILD: no images to publish; give at least one build")
    local = sorted({i.nvr for i in images if not i.in_koji})
    if did.milestone and local and not local_builds:
        raise DropInputError(f"--local-builds: {', '.join(local)} are local builds, not "
                             f"Koji's: their boot verdicts are only their manifest's word; "
                             f"make the {did.milestone} drop from Koji builds (--koji), or "
                             "give --local-builds (the page and README will say so)")
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
