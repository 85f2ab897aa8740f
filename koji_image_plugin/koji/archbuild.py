"""One arch of a hub build, as the kojid arch task runs it, without any Koji in it.

The pipeline's ``build_arch`` in the task's own dir, then the files the task uploads
next to the images: the arch's ``manifest.json``, its ``CHECKSUM`` (as ``.sha256``,
Koji's checksum archive type), the Oz template and the prepared kickstart (or preseed)
the installer read. Every name is checked against Koji's
archive types before anything is handed to the hub. A boot test that fails raises after
the record is written, so the task still uploads the logs and the manifest that say why.
"""

from __future__ import annotations

import datetime
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..build import outputs
from ..build.pipeline import Pipeline
from ..errors import BootFailedError
from ..spec.arches import Arch
from .archivetypes import check_importable
from .record import arch_record, checksum_name, manifest_name, tdl_name


@dataclass(frozen=True)
class ArchOutput:
    files: list[str]
    record: dict[str, Any]
    #: the packages read from the image (``build/rpmdb.py``'s entries for RPMs)
    packages: list[dict[str, Any]]


def build(pipeline: Pipeline, arch: Arch, task_dir: Path) -> ArchOutput:
    """Build ``arch`` in ``task_dir``: work files in ``work/`` (removed whatever
    happens), images and records into ``out/``, logs into ``logs/``."""
    spec = pipeline.spec
    outdir, logdir, work = task_dir / "out", task_dir / "logs", task_dir / "work"
    for d in (outdir, logdir):
        d.mkdir(exist_ok=True)
    work.mkdir()
    work.chmod(0o755)  # libvirt's qemu must reach the disks, whatever the umask
    started = datetime.datetime.now(datetime.UTC)
    try:
        res = pipeline.build_arch(arch, work, outdir, logdir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    tools = outputs.tool_versions(pipeline.runner(logdir), spec.arches)
    manifest = outputs.manifest(spec, pipeline.host, [res], started=started,
                                boot=pipeline.boot, tools=tools, logdir=logdir)
    mname, cname = manifest_name(spec.nvr, arch.value), checksum_name(spec.nvr, arch.value)
    outputs.write_manifest(outdir / mname, manifest)
    outputs.write_checksum(outdir / cname, [res])
    files = [o.file for o in res.outputs] + [mname, cname]
    if res.install is not None and res.install.tdl.exists():
        shutil.copyfile(res.install.tdl, outdir / tdl_name(spec.nvr, arch.value))
        files.append(tdl_name(spec.nvr, arch.value))
    prepared = res.install.auto_file if res.install is not None else None
    if prepared is not None:  # the kickstart the installer read is imported with the build
        shutil.copyfile(prepared, outdir / prepared.name)
        files.append(prepared.name)
    check_importable(files)
    record = arch_record(res, tools=tools, boot=pipeline.boot,
                         manifest_file=mname, checksum_file=cname)
    if prepared is not None:
        record["prepared_auto_file"] = prepared.name
    failed = res.failed_boots()
    if pipeline.boot and failed:
        said = "; ".join(f"{b.variant} as {b.profile} under {b.firmware}: "
                         + (", ".join(c.line() for c in b.failed_checks()) or b.detail)
                         for b in failed)
        raise BootFailedError(f"{arch.value}: boot test failed for {said}"
                              + f"; see {Path(failed[0].checks_log or failed[0].console_log).name}"
                              f" and {Path(failed[0].console_log).name}")
    return ArchOutput(files, record, res.packages)
