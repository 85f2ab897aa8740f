"""Glance's image API v2 as this project calls it: each request through the openstacksdk
connection (so credentials stay in clouds.yaml), every failure a one-line CloudError; the
upload body read once and hashed on the way; the connection and its errors."""

from __future__ import annotations

import hashlib
import html
import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openstack
import openstack.config
import openstack.exceptions
from keystoneauth1 import exceptions as ksa_exceptions

from ..errors import CancelledError, CloudError
from ..spec.cloudconfig import GlanceTarget
from ..spec.formats import BOOTABLE, disk_format

QCOW2_MAGIC = b"QFI\xfb"
CHUNK = 1 << 20
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


class Api:
    """Glance v2 calls through the openstacksdk connection; every failure a CloudError."""

    def __init__(self, conn: Any, target: GlanceTarget, log: logging.Logger) -> None:
        self.conn = conn
        self.cloud = target.cloud
        self.target = target
        self.log = log

    def call(self, method: str, url: str, what: str, ok: tuple[int, ...] = (200,),
             **kwargs: Any) -> Any:
        try:
            resp = self.conn.image.request(url, method, raise_exc=False, **kwargs)
        except openstack.exceptions.ConfigException as exc:
            raise unknown_cloud(self.cloud, exc) from exc
        except (ksa_exceptions.ClientException, openstack.exceptions.SDKException,
                OSError) as exc:
            if timed_out(exc):
                raise CloudError(f"glance ({self.cloud}): {what}: no progress for "
                                 f"{self.target.timeout} s (glance.timeout): "
                                 f"{oneline(str(exc))}") from exc
            raise CloudError(f"glance ({self.cloud}): {what}: "
                             f"{type(exc).__name__}: {oneline(str(exc))}") from exc
        if resp.status_code not in ok:
            raise CloudError(f"glance ({self.cloud}): {what}: HTTP {resp.status_code}: "
                             f"{body(resp)}")
        return resp

    def show(self, image_id: str) -> dict[str, Any]:
        image: dict[str, Any] = self.call("GET", f"/images/{image_id}",
                                          f"showing image {image_id}").json()
        return image

    def by_name(self, name: str) -> list[dict[str, Any]]:
        """Every image of that name this user can see (community ones included)."""
        found: list[dict[str, Any]] = []
        url = "/images"
        params: dict[str, Any] | None = {"name": name, "visibility": "all", "limit": 100}
        while url:
            page = self.call("GET", url, f"listing images named {name}",
                             params=params).json()
            found += page.get("images", [])
            nxt = page.get("next")
            # ``next`` is a path from the server root that already carries the query
            url, params = (re.sub(r"^/v2", "", nxt), None) if nxt else ("", None)
        return found

    def delete(self, image_id: str) -> str | None:
        """Delete an image; None when it is gone, else why it is not."""
        try:
            self.call("DELETE", f"/images/{image_id}", f"deleting image {image_id}",
                      ok=(204, 404))
        except CloudError as exc:
            return str(exc)
        return None

    def patch(self, image_id: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        image: dict[str, Any] = self.call(
            "PATCH", f"/images/{image_id}", f"updating image {image_id}", json=ops,
            headers={"Content-Type": PATCH_TYPE}).json()
        return image



class Stream:
    """The PUT body: the file read once in 1 MiB chunks, hashed on the way, the deadline
    and the cancel event checked between chunks. ``__len__`` gives requests the
    Content-Length, so Glance knows the size up front and nothing is sent chunked."""

    def __init__(self, path: Path, deadline: float, cancel: threading.Event | None,
                 timeout: int) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.deadline = deadline
        self.cancel = cancel
        self.timeout = timeout
        self.sent = 0
        self.started = False
        self.hashes = {"md5": hashlib.md5(usedforsecurity=False),
                       "sha256": hashlib.sha256(), "sha512": hashlib.sha512()}

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        if self.started:
            raise CloudError(f"the upload of {self.path} was retried after its data were "
                             "consumed")
        self.started = True
        with open(self.path, "rb") as f:
            while chunk := f.read(CHUNK):
                if self.cancel is not None and self.cancel.is_set():
                    raise CancelledError(f"the upload of {self.path.name} was cancelled")
                if time.monotonic() > self.deadline:
                    raise CloudError(f"the upload of {self.path.name} did not finish in "
                                     f"{self.timeout} s (glance.timeout); "
                                     f"{self.sent} of {self.size} bytes sent")
                for h in self.hashes.values():
                    h.update(chunk)
                self.sent += len(chunk)
                yield chunk

    def digests(self) -> dict[str, str]:
        return {name: h.hexdigest() for name, h in self.hashes.items()}


def file_digests(path: Path, algo: str) -> dict[str, str]:
    names = {"md5", "sha256", algo}
    try:
        hashes = {n: hashlib.new(n, usedforsecurity=False) for n in names}
    except ValueError as exc:
        raise CloudError(f"glance uses os_hash_algo {algo!r}, which this Python's hashlib "
                         "does not have") from exc
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            for h in hashes.values():
                h.update(chunk)
    return {n: h.hexdigest() for n, h in hashes.items()}


def inspect(path: Path) -> tuple[str, int]:
    """Glance's disk_format from the name, checked against the content, and the
    virtual size in GiB (rounded up) for ``min_disk``, so Nova refuses a flavor whose
    disk is too small before it boots anything."""
    fmt = disk_format(path.name)
    if fmt is None:
        raise CloudError(f"{path.name}: Glance takes the qcow2 or an uncompressed raw "
                         f"image ({', '.join(BOOTABLE)}), not this file")
    try:
        with open(path, "rb") as f:
            head = f.read(32)
        size = path.stat().st_size
    except OSError as exc:
        raise CloudError(f"{path}: {exc.strerror}") from exc
    is_qcow2 = head[:4] == QCOW2_MAGIC
    if is_qcow2 != (fmt == "qcow2"):
        raise CloudError(f"{path.name}: the name says {fmt} but the content is "
                         f"{'qcow2' if is_qcow2 else 'not qcow2'}")
    virtual = int.from_bytes(head[24:32], "big") if is_qcow2 else size
    return fmt, max(1, -(-virtual // (1 << 30)))


def connect(target: GlanceTarget) -> Any:
    try:
        return openstack.connect(cloud=target.cloud, api_timeout=target.timeout)
    except openstack.exceptions.ConfigException as exc:
        raise unknown_cloud(target.cloud, exc) from exc
    except (openstack.exceptions.SDKException, ksa_exceptions.ClientException) as exc:
        raise CloudError(f"glance.cloud: {target.cloud!r}: {oneline(str(exc))}") from exc


def unknown_cloud(cloud: str, exc: Exception) -> CloudError:
    return CloudError(f"glance.cloud: {cloud!r} is not usable: {oneline(str(exc))} "
                      "(openstacksdk reads $OS_CLIENT_CONFIG_FILE, ./clouds.yaml, "
                      "~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml)")


def timed_out(exc: BaseException) -> bool:
    """A socket timeout, however requests and keystoneauth wrapped it: waiting for the
    answer it is a ConnectTimeout, blocked in sending the body a ConnectFailure around
    ``('Connection aborted.', TimeoutError('timed out'))``."""
    if isinstance(exc, (ksa_exceptions.ConnectTimeout, TimeoutError)):
        return True
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, TimeoutError):
            return True
        todo += [a for a in e.args if isinstance(a, BaseException)]
        todo += [c for c in (e.__cause__, e.__context__) if c is not None]
    return False



def oneline(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:300]


def body(resp: Any) -> str:
    """Glance's error text without the HTML around it."""
    text = re.sub(r"<[^>]+>", " ", html.unescape(resp.text or ""))
    return oneline(text) or resp.reason or "no body"

