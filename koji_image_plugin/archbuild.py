"""One arch of a hub build, as the kojid child task runs it, without any Koji in it.

A private work dir under the builder's configured one (removed whatever happens), the
pipeline's ``build_arch``, then the files the task uploads next to the images: the arch's
``manifest.json``, its ``CHECKSUM`` (as ``.sha256``, Koji's checksum archive type) and the
Oz template. Every name is checked against Koji's archive types before anything is handed
to the hub. A boot test that fails raises after the record is written, so the task still
uploads the logs and the manifest that say why.

A task killed outright (kojid's SIGKILL) runs no cleanup: :func:`sweep_stale` removes
what such tasks left in the builder's work dir (mounts, loop devices, disks) when the next
task starts. Host tools: umount, losetup.
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .arches import Arch
from .checksums import Digest, checksum_text
from .errors import BootFailedError
from .kojiresult import arch_record, check_importable, checksum_name, manifest_name
from .pipeline import Pipeline
from .runner import Runner

TASK_DIR_PREFIX = "koji-image-task-"
TASK_DIR_RE = re.compile(rf"^{TASK_DIR_PREFIX}(\d+)-")


def task_dir(workdir: Path, task_id: int) -> Path:
    """A new private dir for task ``task_id`` (reachable by libvirt's qemu user)."""
    path = Path(tempfile.mkdtemp(prefix=f"{TASK_DIR_PREFIX}{task_id}-", dir=workdir))
    path.chmod(0o755)
    return path


def sweep_stale(workdir: Path, alive: Callable[[int], bool], runner: Runner) -> list[Path]:
    """Remove the task dirs in ``workdir`` of tasks that are no longer running, with the
    mounts and loop devices under them; returns the dirs removed."""
    stale = [d for d in sorted(workdir.glob(f"{TASK_DIR_PREFIX}*"))
             if (m := TASK_DIR_RE.match(d.name)) and d.is_dir() and not alive(int(m[1]))]
    if not stale:
        return []
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    loops = runner.run(["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"],
                       log_name="sweep", capture=True).splitlines()
    for d in stale:
        inside = f"{d}/"
        for mnt in sorted((m for m in mounts if m.startswith(inside)), reverse=True):
            runner.run(["umount", "--lazy", mnt], log_name="sweep")
        for line in loops:
            name, _, back = line.strip().partition(" ")
            if back.strip().startswith(inside):
                runner.run(["losetup", "--detach", name], log_name="sweep")
        shutil.rmtree(d, ignore_errors=True)
    return stale


@dataclass(frozen=True)
class ArchOutput:
    files: list[str]
    record: dict[str, Any]


def build(pipeline: Pipeline, arch: Arch, outdir: Path, logdir: Path,
          workdir_base: Path | None = None) -> ArchOutput:
    """Build ``arch`` into ``outdir`` (images + records), logs into ``logdir``; work files
    in a new dir under ``workdir_base`` (default: the host config's workdir)."""
    spec = pipeline.spec
    base = workdir_base or pipeline.host.workdir
    work = Path(tempfile.mkdtemp(prefix=f"koji-image-{arch.value}-", dir=base))
    # libvirt runs qemu as libvirt-qemu, which must reach the disks under it.
    work.chmod(0o755)
    started = datetime.datetime.now(datetime.UTC)
    try:
        res = pipeline.build_arch(arch, work, outdir, logdir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    runner = Runner(logdir, pipeline.log, pipeline.cancel)
    manifest = pipeline.manifest([res], started, runner)
    mname, cname = manifest_name(spec.nvr, arch.value), checksum_name(spec.nvr, arch.value)
    (outdir / mname).write_text(json.dumps(manifest, indent=2) + "\n")
    (outdir / cname).write_text(checksum_text((o.file, Digest(o.size, o.sha256))
                                              for o in res.outputs))
    tdl = logdir / f"oz-{arch.value}.tdl"
    files = [o.file for o in res.outputs] + [mname, cname]
    if tdl.exists():
        shutil.copyfile(tdl, outdir / f"{spec.nvr}.{arch.value}.tdl.xml")
        files.append(f"{spec.nvr}.{arch.value}.tdl.xml")
    check_importable(files)
    record = arch_record(manifest, arch.value, mname, cname)
    if pipeline.boot and not res.passed:
        failed = [b for b in res.boot_tests if not b["passed"]]
        raise BootFailedError(f"{arch.value}: boot test failed for "
                            + "; ".join(f"{b['variant']}: {b['detail']}" for b in failed)
                            + f"; see {Path(failed[0]['console_log']).name}")
    return ArchOutput(files, record)
