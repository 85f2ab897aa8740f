"""The RPMs installed in an image: its rpm database, and the repo each came from.

The database is read with the host's ``rpm --root`` at the image's own path: Fedora's
``/usr/lib/sysimage/rpm`` (Fedora 36 and later), or ``/var/lib/rpm``. Each RPM has the
fields kojihub's image import expects of an rpmlist entry (name, version, release, epoch,
arch, payloadhash = the SIGMD5 header, size, buildtime), read as kojid's Oz task reads
them (``rpm -qa --qf``); ``gpg-pubkey`` and ``buildsys-build`` are skipped, as kojid skips
them. Where the installer used dnf, dnf's history database in the image says which repo
each RPM was installed from (``repo``); without it, ``repo`` is None.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from ..errors import KojiImageError
from ..runner import Runner

DBPATHS = ("usr/lib/sysimage/rpm", "var/lib/rpm")
SKIPPED = ("gpg-pubkey", "buildsys-build")
FIELDS = ("name", "version", "release", "epoch", "arch", "sigmd5", "size", "buildtime")
QUERY = "\t".join(f"%{{{f.upper()}}}" for f in FIELDS) + "\\n"
HISTORY = "var/lib/dnf/history.sqlite"
#: libdnf's TransactionItemAction values that put a package on the system
_INSTALLING = (1, 2, 6, 9)  # INSTALL, DOWNGRADE, UPGRADE, REINSTALL


def _in_image(root: Path, rel: str) -> Path | None:
    """``root/rel`` when it really is inside the image: no symlink on the way (an image's
    ``/usr`` or ``/var`` could point at the host's)."""
    path = root / rel
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return path if real == (root.resolve() / rel) else None


def dbpath(root: Path) -> str | None:
    """The image's rpm database dir (as a path inside the image), or None."""
    for rel in DBPATHS:
        d = _in_image(root, rel)
        if d is not None and d.is_dir() and any(d.iterdir()):
            return "/" + rel
    return None


def installed(root: Path, runner: Runner, log_name: str) -> list[dict[str, Any]]:
    """Every RPM in the image at ``root``, sorted by name, each with its ``repo``."""
    where = dbpath(root)
    if where is None:
        raise KojiImageError(f"{root}: the image has no rpm database in "
                             + " or ".join("/" + d for d in DBPATHS))
    out = runner.run(["rpm", f"--root={root}", f"--dbpath={where}", "--query", "--all",
                      f"--queryformat={QUERY}"], log_name=log_name, capture=True)
    origins = repos_of(root)
    rpms = []
    for line in out.splitlines():
        values = line.split("\t")
        if len(values) != len(FIELDS):
            raise KojiImageError(f"rpm --query printed a line it should not: {line[:200]!r}")
        rpm = dict(zip(FIELDS, values, strict=True))
        if rpm["name"] in SKIPPED:
            continue
        try:
            epoch = None if rpm["epoch"] == "(none)" else int(rpm["epoch"])
            size, buildtime = int(rpm["size"]), int(rpm["buildtime"])
        except ValueError:
            raise KojiImageError(f"{rpm['name']}: the image's rpm database has no number "
                                 f"for its epoch, size or build time: {line[:200]!r}") from None
        entry: dict[str, Any] = {
            "name": rpm["name"], "version": rpm["version"], "release": rpm["release"],
            "epoch": epoch, "arch": rpm["arch"], "payloadhash": rpm["sigmd5"],
            "size": size, "buildtime": buildtime}
        entry["repo"] = origins.get(nevra(entry))
        rpms.append(entry)
    return sorted(rpms, key=lambda r: (r["name"], r["arch"]))


def nevra(rpm: dict[str, Any]) -> str:
    return f"{rpm['name']}-{rpm['epoch'] or 0}:{rpm['version']}-{rpm['release']}.{rpm['arch']}"


def repos_of(root: Path) -> dict[str, str]:
    """NEVRA -> the repo id dnf installed it from, from dnf's history in the image (the
    newest transaction that put it there); empty without that database."""
    path = _in_image(root, HISTORY)
    if path is None or not path.is_file():
        return {}
    uri = f"file:{path}?mode=ro&immutable=1"
    try:
        # closed at once: an open file would keep the image's file system busy
        with closing(sqlite3.connect(uri, uri=True)) as db:
            rows = db.execute(
                "SELECT rpm.name, rpm.epoch, rpm.version, rpm.release, rpm.arch, repo.repoid "
                "FROM trans_item JOIN rpm ON rpm.item_id = trans_item.item_id "
                "JOIN repo ON repo.id = trans_item.repo_id "
                f"WHERE trans_item.action IN {_INSTALLING} ORDER BY trans_item.trans_id, "
                "trans_item.id").fetchall()
    except sqlite3.Error as exc:
        raise KojiImageError(f"{path}: cannot read dnf's history database: {exc}") from exc
    out = {}
    for name, epoch, version, release, arch, repo in rows:
        out[nevra({"name": name, "epoch": epoch, "version": version, "release": release,
                   "arch": arch})] = repo
    return out
