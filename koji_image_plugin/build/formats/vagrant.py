"""Vagrant boxes: a tar of the disk, ``metadata.json`` and a ``Vagrantfile``. Tools:
qemu-img, tar.

- vagrant-libvirt: ``box.img`` (qcow2) with ``{"provider": "libvirt", "format": "qcow2",
  "virtual_size": GiB}``, the layout vagrant-libvirt reads;
- vagrant-virtualbox: ``box.ovf`` (``ovf.py``) and ``box-disk001.vmdk``
  (streamOptimized) with ``{"provider": "virtualbox"}``, what VirtualBox imports.

The disks are compressed already (qcow2 clusters, VMDK grains), so the tar is not, as
imagefactory's VirtualBox box is not. Cloud images have no VirtualBox guest additions or
NFS server set up, so the Vagrantfile syncs ``/vagrant`` with rsync. The disk is written
in a temporary directory beside the box, removed whatever happens.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import ClassVar

from ...checksums import Digest
from ...errors import KojiImageError
from ...runner import Runner
from ...spec.formats import ImageFormat
from . import ovf
from .base import ConvertOptions, Writer, write_stream
from .qcow2 import Qcow2
from .vmdk import Vmdk

GiB = 1 << 30

VAGRANTFILE = """\
Vagrant.configure("2") do |config|
  config.vm.synced_folder ".", "/vagrant", type: "rsync"
{provider}end
"""


class Box(Writer):
    """What both boxes share; a subclass names its disk and its other files."""

    disk_member: ClassVar[str]
    disk_writer: ClassVar[type[Writer]]

    def members(self) -> list[str]:
        """The tar's members, in order."""
        raise NotImplementedError

    def files(self, raw: Path, disk: Path, opts: ConvertOptions) -> dict[str, bytes]:
        """The files beside the disk, made once the disk is written."""
        raise NotImplementedError

    def commands(self, raw: Path, dest: Path, opts: ConvertOptions) -> list[list[str]]:
        """The disk is written beside ``dest`` (``write`` gives a temporary ``dest``),
        then tar streams the box."""
        (disk_argv,) = self.disk_writer().commands(raw, dest.parent / self.disk_member, opts)
        return [disk_argv, [
            "tar",
            "--create",
            "--format=gnu",
            "--file=-",
            f"--directory={dest.parent}",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "--mode=0644",
            f"--mtime=@{opts.mtime}",
            *self.members(),
        ]]

    def write(self, raw: Path, dest: Path, opts: ConvertOptions, runner: Runner,
              log_name: str) -> Digest:
        self.check(opts)
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as tmp:
            disk_argv, tar = self.commands(raw, Path(tmp) / dest.name, opts)
            runner.run(disk_argv, log_name=log_name)
            for name, data in self.files(raw, Path(tmp) / self.disk_member, opts).items():
                (Path(tmp) / name).write_bytes(data)
            return write_stream([tar], dest, runner, log_name)

    def same_content(self, path: Path, raw: Path, raw_sha256: str, runner: Runner,
                     log_name: str) -> bool:
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
            runner.run([
                "tar",
                "--extract",
                f"--file={path}",
                f"--directory={tmp}",
                self.disk_member,
            ], log_name=log_name)
            return self.disk_writer().same_content(Path(tmp) / self.disk_member, raw,
                                                   raw_sha256, runner, log_name)


class VagrantLibvirt(Box):
    fmt = ImageFormat.VAGRANT_LIBVIRT
    disk_member = "box.img"
    disk_writer = Qcow2

    def members(self) -> list[str]:
        return ["metadata.json", "Vagrantfile", self.disk_member]

    def files(self, raw: Path, disk: Path, opts: ConvertOptions) -> dict[str, bytes]:
        gib = -(-raw.stat().st_size // GiB)
        metadata = {"provider": "libvirt", "format": "qcow2", "virtual_size": gib}
        provider = ("  config.vm.provider :libvirt do |libvirt|\n"
                    "    libvirt.driver = \"kvm\"\n"
                    "  end\n")
        return {"metadata.json": json.dumps(metadata).encode() + b"\n",
                "Vagrantfile": VAGRANTFILE.format(provider=provider).encode()}


class VagrantVirtualbox(Box):
    fmt = ImageFormat.VAGRANT_VIRTUALBOX
    disk_member = "box-disk001.vmdk"
    disk_writer = Vmdk

    def members(self) -> list[str]:
        # the descriptor first, as in an OVA
        return ["box.ovf", self.disk_member, "metadata.json", "Vagrantfile"]

    def check(self, opts: ConvertOptions) -> None:
        if opts.arch not in ovf.OS_TYPES:
            raise KojiImageError(f"vagrant-virtualbox: VirtualBox boxes are made for "
                                 f"{', '.join(ovf.OS_TYPES)}, not {opts.arch}")

    def files(self, raw: Path, disk: Path, opts: ConvertOptions) -> dict[str, bytes]:
        machine = ovf.Machine(name="box", disk_file=self.disk_member,
                              disk_file_size=disk.stat().st_size,
                              capacity=raw.stat().st_size, arch=opts.arch)
        return {"box.ovf": ovf.descriptor(machine),
                "metadata.json": json.dumps({"provider": "virtualbox"}).encode() + b"\n",
                "Vagrantfile": VAGRANTFILE.format(provider="").encode()}
