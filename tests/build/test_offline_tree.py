"""The offline install-tree fixture (tests/fixtures/offline_tree): what its image must hold
and must not, checked on build_tree.py's own tables and checkers without building a tree
(a build needs root and minutes; the VM tests boot the images)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "offline_tree"


@pytest.fixture(scope="module")
def build_tree() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("offline_build_tree",
                                                  FIXTURE / "build_tree.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_the_fixture_image_has_what_clouds_use(build_tree: ModuleType) -> None:
    for pkg in ("cloud-guest-utils", "fdisk", "curl", "wget", "systemd-timesyncd",
                "libnss-myhostname", "openssh-server", "cloud-init"):
        assert pkg in build_tree.BASE_PACKAGES
    assert "/usr/bin/growpart" in build_tree.REQUIRED_COMMANDS
    assert build_tree.ENABLED_UNITS == {"systemd-timesyncd.service": "sysinit.target.wants"}


def test_the_sshd_drop_in_sets_what_is_checked(build_tree: ModuleType) -> None:
    assert build_tree.SSHD_DROPIN.startswith("etc/ssh/sshd_config.d/")
    assert build_tree.SSHD_DROPIN.endswith(".conf")
    settings = dict(line.lower().split() for line in build_tree.SSHD_HARDENING.splitlines()
                    if line and not line.startswith("#"))
    assert settings == {"passwordauthentication": "no", "kbdinteractiveauthentication": "no",
                        "permitrootlogin": "prohibit-password"}
    for key, value in settings.items():
        assert value in build_tree.SSHD_EXPECTED[key]


LEFTOVERS = ["var/log/koji-image-installer.log", "var/log/anaconda/anaconda.log",
             "root/anaconda-ks.cfg", "root/original-ks.cfg",
             "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages",
             "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_source_Sources.xz",
             "var/cache/apt/archives/curl_7.88.1-10_amd64.deb", "var/cache/apt/pkgcache.bin",
             "var/cache/dnf/expired_repos.json", "root/.bash_history"]
KEPT = ["var/lib/apt/lists/lock", "var/lib/apt/lists/partial/", "var/cache/apt/archives/lock",
        "var/cache/apt/archives/partial/", "var/cache/dnf/", "var/log/dpkg.log",
        "etc/ssh/sshd_config.d/60-koji-fixture-keys-only.conf"]


def _tree(root: Path, paths: list[str]) -> None:
    for rel in paths:
        p = root / rel
        if rel.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("x")


def test_every_leftover_is_found_and_nothing_else(build_tree: ModuleType,
                                                  tmp_path: Path) -> None:
    _tree(tmp_path, KEPT)
    assert build_tree.find_leftovers(str(tmp_path)) == []
    _tree(tmp_path, LEFTOVERS)
    found = build_tree.find_leftovers(str(tmp_path))
    assert found == sorted("/" + rel.split("/anaconda.log")[0] for rel in LEFTOVERS)
    # one example for each glob
    assert len(LEFTOVERS) == len(build_tree.LEFTOVER_GLOBS)


def test_the_installer_leaves_no_log_in_the_image() -> None:
    for name in ("init", "kickstart.sh"):
        text = (FIXTURE / name).read_text()
        assert "koji-image-installer.log" not in text, name


# --- arches, and the build guest of a foreign arch (aarch64 on an x86_64 host) ---

def test_every_arch_has_its_facts(build_tree: ModuleType) -> None:
    for arch in build_tree.ARCHES:
        assert arch in build_tree.ARCH_PACKAGES, arch
        assert arch in build_tree.ARCH_REQUIRED_PATHS, arch
        assert arch in build_tree.ARCH_MODULES, arch
        assert arch in build_tree.SERIAL_CONSOLES, arch
        if not build_tree.runs_natively(arch, "x86_64"):
            assert arch in build_tree.GUEST_QEMU, arch
    assert "grub-pc" not in build_tree.BASE_PACKAGES
    assert build_tree.ARCHES["aarch64"] == ("arm64", "linux-image-cloud-arm64",
                                            "aarch64-linux-gnu")
    arm = build_tree.ARCH_PACKAGES["aarch64"]
    assert "grub-pc" not in arm
    assert {"grub-efi-arm64-bin", "dosfstools"} <= set(arm)
    assert "/usr/lib/grub/arm64-efi/modinfo.sh" in build_tree.ARCH_REQUIRED_PATHS["aarch64"]


@pytest.mark.parametrize(("arch", "host", "native"), [
    ("x86_64", "x86_64", True),
    ("i686", "x86_64", True),
    ("aarch64", "x86_64", False),
    ("aarch64", "aarch64", True),
    ("x86_64", "aarch64", False),
    ("i686", "i686", True),
])
def test_which_arches_run_natively(build_tree: ModuleType, arch: str, host: str,
                                   native: bool) -> None:
    assert build_tree.runs_natively(arch, host) is native


@pytest.mark.parametrize(("arch", "console", "serial_terminal"), [
    ("x86_64", "ttyS0", True),
    ("i686", "ttyS0", True),
    ("aarch64", "ttyAMA0", False),
])
def test_grub_settings_name_the_arch_console(build_tree: ModuleType, arch: str, console: str,
                                             serial_terminal: bool) -> None:
    settings = build_tree.grub_defaults(arch)
    assert settings["GRUB_CMDLINE_LINUX"] == f'"console=tty0 console={console},115200"'
    assert ("GRUB_SERIAL_COMMAND" in settings) is serial_terminal
    assert settings["GRUB_TERMINAL"] == ('"console serial"' if serial_terminal else '"console"')


def _options(argv: list[str]) -> dict[str, str]:
    """{option: value} of an argv; a flag without a value maps to ""."""
    found: dict[str, str] = {}
    i = 0
    while i < len(argv):
        assert argv[i].startswith("-"), argv[i]
        has_value = i + 1 < len(argv) and not argv[i + 1].startswith("-")
        found[argv[i]] = argv[i + 1] if has_value else ""
        i += 2 if has_value else 1
    return found


def test_the_build_guest_argv(build_tree: ModuleType) -> None:
    argv = build_tree.guest_qemu_argv("aarch64", "/t/Image", "/t/initrd.gz", "/t/work.img",
                                      "/t/console.log")
    assert argv[0] == "qemu-system-aarch64"
    pairs = _options(argv[1:])
    assert pairs["-machine"] == "virt"
    assert pairs["-cpu"].startswith("max")
    assert pairs["-accel"] == "tcg"
    assert pairs["-kernel"] == "/t/Image"
    assert pairs["-initrd"] == "/t/initrd.gz"
    assert pairs["-serial"] == "file:/t/console.log"
    assert "console=ttyAMA0" in pairs["-append"].split()
    assert pairs["-drive"].startswith("file=/t/work.img,format=raw,")
    assert pairs["-device"] == "virtio-blk-pci,drive=work"
    assert pairs["-nic"] == "none"
    assert pairs["-no-reboot"] == pairs["-nodefaults"] == ""


def test_the_guest_runs_this_scripts_preparation(build_tree: ModuleType) -> None:
    import argparse
    args = argparse.Namespace(arch="aarch64", layout="debian")
    argv = build_tree.guest_prepare_argv(args, "bookworm-arm64-x", "linux-image-cloud-arm64")
    assert argv[:2] == ["/usr/bin/python3", "/tmp/koji-fixture-build/build_tree.py"]
    pairs = _options(argv[2:])
    assert pairs == {"--prepare-root": "/", "--arch": "aarch64", "--layout": "debian",
                     "--name": "bookworm-arm64-x", "--kernel-package": "linux-image-cloud-arm64"}
    # the guest's step parses with the script's own parser (and refuses half of it)
    with pytest.raises(SystemExit):
        build_tree.main(["--prepare-root", "/", "--arch", "aarch64"])


def test_the_guest_init_is_valid_sh(build_tree: ModuleType, tmp_path: Path) -> None:
    import subprocess
    text = build_tree.GUEST_INIT.format(mark=build_tree.GUEST_MARK, prepare="/usr/bin/true",
                                        script_dir=build_tree.GUEST_SCRIPT_DIR)
    (tmp_path / "init").write_text(text)
    subprocess.run(["sh", "-n", str(tmp_path / "init")], check=True)
    assert "/debootstrap/debootstrap --second-stage" in text
    assert "chroot /mnt /usr/bin/true || finish 2" in text
    assert "rm -rf /mnt/tmp/koji-fixture-build" in text


@pytest.mark.parametrize(("console", "status", "steps"), [
    ("koji-fixture-guest: started (up 1.5 s)\n"
     "[   2.0] noise\nkoji-fixture-guest: second stage (up 3 s)\r\n"
     "koji-fixture-guest: exit status 0 (up 90.25 s)\n",
     0, [("started", 1.5), ("second stage", 3.0), ("exit status 0", 90.25)]),
    ("koji-fixture-guest: second stage failed; its log: (up 50 s)\n"
     "koji-fixture-guest: exit status 1 (up 51 s)\n",
     1, [("second stage failed; its log:", 50.0), ("exit status 1", 51.0)]),
    # killed or crashed: no status line
    ("koji-fixture-guest: started (up 1 s)\nKernel panic\n", None, [("started", 1.0)]),
    ("", None, []),
])
def test_the_guest_report_is_read_from_its_console(build_tree: ModuleType, console: str,
                                                   status: int | None,
                                                   steps: list[tuple[str, float]]) -> None:
    assert build_tree.guest_report(console) == (status, steps)


def test_the_guest_initrd_unpacks(build_tree: ModuleType, tmp_path: Path) -> None:
    import subprocess
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF fake")
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "virtio.ko").write_bytes(b"one")
    import gzip
    (mods / "virtio_blk.ko.gz").write_bytes(gzip.compress(b"two"))
    initrd = tmp_path / "initrd.gz"
    build_tree.write_guest_initrd(str(initrd), str(busybox),
                                  [(str(mods / "virtio.ko"), True),
                                   (str(mods / "virtio_blk.ko.gz"), True)], "#!/bin/sh\n")
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(f"gzip -dc {initrd} | cpio -idm --quiet", shell=True, cwd=out, check=True)
    assert (out / "init").read_text() == "#!/bin/sh\n"
    assert (out / "bin/sh").is_symlink()
    assert (out / "bin/busybox").read_bytes() == b"\x7fELF fake"
    assert (out / "lib/modules/load-order").read_text() == "virtio.ko\nvirtio_blk.ko\n"
    assert (out / "lib/modules/virtio_blk.ko").read_bytes() == b"two"
