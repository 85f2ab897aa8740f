"""Offline disk work on a real partitioned image: loop devices, mounts, zeroing, packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from koji_image_plugin.build import disk
from koji_image_plugin.errors import CancelledError, KojiImageError
from koji_image_plugin.runner import Runner
from koji_image_plugin.spec.distro import Family
from tests.conftest import host_state, is_root, make_disk

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(not is_root(), reason="loop devices and mounts need root")]


def test_partitions_from_a_real_table(small_disk: Path, runner: Runner) -> None:
    (part,) = disk.partitions(small_disk, runner, "p")
    assert (part.number, part.start, part.type) == (1, 1 << 20, "83")
    assert part.size == 63 << 20


def test_mount_read_packages_zero_and_leave_nothing(small_disk: Path, runner: Runner,
                                                   tmp_path: Path) -> None:
    before = host_state()
    # Write a big file, delete it: its blocks stay non-zero until free space is zeroed.
    with disk.mount_root(small_disk, runner, "m", tmp_path) as (root, mounts):
        (root / "junk").write_bytes(b"\xa5" * (20 << 20))
    with disk.mount_root(small_disk, runner, "m", tmp_path) as (root, mounts):
        (root / "junk").unlink()
    allocated_dirty = small_disk.stat().st_blocks
    with disk.mount_root(small_disk, runner, "m", tmp_path) as (root, mounts):
        assert mounts == [root]
        pkgs = disk.read_packages(root, runner, "m", Family.DEBIAN)
        assert pkgs == [{"name": "bash", "version": "5.2.15-2+b2", "arch": "amd64"}]
        disk.zero_free_space(root, runner, "m")
    assert small_disk.stat().st_blocks < allocated_dirty - (15 << 20) // 512
    data = small_disk.read_bytes()
    assert b"\xa5" * 4096 not in data
    assert host_state() == before


def test_a_disk_without_a_root_filesystem_is_refused_and_cleaned_up(
        tmp_path: Path, runner: Runner) -> None:
    before = host_state()
    empty = make_disk(tmp_path / "empty.raw", 16, {"hello": b"no os here"})
    with pytest.raises(KojiImageError, match="no partition holds a root filesystem"):
        with disk.mount_root(empty, runner, "m", tmp_path):
            pass
    assert host_state() == before


def test_an_exception_inside_unmounts(small_disk: Path, runner: Runner,
                                      tmp_path: Path) -> None:
    before = host_state()
    with pytest.raises(RuntimeError):
        with disk.mount_root(small_disk, runner, "m", tmp_path):
            raise RuntimeError("boom")
    assert host_state() == before
    assert not list(tmp_path.glob("mnt-*"))


def test_a_cancel_inside_still_unmounts_and_detaches(small_disk: Path, runner: Runner,
                                                     tmp_path: Path) -> None:
    """After a cancel (the kojid task found itself cancelled) every other tool run is
    refused, but the tear-down runs: nothing stays mounted or attached."""
    before = host_state()
    with pytest.raises(CancelledError):
        with disk.mount_root(small_disk, runner, "m", tmp_path):
            runner.cancel_event.set()
            runner.check_cancelled()
    assert host_state() == before
    assert not list(tmp_path.glob("mnt-*"))
