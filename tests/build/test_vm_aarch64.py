"""aarch64 with real guests: qemu-system-aarch64 (the "virt" machine, AAVMF from Debian's
``qemu-efi-aarch64``), under TCG on an x86_64 host and KVM on an aarch64 builder.

The whole aarch64 build (Oz's install from the arm64 offline tree, the conversions, the
boot tests) is marked ``long``: its tree alone takes 23-52 min to build under TCG on
2 cores, so it runs with ``--long`` only. What the CI budget allows runs always: the boot
test's aarch64 machine and firmware, started for real on a disk with no EFI boot loader.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.build.test_vm import check_build, koji_image, noboot_qcow2, spec_file
from tests.conftest import host_state, is_root

pytestmark = [pytest.mark.vm, pytest.mark.aarch64,
              pytest.mark.skipif(not is_root(), reason="libvirt guests and mounts need root")]


def test_the_aarch64_boot_test_starts_aavmf_and_diagnoses_a_disk_it_cannot_boot(
        tmp_path: Path) -> None:
    before = host_state()
    conf = noboot_qcow2(tmp_path)
    done = koji_image("boot-test", "noboot.qcow2", "--arch", "aarch64", "--cloud", "nocloud",
                      "--timeout", "60", conf=conf, cwd=tmp_path, timeout=400)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    # aarch64 boots with UEFI only: one boot, under AAVMF, which says what it found
    assert lines[0].startswith("noboot.qcow2 as nocloud under aavmf: FAIL in "), lines
    assert lines[1].startswith("  FAIL ssh-login: no ssh login as debian within 60 s: the "
                               "UEFI firmware found no EFI boot loader on the disk"), lines
    logs = tmp_path / "noboot.qcow2.boot-logs"
    console = (logs / "boot-nocloud-aavmf-console.log").read_text(errors="replace")
    assert "BdsDxe" in console, console[-2000:]
    assert host_state() == before


@pytest.mark.long
def test_aarch64_generic_and_ec2_built_and_booted_under_aavmf(arm64_tree: None,
                                                              tmp_path: Path) -> None:
    before = host_state()
    conf = tmp_path / "host.conf"
    # TCG emulating arm64 on x86_64 is several times slower than x86_64 guests
    conf.write_text("[timeouts]\ninactivity = 600\ninstall = 5400\n")
    # the generic image as OpenStack (its config drive on virtio-scsi, aarch64's own) and
    # as the NoCloud seed; the EC2 one as EC2; the other profiles differ by metadata only
    spec = spec_file(tmp_path, arches=["aarch64"], variants=["generic", "ec2"], release="7",
                     formats=["qcow2", "raw.tar.xz"],
                     variant_formats={"ec2": ["qcow2", "raw.xz"]},
                     boot_test={"enabled": True, "timeout": 1800,
                                "profiles": {"generic": ["openstack", "nocloud"]}})
    done = koji_image("build", str(spec), "--output", "out", conf=conf, cwd=tmp_path,
                      timeout=4 * 3600)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = check_build(tmp_path / "out", "aarch64",
                           {"generic": ["qcow2", "raw.tar.xz"], "ec2": ["qcow2", "raw.xz"]},
                           {"generic": ["openstack", "nocloud"], "ec2": ["ec2"]},
                           ("aavmf",), boot_loader="grub-efi-arm64")
    assert {i["firmware"] for i in manifest["images"]} == {"uefi"}
    assert any(p["arch"] == "arm64" for p in manifest["arches"]["aarch64"]["packages"])
    print(f"timings: {manifest['arches']['aarch64']['timings']}")
    for i in manifest["images"]:
        print(f"{i['file']}: {i['size']} bytes")
    consoles = [(tmp_path / "out" / "logs" / b["console_log"]).read_text(errors="replace")
                for b in manifest["boot_tests"]]
    assert all("console=ttyAMA0" in c for c in consoles)
    assert host_state() == before
