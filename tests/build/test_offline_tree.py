"""The offline install-tree fixture (tests/fixtures/offline_tree): what its image must hold
and must not, checked on build_tree.py's own tables and checkers without building a tree
(a build needs root and minutes; the VM tests boot the images)."""

from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import subprocess
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


# --- the disk layout (layout.sh, kickstart.sh's ks_storage) run in busybox sh ---------

BUSYBOX = shutil.which("busybox")
needs_busybox = pytest.mark.skipif(BUSYBOX is None, reason="busybox not installed")

HYBRID_RECIPE = ("koji-image :: 1 1 1 free $bios_boot{ } method{ biosgrub } . "
                 "100 100 100 fat32 $primary{ } method{ efi } format{ } . "
                 "1000 10000 -1 ext4 $primary{ } $bootable{ } method{ format } format{ } "
                 "use_filesystem{ } filesystem{ ext4 } mountpoint{ / } .")
UEFI_RECIPE = HYBRID_RECIPE.replace("1 1 1 free $bios_boot{ } method{ biosgrub } . ", "")
BIOS_RECIPE = "koji-image :: " + HYBRID_RECIPE.split(" . ")[2]

# what the installer makes: (label, BIOS boot MiB, ESP MiB, root partition number)
HYBRID = ("gpt", 1, 100, 3)
UEFI = ("gpt", 0, 100, 2)
BIOS = ("dos", 0, 0, 1)

# layout_from_preseed's arguments: choose_label, default_label, choose_recipe, expert_recipe
PRESEED_CASES = {
    "hybrid": (("gpt", "gpt", "koji-image", HYBRID_RECIPE), HYBRID),
    "uefi": (("gpt", "gpt", "koji-image", UEFI_RECIPE), UEFI),
    "bios": (("msdos", "msdos", "koji-image", BIOS_RECIPE), BIOS),
    "no keys, atomic (as before)": (("", "", "atomic", ""), BIOS),
    "gpt with a stock recipe": (("gpt", "", "atomic", ""), ("gpt", 1, 0, 2)),
    "recipe chosen by default": (("", "", "", HYBRID_RECIPE), HYBRID),
    "expert recipe not chosen": (("", "", "atomic", HYBRID_RECIPE), BIOS),
}
PRESEED_ERRORS = {
    "biosgrub on msdos": (("msdos", "", "koji-image", HYBRID_RECIPE),
                          "a BIOS boot partition needs a GPT disk label"),
    "gpt without a boot partition": (("gpt", "", "koji-image", BIOS_RECIPE),
                                     "a GPT disk needs a BIOS boot partition or an EFI"),
    "swap chunk": (("gpt", "", "koji-image",
                    HYBRID_RECIPE + " 512 512 512 linux-swap method{ swap } format{ } ."),
                   "is not supported by this fixture installer"),
    "xfs root": (("gpt", "", "koji-image", HYBRID_RECIPE.replace("filesystem{ ext4 }", "")
                  .replace("ext4 $primary", "xfs $primary")), "only makes ext4"),
    "other label": (("loop", "", "atomic", ""), "disk label loop is not supported"),
}

KICKSTART_CASES = {
    "hybrid": ("zerombr\nclearpart --all --initlabel --disklabel=gpt\n"
               "part biosboot --fstype=biosboot --size=1\n"
               "part /boot/efi --fstype=efi --size=100\npart / --fstype=ext4 --grow\n", HYBRID),
    "uefi": ("zerombr\nclearpart --all --initlabel --disklabel=gpt\n"
             "part /boot/efi --fstype=efi --size=100\npart / --fstype=ext4 --grow\n", UEFI),
    "bios": ("zerombr\nclearpart --all --initlabel --disklabel=msdos\n"
             "part / --fstype=ext4 --grow\n", BIOS),
    "reqpart": ("clearpart --all --initlabel\nreqpart\npart / --fstype=ext4 --grow\n", HYBRID),
    "no storage commands (as before)": ("rootpw --lock\n", BIOS),
    "Oz's autopart": ("autopart --type=lvm\n", BIOS),
    "biosboot without a label": ("part biosboot --fstype=biosboot --size=2\npart / --grow\n",
                                 ("gpt", 2, 0, 2)),
}
KICKSTART_ERRORS = {
    "biosboot on msdos": ("clearpart --all --disklabel=msdos\npart biosboot --fstype=biosboot\n",
                          "a BIOS boot partition needs a GPT disk label"),
    "gpt without a boot partition": ("clearpart --all --disklabel=gpt\npart / --grow\n",
                                     "a GPT disk needs a BIOS boot partition or an EFI"),
    "ESP elsewhere": ("part /efi --fstype=efi --size=100\n", "must be mounted on /boot/efi"),
    "ESP as ext4": ("part /boot/efi --fstype=ext4\n", "needs --fstype=efi"),
    "other label": ("clearpart --disklabel=dasd\n", "gpt or msdos disk labels only"),
}

LAYOUT_SHELL = """
log() { echo "LOG: $*" >&2; }
fail() { echo "FAIL: $*"; exit 1; }
. {fixture}/layout.sh
LAYOUT_TMP={tmp}
LAYOUT_FIRMWARE_FILE={tmp}/firmware
"""
REPORT = ('echo "$LAYOUT_LABEL $LAYOUT_BIOSBOOT_MIB $LAYOUT_ESP_MIB $LAYOUT_ROOT_PARTNO"\n'
          'layout_sfdisk_script >{tmp}/sfdisk.in\n')


def _layout(tmp_path: Path, body: str, firmware: str = "bios uefi hybrid") -> str:
    (tmp_path / "firmware").write_text(firmware + "\n")
    script = (LAYOUT_SHELL + body).replace("{fixture}", str(FIXTURE)).replace("{tmp}",
                                                                             str(tmp_path))
    r = subprocess.run([str(BUSYBOX), "sh", "-c", script], capture_output=True, text=True,
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, check=False)
    assert r.stderr.count("FAIL") == 0
    return r.stdout.strip()


def _preseed(tmp_path: Path, args: tuple[str, str, str, str], firmware: str = "bios uefi hybrid",
             ) -> str:
    quoted = " ".join(shlex.quote(a) for a in args)
    return _layout(tmp_path, f"layout_from_preseed {quoted}\n" + REPORT, firmware)


def _kickstart(tmp_path: Path, ks: str) -> str:
    (tmp_path / "ks.cfg").write_text(ks)
    body = (f". {FIXTURE}/kickstart.sh\nKS={tmp_path}/ks\n"
            f"ks_parse {tmp_path}/ks.cfg || fail parse\nks_storage\n" + REPORT)
    return _layout(tmp_path, body)


DISK_MIB = 256


def _parts(tmp_path: Path, expected: tuple[str, int, int, int]) -> list[tuple[str, int]]:
    """Partition the layout's sfdisk input onto a sparse 256 MiB file with the real sfdisk:
    [(type, size in sectors)], as sfdisk reads the table back."""
    disk = tmp_path / "disk.raw"
    disk.unlink(missing_ok=True)
    with open(disk, "wb") as f:
        f.truncate(DISK_MIB << 20)
    subprocess.run(["sfdisk", "-q", str(disk)], input=(tmp_path / "sfdisk.in").read_bytes(),
                   check=True, capture_output=True)
    table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], check=True,
                                      capture_output=True, text=True).stdout)["partitiontable"]
    assert table["label"] == expected[0]
    return [(p["type"], p["size"]) for p in table["partitions"]]


def _expected_parts(expected: tuple[str, int, int, int]) -> list[tuple[str, int]]:
    label, bb, esp, _root = expected
    if label == "dos":
        return [("83", (DISK_MIB - 1) * 2048)]
    parts = []
    if bb:
        parts.append(("21686148-6449-6E6F-744E-656564454649", bb * 2048))
    if esp:
        parts.append(("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", esp * 2048))
    # root fills the disk up to the backup GPT (33 sectors; sfdisk aligns the end)
    root = DISK_MIB * 2048 - 2048 - (bb + esp) * 2048 - 33
    return [*parts, ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", root)]


needs_sfdisk = pytest.mark.skipif(shutil.which("sfdisk") is None, reason="sfdisk not installed")


@needs_busybox
@needs_sfdisk
@pytest.mark.parametrize("args,expected", PRESEED_CASES.values(), ids=PRESEED_CASES.keys())
def test_the_preseed_lays_the_disk_out(tmp_path: Path, args: tuple[str, str, str, str],
                                       expected: tuple[str, int, int, int]) -> None:
    assert _preseed(tmp_path, args) == " ".join(map(str, expected))
    parts = _parts(tmp_path, expected)
    want = _expected_parts(expected)
    assert [t for t, _ in parts] == [t for t, _ in want]
    # all but the root partition are exactly as asked; root ends at the last usable sector
    assert parts[:-1] == want[:-1]
    assert want[-1][1] - 2048 < parts[-1][1] <= want[-1][1]


@needs_busybox
@pytest.mark.parametrize("args,message", PRESEED_ERRORS.values(), ids=PRESEED_ERRORS.keys())
def test_a_preseed_layout_the_fixture_cannot_make_fails(tmp_path: Path,
                                                         args: tuple[str, str, str, str],
                                                         message: str) -> None:
    out = _preseed(tmp_path, args)
    assert out.startswith("FAIL: preseed") and message in out, out
    assert out.count("\n") == 0


@needs_busybox
@pytest.mark.parametrize("firmware", ["hybrid", "uefi"])
def test_a_bios_only_tree_refuses_gpt(tmp_path: Path, firmware: str) -> None:
    args = PRESEED_CASES[firmware][0]
    out = _preseed(tmp_path, args, firmware="bios")
    assert out.startswith("FAIL: ") and "BIOS-only" in out and "\n" not in out, out
    assert _preseed(tmp_path, PRESEED_CASES["bios"][0], firmware="bios") == "dos 0 0 1"


@needs_busybox
@pytest.mark.parametrize("firmware", ["hybrid", "bios", "gpt with a stock recipe"])
def test_a_uefi_only_tree_refuses_bios_layouts(tmp_path: Path, firmware: str) -> None:
    """aarch64's tree boots with UEFI only: no MBR, no BIOS boot partition."""
    out = _preseed(tmp_path, PRESEED_CASES[firmware][0], firmware="uefi")
    assert out.startswith("FAIL: ") and "UEFI-only" in out and "\n" not in out, out
    assert _preseed(tmp_path, PRESEED_CASES["uefi"][0], firmware="uefi") == "gpt 0 100 2"


@needs_busybox
@needs_sfdisk
@pytest.mark.parametrize("ks,expected", KICKSTART_CASES.values(), ids=KICKSTART_CASES.keys())
def test_the_kickstart_lays_the_disk_out(tmp_path: Path, ks: str,
                                         expected: tuple[str, int, int, int]) -> None:
    assert _kickstart(tmp_path, ks) == " ".join(map(str, expected))
    assert [t for t, _ in _parts(tmp_path, expected)] == [
        t for t, _ in _expected_parts(expected)]


@needs_busybox
@pytest.mark.parametrize("ks,message", KICKSTART_ERRORS.values(), ids=KICKSTART_ERRORS.keys())
def test_a_kickstart_layout_the_fixture_cannot_make_fails(tmp_path: Path, ks: str,
                                                           message: str) -> None:
    out = _kickstart(tmp_path, ks)
    assert out.startswith("FAIL: ") and message in out and "\n" not in out, out


@needs_busybox
def test_the_disk_size_check_counts_every_partition(tmp_path: Path) -> None:
    body = "layout_min_bytes 1048576\n"
    hybrid = _layout(tmp_path, "layout_set gpt 1 100 test >/dev/null 2>&1\n" + body)
    bios = _layout(tmp_path, "layout_set dos 0 0 test >/dev/null 2>&1\n" + body)
    # 1 MiB before the first partition, the partitions, 1 MiB for the backup GPT
    assert int(hybrid) == (1 + 1 + 1 + 100 + 1) << 20
    assert int(bios) == (1 + 1) << 20


def test_the_x86_64_image_can_boot_with_uefi(build_tree: ModuleType) -> None:
    assert build_tree.FIRMWARES == {"x86_64": ("bios", "uefi", "hybrid"), "i686": ("bios",),
                                    "aarch64": ("uefi",)}
    assert {"grub-pc", "grub-efi-amd64-bin", "dosfstools"} <= set(
        build_tree.ARCH_PACKAGES["x86_64"])
    assert build_tree.ARCH_PACKAGES["i686"] == ["grub-pc"]  # BIOS only
    assert "/usr/sbin/mkfs.vfat" in build_tree.ARCH_REQUIRED_PATHS["x86_64"]
