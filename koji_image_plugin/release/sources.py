"""Where a drop's images come from, each with the size and SHA-256 its build recorded:

- local build output directories (``koji-image build`` writes ``manifest.json``, the
  images and, after a cloud upload, ``uploads.json``), or
- Koji: image builds by NVR, the latest cloud-image builds of a tag, or a scratch
  ``cloudImageBuild`` task (the weekly job), through the hub's ``cloudImageInfo``.

The ``koji`` client library is imported only for Koji sources (``kojisession.py``), so
pure-local drops work without it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..build.outputs import MANIFEST, read_manifest
from ..build.results import ImageFile
from ..clouds.records import UPLOADS_FILE, read_local
from ..errors import RecordError, quote
from ..koji.record import RECORD_KEY
from ..koji.repos import describe
from ..spec.firmware import BootFirmware
from ..spec.schema import NVR_RE
from ..spec.upload import Cloud
from .drop import SAFE_NAME, DropError, DropImage, DropInputError, Upload, Verdict
from .kojisession import koji_message, koji_module


def verdicts(boot_tests: Iterable[Mapping[str, Any]], arch: str,
             variant: str) -> Verdict:
    found = [b for b in boot_tests if b.get("arch", arch) == arch
             and b.get("variant") == variant]
    if not found:
        return Verdict.NOT_RUN
    return Verdict.PASSED if all(b.get("passed") for b in found) else Verdict.FAILED


def booted_on(boot_tests: Iterable[Mapping[str, Any]], arch: str,
              variant: str) -> tuple[str, ...]:
    """The profiles (clouds) an arch's variant passed its boot test as."""
    return tuple(sorted({str(b.get("profile", "nocloud"))[:64] for b in boot_tests
                         if b.get("arch", arch) == arch and b.get("variant") == variant
                         and b.get("passed")}))


def booted_under(boot_tests: Iterable[Mapping[str, Any]], arch: str,
                 variant: str) -> tuple[str, ...]:
    """The firmware an arch's variant passed boots under (records before firmware was
    one: SeaBIOS), in a fixed order."""
    found = {str(b.get("firmware", BootFirmware.SEABIOS.value))[:64] for b in boot_tests
             if b.get("arch", arch) == arch and b.get("variant") == variant
             and b.get("passed")}
    order = [f.value for f in BootFirmware]
    return tuple(sorted(found, key=lambda f: (order.index(f) if f in order else len(order),
                                              f)))


def parse_uploads(data: Mapping[str, Any] | None, arch: str,
                  variant: str) -> tuple[Upload, ...]:
    """The uploads of one (arch, variant), from a build's ``uploads`` record
    (``{"ec2": [...], "glance": [...]}``); absent means not uploaded."""
    if not data:
        return ()
    out: list[Upload] = []
    for kind in Cloud:
        for rec in data.get(kind.value) or []:
            if rec.get("arch") != arch or rec.get("variant", kind.takes[0]) != variant:
                continue
            public = rec.get("public") if kind is Cloud.EC2 else \
                rec.get("visibility") == "public"
            out.append(Upload(kind.value, str(rec.get(kind.place, "")),
                              str(rec.get("image_id", "")), str(rec.get("name", "")),
                              public))
    return tuple(sorted(out, key=lambda u: (u.cloud, u.where)))


def images_of_record(nvr: str, arch: str, record: Mapping[str, Any], base: str,
                     uploads: Mapping[str, Any] | None, verdict_from: str,
                     in_koji: bool, content_from: str = "") -> list[DropImage]:
    """The images of one arch's cloud-image record (a manifest or a Koji build's extra);
    ``base`` is the directory or URL the files are in; ``verdict_from`` says where its
    boot verdicts come from (the drop shows it), ``in_koji`` whether Koji has them."""
    if not re.match(NVR_RE, nvr):
        raise DropInputError(f"BUILD: {quote(nvr)} is not an NVR; the build's record is "
                             "damaged")
    boots = record.get("boot_tests") or []
    out: list[DropImage] = []
    for img in record.get("images") or []:
        if img.get("arch", arch) != arch:
            continue
        # the file name becomes a path in the mirror: it must not point outside the drop
        name = img.get("file")
        if not isinstance(name, str) or not SAFE_NAME.match(name):
            raise DropInputError(f"BUILD: {nvr}: image file {quote(name)} is not a plain file "
                                 "name; the build's record is damaged")
        try:
            image = ImageFile.from_dict({"variant": "generic", **img, "arch": arch})
        except ValueError as exc:
            raise DropInputError(f"BUILD: {nvr}: {exc}; the build's record is "
                                 "damaged") from None
        out.append(DropImage(image.file, nvr, image.arch, image.variant, image.format,
                             image.size, image.sha256, f"{base.rstrip('/')}/{image.file}",
                             verdicts(boots, arch, image.variant),
                             parse_uploads(uploads, arch, image.variant), verdict_from, in_koji,
                             content_from, booted_on(boots, arch, image.variant),
                             image.firmware, booted_under(boots, arch, image.variant)))
    return out


# -- local build output -------------------------------------------------------------------

def from_local(directory: Path) -> list[DropImage]:
    """The images a ``koji-image build`` wrote into ``directory``."""
    if not (directory / MANIFEST).is_file():
        raise DropInputError(f"BUILD: {directory} has no manifest.json; give a directory that "
                             "koji-image build wrote, or a Koji build NVR with --koji")
    try:
        manifest = read_manifest(directory)
        uploads = read_local(directory) if (directory / UPLOADS_FILE).exists() else None
    except RecordError as exc:
        raise DropInputError(f"BUILD: {exc}") from exc
    nvr = str(manifest["nvr"])
    images: list[DropImage] = []
    for arch in sorted({str(i["arch"]) for i in manifest["images"]}):
        images += images_of_record(nvr, arch, manifest, str(directory.resolve()), uploads,
                                   f"local build {nvr} (its manifest.json; not in Koji)",
                                   in_koji=False, content_from=f"local build {nvr}: the "
                                   "install tree and repos of its spec, not a Koji repo")
    if not images:
        raise DropInputError(f"BUILD: {directory} lists no images in its manifest.json")
    return images


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
            raise DropInputError(f"BUILD: {nvr}: {koji_message(exc)}") from exc
        except OSError as exc:  # the hub cannot be reached (requests' errors are OSErrors)
            raise DropError(f"koji: cannot reach the hub: {exc}") from exc
        state = self.koji.BUILD_STATES[binfo["state"]]
        if state != "COMPLETE":
            raise DropInputError(f"BUILD: {nvr} is {state}, not COMPLETE; give a complete build")
        base = self.pathinfo.imagebuild(binfo)
        # cloudImageInfo returns the build's uploads record; older hub plugins do not, so
        # it is also read from the build's extra, where the uploads keep it.
        uploads = info.get("uploads") or \
            ((binfo.get("extra") or {}).get(RECORD_KEY) or {}).get("uploads")
        images: list[DropImage] = []
        source = f"Koji build {binfo['nvr']} (task {binfo.get('task_id')})"
        for arch, record in sorted((info.get("arches") or {}).items()):
            images += images_of_record(binfo["nvr"], arch, record, base, uploads, source,
                                       in_koji=True, content_from=describe(info.get("repo")))
        if not images:
            raise DropInputError(f"BUILD: {nvr} has no images")
        return images

    def tag_builds(self, tag: str) -> list[str]:
        """The latest build of each package in ``tag`` that is a cloud image build."""
        try:
            builds = self.session.getLatestBuilds(tag, type="image")
        except self.koji.GenericError as exc:
            raise DropInputError(f"--tag: {tag}: {koji_message(exc)}") from exc
        except OSError as exc:
            raise DropError(f"koji: cannot reach the hub: {exc}") from exc
        nvrs = [b["nvr"] for b in builds
                if RECORD_KEY in ((self.session.getBuild(b["id"]) or {}).get("extra")
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
                                       info.get("uploads"),
                                       f"Koji task {record['task_id']} (scratch)",
                                       in_koji=True, content_from=describe(info.get("repo")))
        return images

