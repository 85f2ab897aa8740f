"""The qemu command line of one profile boot: what the guest's firmware, disk bus and
network say about the cloud it runs in.

- nocloud: plain QEMU DMI, virtio disk, the seed on a second virtio disk;
- openstack: Nova's SMBIOS (``OpenStack Nova``), virtio disk, the config drive as an
  IDE CD-ROM, as libvirt attaches it for Nova (a virtio-scsi CD-ROM on aarch64);
- ec2: DMI uuid and serial starting ``ec2`` (cloud-init's and ds-identify's test for
  AWS), the root disk on NVMe (as on Nitro), the metadata service at 169.254.169.254;
- eucalyptus: the EC2 protocol without tokens on plain KVM DMI and a virtio disk;
- cloudstack: CloudStack's DMI product, the virtual router being the DHCP server.

Every guest has one virtio NIC on qemu's user network with its ssh port forwarded to
loopback, and boots with the firmware under test (``firmware.py``: SeaBIOS, or OVMF /
AAVMF with its own copy of the variable store). Host tools: qemu-system-*.
"""

from __future__ import annotations

import secrets
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from ...spec.arches import Arch
from ...spec.bootprofiles import BootProfile
from ...spec.firmware import BootFirmware
from ...spec.hostconfig import HostConfig
from . import firmware, relay
from .instance import Instance
from .metadata import IMDS_ADDRESS

#: the user network of guests that reach EC2's metadata service: 169.254.169.254 must
#: lie inside it for qemu to forward it (guests get .15 and up)
LINK_LOCAL_NET = "net=169.254.169.0/24,host=169.254.169.1,dhcpstart=169.254.169.15"
LINK_LOCAL_GUEST = "169.254.169.15"
#: qemu's default user network's first guest address
DEFAULT_GUEST = "10.0.2.15"


@dataclass(frozen=True)
class Boot:
    """One guest to start: its instance, its disk, and where things are."""

    arch: Arch
    inst: Instance
    overlay: Path
    console: Path
    ssh_port: int
    #: the seed or config drive, for the profiles that use one
    drive: Path | None = None
    #: the loopback port of the metadata server the guest's 169.254.169.254:80 reaches
    imds_port: int | None = None
    firmware: BootFirmware = BootFirmware.SEABIOS
    #: this boot's copy of the UEFI variable store
    vars_copy: Path | None = None


def guest_ip(profile: BootProfile) -> str:
    """The address the guest's DHCP gives it (what the metadata says it has)."""
    return LINK_LOCAL_GUEST if uses_imds(profile) else DEFAULT_GUEST


def uses_imds(profile: BootProfile) -> bool:
    return profile in (BootProfile.EC2, BootProfile.EUCALYPTUS)


def smbios(profile: BootProfile, inst: Instance) -> list[str]:
    if profile is BootProfile.OPENSTACK:
        return ["-smbios", "type=1,manufacturer=OpenStack Foundation,"
                f"product=OpenStack Nova,serial={inst.instance_id},"
                f"uuid={inst.instance_id},family=Virtual Machine"]
    if profile is BootProfile.EC2:
        ec2_uuid = "ec2" + str(uuid.uuid4())[3:]
        return ["-smbios", f"type=1,manufacturer=Amazon EC2,product=t3.small,"
                f"serial={ec2_uuid},uuid={ec2_uuid}"]
    if profile is BootProfile.CLOUDSTACK:
        return ["-smbios", "type=1,manufacturer=Apache Software Foundation,"
                f"product=CloudStack KVM Hypervisor,uuid={inst.instance_id}"]
    return []


def disks(boot: Boot) -> list[str]:
    root = f"file={boot.overlay},format=qcow2"
    if boot.inst.profile is BootProfile.EC2:
        out = ["-drive", f"{root},if=none,id=root",
               "-device", f"nvme,drive=root,serial=vol{secrets.token_hex(8)}"]
    else:
        out = ["-drive", f"{root},if=virtio"]
    if boot.drive is not None and boot.inst.profile is BootProfile.OPENSTACK:
        out += config_drive(boot.arch, boot.drive)
    elif boot.drive is not None:
        out += ["-drive", f"file={boot.drive},if=virtio,format=raw,readonly=on"]
    return out


def config_drive(arch: Arch, drive: Path) -> list[str]:
    """The config drive as Nova's libvirt driver attaches it: a CD-ROM on the IDE bus of
    a PC, on virtio-scsi where the machine has no IDE (arm's ``virt``)."""
    cd = f"file={drive},media=cdrom,readonly=on,format=raw"
    if arch is Arch.AARCH64:
        return ["-device", "virtio-scsi-pci,id=scsi", "-drive", f"{cd},if=none,id=cd",
                "-device", "scsi-cd,drive=cd,bus=scsi.0"]
    return ["-drive", f"{cd},if=ide"]


def relay_command(port: int) -> str:
    """What qemu runs per guest connection to the metadata address (``relay.py``)."""
    return f"{sys.executable} -S -I {Path(relay.__file__).resolve()} 127.0.0.1 {port}"


def nic(boot: Boot) -> list[str]:
    opts = ["user", "model=virtio-net-pci", f"mac={boot.inst.mac}",
            f"hostfwd=tcp:127.0.0.1:{boot.ssh_port}-:22"]
    if uses_imds(boot.inst.profile):
        assert boot.imds_port is not None
        opts += [LINK_LOCAL_NET,
                 f"guestfwd=tcp:{IMDS_ADDRESS}:80-cmd:{relay_command(boot.imds_port)}"]
    return ["-nic", ",".join(opts)]


def qemu_argv(boot: Boot, host: HostConfig) -> list[str]:
    return [
        boot.arch.qemu_system,
        "-accel", host.accel,
        *boot.arch.qemu_machine(host.accel),
        *firmware.argv(boot.firmware, boot.vars_copy),
        "-m", str(host.boot_memory_mb),
        "-smp", str(host.boot_cpus),
        "-display", "none",
        "-nodefaults",
        "-no-reboot",
        "-serial", f"file:{boot.console}",
        *smbios(boot.inst.profile, boot.inst),
        *disks(boot),
        *nic(boot),
    ]
