"""Shared fixtures: a small real disk image made with real tools, and leak checks."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from koji_image_plugin.runner import Runner
from tests.awsserver import MotoServer
from tests.glanceserver import GlanceServer

REPO = Path(__file__).resolve().parent.parent


def make_disk(path: Path, size_mib: int = 64, files: dict[str, bytes] | None = None) -> Path:
    """A raw disk with an MBR and one ext4 partition holding ``files``; no root needed
    (mke2fs -d fills the filesystem from a directory, dd puts it at the partition)."""
    tree = path.parent / (path.name + ".tree")
    for rel, data in (files or {}).items():
        f = tree / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
    tree.mkdir(exist_ok=True)
    fs = path.parent / (path.name + ".fs")
    part_mib = size_mib - 1
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-F", "-d", str(tree), str(fs),
                    f"{part_mib}M"], check=True)
    subprocess.run(["truncate", "-s", f"{size_mib}M", str(path)], check=True)
    subprocess.run(["sfdisk", "-q", str(path)], input=b"label: dos\nstart=2048, type=83\n",
                   check=True)
    subprocess.run(["dd", f"if={fs}", f"of={path}", "bs=1M", "seek=1", "conv=notrunc,sparse",
                    "status=none"], check=True)
    fs.unlink()
    return path


@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    files = {
        "etc/os-release": b'NAME="Debian GNU/Linux"\nVERSION_ID="12"\n',
        "var/lib/dpkg/status": (b"Package: bash\nStatus: install ok installed\n"
                                b"Architecture: amd64\nVersion: 5.2.15-2+b2\n\n"
                                b"Package: gone\nStatus: deinstall ok config-files\n"
                                b"Version: 1\n\n"),
        "data/random.bin": os.urandom(3 << 20),
        "data/text.txt": b"cloud image " * 100000,
    }
    return make_disk(tmp_path / "disk.raw", 64, files)


@pytest.fixture
def runner(tmp_path: Path) -> Runner:
    return Runner(tmp_path / "logs", logging.getLogger("test"))


#: what names every guest, loop device, mount and qemu process a test can make: the
#: guests are ``koji-image-*``, the work dirs ``/var/tmp/koji-image-*`` and pytest's
#: temporary dirs (kojid's, the boot test's, the drop tests')
OURS = ("koji-image", "/tmp/pytest-of-")


def host_state() -> dict[str, set[str]]:
    """What a build must not leave behind: guests, loop devices, mounts, work dirs, qemu
    processes; only those a test could have made (another user's guest or loop device on
    the same host is not the test's to count)."""
    def lines(cmd: list[str]) -> set[str]:
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
        return {ln.strip() for ln in out.splitlines() if ln.strip() and ours(ln)}

    def ours(text: str) -> bool:
        return any(mark in text for mark in OURS)

    return {
        "guests": lines(["virsh", "-c", "qemu:///system", "list", "--all", "--name"]),
        "loops": lines(["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"]),
        "mounts": {ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines()
                   if ours(ln.split()[1])},
        "workdirs": {p.name for p in Path("/var/tmp").glob("koji-image-*")},
        "qemu": lines(["pgrep", "-a", "qemu-system"]),
        # the UEFI variable stores libvirt keeps for guests it was not told where to
        "nvram": {p.name for p in Path("/var/lib/libvirt/qemu/nvram").glob("*")
                  if ours(p.name)},
    }


LONG_WHY = ("the aarch64 build and boot test: its arm64 tree alone takes 23-52 min under "
            "TCG on 2 cores, more than the CI budget; run it with --long")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true",
                     help="also run the tests marked long (" + LONG_WHY.split(";")[0] + ")")


@pytest.hookimpl(trylast=True)  # after -m and -k: count only what they let through
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests marked ``long`` run only with --long: deselected (and counted as such)
    otherwise, and the summary says why."""
    if config.getoption("--long"):
        return
    long = [i for i in items if i.get_closest_marker("long")]
    if long:
        config.hook.pytest_deselected(items=long)
        items[:] = [i for i in items if not i.get_closest_marker("long")]
        config.stash[_LONG_LEFT] = len(long)


_LONG_LEFT = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    left = config.stash.get(_LONG_LEFT, 0)
    if left:
        terminalreporter.write_line(f"{left} test(s) marked long not run: {LONG_WHY}")


def is_root() -> bool:
    return os.geteuid() == 0


BUILD_TREE = REPO / "tests" / "fixtures" / "offline_tree" / "build_tree.py"
#: where build_tree.py keeps the trees (its default cache)
TREES = Path("/var/cache/koji-image-plugin/trees")


@pytest.fixture(scope="session")
def trees() -> None:
    """Build (or reuse) the offline trees for both arches; a failure fails the tests."""
    for arch in ("x86_64", "i686"):
        done = subprocess.run([sys.executable, str(BUILD_TREE), "--arch", arch],
                              stdout=subprocess.PIPE, text=True, timeout=1800)
        assert done.returncode == 0, f"building the {arch} offline tree failed"


@pytest.fixture(scope="session")
def arm64_tree() -> None:
    """Build (or reuse) the aarch64 offline tree (debootstrap --foreign, the second stage
    in an aarch64 TCG guest on an x86_64 host: 23-52 min); a failure fails the tests."""
    done = subprocess.run([sys.executable, str(BUILD_TREE), "--arch", "aarch64"],
                          stdout=subprocess.PIPE, text=True, timeout=3 * 3600)
    assert done.returncode == 0, "building the aarch64 offline tree failed"


@pytest.fixture(scope="session")
def fedora_tree() -> Path:
    """Build (or reuse) the Fedora-shaped offline tree for x86_64 (build_tree.py
    --layout fedora): a failure fails the tests."""
    done = subprocess.run([sys.executable, str(BUILD_TREE), "--layout", "fedora", "--arch",
                           "x86_64"], stdout=subprocess.PIPE, text=True, timeout=1800)
    assert done.returncode == 0, "building the Fedora-shaped offline tree failed"
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto in server mode on loopback: the EC2, EBS and S3 APIs (tests/awsserver.py)."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def glance_server() -> Iterator[GlanceServer]:
    """A real glance-api (Debian's package) on loopback, no keystone (tests/glanceserver.py)."""
    server = GlanceServer()
    try:
        t0 = time.monotonic()
        server.start()
        logging.getLogger("test.glance").info("glance-api answered %.1f s after start",
                                              time.monotonic() - t0)
        yield server
    finally:
        server.remove()
