"""A cloud image build or task as people read it: ``koji cloud-image-info``, the end of
``koji cloud-image-build --wait``, from the hub's ``cloudImageInfo``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..clouds.records import format_records
from ..spec.bootprofiles import titles
from ..spec.firmware import BootFirmware, under
from ..units import human_size
from .repos import describe


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
    if info.get("repo"):
        lines.append(f"Built from: {describe(info['repo'])}")
    if info.get("failed_arches"):
        lines.append("Failed optional arches: " + ", ".join(info["failed_arches"]))
    for arch, rec in sorted((info.get("arches") or {}).items()):
        if rec.get("error"):
            first, *more = str(rec["error"]).splitlines() or [""]
            lines.append(f"{arch}: FAILED: {first}")
            lines += [f"    {line}" for line in more]
            continue
        lines += _arch_lines(arch, rec)
    uploaded = format_records(info.get("uploads") or {})
    if uploaded:
        lines.append("Uploads:")
        lines += [f"  {line}" for line in uploaded]
    return lines


def _arch_lines(arch: str, rec: Mapping[str, Any]) -> list[str]:
    lines = [f"{arch}:" + (f"  {rec['path']}" if rec.get("path") else "")]
    if rec.get("state"):
        return [*lines, f"  task {rec.get('task_id')}: {rec['state']}"]
    for image in rec.get("images", []):
        lines.append(f"  {image['file']}  {human_size(int(image['size']))}  "
                     f"sha256:{image['sha256']}")
        if image.get("url"):
            lines.append(f"    {image['url']}")
    for boot in rec.get("boot_tests", []):
        verdict = "passed" if boot.get("passed") else "FAILED"
        cloud = titles([str(boot.get("profile", "nocloud"))])
        fw = under([str(boot.get("firmware", BootFirmware.SEABIOS.value))])
        lines.append(f"  boot test {boot.get('variant')} as {cloud} {fw}: {verdict} "
                     f"({boot.get('seconds', '?')} s)")
        checks = boot.get("checks") or []
        lines += [f"    FAIL {c.get('name')}: {c.get('detail')}" for c in checks
                  if isinstance(c, dict) and not c.get("passed")]
        if checks and boot.get("passed"):
            lines.append(f"    {len(checks)} checks passed: "
                         + ", ".join(str(c.get("name")) for c in checks
                                     if isinstance(c, dict)))
    if not rec.get("boot_tests"):
        lines.append("  boot test: not run")
    return lines


def format_rpms(arch: str, archive: str, rpms: list[Mapping[str, Any]]) -> list[str]:
    """``koji cloud-image-info --rpms``: the RPM components Koji links to an arch's images
    (``listRPMs(imageID=...)``), external ones with their repo."""
    lines = [f"{arch}: {len(rpms)} RPM components (of {archive})"]
    for r in sorted(rpms, key=lambda r: (r["name"], r["arch"])):
        where = f"  [{r['external_repo_name']}]" if r.get("external_repo_id") else ""
        epoch = f"{r['epoch']}:" if r.get("epoch") is not None else ""
        lines.append(f"  {r['name']}-{epoch}{r['version']}-{r['release']}.{r['arch']}{where}")
    return lines


def format_found(found: list[Mapping[str, Any]]) -> list[str]:
    """``koji cloud-image-find``: each image build holding the RPMs, with its files and
    where its images went."""
    lines = []
    for entry in found:
        lines.append(f"{entry['nvr']}: contains {', '.join(entry['rpms'])}")
        lines += [f"  {f}" for f in sorted(entry["files"])]
        lines += [f"  {line}" for line in format_records(entry.get("uploads") or {})]
    return lines
