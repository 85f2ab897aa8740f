"""Offline work on a raw disk: mount its root filesystem, zero its free space, read its
package list. Everything mounted or attached is torn down on exit, on error or on Ctrl-C.

Partitions are attached as loop devices with an offset (``losetup --offset
--sizelimit``), which needs neither partition nodes (``losetup -P`` makes none in
containers) nor device-mapper (kpartx). Host tools: sfdisk, losetup, mount, umount,
fstrim, blkid. Needs root.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HostError, KojiImageError
from ..files import within
from ..runner import Runner
from ..spec.distro import Family
from . import rpmdb

SECTOR = 512
LINUX_TYPES = {"83", "0fc63daf-8483-4772-8e79-3d69d8477de4",
               "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "44479540-f297-41b2-9af7-d131d5f0458a"}


@dataclass(frozen=True)
class Partition:
    number: int
    start: int  # bytes
    size: int   # bytes
    type: str


def partitions(raw: Path, runner: Runner, log_name: str) -> list[Partition]:
    """The disk's Linux partitions (one pseudo-partition for a bare filesystem)."""
    out = runner.run(["sfdisk", "--json", str(raw)], log_name=log_name, capture=True,
                     ok_codes=(0, 1))
    if not out.strip():
        return [Partition(0, 0, raw.stat().st_size, "83")]
    table = json.loads(out)["partitiontable"]
    parts = []
    for i, p in enumerate(table.get("partitions", []), start=1):
        ptype = str(p.get("type", "")).lower()
        if ptype in LINUX_TYPES:
            parts.append(Partition(i, p["start"] * SECTOR, p["size"] * SECTOR, ptype))
    return parts


def require_root() -> None:
    if os.geteuid() != 0:
        raise HostError("mounting image filesystems needs root; run koji-image as root")


@contextmanager
def loop_device(raw: Path, part: Partition, runner: Runner, log_name: str) -> Iterator[str]:
    dev = runner.run([
        "losetup",
        "--find",
        "--show",
        f"--offset={part.start}",
        f"--sizelimit={part.size}",
        str(raw),
    ], log_name=log_name, capture=True).strip()
    try:
        yield dev
    finally:
        runner.run(["losetup", "--detach", dev], log_name=log_name, cleanup=True)


@contextmanager
def mounted(dev: str, runner: Runner, log_name: str, workdir: Path) -> Iterator[Path]:
    mnt = Path(tempfile.mkdtemp(prefix="mnt-", dir=workdir))
    try:
        runner.run(["mount", dev, str(mnt)], log_name=log_name)
        try:
            yield mnt
        finally:
            runner.run(["umount", str(mnt)], log_name=log_name, cleanup=True)
    finally:
        mnt.rmdir()


@contextmanager
def mount_root(raw: Path, runner: Runner, log_name: str, workdir: Path
               ) -> Iterator[tuple[Path, list[Path]]]:
    """Mount every Linux filesystem of ``raw``; yield (root mount, all mounts)."""
    require_root()
    with ExitStack() as stack:
        mounts = []
        root = None
        for part in partitions(raw, runner, log_name):
            dev = stack.enter_context(loop_device(raw, part, runner, log_name))
            fstype = runner.run(["blkid", "-o", "value", "-s", "TYPE", dev],
                                log_name=log_name, capture=True, ok_codes=(0, 2)).strip()
            if not fstype or fstype == "swap":
                continue
            mnt = stack.enter_context(mounted(dev, runner, log_name, workdir))
            mounts.append(mnt)
            if root is None and (mnt / "etc/os-release").exists():
                root = mnt
        if root is None:
            raise KojiImageError(f"{raw}: no partition holds a root filesystem "
                                 "(no etc/os-release found); did the install complete?")
        yield root, mounts


def zero_free_space(mnt: Path, runner: Runner, log_name: str) -> None:
    """Make the free blocks read as zeros, so compressed size tracks used space.

    ``fstrim`` on a loop device punches holes in the image file (the fastest way, and
    the file gets sparser); where discard is not supported, fill the free space with
    zeros and delete the filler.
    """
    try:
        runner.run(["fstrim", "--verbose", str(mnt)], log_name=log_name)
        return
    except KojiImageError:
        pass
    filler = mnt / ".koji-image-zero"
    block = bytes(1 << 20)
    try:
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(block)
            except OSError as exc:
                if exc.errno != 28:  # ENOSPC is the expected end
                    raise
    finally:
        filler.unlink(missing_ok=True)
        os.sync()


def read_packages(root: Path, runner: Runner, log_name: str,
                  family: Family) -> list[dict[str, Any]]:
    """Installed packages, read from the image as its family keeps them: the dpkg status
    (Debian), or the rpm database (``rpmdb.py``: with the fields Koji's image import
    links RPM components by)."""
    if family.package_db == "rpm":
        return rpmdb.installed(root, runner, log_name)
    status, why = within(root, "var/lib/dpkg/status")
    if why:
        raise KojiImageError(f"{root}: the image has no dpkg status (/var/lib/dpkg/status "
                             f"is {why}); cannot list its packages")
    return _dpkg_status(status.read_text(encoding="utf-8", errors="replace"))


def _dpkg_status(text: str) -> list[dict[str, str]]:
    pkgs = []
    for para in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in para.splitlines():
            if line and not line[0].isspace() and ":" in line:
                k, _, v = line.partition(":")
                fields[k] = v.strip()
        if fields.get("Package") and fields.get("Status", "").endswith(" installed"):
            pkgs.append({"name": fields["Package"], "version": fields.get("Version", ""),
                         "arch": fields.get("Architecture", "")})
    return sorted(pkgs, key=lambda p: p["name"])
