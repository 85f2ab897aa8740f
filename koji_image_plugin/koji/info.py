"""A cloud image build or task as people read it: ``koji cloud-image-info``, the end of
``koji cloud-image-build --wait``, from the hub's ``cloudImageInfo``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..clouds.records import format_records
from ..units import human_size


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
        verdict = "booted" if boot.get("passed") else "FAILED to boot"
        lines.append(f"  boot test {boot.get('variant')}: {verdict} "
                     f"({boot.get('seconds', '?')} s)")
    if not rec.get("boot_tests"):
        lines.append("  boot test: not run")
    return lines
