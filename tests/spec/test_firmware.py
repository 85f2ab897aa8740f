"""Firmware: the spec field, each arch's choices, and the layout it puts into the install
file (read back with the real pykickstart, and as debconf reads a preseed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pykickstart.parser import KickstartParser
from pykickstart.version import DEVEL, makeVersion

from koji_image_plugin.build import installfile
from koji_image_plugin.errors import SpecError
from koji_image_plugin.spec import image, kickstart
from koji_image_plugin.spec.arches import Arch
from koji_image_plugin.spec.firmware import (
    ESP_MIB,
    BootFirmware,
    Firmware,
    layout_preseed,
    preseed_problem,
)

FEDORA = {"name": "Fedora-Cloud-Base", "version": "39", "distro": "Fedora-39",
          "arches": ["x86_64"], "install_tree": "http://tree.example/$arch/os/",
          "kickstart": "f.ks"}
DEBIAN = {"name": "Debian-Cloud", "version": "12", "distro": "Debian-12",
          "arches": ["x86_64"], "install_tree": "http://tree.example/$basearch/"}
PACKAGES_ONLY = "rootpw --lock\n%packages\nkernel\n%end\n"


def problems(tmp_path: Path, **fields: object) -> list[str]:
    return [str(p) for p in image.check({**FEDORA, **fields}, tmp_path)]


def storage(text: str) -> KickstartParser:
    parser = KickstartParser(makeVersion(DEVEL))
    parser.readKickstartFromString(text)
    return parser


def test_each_arch_has_its_firmware_and_the_boots_that_prove_it() -> None:
    assert [a.default_firmware for a in (Arch.I686, Arch.AARCH64)] == [Firmware.BIOS,
                                                                       Firmware.UEFI]
    assert Firmware.HYBRID in Arch.X86_64.firmwares
    assert Arch.X86_64.boot_firmwares(Firmware.HYBRID) == (BootFirmware.SEABIOS,
                                                           BootFirmware.OVMF)
    assert Arch.X86_64.boot_firmwares(Firmware.UEFI) == (BootFirmware.OVMF,)
    assert Arch.I686.boot_firmwares(Firmware.BIOS) == (BootFirmware.SEABIOS,)
    assert Arch.AARCH64.boot_firmwares(Firmware.UEFI) == (BootFirmware.AAVMF,)
    assert [f.ec2_boot_mode for f in Firmware] == ["legacy-bios", "uefi", "uefi-preferred"]
    assert Arch.parse("arm64") is Arch.AARCH64 and Arch.AARCH64.ec2_arch == "arm64"


def test_a_firmware_an_arch_cannot_boot_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f.ks").write_text(PACKAGES_ONLY)
    assert problems(tmp_path, arches=["x86_64", "i686"], firmware="hybrid") == [
        "firmware: hybrid is not possible on i686, which boots bios; build i686 with a "
        "spec of its own, or remove firmware to use each arch's default"]
    assert problems(tmp_path, arches=["aarch64"], firmware="bios")[0].startswith(
        "firmware: bios is not possible on aarch64, which boots uefi;")
    assert problems(tmp_path, firmware="efi") == [
        "firmware: 'efi' is not allowed; use one of: bios, uefi, hybrid"]
    spec = image.from_dict({**FEDORA, "arches": ["x86_64", "i686"]}, base_dir=tmp_path)
    assert spec.firmware is None and spec.firmware_for(Arch.I686) is Firmware.BIOS
    again = spec.replace(firmware="uefi", arches=["x86_64"])
    assert again.firmware is Firmware.UEFI and again.as_dict()["firmware"] == "uefi"


@pytest.mark.parametrize("fw,parts", [
    (Firmware.HYBRID, [("biosboot", "biosboot"), ("/boot/efi", "efi"), ("/", "ext4")]),
    (Firmware.UEFI, [("/boot/efi", "efi"), ("/", "ext4")]),
    (Firmware.BIOS, [("/", "ext4")]),
])
def test_a_kickstart_without_storage_gets_the_firmware_s_layout(
        tmp_path: Path, fw: Firmware, parts: list[tuple[str, str]]) -> None:
    (tmp_path / "f.ks").write_text(PACKAGES_ONLY)
    text = kickstart.prepare(tmp_path / "f.ks", Arch.X86_64, (), "http://t/", None, fw)
    h = storage(text).handler
    assert [(p.mountpoint, p.fstype) for p in h.partition.partitions] == parts
    assert h.clearpart.disklabel == fw.disklabel and h.zerombr.zerombr
    esp = [p for p in h.partition.partitions if p.mountpoint == "/boot/efi"]
    assert all(p.size == ESP_MIB for p in esp)


def test_a_kickstart_s_own_layout_must_boot_with_the_firmware(tmp_path: Path) -> None:
    (tmp_path / "f.ks").write_text("part / --grow\n" + PACKAGES_ONLY)
    assert problems(tmp_path, firmware="hybrid") == [
        f"kickstart: {tmp_path / 'f.ks'}: firmware hybrid boots from partitions this "
        "kickstart does not make; add part biosboot --fstype=biosboot --size=1 and part "
        "/boot/efi --fstype=efi --size=100 (or reqpart), or remove its storage commands "
        "so the layout is made for you"]
    assert problems(tmp_path, firmware="bios") == []
    (tmp_path / "f.ks").write_text("clearpart --all --disklabel=msdos\nreqpart\n"
                                   "part / --grow\n" + PACKAGES_ONLY)
    assert problems(tmp_path, firmware="hybrid") == [
        f"kickstart: {tmp_path / 'f.ks'}: clearpart --disklabel=msdos cannot make a hybrid "
        "BIOS+UEFI disk, which is GPT; use --disklabel=gpt or set the spec's firmware"]
    assert problems(tmp_path, firmware="uefi") == []  # an ESP on an MBR disk boots too
    # BIOS boots a GPT disk from a BIOS boot partition
    (tmp_path / "f.ks").write_text("clearpart --all --disklabel=gpt\npart / --grow\n"
                                   + PACKAGES_ONLY)
    assert problems(tmp_path, firmware="bios") == [
        f"kickstart: {tmp_path / 'f.ks'}: firmware bios boots from partitions this "
        "kickstart does not make; add part biosboot --fstype=biosboot --size=1 (or "
        "reqpart), or remove its storage commands so the layout is made for you"]
    (tmp_path / "f.ks").write_text("reqpart\npart / --grow\n" + PACKAGES_ONLY)
    assert problems(tmp_path, firmware="hybrid") == []  # anaconda makes biosboot and ESP
    text = kickstart.prepare(tmp_path / "f.ks", Arch.X86_64, (), "http://t/", None,
                             Firmware.HYBRID)
    assert [p.mountpoint for p in storage(text).handler.partition.partitions] == ["/"]


def test_a_preseed_gets_the_layout_unless_it_has_a_recipe_that_boots(tmp_path: Path) -> None:
    (tmp_path / "d.preseed").write_text("d-i passwd/root-login boolean false\n")
    spec = image.from_dict({**DEBIAN, "preseed": "d.preseed", "firmware": "hybrid"},
                           base_dir=tmp_path)
    text = installfile.prepared_text(spec, Arch.X86_64, ())
    assert text is not None and text.endswith(layout_preseed(Firmware.HYBRID))
    assert "method{ biosgrub }" in text and "method{ efi }" in text
    assert "choose_label select gpt" in text
    assert "method{ biosgrub }" not in layout_preseed(Firmware.UEFI)
    assert "select msdos" in layout_preseed(Firmware.BIOS)
    assert preseed_problem(text, Firmware.HYBRID) is None

    own = ("d-i partman-auto/expert_recipe string mine :: \\\n"
           "  1000 1000 -1 ext4 method{ format } mountpoint{ / } .\n")
    (tmp_path / "d.preseed").write_text(own)
    with pytest.raises(SpecError) as exc:
        image.from_dict({**DEBIAN, "preseed": "d.preseed", "firmware": "hybrid"},
                        base_dir=tmp_path)
    assert [str(p) for p in exc.value.problems] == [
        f"preseed: {tmp_path / 'd.preseed'}: its partman-auto/expert_recipe cannot boot "
        "firmware hybrid; add a 'method{ biosgrub }' partition and a 'method{ efi }' "
        "partition, or remove the recipe so the layout is made for you"]
    bios = image.from_dict({**DEBIAN, "preseed": "d.preseed", "firmware": "bios"},
                           base_dir=tmp_path)
    assert installfile.prepared_text(bios, Arch.X86_64, ()) == own  # kept as it is
    gpt = "d-i partman-partitioning/choose_label select gpt\n" + own
    assert preseed_problem(gpt, Firmware.BIOS) == (
        "its partman-auto/expert_recipe cannot boot firmware bios; add a 'method{ biosgrub "
        "}' partition, or remove the recipe so the layout is made for you")
    assert preseed_problem(gpt.replace("gpt", "msdos"), Firmware.HYBRID) == (
        "partman-partitioning/choose_label msdos cannot make a hybrid BIOS+UEFI disk, "
        "which is GPT; choose gpt, or set the spec's firmware")
