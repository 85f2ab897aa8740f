"""A kojid task's private dir, and the sweep of what killed tasks left (needs root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from koji_image_plugin.koji import workdir
from koji_image_plugin.runner import Runner
from tests.conftest import host_state, is_root, make_disk

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(not is_root(), reason="loop devices and mounts need root")]


def test_sweep_removes_what_a_killed_task_left_and_keeps_running_tasks(
        runner: Runner, tmp_path: Path) -> None:
    before = host_state()
    killed = workdir.task_dir(tmp_path, 41)
    running = workdir.task_dir(tmp_path, 42)
    other = tmp_path / "not-a-task-dir"
    other.mkdir()
    (killed / "x86_64").mkdir()
    raw = make_disk(killed / "x86_64" / "disk.raw")
    # what a SIGKILL in the middle of mount_root leaves: a loop device and a mount
    loop = runner.run(["losetup", "--find", "--show", "--offset", str(1 << 20), str(raw)],
                      log_name="t", capture=True).strip()
    mnt = killed / "x86_64" / "mnt"
    mnt.mkdir()
    runner.run(["mount", loop, str(mnt)], log_name="t")
    assert host_state() != before

    removed = workdir.sweep_stale(tmp_path, lambda task: task == 42, runner)
    assert removed == [killed]
    assert not killed.exists() and running.is_dir() and other.is_dir()
    assert host_state() == before
    assert workdir.sweep_stale(tmp_path, lambda task: task == 42, runner) == []
