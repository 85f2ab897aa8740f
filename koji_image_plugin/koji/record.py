"""What one arch's build hands to Koji, and the cloud-image record a Koji build keeps.

The kojid arch task returns :func:`arch_result` to its parent, which passes it to the
hub's ``host.completeImageBuild``; the hub imports every name in ``files`` as an image
archive. ``cloud_image`` is this project's record of the arch (images, checksums, boot
verdicts), made from the typed :class:`ArchResult`; the hub plugin keeps it in the
build's ``extra`` (``koji buildinfo`` shows it), beside the upload records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..build.results import ArchResult, ImageFile
from ..clouds import records as upload_records
from ..spec.image import ImageSpec
from .archivetypes import check_importable

RECORD_KEY = "cloud_image"
RECORD_VERSION = 1


def import_extensions(spec: ImageSpec) -> list[str]:
    """The extensions of every file a build of ``spec`` hands to the hub to import."""
    images = {f.extension for _, f in spec.outputs()}
    return [*sorted(images), "manifest.json", "CHECKSUM.sha256", "tdl.xml",
            spec.distro.family.auto_suffix]


def auto_file_name(spec: ImageSpec) -> str:
    """The kickstart as the build keeps it: ``NVR.ks`` (Koji's kickstart archive type),
    or a preseed as ``NVR.preseed.cfg``."""
    return f"{spec.nvr}.{spec.distro.family.auto_suffix}"


def manifest_name(nvr: str, arch: str) -> str:
    return f"{nvr}.{arch}.manifest.json"


def checksum_name(nvr: str, arch: str) -> str:
    return f"{nvr}.{arch}.CHECKSUM.sha256"


def tdl_name(nvr: str, arch: str) -> str:
    return f"{nvr}.{arch}.tdl.xml"


def arch_record(result: ArchResult, *, tools: Mapping[str, str], boot: bool,
                manifest_file: str, checksum_file: str) -> dict[str, Any]:
    """The part of one arch's build a Koji build's metadata carries."""
    return {
        "images": [o.as_dict() for o in result.outputs],
        "boot_tests": [b.as_dict() for b in result.boot_tests],
        "boot_test_passed": result.passed if boot else None,
        "packages": len(result.packages),
        "timings": result.timings,
        "manifest": manifest_file,
        "checksum": checksum_file,
        "tools": dict(tools),
    }


def arch_result(task_id: int, arch: str, files: list[str], logs: list[str],
                record: Mapping[str, Any],
                rpmlist: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """One arch's result in the shape kojihub's importImage reads. ``rpmlist``: the RPM
    components (``components.py``); a Debian image has none, its package list stays in
    the manifest."""
    check_importable(files)
    return {"task_id": task_id, "arch": arch, "files": files, "logs": logs,
            "rpmlist": [dict(r) for r in rpmlist], RECORD_KEY: dict(record)}


def keep_auto_file_once(results: Mapping[str, dict[str, Any]],
                        failed: Iterable[str]) -> None:
    """Every arch uploads the same kickstart; the build imports it once, as kojid does."""
    seen = set()
    skip = set(failed)
    for arch, result in results.items():
        kept = None if arch in skip else result[RECORD_KEY].get("auto_file")
        if kept in seen:
            result["files"].remove(kept)
        elif kept:
            seen.add(kept)


def images(record: Mapping[str, Any]) -> list[ImageFile]:
    """The images of a build's cloud-image record, parsed (ValueError names a damaged
    one)."""
    return [ImageFile.from_dict(i) for rec in (record.get("arches") or {}).values()
            for i in rec.get("images", [])]


def merge_record(extra: Mapping[str, Any] | None, arch: str,
                 record: Mapping[str, Any]) -> dict[str, Any]:
    """A build's extra with one arch's record added (the hub's postImport callback)."""
    out = dict(extra or {})
    rec = dict(out.get(RECORD_KEY) or {"version": RECORD_VERSION})
    arches = dict(rec.get("arches") or {})
    arches[arch] = dict(record)
    rec["arches"] = arches
    out[RECORD_KEY] = rec
    return out


def merge_uploads(extra: Mapping[str, Any] | None,
                  records: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A build's extra with upload records added (the hub's host.cloudImageUploaded)."""
    out = dict(extra or {})
    rec = dict(out.get(RECORD_KEY) or {"version": RECORD_VERSION})
    rec["uploads"] = upload_records.merge(rec.get("uploads"), records)
    out[RECORD_KEY] = rec
    return out
