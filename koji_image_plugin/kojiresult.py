"""What one arch's build hands to Koji, and how a build's cloud-image record reads.

The kojid child task returns :func:`arch_result` to its parent, which passes it to the
hub's ``host.completeImageBuild``. The hub imports every name in ``files`` as an image
archive, matching its extension against its archive types, and fails the whole import on
the first unknown one; :func:`check_importable` refuses such names first, with all of them
named. ``cloud_image`` is this project's record of the arch (images, checksums, boot
verdicts); the hub plugin keeps it in the build's ``extra`` so ``koji buildinfo`` shows it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .errors import KojiImageError
from .spec import ImageSpec

#: Koji's archive types for the files an image build imports (schemas/schema.sql):
#: extension -> type name. The hub matches the longest extension first.
KOJI_ARCHIVE_TYPES = {
    "qcow2": "qcow2", "qcow": "qcow", "raw": "raw", "raw.xz": "raw-xz",
    "raw.gz": "raw-gz", "qcow2.xz": "qcow2-compressed", "qcow2.gz": "qcow2-compressed",
    "tar": "tar", "tar.gz": "tar", "tar.bz2": "tar", "tar.xz": "tar", "tgz": "tar",
    "vmdk": "vmdk", "vhd": "vhd", "vhdx": "vhdx", "ova": "ova", "vdi": "vdi",
    "iso": "iso", "ks": "ks", "cfg": "cfg", "xml": "xml", "json": "json",
    "yaml": "yaml", "yml": "yaml", "txt": "txt", "sha256": "checksum",
}
RECORD_KEY = "cloud_image"
RECORD_VERSION = 1


def archive_type(filename: str) -> str | None:
    """The hub's archive type for a file name, or None (kojihub.get_archive_type)."""
    parts = filename.lower().split(".")
    for start in range(1, len(parts)):
        found = KOJI_ARCHIVE_TYPES.get(".".join(parts[start:]))
        if found:
            return found
    return None


def check_importable(names: Iterable[str]) -> None:
    bad = sorted(n for n in names if archive_type(n) is None)
    if bad:
        known = ", ".join(sorted("." + e for e in KOJI_ARCHIVE_TYPES))
        raise KojiImageError(f"files: {', '.join(bad)}: Koji has no archive type for "
                             f"these extensions and would refuse the import; known: {known}")


def import_extensions(spec: ImageSpec) -> list[str]:
    """The extensions of every file a build of ``spec`` hands to the hub to import."""
    images = {f.extension for v in spec.variants for f in spec.formats_for(v)}
    auto = auto_file_name(spec).removeprefix(f"{spec.nvr}.")
    return [*sorted(images), "manifest.json", "CHECKSUM.sha256", "tdl.xml", auto]


def auto_file_name(spec: ImageSpec) -> str:
    """The kickstart as the build keeps it: ``NVR.ks`` (Koji's kickstart archive type),
    or a preseed as ``NVR.preseed.cfg``."""
    return f"{spec.nvr}.{'preseed.cfg' if spec.distro.family == 'Debian' else 'ks'}"


def manifest_name(nvr: str, arch: str) -> str:
    return f"{nvr}.{arch}.manifest.json"


def checksum_name(nvr: str, arch: str) -> str:
    return f"{nvr}.{arch}.CHECKSUM.sha256"


def arch_result(task_id: int, arch: str, files: list[str], logs: list[str],
                record: Mapping[str, Any]) -> dict[str, Any]:
    """One arch's result in the shape kojihub's importImage reads. The package list
    stays in the manifest: Koji links only RPMs it knows as components, and a Debian
    image has none."""
    check_importable(files)
    return {"task_id": task_id, "arch": arch, "files": files, "logs": logs,
            "rpmlist": [], RECORD_KEY: dict(record)}


def arch_record(manifest: Mapping[str, Any], arch: str, manifest_file: str,
                checksum_file: str) -> dict[str, Any]:
    """The part of one arch's manifest a build's metadata carries."""
    arch_data = manifest.get("arches", {}).get(arch, {})
    return {
        "images": [i for i in manifest.get("images", []) if i.get("arch") == arch],
        "boot_tests": [b for b in manifest.get("boot_tests", []) if b.get("arch") == arch],
        "boot_test_passed": manifest.get("boot_test_passed"),
        "packages": len(arch_data.get("packages", [])),
        "timings": arch_data.get("timings", {}),
        "manifest": manifest_file,
        "checksum": checksum_file,
        "tools": manifest.get("tools", {}),
    }


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
    from .uploads import merge

    out = dict(extra or {})
    rec = dict(out.get(RECORD_KEY) or {"version": RECORD_VERSION})
    rec["uploads"] = merge(rec.get("uploads"), records)
    out[RECORD_KEY] = rec
    return out


def human_size(n: int) -> str:
    """Bytes for people: 512 B, 157.3 MiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def format_info(info: Mapping[str, Any]) -> list[str]:
    """Lines for ``koji cloud-image-info`` and ``--wait`` (hub's cloudImageInfo)."""
    lines = []
    build = info.get("build")
    if build:
        lines.append(f"Build: {build['nvr']} ({build['state']})")
    elif info.get("nvr"):
        lines.append(f"Scratch build: {info['nvr']} (results stay with the arch tasks)")
    if info.get("task_id"):
        state = f" ({info['state']})" if info.get("state") and not build else ""
        lines.append(f"Task: {info['task_id']}{state}")
    if info.get("failed_arches"):
        lines.append("Failed optional arches: " + ", ".join(info["failed_arches"]))
    for arch, rec in sorted((info.get("arches") or {}).items()):
        if rec.get("error"):
            lines.append(f"{arch}: FAILED: {rec['error']}")
            continue
        lines.append(f"{arch}:" + (f"  {rec['path']}" if rec.get("path") else ""))
        if rec.get("state"):
            lines.append(f"  task {rec.get('task_id')}: {rec['state']}")
            continue
        for image in rec.get("images", []):
            lines.append(f"  {image['file']}  {human_size(int(image['size']))}  "
                         f"sha256:{image['sha256']}")
            if image.get("url"):
                lines.append(f"    {image['url']}")
        for boot in rec.get("boot_tests", []):
            verdict = "booted" if boot.get("passed") else "FAILED to boot"
            lines.append(f"  boot test {boot.get('variant')}: {verdict} "
                         f"({boot.get('seconds', '?')} s)")
        if not rec.get("boot_tests"):
            lines.append("  boot test: not run")
    from .uploads import format_records

    uploaded = format_records(info.get("uploads") or {})
    if uploaded:
        lines.append("Uploads:")
        lines += [f"  {line}" for line in uploaded]
    return lines
