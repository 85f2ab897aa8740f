"""Host problems are one clear line each and leave nothing behind: no space, no libvirt."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, host_state, is_root

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(not is_root(), reason="mounting a tmpfs needs root")]


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    tree = tmp_path / "tree" / "debian-installer" / "amd64"
    tree.mkdir(parents=True)
    (tree / "linux").write_bytes(b"kernel")
    (tree / "initrd.gz").write_bytes(b"initrd")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({
        "name": "T", "version": "1", "release": "1", "distro": "Debian-12",
        "arches": ["x86_64"], "install_tree": f"file://{tmp_path / 'tree'}", "disk_size": 2}))
    return path


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def run(args: list[str], cwd: Path, conf: str = "") -> subprocess.CompletedProcess[str]:
    (cwd / "host.conf").write_text(conf)
    return subprocess.run([str(REPO / ".venv/bin/koji-image"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "KOJI_IMAGE_CONFIG": str(cwd / "host.conf")})


def test_no_space_in_the_work_dir(spec: Path, small_fs: Path, tmp_path: Path) -> None:
    before = host_state()
    done = run(["build", str(spec), "--output", "out", "--workdir", str(small_fs)], tmp_path)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (f"koji-image: not enough space in {small_fs} for the work files: need "
                    "about 4.0 GiB, 0.0 GiB free; free some or choose another with --workdir")
    assert list(small_fs.iterdir()) == []
    assert not (tmp_path / "out").exists()
    assert host_state() == before


def test_libvirt_not_running(spec: Path, tmp_path: Path) -> None:
    before = host_state()
    done = run(["build", str(spec), "--output", "out"], tmp_path,
               "[libvirt]\nuri = qemu+unix:///system?socket=/nonexistent/libvirt-sock\n")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("koji-image: cannot connect to libvirt at qemu+unix:///system?"
                           "socket=/nonexistent/libvirt-sock: "), last
    assert last.endswith("start libvirtd and virtlogd (scripts/start-services.sh)")
    assert not (tmp_path / "out").exists()
    assert host_state() == before
