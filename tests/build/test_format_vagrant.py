"""Vagrant boxes: argv, bad options, and real runs of qemu-img and tar, inspected with
python's tarfile and ElementTree and qemu-img."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from koji_image_plugin.build.formats import ConvertOptions, Writer, ovf, vagrant
from koji_image_plugin.build.formats import writer as writer_of
from koji_image_plugin.errors import KojiImageError, ToolError
from koji_image_plugin.runner import Runner
from koji_image_plugin.spec.formats import ImageFormat

NS = {"ovf": ovf.OVF, "rasd": ovf.RASD, "vssd": ovf.VSSD, "vbox": ovf.VBOX}


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def qemu_info(path: Path) -> dict[str, object]:
    out = subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True,
                         capture_output=True, text=True).stdout
    info: dict[str, object] = json.loads(out)
    return info


def extract(box: Path, dest: Path) -> list[tarfile.TarInfo]:
    """The box's members, extracted into ``dest``."""
    with tarfile.open(box, "r:") as tar:  # a plain tar: the disks are compressed already
        tar.extractall(dest)  # our own output
        return tar.getmembers()


def test_the_shared_base_is_no_format() -> None:
    assert vagrant.Box not in Writer.registry.values()
    assert isinstance(writer_of(ImageFormat.VAGRANT_LIBVIRT), vagrant.VagrantLibvirt)


def test_libvirt_box_argv_is_a_compressed_qcow2_then_a_tar() -> None:
    disk, tar = writer_of(ImageFormat.VAGRANT_LIBVIRT).commands(
        Path("/w/disk.raw"), Path("/t/x.vagrant.libvirt.box"), ConvertOptions(mtime=7))
    assert disk == ["qemu-img", "convert", "-c", "-W", "-f", "raw", "-O", "qcow2",
                    "-o", "compat=1.1", "/w/disk.raw", "/t/box.img"]
    assert tar[:4] == ["tar", "--create", "--format=gnu", "--file=-"]
    assert "--directory=/t" in tar and "--mtime=@7" in tar
    assert tar[-3:] == ["metadata.json", "Vagrantfile", "box.img"]


def test_virtualbox_box_argv_is_a_stream_optimized_vmdk_then_a_tar() -> None:
    disk, tar = writer_of(ImageFormat.VAGRANT_VIRTUALBOX).commands(
        Path("/w/disk.raw"), Path("/t/x.vagrant.virtualbox.box"), ConvertOptions())
    assert disk == ["qemu-img", "convert", "-f", "raw", "-O", "vmdk",
                    "-o", "subformat=streamOptimized", "/w/disk.raw", "/t/box-disk001.vmdk"]
    assert tar[-4:] == ["box.ovf", "box-disk001.vmdk", "metadata.json", "Vagrantfile"]


def test_libvirt_box_holds_a_qcow2_of_the_disk_and_its_metadata(
        small_disk: Path, runner: Runner, tmp_path: Path) -> None:
    dest = tmp_path / "Cloud-Vagrant-libvirt-1-1.x86_64.vagrant.libvirt.box"
    w = writer_of(ImageFormat.VAGRANT_LIBVIRT)
    before = {p.name for p in tmp_path.iterdir()}
    digest = w.write(small_disk, dest, ConvertOptions(mtime=1700000000), runner, "conv")
    assert digest.sha256 == sha256(dest)
    assert {p.name for p in tmp_path.iterdir()} - before == {dest.name}
    out = tmp_path / "x"
    members = extract(dest, out)
    assert [m.name for m in members] == ["metadata.json", "Vagrantfile", "box.img"]
    assert all(m.mtime == 1700000000 and m.uid == 0 for m in members)
    assert json.loads((out / "metadata.json").read_text()) == {
        "provider": "libvirt", "format": "qcow2", "virtual_size": 1}  # 64 MiB -> 1 GiB
    assert ":libvirt" in (out / "Vagrantfile").read_text()
    info = qemu_info(out / "box.img")
    assert info["format"] == "qcow2" and info["virtual-size"] == small_disk.stat().st_size
    assert subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "raw",
                           str(out / "box.img"), str(small_disk)]).returncode == 0
    assert w.same_content(dest, small_disk, sha256(small_disk), runner, "verify")


def test_virtualbox_box_holds_an_ovf_that_describes_its_vmdk(
        small_disk: Path, runner: Runner, tmp_path: Path) -> None:
    dest = tmp_path / "Cloud-Vagrant-VirtualBox-1-1.x86_64.vagrant.virtualbox.box"
    w = writer_of(ImageFormat.VAGRANT_VIRTUALBOX)
    w.write(small_disk, dest, ConvertOptions(), runner, "conv")
    out = tmp_path / "x"
    members = extract(dest, out)
    assert [m.name for m in members] == ["box.ovf", "box-disk001.vmdk", "metadata.json",
                                         "Vagrantfile"]
    assert json.loads((out / "metadata.json").read_text()) == {"provider": "virtualbox"}
    vmdk = out / "box-disk001.vmdk"
    info = qemu_info(vmdk)
    assert info["format"] == "vmdk" and info["virtual-size"] == small_disk.stat().st_size
    assert info["format-specific"]["data"]["create-type"] == "streamOptimized"  # type: ignore
    root = ET.parse(out / "box.ovf").getroot()
    assert root.tag == f"{{{ovf.OVF}}}Envelope"
    file = root.find("ovf:References/ovf:File", NS)
    assert file is not None and file.get(f"{{{ovf.OVF}}}href") == vmdk.name
    assert file.get(f"{{{ovf.OVF}}}size") == str(vmdk.stat().st_size)
    disk = root.find("ovf:DiskSection/ovf:Disk", NS)
    assert disk is not None
    assert disk.get(f"{{{ovf.OVF}}}capacity") == str(small_disk.stat().st_size)
    assert disk.get(f"{{{ovf.OVF}}}format") == ovf.STREAM_OPTIMIZED
    assert root.findtext("ovf:VirtualSystem/ovf:OperatingSystemSection/vbox:OSType",
                         namespaces=NS) == "Linux26_64"
    items = {i.findtext("rasd:InstanceID", namespaces=NS): i
             for i in root.iterfind("ovf:VirtualSystem/ovf:VirtualHardwareSection/ovf:Item",
                                    NS)}
    kinds = {k: i.findtext("rasd:ResourceType", namespaces=NS) for k, i in items.items()}
    assert sorted(kinds.values()) == ["10", "17", "20", "3", "4"]
    (hd,) = [i for i in items.values() if i.findtext("rasd:ResourceType", namespaces=NS) == "17"]
    assert hd.findtext("rasd:HostResource", namespaces=NS) == "/disk/vmdisk1"
    assert kinds[hd.findtext("rasd:Parent", namespaces=NS)] == "20"  # on the SATA controller
    for item in items.values():  # the RASD schema's element order
        tags = [c.tag for c in item]
        assert tags == sorted(tags)
    assert w.same_content(dest, small_disk, sha256(small_disk), runner, "verify")


def test_a_32_bit_box_says_so_and_other_arches_are_refused(small_disk: Path, runner: Runner,
                                                            tmp_path: Path) -> None:
    m = ovf.Machine(name="box", disk_file="d.vmdk", disk_file_size=1, capacity=2, arch="i686")
    assert b'ovf:id="101"' in ovf.descriptor(m) and b">Linux26<" in ovf.descriptor(m)
    with pytest.raises(ValueError, match="not aarch64"):
        ovf.descriptor(ovf.Machine("box", "d.vmdk", 1, 2, arch="aarch64"))
    dest = tmp_path / "x.vagrant.virtualbox.box"
    with pytest.raises(KojiImageError, match="made for x86_64, i686, not aarch64"):
        writer_of(ImageFormat.VAGRANT_VIRTUALBOX).write(
            small_disk, dest, ConvertOptions(arch="aarch64"), runner, "conv")
    assert not dest.exists() and not (tmp_path / "logs" / "conv.log").exists()  # no tool ran


def test_a_box_without_its_disk_fails_verification(small_disk: Path, runner: Runner,
                                                   tmp_path: Path) -> None:
    box = tmp_path / "empty.vagrant.libvirt.box"
    (tmp_path / "metadata.json").write_text("{}")
    subprocess.run(["tar", "-cf", str(box), "-C", str(tmp_path), "metadata.json"], check=True)
    with pytest.raises(ToolError) as info:
        writer_of(ImageFormat.VAGRANT_LIBVIRT).same_content(box, small_disk,
                                                            sha256(small_disk), runner, "v")
    assert "box.img: Not found in archive" in info.value.tail
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []
