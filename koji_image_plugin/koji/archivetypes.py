"""Koji's archive types: the table of its schema (``schemas/schema.sql``,
``archivetypes``, Koji 1.36), and the hub's rule for matching a file name to one.

The hub imports a build's files by their extension and refuses the whole import on the
first it has no type for; the builder checks its names against this table first, and the
stand-in hub in tests/ serves this same table (a test checks each image format's type).
Rows in insertion order, so the row index + 1 is the id a fresh database gives each
type (``id SERIAL``): (name, description, extensions, compression_type).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from ..errors import KojiImageError

ARCHIVE_TYPES: list[tuple[str, str, str, str | None]] = [
    ('jar', 'Jar file', 'jar war rar ear sar jdocbook jdocbook-style', 'zip'),
    ('zip', 'Zip file', 'zip', 'zip'),
    ('pom', 'Maven Project Object Management file', 'pom', None),
    ('tar', 'Tar file', 'tar tar.gz tar.bz2 tar.xz tgz', 'tar'),
    ('xml', 'XML file', 'xml', None),
    ('xmlcompressed', 'Compressed XML file', 'xml.gz xml.bz2 xml.xz', None),
    ('xsd', 'XML Schema Definition', 'xsd', None),
    ('spec', 'RPM spec file', 'spec', None),
    ('exe', 'Windows executable', 'exe', None),
    ('dll', 'Windows dynamic link library', 'dll', None),
    ('lib', 'Windows import library', 'lib', None),
    ('sys', 'Windows device driver', 'sys', None),
    ('inf', 'Windows driver information file', 'inf', None),
    ('cat', 'Windows catalog file', 'cat', None),
    ('msi', 'Windows Installer package', 'msi', None),
    ('pdb', 'Windows debug information', 'pdb', None),
    ('oem', 'Windows driver oem file', 'oem', None),
    ('iso', 'CD/DVD Image', 'iso', None),
    ('raw', 'Raw disk image', 'raw', None),
    ('qcow', 'QCOW image', 'qcow', None),
    ('qcow2', 'QCOW2 image', 'qcow2', None),
    ('vmdk', 'vSphere image', 'vmdk', None),
    ('ova', 'Open Virtualization Archive', 'ova', None),
    ('ks', 'Kickstart', 'ks', None),
    ('cfg', 'Configuration file', 'cfg', None),
    ('vdi', 'VirtualBox Virtual Disk Image', 'vdi', None),
    ('aar', 'Binary distribution of an Android Library project', 'aar', None),
    ('apklib', 'Source distribution of an Android Library project', 'apklib', None),
    ('cab', 'Windows cabinet file', 'cab', None),
    ('dylib', 'OS X dynamic library', 'dylib', None),
    ('gem', 'Ruby gem', 'gem', None),
    ('ini', 'INI config file', 'ini', None),
    ('js', 'Javascript file', 'js', None),
    ('ldif', 'LDAP Data Interchange Format file', 'ldif', None),
    ('manifest', 'Runtime environment for .NET applications', 'manifest', None),
    ('msm', 'Windows merge module', 'msm', None),
    ('properties', 'Properties file', 'properties', None),
    ('sig', 'Signature file', 'sig signature', None),
    ('so', 'Shared library', 'so', None),
    ('txt', 'Text file', 'txt', None),
    ('vhd', 'Hyper-V image', 'vhd', None),
    ('vhdx', 'Hyper-V Virtual Hard Disk v2 image', 'vhdx', None),
    ('wsf', 'Windows script file', 'wsf', None),
    ('box', 'Vagrant Box Image', 'box', None),
    ('raw-xz', 'xz compressed raw disk image', 'raw.xz', None),
    ('json', 'JSON data', 'json', None),
    ('key', 'Key file', 'key', None),
    ('dot', 'DOT graph description', 'dot gv', None),
    ('groovy', 'Groovy script file', 'groovy gvy', None),
    ('batch', 'Batch file', 'bat', None),
    ('shell', 'Shell script', 'sh', None),
    ('rc', 'Resource file', 'rc', None),
    ('wsdl', 'Web Services Description Language', 'wsdl', None),
    ('obr', 'OSGi Bundle Repository', 'obr', None),
    ('liveimg-squashfs', 'liveimg compatible squashfs image', 'liveimg.squashfs', None),
    ('tlb', 'OLE type library file', 'tlb', None),
    ('jnilib', 'Java Native Interface library', 'jnilib', None),
    ('yaml', "YAML Ain't Markup Language", 'yaml yml', None),
    ('xjb', 'JAXB(Java Architecture for XML Binding) Binding Customization File', 'xjb', None),
    ('raw-gz', 'GZIP compressed raw disk image', 'raw.gz', None),
    ('qcow2-compressed', 'Compressed QCOW2 image', 'qcow2.gz qcow2.xz', None),
    ('iso-compressed', 'Compressed iso image', 'iso.gz iso.xz', None),
    ('vhd-compressed', 'Compressed VHD image', 'vhd.gz vhd.xz', None),
    ('vhdx-compressed', 'Compressed VHDx image', 'vhdx.gz vhdx.xz', None),
    ('vmdk-compressed', 'Compressed VMDK image', 'vmdk.gz vmdk.xz', None),
    ('kernel-image', 'Kernel BZ2 Image', 'vmlinuz vmlinuz.gz vmlinuz.xz', None),
    ('initramfs', 'Compressed Initramfs Image', 'img', None),
    ('checksum', 'Checksum file', 'sha256', None),
    ('changes', 'Kiwi changes file', 'changes.xz changes', None),
    ('packages', 'Kiwi packages listing', 'packages', None),
    ('verified', 'Kiwi verified package list', 'verified', None),
    ('erofs', 'erofs image', 'erofs', None),
    ('erofs-compressed', 'Compressed erofs image', 'erofs.gz erofs.xz', None),
    ('squashfs', 'SquashFS image', 'squashfs', None),
    ('squashfs-compressed', 'Compressed SquashFS image', 'squashfs.gz squashfs.xz', None),
    ('wsl', 'Compressed tarball for Windows Subsystem for Linux', 'wsl', None),
]


#: Types this project's formats need that Koji's table lacks, in the same shape. Azure's
#: ``.vhdfixed.xz`` (Fedora's name) is no ``vhd-compressed`` (``.vhd.gz .vhd.xz``) nor
#: ``vhd``: the hub would refuse it. A hub admin adds each once (``add_command``); the
#: builder checks the hub has them before a build starts.
PLUGIN_TYPES: list[tuple[str, str, str, str | None]] = [
    ('vhdfixed', 'Azure fixed VHD, xz compressed', 'vhdfixed.xz', None),
]

#: extension -> type name, e.g. ``raw.xz`` -> ``raw-xz``
EXTENSIONS = {ext: name for name, _, exts, _ in ARCHIVE_TYPES + PLUGIN_TYPES
              for ext in exts.split()}
#: The types an image build imports: disks, archives of disks, and the records beside
#: them. Koji has more (an ``.img`` would be filed as an initramfs): those are refused.
IMAGE_TYPES = frozenset({
    "qcow2", "qcow", "raw", "raw-xz", "raw-gz", "qcow2-compressed", "tar", "vmdk", "vhd",
    "vhdx", "ova", "vdi", "iso", "box", "vhdfixed", "ks", "cfg", "xml", "json", "yaml",
    "txt", "checksum"})


def add_command(filename: str) -> str | None:
    """The command a hub admin runs to add the archive type of ``filename`` (one of
    PLUGIN_TYPES, or one of Koji's that an older hub lacks); None if there is none.

    Koji's CLI has no command for it: ``koji call`` makes the hub's ``addArchiveType``
    call (admin only; name, description, extensions[, compression type]).
    """
    wanted = archive_type(filename)
    for name, description, extensions, compression in ARCHIVE_TYPES + PLUGIN_TYPES:
        if name == wanted:
            return shlex.join(["koji", "call", "addArchiveType", name, description,
                               extensions, *([compression] if compression else [])])
    return None


def archive_type(filename: str) -> str | None:
    """The hub's archive type for a file name, or None (kojihub.get_archive_type: the
    longest matching extension wins, the whole name included)."""
    parts = filename.lower().split(".")
    for start in range(len(parts)):
        found = EXTENSIONS.get(".".join(parts[start:]))
        if found:
            return found
    return None


def check_importable(names: Iterable[str]) -> None:
    """Refuse, all named at once, the file names an image build cannot import."""
    bad = sorted(n for n in names if archive_type(n) not in IMAGE_TYPES)
    if bad:
        known = ", ".join(sorted("." + e for e, t in EXTENSIONS.items() if t in IMAGE_TYPES))
        raise KojiImageError(f"files: {', '.join(bad)}: Koji has no archive type for "
                             "these extensions and would refuse the import (or would file "
                             f"them as something else); image builds import: {known}")
