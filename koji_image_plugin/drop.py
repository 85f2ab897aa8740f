"""An image drop: which images go out together, where each comes from, and whether it booted.

A drop is either a milestone of a release (``19`` Alpha, Beta, Final) or a weekly of a
branch (``rawhide`` or ``19``, id ``YYYYMMDD.N``). Its images are collected from

- local build output directories (``koji-image build`` writes ``manifest.json``, the
  images and, after a cloud upload, ``uploads.json``), or
- Koji: image builds by NVR, the latest cloud-image builds of a tag, or a scratch
  ``cloudImageBuild`` task (the weekly job), through the hub's ``cloudImageInfo``.

The ``koji`` client library is imported only for Koji sources, so pure-local drops work
without it. Nothing here writes to the mirror: :mod:`publish` does.
"""

from __future__ import annotations

import datetime
import enum
import importlib
import json
import optparse
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import KojiImageError

#: Directory names of the image types in a drop, as Fedora's mirrors spell them.
TYPE_DIRS = {"generic": "generic", "ec2": "EC2"}
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
    arch: str
    variant: str
    format: str
    size: int
    sha256: str
    #: a local path or a URL (http, https, file)
    source: str
    verdict: Verdict
    uploads: tuple[Upload, ...] = ()

    @property
    def type_dir(self) -> str:
        return TYPE_DIRS.get(self.variant, self.variant)

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


def verdicts(boot_tests: Iterable[Mapping[str, Any]], arch: str,
             variant: str) -> Verdict:
    found = [b for b in boot_tests if b.get("arch", arch) == arch
             and b.get("variant") == variant]
    if not found:
        return Verdict.NOT_RUN
    return Verdict.PASSED if all(b.get("passed") for b in found) else Verdict.FAILED


def parse_uploads(data: Mapping[str, Any] | None, arch: str,
                  variant: str) -> tuple[Upload, ...]:
    """The uploads of one (arch, variant), from a build's ``uploads`` record (issue 4's
    ``{"ec2": [...], "glance": [...]}``); absent means not uploaded."""
    if not data:
        return ()
    out: list[Upload] = []
    for rec in data.get("ec2") or []:
        if rec.get("arch") == arch and rec.get("variant", "ec2") == variant:
            out.append(Upload("ec2", str(rec.get("region", "")), str(rec.get("image_id", "")),
                              str(rec.get("name", "")), rec.get("public")))
    for rec in data.get("glance") or []:
        if rec.get("arch") == arch and rec.get("variant", "generic") == variant:
            out.append(Upload("glance", str(rec.get("cloud", "")),
                              str(rec.get("image_id", "")), str(rec.get("name", "")),
                              rec.get("visibility") == "public"))
    return tuple(sorted(out, key=lambda u: (u.cloud, u.where)))


def images_of_record(nvr: str, arch: str, record: Mapping[str, Any], base: str,
                     uploads: Mapping[str, Any] | None) -> list[DropImage]:
    """The images of one arch's cloud-image record (a manifest or a Koji build's extra);
    ``base`` is the directory or URL the files are in."""
    boots = record.get("boot_tests") or []
    out = []
    for img in record.get("images") or []:
        if img.get("arch", arch) != arch:
            continue
        variant = str(img.get("variant", "generic"))
        # these become paths in the mirror: a record must not point outside the drop
        for what, value in (("file", img.get("file")), ("arch", arch), ("variant", variant)):
            if not isinstance(value, str) or not SAFE_NAME.match(value):
                raise DropInputError(f"BUILD: {nvr}: image {what} {value!r} is not a plain "
                                     "file name; the build's record is damaged")
        source = f"{base.rstrip('/')}/{img['file']}"
        out.append(DropImage(str(img["file"]), nvr, arch, variant, str(img["format"]),
                             int(img["size"]), str(img["sha256"]), source,
                             verdicts(boots, arch, variant),
                             parse_uploads(uploads, arch, variant)))
    return out


# -- local build output -------------------------------------------------------------------

def from_local(directory: Path) -> list[DropImage]:
    """The images a ``koji-image build`` wrote into ``directory``."""
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise DropInputError(f"BUILD: {directory} has no manifest.json; give a directory that "
                             "koji-image build wrote, or a Koji build NVR with --koji")
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise DropInputError(f"BUILD: {manifest_path} is not JSON: {exc}") from exc
    uploads = None
    if (directory / "uploads.json").is_file():
        try:
            uploads = json.loads((directory / "uploads.json").read_text())
        except ValueError as exc:
            raise DropInputError(f"BUILD: {directory / 'uploads.json'} is not JSON: {exc}") \
                from exc
    nvr = str(manifest.get("nvr", directory.name))
    images: list[DropImage] = []
    arches = sorted({str(i["arch"]) for i in manifest.get("images", [])})
    for arch in arches:
        images += images_of_record(nvr, arch, manifest, str(directory.resolve()), uploads)
    if not images:
        raise DropInputError(f"BUILD: {directory} lists no images in its manifest.json")
    return images


# -- Koji ---------------------------------------------------------------------------------

def koji_module() -> Any:
    """The koji client library, imported only when a drop comes from Koji."""
    try:
        return importlib.import_module("koji")
    except ImportError as exc:
        raise DropInputError("--koji: the koji client library is not installed; install the "
                             "koji package, or make the drop from local build directories") \
            from exc


def koji_session(profile: str, config: str | None = None, user: str | None = None,
                 password_file: str | None = None,
                 login: bool = True) -> tuple[Any, dict[str, Any]]:
    """A koji.ClientSession for a koji client profile, logged in by koji's own code
    (``koji_cli.lib.activate_session``: Kerberos, SSL or password, as configured) when
    ``login`` (reading builds needs no login, as for ``koji buildinfo``); ``user`` and
    ``password_file`` are for password logins."""
    koji = koji_module()
    cli_lib = importlib.import_module("koji_cli.lib")
    try:
        opts: dict[str, Any] = koji.read_config(profile, user_config=config)
    except koji.ConfigurationError as exc:
        raise DropInputError(f"--koji: {exc}; give a profile of your koji config") from exc
    if user:
        opts["user"] = user
        opts["authtype"] = opts.get("authtype") or "password"
    if password_file:
        opts["password"] = Path(password_file).read_text().strip()
    session = koji.ClientSession(opts["server"], opts)
    if not login:
        return session, opts
    try:
        cli_lib.activate_session(session, optparse.Values(opts))
    except SystemExit as exc:  # koji_cli.lib.error() exits
        raise DropError(f"koji: cannot log in to {opts['server']} with profile "
                        f"{profile}") from exc
    except (koji.GenericError, OSError) as exc:  # requests' errors are OSErrors
        raise DropError(f"koji: cannot log in to {opts['server']}: "
                        f"{_koji_message(exc)}") from exc
    return session, opts


class KojiSource:
    """Reads cloud-image builds through a hub's ``cloudImageInfo``."""

    def __init__(self, session: Any, topurl: str) -> None:
        self.koji = koji_module()
        self.session = session
        self.topurl = topurl.rstrip("/")
        self.pathinfo = self.koji.PathInfo(topdir=self.topurl)

    def build_images(self, nvr: str) -> list[DropImage]:
        try:
            binfo = self.session.getBuild(nvr, strict=True)
            info = self.session.cloudImageInfo(build=nvr)
        except self.koji.GenericError as exc:
            raise DropInputError(f"BUILD: {nvr}: {_koji_message(exc)}") from exc
        except OSError as exc:  # the hub cannot be reached (requests' errors are OSErrors)
            raise DropError(f"koji: cannot reach the hub: {exc}") from exc
        state = self.koji.BUILD_STATES[binfo["state"]]
        if state != "COMPLETE":
            raise DropInputError(f"BUILD: {nvr} is {state}, not COMPLETE; give a complete build")
        base = self.pathinfo.imagebuild(binfo)
        # cloudImageInfo returns the build's uploads record; older hub plugins do not, so
        # it is also read from the build's extra, where the uploads keep it.
        uploads = info.get("uploads") or \
            ((binfo.get("extra") or {}).get("cloud_image") or {}).get("uploads")
        images: list[DropImage] = []
        for arch, record in sorted((info.get("arches") or {}).items()):
            images += images_of_record(binfo["nvr"], arch, record, base, uploads)
        if not images:
            raise DropInputError(f"BUILD: {nvr} has no images")
        return images

    def tag_builds(self, tag: str) -> list[str]:
        """The latest build of each package in ``tag`` that is a cloud image build."""
        try:
            builds = self.session.getLatestBuilds(tag, type="image")
        except self.koji.GenericError as exc:
            raise DropInputError(f"--tag: {tag}: {_koji_message(exc)}") from exc
        except OSError as exc:
            raise DropError(f"koji: cannot reach the hub: {exc}") from exc
        nvrs = [b["nvr"] for b in builds
                if "cloud_image" in ((self.session.getBuild(b["id"]) or {}).get("extra")
                                     or {})]
        if not nvrs:
            raise DropInputError(f"--tag: {tag} has no cloud image builds; tag one, or give "
                                 "the builds by NVR")
        return sorted(nvrs)

    def task_images(self, task_id: int) -> list[DropImage]:
        """The images of a finished scratch ``cloudImageBuild`` task, each arch's files in
        ``scratch/OWNER/task_ARCHTASK`` under the topurl (where kojid moved them)."""
        info = self.session.cloudImageInfo(task=task_id)
        if info.get("build"):
            return self.build_images(info["build"]["nvr"])
        task = self.session.getTaskInfo(task_id, strict=True)
        owner = self.session.getUser(task["owner"])["name"]
        images: list[DropImage] = []
        for arch, record in sorted((info.get("arches") or {}).items()):
            if record.get("error") or record.get("state"):
                continue
            base = f"{self.pathinfo.scratch()}/{owner}/task_{record['task_id']}"
            images += images_of_record(str(info.get("nvr")), arch, record, base,
                                       info.get("uploads"))
        return images


def _koji_message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


# -- the drop -----------------------------------------------------------------------------

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
