"""A build's records beside its images: ``manifest.json`` (every file, the packages read
from the image, boot verdicts, timings, customizations, tool versions, the resolved spec)
and Fedora's ``CHECKSUM``. Local mode and the kojid arch task write the same records,
from the same typed results."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import __version__
from ..checksums import Digest, checksum_text
from ..errors import KojiImageError, RecordError, quote
from ..files import within
from ..runner import Runner
from ..spec import records
from ..spec.arches import Arch
from ..spec.firmware import Firmware
from ..spec.formats import ImageFormat
from ..spec.hostconfig import HostConfig
from ..spec.image import ImageSpec, image_file_name
from ..spec.schema import DISTRO_RE, FILE_NAME_RE, NVR_RE
from ..spec.variants import Variant
from .results import ArchResult

MANIFEST = "manifest.json"
CHECKSUM = "CHECKSUM"

#: An image as records give it (a manifest, a Koji build's cloud_image record).
IMAGE_RECORD: dict[str, Any] = {
    "type": "object",
    "required": ["file", "arch", "variant", "format", "size", "sha256"],
    "properties": {
        "file": {"type": "string", "pattern": FILE_NAME_RE, "maxLength": 255,
                 "description": "must be a plain file name (no / and not ..)"},
        "arch": {"enum": [a.value for a in Arch]},
        "variant": {"enum": [v.value for v in Variant]},
        "format": {"enum": [f.value for f in ImageFormat]},
        "size": {"type": "integer", "minimum": 0},
        "sha256": records.SHA256,
        "firmware": {"enum": [f.value for f in Firmware]},
    },
}
#: A boot verdict as records give it.
BOOT_RECORD: dict[str, Any] = {
    "type": "object",
    "required": ["variant", "passed"],
    "properties": {"arch": {"enum": [a.value for a in Arch]},
                   "variant": {"type": "string", "maxLength": 64},
                   "passed": {"type": "boolean"}},
}
#: What is read back of a manifest (the rest is for people).
MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["nvr", "images", "spec"],
    "properties": {
        "nvr": {"type": "string", "pattern": NVR_RE, "maxLength": 255},
        "images": {"type": "array", "items": IMAGE_RECORD, "maxItems": 1000},
        "boot_tests": {"type": "array", "items": BOOT_RECORD, "maxItems": 1000},
        "spec": {"type": "object", "required": ["distro"], "properties": {
            "distro": {"type": "string", "pattern": DISTRO_RE}}},
    },
}


AS_WRITTEN = "give the output directory of a koji-image build, as it wrote it"


def read_manifest(directory: Path) -> dict[str, Any]:
    """A build directory's manifest.json, checked before anything uses it: the record,
    and that every image it names is a plain file inside ``directory`` (no ``..``, no
    absolute path, no symlink out of it)."""
    path = directory / MANIFEST
    data = records.read(path, MANIFEST_SCHEMA, AS_WRITTEN)
    if data["nvr"].count("-") < 2:
        raise RecordError(f"{path} is damaged: nvr: {quote(data['nvr'])} is not "
                          f"NAME-VERSION-RELEASE; {AS_WRITTEN}")
    seen: set[tuple[str, str, str]] = set()
    for image in data["images"]:
        output = (image["arch"], image["variant"], image["format"])
        named = image_file_name(data["nvr"], Arch(output[0]), Variant(output[1]),
                                ImageFormat(output[2]))
        if image["file"] != named:  # the name says what the file is; so must the record
            raise RecordError(f"{path} is damaged: image {quote(image['file'])} is not "
                              f"the {' '.join(output)} image of {data['nvr']}, which is "
                              f"named {quote(named)}; {AS_WRITTEN}")
        if output in seen:
            raise RecordError(f"{path} is damaged: it lists the {' '.join(output)} image "
                              f"twice; {AS_WRITTEN}")
        seen.add(output)
        why = within(directory, image["file"])[1]
        if why is not None:
            raise RecordError(f"{path}: image {quote(image['file'])} is {why} (it must be "
                              f"a file inside {directory}); {AS_WRITTEN}")
    return data


def manifest(spec: ImageSpec, host: HostConfig, results: list[ArchResult], *,
             started: datetime.datetime, boot: bool, tools: dict[str, str],
             logdir: Path) -> dict[str, Any]:
    """The manifest of ``results``; ``tools``: :func:`tool_versions`."""
    return {
        "manifest": "koji-image-plugin", "manifest_version": 1,
        "nvr": spec.nvr,
        "spec": spec.as_dict(),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": {"hostname": platform.node(), "domain_type": host.resolved_domain_type,
                 "accel": host.accel, "cpus": os.cpu_count()},
        "images": [o.as_dict() for r in results for o in r.outputs],
        "boot_tests": [b.as_dict() for r in results for b in r.boot_tests],
        "boot_test_passed": all(r.passed for r in results) if boot else None,
        "arches": {r.arch.value: r.summary() for r in results},
        "tools": tools,
        "logs": sorted(p.name for p in logdir.iterdir()),
    }


def write_manifest(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_checksum(path: Path, results: Iterable[ArchResult]) -> None:
    path.write_text(checksum_text((o.file, Digest(o.size, o.sha256))
                                  for r in results for o in r.outputs))


def tool_versions(runner: Runner, arches: tuple[Arch, ...]) -> dict[str, str]:
    out = {"koji-image-plugin": __version__, "python": platform.python_version()}
    for tool in ["qemu-img", "xz", "tar", *sorted({a.qemu_system for a in arches})]:
        text = runner.run([tool, "--version"], log_name="versions", capture=True)
        out[tool] = text.splitlines()[0].strip() if text else "unknown"
    out["oz"] = _oz_version(runner)
    try:
        import libvirt
        v = libvirt.getVersion()
        out["libvirt"] = f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"
    except Exception:  # noqa: BLE001 - a version is information, not a requirement
        out["libvirt"] = "unknown"
    return out


def _oz_version(runner: Runner) -> str:
    """Oz's version: from its Python metadata, else from the Debian package."""
    try:
        return importlib.metadata.version("oz")
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        text = runner.run(["dpkg-query", "--show", "--showformat=${Version}", "oz"],
                          log_name="versions", capture=True, ok_codes=(0, 1))
    except KojiImageError:  # no dpkg-query on this host
        return "unknown"
    return text.strip() or "unknown"
