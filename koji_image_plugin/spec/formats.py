"""Output formats and the facts each one answers: its file extension, the name Koji's
``image-build --format`` gives it, the hub's archive type, productmd's type, how it is
compressed. The writers are in ``build/formats/``, one module each, keyed by this enum.
"""

from __future__ import annotations

import enum
from typing import NamedTuple


class _Facts(NamedTuple):
    extension: str
    koji_name: str
    koji_archive_type: str
    compression: str
    productmd: tuple[str, str]
    #: the arches whose images it can carry (None: every arch)
    arches: tuple[str, ...] | None = None


class ImageFormat(enum.StrEnum):
    QCOW2 = "qcow2"
    RAW_TAR_XZ = "raw.tar.xz"
    RAW_XZ = "raw.xz"
    VMDK = "vmdk"
    VHD = "vhd"
    GCE = "gce"
    VAGRANT_LIBVIRT = "vagrant-libvirt"
    VAGRANT_VIRTUALBOX = "vagrant-virtualbox"

    @property
    def extension(self) -> str:
        """The file name ending, as Fedora's mirrors spell it (Koji's archive type matches
        files by it)."""
        return _FACTS[self].extension

    @property
    def koji_archive_type(self) -> str:
        """The hub's archive type name (it matches files by extension on import)."""
        return _FACTS[self].koji_archive_type

    @property
    def koji_name(self) -> str:
        """The name Koji's built-in ``image-build --format`` uses."""
        return _FACTS[self].koji_name

    @property
    def compression(self) -> str:
        return _FACTS[self].compression

    @property
    def uses_xz(self) -> bool:
        return self.compression == "xz"

    @property
    def productmd(self) -> tuple[str, str]:
        """productmd's (type, format) of an image in this format (images.json)."""
        return _FACTS[self].productmd

    @property
    def arches(self) -> tuple[str, ...] | None:
        """The arches (Koji's names) an image in this format can be for; None: any."""
        return _FACTS[self].arches

    @classmethod
    def from_koji(cls, name: str) -> ImageFormat:
        return cls(from_koji_name(name))


_FACTS = {
    ImageFormat.QCOW2: _Facts("qcow2", "qcow2", "qcow2", "zlib (qcow2 compressed clusters)",
                              ("qcow2", "qcow2")),
    ImageFormat.RAW_TAR_XZ: _Facts("raw.tar.xz", "raw.tar.xz", "tar", "xz", ("raw", "tar.xz")),
    ImageFormat.RAW_XZ: _Facts("raw.xz", "raw-xz", "raw-xz", "xz", ("raw-xz", "raw.xz")),
    ImageFormat.VMDK: _Facts("vmdk", "vmdk", "vmdk", "deflate (streamOptimized grains)",
                             ("vmdk", "vmdk")),
    # Koji's stock types have no ".vhdfixed.xz" (vhd-compressed is .vhd.gz .vhd.xz): the
    # hub needs the type VHDFIXED_ARCHIVE_TYPE (koji/archivetypes.py) added once.
    ImageFormat.VHD: _Facts("vhdfixed.xz", "vpc", "vhdfixed", "xz",
                            ("vhd-compressed", "vhdfixed.xz")),
    # Koji's "tar-gz" is the same GCE tarball (kojid's _buildTarGZ).
    ImageFormat.GCE: _Facts("tar.gz", "tar-gz", "tar", "gzip", ("tar-gz", "tar.gz")),
    # The disks inside are compressed already (qcow2 clusters, streamOptimized grains), so
    # the boxes are plain tars, as imagefactory's VirtualBox box is.
    ImageFormat.VAGRANT_LIBVIRT: _Facts(
        "vagrant.libvirt.box", "vagrant-libvirt", "box", "zlib (qcow2 compressed clusters)",
        ("vagrant-libvirt", "vagrant-libvirt.box")),
    ImageFormat.VAGRANT_VIRTUALBOX: _Facts(
        "vagrant.virtualbox.box", "vagrant-virtualbox", "box",
        "deflate (streamOptimized grains)", ("vagrant-virtualbox", "vagrant-virtualbox.box"),
        # VirtualBox's OVF names x86 guests only (Fedora ships no aarch64 VirtualBox box)
        arches=("x86_64", "i686")),
}


def from_koji_name(name: str) -> str:
    """This project's name for a Koji ``--format`` name; other names pass through, for
    the schema to report with the allowed values."""
    for fmt, facts in _FACTS.items():
        if name == facts.koji_name:
            return fmt.value
    return name


#: File name endings of disks a hypervisor boots as they are, and qemu's / Glance's
#: ``disk_format`` for each (compressed outputs must be unpacked first).
BOOTABLE = {".qcow2": "qcow2", ".raw": "raw", ".img": "raw"}


def disk_format(name: str) -> str | None:
    """qemu's and Glance's disk format of a bootable file, by its name; None if it is not
    one (a ``.raw.xz`` must be unpacked first)."""
    return next((f for ext, f in BOOTABLE.items() if name.endswith(ext)), None)
