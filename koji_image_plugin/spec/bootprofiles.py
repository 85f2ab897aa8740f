"""Boot-test profiles: each a cloud's own way of handing an instance its identity.

A profile names what the boot test presents to the guest (``build/boot/`` makes it real:
the firmware's DMI, the disk bus, the metadata source) and which cloud-init datasource
must then have found the instance. The facts of each profile live here, once.
"""

from __future__ import annotations

import enum
from typing import NamedTuple


class _Facts(NamedTuple):
    label: str
    datasource: str


class BootProfile(enum.StrEnum):
    NOCLOUD = "nocloud"
    OPENSTACK = "openstack"
    EC2 = "ec2"
    EUCALYPTUS = "eucalyptus"
    CLOUDSTACK = "cloudstack"

    @property
    def label(self) -> str:
        """How the drop README, the index page and ``cloud-image-info`` name it."""
        return _FACTS[self].label

    @property
    def datasource(self) -> str:
        """The cloud-init datasource that must find the instance (``DataSource<this>``,
        its ``Local`` form too)."""
        return _FACTS[self].datasource


_FACTS = {
    BootProfile.NOCLOUD: _Facts("NoCloud seed", "NoCloud"),
    BootProfile.OPENSTACK: _Facts("OpenStack config drive", "ConfigDrive"),
    BootProfile.EC2: _Facts("EC2 IMDSv2 + NVMe", "Ec2"),
    BootProfile.EUCALYPTUS: _Facts("Eucalyptus", "Ec2"),
    BootProfile.CLOUDSTACK: _Facts("CloudStack", "CloudStack"),
}


def titles(profiles: list[str]) -> str:
    """``booted on: ...`` for people: the profiles' titles, unknown names as given."""
    known = {p.value: p.label for p in BootProfile}
    return ", ".join(known.get(p, p) for p in profiles)
