"""A kojid task's private dir on the builder, and the clean-up of what killed tasks left.

A task killed outright (kojid's SIGKILL) runs no clean-up: :func:`sweep_stale` removes
what such tasks left in the builder's work dir (mounts, loop devices, disks) when the
next task starts. Host tools: umount, losetup.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from ..files import shared_dir
from ..runner import Runner

TASK_DIR_PREFIX = "koji-image-task-"
TASK_DIR_RE = re.compile(rf"^{TASK_DIR_PREFIX}(\d+)-")


def task_dir(workdir: Path, task_id: int) -> Path:
    """A new private dir for task ``task_id`` (reachable by libvirt's qemu user)."""
    return shared_dir(workdir, f"{TASK_DIR_PREFIX}{task_id}-")


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
            runner.run(["umount", "--lazy", mnt], log_name="sweep", cleanup=True)
        for line in loops:
            name, _, back = line.strip().partition(" ")
            if back.strip().startswith(inside):
                runner.run(["losetup", "--detach", name], log_name="sweep", cleanup=True)
        shutil.rmtree(d, ignore_errors=True)
    return stale
