"""A drop laid out in the mirror tree, all at once.

    MIRROR/
      .koji-image-staging/      drops being assembled (exclude it from mirror rsyncs)
      releases/19/Cloud/                      the Final drop of 19
      releases/test/19_Beta/Cloud/            Alpha and Beta drops
      weekly/rawhide/20261126.0/Cloud/        weekly drops of each branch
        x86_64/generic/NAME-VERSION-RELEASE.x86_64.qcow2
        x86_64/EC2/NAME-EC2-VERSION-RELEASE.x86_64.raw.xz
        README  images.json  drop.json  CHECKSUM

Every image is fetched (copied from a local build, or downloaded from Koji's topurl) into
a staging directory beside the tree and checked against the SHA-256 its build recorded;
then the README, ``images.json`` (productmd's images format), ``drop.json`` (this
project's record, which the index page reads) and, last, ``CHECKSUM`` (Fedora's format,
optionally clear-signed with gpg) are written, and the staging directory is renamed into
place in one step. Publishing the same drop again finds the same images and changes
nothing. Host tools: gpg (only to sign).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checksums import Digest, checksum_text
from ..errors import RecordError, ToolError, quote
from ..files import read_regular, remove_if_empty
from ..runner import Runner
from ..spec import records
from ..spec.firmware import Firmware
from ..spec.schema import MAX_URL, NVR_RE
from ..spec.upload import Cloud
from .drop import (
    BASE_URL_RE,
    MILESTONES,
    RELEASE_RE,
    SAFE_NAME,
    WEEKLY_ID,
    Drop,
    DropError,
    DropImage,
    DropInputError,
    Verdict,
)
from .readme import readme

STAGING = ".koji-image-staging"
#: the first --base-url given, kept in STAGING for the runs that give none
BASE_URL_FILE = "base-url"
DROP_RECORD = "drop.json"
RECORD_VERSION = 1
#: when a drop was published, as drop_record writes it (the page and the feed show it)
DATE_TIME_RE = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
                r"(Z|[+-][0-9]{2}:[0-9]{2})\Z")
#: a relative path of plain names (no leading /, no . or .. part)
REL_PATH = r"^(?!/)(?!(.*/)?\.\.?(/|\Z))[A-Za-z0-9._/+~-]+\Z"
_NAME = {"type": "string", "pattern": SAFE_NAME.pattern, "maxLength": 255}
#: drop.json: what the page, the feed and a republish read back
DROP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["drop", "id", "title", "path", "published", "images"],
    "properties": {
        "drop": {"const": "koji-image-plugin"},
        "id": {"type": "object", "properties": {
            "release": {"type": "string", "pattern": RELEASE_RE.pattern},
            "milestone": {"enum": [*MILESTONES, None]},
            "weekly": {"type": ["string", "null"], "pattern": WEEKLY_ID.pattern}}},
        "title": records.line(200),
        "path": {"type": "string", "pattern": REL_PATH, "maxLength": 255,
                 "description": "a relative path inside the mirror"},
        "published": {"type": "string", "pattern": DATE_TIME_RE, "maxLength": 40,
                      "description": "an ISO date and time, e.g. 2026-12-01T10:00:00+00:00"},
        "forced": {"type": "boolean"},
        "nvrs": {"type": "array", "items": {"type": "string", "pattern": NVR_RE}},
        "images": {"type": "array", "maxItems": 10000, "items": {
            "type": "object",
            "required": ["path", "file", "arch", "type", "format", "size", "sha256",
                         "boot_test"],
            "properties": {
                "path": {"type": "string", "pattern": REL_PATH, "maxLength": 1024,
                         "description": "a relative path inside the drop"},
                "file": _NAME, "arch": _NAME, "type": _NAME, "format": _NAME,
                "size": {"type": "integer", "minimum": 0},
                "sha256": records.SHA256,
                "boot_test": {"enum": [v.value for v in Verdict]},
                "boot_test_from": records.line(300),
                "content_from": records.line(300),
                "booted_on": {"type": "array", "maxItems": 16,
                              "items": {"type": "string", "pattern": _NAME["pattern"]}},
                "firmware": {"enum": [f.value for f in Firmware]},
                "booted_under": {"type": "array", "maxItems": 8,
                                 "items": {"type": "string", "pattern": _NAME["pattern"]}},
                "uploads": {"type": "array", "items": {
                    "type": "object", "required": ["cloud", "where", "image_id"],
                    "properties": {"cloud": {"enum": [c.value for c in Cloud]},
                                   "where": records.line(255),
                                   "image_id": records.line(255),
                                   "name": records.line(1024)}}}}}},
    },
}
DAMAGED = ("fix or remove that drop's drop.json (this version writes and reads it; the "
           "page and the feed are made from it)")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Signer:
    """Clear-signs CHECKSUM with ``gpg --clearsign`` as Fedora does."""

    key: str
    homedir: Path | None = None

    def argv(self, source: Path, dest: Path) -> list[str]:
        argv = ["gpg",
                "--batch",
                "--yes"]
        if self.homedir is not None:
            argv += ["--homedir", str(self.homedir)]
        argv += ["--local-user", self.key,
                 "--output", str(dest),
                 "--clearsign", str(source)]
        return argv


@dataclass(frozen=True)
class Published:
    path: Path
    changed: bool


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def drop_record(drop: Drop, published: datetime.datetime) -> dict[str, Any]:
    return {
        "drop": "koji-image-plugin", "version": RECORD_VERSION,
        "id": drop.id.as_dict(), "title": drop.id.title, "path": drop.id.relpath,
        "published": published.isoformat(), "forced": drop.forced,
        "bug_url": drop.bug_url, "description": drop.description,
        "sources": list(drop.sources), "nvrs": drop.nvrs,
        "images": [{"path": i.relpath, "file": i.file, "nvr": i.nvr, "arch": i.arch.value,
                    "variant": i.variant.value, "type": i.type_dir, "format": i.format.value,
                    "size": i.size, "sha256": i.sha256, "boot_test": i.verdict.value,
                    "boot_test_from": i.verdict_from, "content_from": i.content_from,
                    "booted_on": list(i.booted_on), "firmware": i.firmware.value,
                    "booted_under": list(i.booted_under),
                    "uploads": [{"cloud": u.cloud, "where": u.where,
                                 "image_id": u.image_id, "name": u.name,
                                 "public": u.public} for u in i.uploads]}
                   for i in drop.images],
    }


def _same(record: dict[str, Any], drop: Drop) -> bool:
    have = sorted((i["path"], i["sha256"]) for i in record.get("images", []))
    want = sorted((i.relpath, i.sha256) for i in drop.images)
    return have == want and bool(record.get("forced")) == drop.forced


def publish(drop: Drop, mirror: Path, *, signer: Signer | None = None,
            product: str = "Cloud", log: logging.Logger | None = None,
            now: datetime.datetime | None = None) -> Published:
    """Lay ``drop`` out under ``mirror``; a no-op when the same drop is already there."""
    log = log or logging.getLogger("koji_image_plugin")
    check_mirror(mirror)
    target = mirror / drop.id.relpath
    if target.exists():
        record = read_record(target) if (target / DROP_RECORD).exists() else None
        if record is not None and _same(record, drop):
            log.info("%s: already published with the same images; nothing to do", target)
            return Published(target, False)
        raise DropError(f"{drop.id.title}: {target} is already published with other "
                        "images; a published drop is never changed: remove it first, or "
                        "make a new drop (another weekly id)")
    made_mirror = not mirror.exists()
    staging_root = mirror / STAGING
    staging_root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=drop.id.relpath.replace("/", "_") + ".",
                                  dir=staging_root))
    published = now or _now()
    try:
        for img in drop.images:
            log.debug("%s: fetching %s", drop.id.title, img.source)
            fetch(img, stage / img.relpath)
        (stage / "README").write_text(readme(drop, published))
        write_images_json(drop, stage, published, product)
        (stage / DROP_RECORD).write_text(json.dumps(drop_record(drop, published),
                                                    indent=2) + "\n")
        # Last, so a CHECKSUM means every file it names is in place.
        write_checksum(drop, stage, signer)
        stage.chmod(0o755)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            # rename(2) replaces an empty directory: refuse one that appeared meanwhile
            target.mkdir()
        except FileExistsError as exc:
            raise DropError(f"{drop.id.title}: {target} appeared while this drop was "
                            "being made (another koji-image drop or weekly at the same "
                            "time?); nothing was changed, run again to see its state") \
                from exc
        os.rename(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        remove_if_empty(target)
        remove_if_empty(staging_root)
        if made_mirror:
            remove_if_empty(mirror)
        raise
    remove_if_empty(staging_root)
    log.debug("%s: published in %s", drop.id.title, target)
    return Published(target, True)


def read_record(drop_dir: Path) -> dict[str, Any]:
    """A published drop's drop.json, checked (RecordError when it is damaged)."""
    return records.read(drop_dir / DROP_RECORD, DROP_SCHEMA, DAMAGED)


def fetch(img: DropImage, dest: Path) -> None:
    """Copy or download one image, checking its size and SHA-256 on the way."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256()
    size = 0
    try:
        if "://" in img.source:
            src = urllib.request.urlopen(img.source, timeout=60)
        else:
            src = open(img.source, "rb")
        with src, open(dest, "wb") as out:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except (OSError, urllib.error.URLError) as exc:
        raise DropError(f"BUILD: {img.nvr}: cannot read {img.source}: {exc}") from exc
    if (size, h.hexdigest()) != (img.size, img.sha256):
        raise DropError(f"BUILD: {img.nvr}: {img.source} is {size} bytes with SHA-256 "
                        f"{h.hexdigest()}, but its build recorded {img.size} bytes and "
                        f"{img.sha256}; the file changed since the build: rebuild it")
    dest.chmod(0o644)


def write_checksum(drop: Drop, stage: Path, signer: Signer | None) -> None:
    text = checksum_text((i.relpath, Digest(i.size, i.sha256)) for i in drop.images)
    path = stage / "CHECKSUM"
    if signer is None:
        path.write_text(text)
        return
    with tempfile.TemporaryDirectory(prefix="koji-image-sign-") as tmp:
        plain = Path(tmp) / "CHECKSUM"
        plain.write_text(text)
        try:
            Runner(Path(tmp) / "logs").run(signer.argv(plain, path), log_name="gpg")
        except ToolError as exc:  # its log goes with the temporary directory: keep the tail
            last = exc.tail.strip().splitlines()[-1] if exc.tail.strip() else "no output"
            last = last.replace(f"{plain}: ", "")  # a temporary path means nothing to users
            raise DropInputError(f"--gpg-key: gpg could not sign CHECKSUM with {signer.key}: "
                                 f"{last}; check the key id and --gpg-homedir") from exc
    path.chmod(0o644)


def write_images_json(drop: Drop, stage: Path, published: datetime.datetime,
                      product: str) -> None:
    """images.json in productmd's images format (Fedora's compose metadata)."""
    import productmd.images

    im = productmd.images.Images()
    date = published.strftime("%Y%m%d")
    did = drop.id
    if did.weekly:
        day, respin = did.weekly.split(".")
        im.compose.id = f"{product}-{did.release}-{day}.n.{respin}"
        im.compose.type = "nightly"
        im.compose.date = day
        im.compose.respin = int(respin)
    else:
        im.compose.id = f"{product}-{did.release}-{did.milestone}-{date}.0"
        im.compose.type = "production"
        im.compose.date = date
        im.compose.respin = 0
        im.compose.label = {"Alpha": "Alpha-1.0", "Beta": "Beta-1.0",
                            "Final": "RC-1.0"}[str(did.milestone)]
        im.compose.final = did.milestone == "Final"
    mtime = int(published.timestamp())
    for i in drop.images:
        image = productmd.images.Image(im)
        image.path = i.relpath
        image.mtime = mtime
        image.size = i.size
        image.volume_id = None
        image.type, image.format = i.format.productmd
        image.arch = i.arch.value
        image.disc_number = 1
        image.disc_count = 1
        image.checksums = {"sha256": i.sha256}
        image.implant_md5 = None
        image.bootable = False
        image.subvariant = i.variant.productmd_subvariant
        im.add("Cloud", i.arch.value, image)
    im.dump(str(stage / "images.json"))



def drop_dirs(mirror: Path) -> list[Path]:
    """Every published drop under ``mirror``: the directories with a drop record in the
    trees this tool publishes into (``releases/``, ``weekly/``; a ``drop.json`` of
    something else elsewhere in the mirror is not ours to read)."""
    return sorted(record.parent for top in ("releases", "weekly")
                  for record in (mirror / top).glob("**/" + DROP_RECORD))


def check_mirror(mirror: Path) -> None:
    """Refuse a mirror that is not a directory, or holds a damaged drop record: the page
    and the feed could not be written, so nothing is published there."""
    if mirror.exists() and not mirror.is_dir():
        raise DropInputError(f"--mirror: {mirror} is not a directory; give the mirror "
                             "tree's root")
    if mirror.exists():
        for d in drop_dirs(mirror):
            try:
                read_record(d)
            except RecordError as exc:
                raise DropInputError(f"--mirror: {exc}") from None
        kept_base_url(mirror)


def kept_base_url(mirror: Path) -> str | None:
    """The base URL kept beside the staging dir (the first one given), checked: the
    feed's links are made of it."""
    kept = mirror / STAGING / BASE_URL_FILE
    if not kept.is_file():
        return None
    text = read_regular(kept, MAX_URL).decode("utf-8", errors="replace").strip()
    if len(text) > MAX_URL or not BASE_URL_RE.match(text):
        raise DropInputError(f"--mirror: {kept} is damaged: {quote(text)} is not a web or "
                             "file URL; fix or remove it (--base-url writes it again)")
    return text


def weekly_dirs(mirror: Path, release: str) -> list[Path]:
    """The weekly drops of one branch, oldest first."""
    base = mirror / "weekly" / release
    if not base.is_dir():
        return []
    return sorted((d / "Cloud" for d in base.iterdir()
                   if (d / "Cloud" / DROP_RECORD).is_file()),
                  key=lambda p: _weekly_key(p.parent.name))


def _weekly_key(name: str) -> tuple[str, int]:
    day, _, n = name.partition(".")
    return day, int(n) if n.isdigit() else -1


def prune_weeklies(mirror: Path, release: str, keep: int,
                   log: logging.Logger | None = None) -> list[Path]:
    """Remove all but the newest ``keep`` weekly drops of ``release``; each goes in one
    rename out of the tree first, so a mirror never syncs half of one."""
    log = log or logging.getLogger("koji_image_plugin")
    drops = weekly_dirs(mirror, release)
    gone = drops[:-keep] if keep > 0 else drops
    if not gone:
        return []
    trash_root = mirror / STAGING
    trash_root.mkdir(exist_ok=True)
    try:
        for d in gone:
            trash = Path(tempfile.mkdtemp(prefix="pruned.", dir=trash_root))
            os.rename(d.parent, trash / d.parent.name)
            shutil.rmtree(trash)
            log.info("pruned %s", d)
    finally:
        remove_if_empty(trash_root)
    return gone

