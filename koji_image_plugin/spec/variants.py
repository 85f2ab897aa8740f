"""Image variants: what differs between the generic and the EC2 image of one install.

Both come from the same base disk; a variant is only an offline customization of a copy
of it (``build/customize.py`` applies it). Each variant answers its own facts here: its
cloud-init datasources, kernel console, how its files and mirror directory are named.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from .arches import Arch
from .bootprofiles import BootProfile


class _Facts(NamedTuple):
    datasources: tuple[str, ...]
    #: the clouds it is for show a screen (tty0) besides the serial log
    screen: bool
    name_tag: str
    mirror_dir: str
    productmd_subvariant: str
    profiles: tuple[BootProfile, ...]
    lenient_ec2: bool
    #: the serial port the cloud's own machines of an arch have where it is not the one
    #: qemu's machine of that arch has (the boot test's)
    cloud_serial: tuple[tuple[Arch, str], ...] = ()


class Variant(enum.StrEnum):
    GENERIC = "generic"
    EC2 = "ec2"

    @property
    def datasources(self) -> tuple[str, ...]:
        """cloud-init datasources, most specific first; NoCloud stays so any variant can
        be booted with a seed disk (the boot test does)."""
        return _FACTS[self].datasources

    def console_args(self, arch: Arch) -> str:
        """Kernel console: clouds with a screen get tty0 too; EC2 has only the serial log.
        Where the cloud's machines have another serial port than qemu's (EC2's Graviton
        instances: ttyS0, not the ``virt`` machine's ttyAMA0), both are named, qemu's
        last: on each machine the one that exists becomes the console."""
        own = arch.console_args(_FACTS[self].screen)
        other = dict(_FACTS[self].cloud_serial).get(arch)
        return f"console={other},115200n8 {own}" if other else own

    @property
    def name_tag(self) -> str:
        """What the variant adds to file names ("" for generic, Fedora's "EC2" for ec2)."""
        return _FACTS[self].name_tag

    @property
    def mirror_dir(self) -> str:
        """The directory of this image type in a drop, as Fedora's mirrors spell it."""
        return _FACTS[self].mirror_dir

    @property
    def productmd_subvariant(self) -> str:
        """productmd's subvariant of this image type (images.json)."""
        return _FACTS[self].productmd_subvariant

    @property
    def lenient_ec2(self) -> bool:
        """Whether cloud-init must try EC2's metadata service on a machine that does not
        look like AWS (Eucalyptus and other EC2-compatible clouds with plain KVM DMI):
        ds-identify then enables the datasources it is unsure of (``maybe=all``) and Ec2
        is not strict about the platform. The ec2 variant is for AWS alone."""
        return _FACTS[self].lenient_ec2

    @property
    def profiles(self) -> tuple[BootProfile, ...]:
        """The clouds this variant is for: its boot test boots it as each of them sees
        an instance (the spec's ``boot_test.profiles`` may choose others)."""
        return _FACTS[self].profiles


_FACTS = {
    Variant.GENERIC: _Facts(
        datasources=("NoCloud", "ConfigDrive", "OpenStack", "CloudStack", "Ec2", "None"),
        screen=True,
        name_tag="", mirror_dir="generic", productmd_subvariant="Cloud_Base",
        profiles=(BootProfile.OPENSTACK, BootProfile.CLOUDSTACK, BootProfile.EUCALYPTUS,
                  BootProfile.NOCLOUD), lenient_ec2=True),
    Variant.EC2: _Facts(
        datasources=("Ec2", "NoCloud", "None"),
        screen=False,
        name_tag="EC2", mirror_dir="EC2", productmd_subvariant="Cloud_Base_EC2",
        profiles=(BootProfile.EC2,), lenient_ec2=False,
        # Graviton's UART is a 16550 (ACPI SPCR): ttyS0, as on EC2's x86 instances
        cloud_serial=((Arch.AARCH64, "ttyS0"),)),
}
