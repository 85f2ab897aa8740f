"""Distributions: which versions this project installs, and everything that follows from
the family (the unattended install file and its name, the install tree's layout).

The kickstart-or-preseed question is answered here once: Fedora installs read a
kickstart, Debian installs a preseed.
"""

from __future__ import annotations

import enum
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .arches import Arch

DATA = Path(__file__).resolve().parent.parent / "data"


class _Facts(NamedTuple):
    versions: range
    auto_key: str
    auto_suffix: str
    default_auto_file: Path | None
    tree_files: tuple[str, ...]
    os_distro: str
    koji_repo: bool
    package_db: str
    cloud_user: str


class Family(enum.StrEnum):
    DEBIAN = "Debian"
    FEDORA = "Fedora"

    @property
    def versions(self) -> range:
        """The release numbers this project installs (see build/oz/compat.py for Oz)."""
        return _FACTS[self].versions

    @property
    def auto_key(self) -> str:
        """The spec field of the unattended install file: ``kickstart`` or ``preseed``."""
        return _FACTS[self].auto_key

    @property
    def auto_suffix(self) -> str:
        """How a build keeps that file: ``NVR.ks`` (Koji's kickstart archive type) or
        ``NVR.preseed.cfg``."""
        return _FACTS[self].auto_suffix

    @property
    def default_auto_file(self) -> Path | None:
        return _FACTS[self].default_auto_file

    @property
    def tree_files(self) -> tuple[str, ...]:
        """What an install tree holds (any one will do); ``{deb}`` is Debian's arch name."""
        return _FACTS[self].tree_files

    @property
    def os_distro(self) -> str:
        """OpenStack's ``os_distro`` name."""
        return _FACTS[self].os_distro

    @property
    def koji_repo(self) -> bool:
        """Whether a hub build installs from the build tag's Koji repo (an RPM repo: a
        Fedora install does; a Debian install has no use for one)."""
        return _FACTS[self].koji_repo

    @property
    def package_db(self) -> str:
        """Where an image of this family lists its packages: ``dpkg`` or ``rpm``."""
        return _FACTS[self].package_db

    @property
    def cloud_user(self) -> str:
        """The user cloud-init makes on this family's cloud images (its default_user)."""
        return _FACTS[self].cloud_user

    def basearch(self, arch: Arch) -> str:
        """What ``$basearch`` means in this family's install tree URLs."""
        return arch.deb_arch if self is Family.DEBIAN else arch.rpm_basearch


_FACTS = {
    Family.DEBIAN: _Facts(range(7, 14), "preseed", "preseed.cfg", DATA / "debian.preseed",
                          ("debian-installer/{deb}/linux", "mini.iso"), "debian", False, "dpkg",
                          "debian"),
    Family.FEDORA: _Facts(range(7, 45), "kickstart", "ks", None,
                          ("images/pxeboot/vmlinuz", ".treeinfo"), "fedora", True, "rpm",
                          "fedora"),
}
AUTO_KEYS = tuple(sorted({f.auto_key for f in _FACTS.values()}))


@dataclass(frozen=True)
class Distro:
    family: Family
    version: str

    @classmethod
    def parse(cls, text: str) -> Distro:
        family, _, version = text.partition("-")
        return cls(Family(family), version)

    def __str__(self) -> str:
        return f"{self.family}-{self.version}"

    @property
    def supported(self) -> bool:
        if self.version == "rawhide":
            return self.family is Family.FEDORA
        return int(self.version) in self.family.versions


def auto_file_key(data: MutableMapping[str, Any]) -> str:
    """The key of a raw request's install file, by its distro: ``preseed`` for Debian,
    ``kickstart`` otherwise. A Debian ``kickstart`` (Koji's only name for it) is moved
    to ``preseed``."""
    debian = str(data.get("distro", "")).startswith(Family.DEBIAN.value)
    if debian and "kickstart" in data:
        data["preseed"] = data.pop("kickstart")
    return Family.DEBIAN.auto_key if debian else Family.FEDORA.auto_key
