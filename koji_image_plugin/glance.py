"""Upload an image to OpenStack Glance (image API v2) and accept it only as Glance stored it.

openstacksdk reads the cloud from clouds.yaml (``$OS_CLIENT_CONFIG_FILE``,
``./clouds.yaml``, ``~/.config/openstack/clouds.yaml``, ``/etc/openstack/clouds.yaml``),
authenticates and finds the image endpoint. Only the cloud's *name* passes through this
module, so credentials never reach our arguments, logs or records. The calls are Glance's
documented v2 REST API sent through that connection (list by name, create, ``PUT
.../file``, show, patch, delete), which keeps every step and its clean-up explicit.

- The file is read once, in 1 MiB chunks, while MD5, SHA-256 and SHA-512 are computed;
  the upload is accepted only when Glance's ``checksum`` (MD5), ``os_hash_value`` (the
  ``os_hash_algo`` Glance uses, SHA-512 by default) and ``size`` match what was sent and
  the SHA-256 matches the one the build recorded.
- Idempotent by name and content: an ``active`` image with the same name and the same
  ``koji_image_sha256`` property (and matching Glance hashes) is reused; a ``queued`` or
  ``saving`` image of ours with that name (an interrupted earlier upload) is deleted and
  the upload starts again; an image with that name and other content is an error that
  names it.
- Anything that goes wrong after the image record exists (a cut connection, a stall past
  the timeout, a checksum mismatch, a cancel) deletes the record before the error is
  raised; if Glance itself is gone, the error names the image left behind, and the next
  upload of the same name deletes it.

No host tools: everything is HTTP.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import openstack
import openstack.config
import openstack.exceptions
from keystoneauth1 import exceptions as ksa_exceptions

from .arches import Arch
from .errors import CancelledError, CloudError, Problem, SpecError
from .spec import Distro, _explain
from .variants import Variant

VISIBILITIES = ("private", "shared", "community", "public")
#: file name ending -> Glance disk_format (compressed outputs cannot be booted by Nova)
DISK_FORMATS = {".qcow2": "qcow2", ".raw": "raw", ".img": "raw"}
#: the Glance policy rule each non-default visibility needs
VISIBILITY_POLICY = {"public": "publicize_image", "community": "communitize_image"}
QCOW2_MAGIC = b"QFI\xfb"
SHA256_KEY = "koji_image_sha256"
NVR_KEY = "koji_image_nvr"
VARIANT_KEY = "koji_image_variant"
#: statuses an interrupted upload of ours leaves behind (deleted and uploaded again)
LEFTOVER = frozenset({"queued", "saving", "uploading", "importing", "killed"})
#: Glance's own image fields: set by Glance or by ``upload`` from its arguments
RESERVED = frozenset({
    "id", "name", "status", "visibility", "protected", "os_hidden", "checksum",
    "os_hash_algo", "os_hash_value", "owner", "size", "virtual_size", "min_ram",
    "min_disk", "container_format", "disk_format", "created_at", "updated_at", "tags",
    "direct_url", "locations", "self", "file", "schema", "stores", SHA256_KEY,
})
#: nova's names for the architectures (``i686`` is its canonical 32-bit x86)
OS_DISTRO = {"Debian": "debian", "Fedora": "fedora"}
CHUNK = 1 << 20
POLL = 1.0
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"

#: The configuration of one Glance target, e.g. ``{cloud: openstack-prod,
#: visibility: public, timeout: 3600, properties: {hw_qemu_guest_agent: "no"}}``.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["cloud"],
    "properties": {
        "cloud": {"type": "string", "minLength": 1,
                  "description": "a cloud name from clouds.yaml"},
        "visibility": {"enum": list(VISIBILITIES)},
        "timeout": {"type": "integer", "minimum": 1, "maximum": 86400},
        "properties": {"type": "object",
                       "additionalProperties": {"type": "string", "maxLength": 255}},
    },
}


@dataclass(frozen=True)
class GlanceTarget:
    """Where and how to upload: a clouds.yaml cloud name, the image visibility, the
    seconds the whole upload (data and the wait for ``active``) may take, and extra image
    properties set on every image."""

    cloud: str
    visibility: str = "private"
    timeout: int = 3600
    properties: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = check_target(self.as_dict())
        if problems:
            raise SpecError("glance", problems)

    @classmethod
    def from_dict(cls, data: Any, where: str = "glance") -> GlanceTarget:
        """The target from a config mapping; a SpecError lists every problem, each naming
        its field (``glance.visibility: 'everyone' is not allowed; use one of: ...``)."""
        problems = check_target(data, where)
        if problems:
            raise SpecError(where, problems)
        return cls(cloud=data["cloud"],
                   visibility=data.get("visibility", "private"),
                   timeout=data.get("timeout", 3600),
                   properties=dict(data.get("properties", {})))

    def as_dict(self) -> dict[str, Any]:
        return {"cloud": self.cloud, "visibility": self.visibility, "timeout": self.timeout,
                "properties": dict(self.properties)}


def check_target(data: Any, where: str = "glance") -> list[Problem]:
    """Every problem with a target's configuration mapping."""
    if not isinstance(data, Mapping):
        return [Problem(where, "must be a mapping with at least 'cloud'")]
    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems = [Problem(f"{where}.{p.field}" if p.field != "(top level)" else where,
                        p.message)
                for e in validator.iter_errors(dict(data)) for p in _explain(e)]
    props = data.get("properties")
    if isinstance(props, Mapping):
        problems += [Problem(f"{where}.properties.{k}", _reserved_hint(str(k)))
                     for k in props if _is_reserved(str(k))]
    return problems


def check_cloud(target: GlanceTarget) -> None:
    """Fail early (without network) when the cloud is not in any clouds.yaml."""
    try:
        openstack.config.OpenStackConfig().get_one(cloud=target.cloud)
    except openstack.exceptions.ConfigException as exc:
        raise _unknown_cloud(target.cloud, exc) from exc


def image_properties(distro: Distro, arch: str, variant: str, *,
                     nvr: str | None = None) -> dict[str, str]:
    """Glance properties Nova and users go by, for an image of this project.

    Our images have virtio drivers, boot with BIOS GRUB, and seed the kernel's RNG from
    virtio-rng when there is one. ``hw_machine_type`` is left to the cloud: the images
    boot on both ``pc`` and ``q35``.
    """
    a = Arch.parse(arch)
    v = Variant(variant)
    props = {
        "os_type": "linux",
        "os_distro": OS_DISTRO.get(distro.family, distro.family.lower()),
        "os_version": distro.version,
        "architecture": a.value,
        "hw_disk_bus": "virtio",
        "hw_vif_model": "virtio",
        "hw_rng_model": "virtio",
        "hw_firmware_type": "bios",
        VARIANT_KEY: v.value,
    }
    if nvr:
        props[NVR_KEY] = nvr
    return props


def upload(path: Path, *, name: str, sha256: str, arch: str,
           properties: Mapping[str, str], target: GlanceTarget, log: logging.Logger,
           cancel: threading.Event | None = None) -> dict[str, Any]:
    """Upload ``path`` (qcow2 or raw) as the Glance image ``name`` and wait until it is
    ``active`` with the right checksums; return the record of what Glance holds.

    ``sha256`` is the file's SHA-256 as the build recorded it (checked while streaming and
    stored as ``koji_image_sha256``, the key for idempotence). The record:
    ``{cloud, image_id, name, checksum, checksum_algo, md5, size, disk_format, visibility,
    status, arch, reused, seconds}``; ``checksum`` is Glance's ``os_hash_value`` (hex, in
    ``checksum_algo``, i.e. ``os_hash_algo``), ``md5`` Glance's legacy ``checksum``.
    """
    started = time.monotonic()
    deadline = started + target.timeout
    disk_format, min_disk = _inspect(path)
    sha256 = sha256.lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise CloudError(f"sha256: {sha256!r} is not a SHA-256 hex digest")
    if not name or len(name) > 255:
        raise CloudError(f"name: {name!r} must be 1 to 255 characters")
    a = Arch.parse(arch)
    for key, value in properties.items():
        if _is_reserved(key):
            raise CloudError(f"properties.{key}: {_reserved_hint(key)}")
        if not isinstance(value, str) or len(value) > 255 or len(key) > 255:
            raise CloudError(f"properties.{key}: {value!r} must be a string of at most "
                             "255 characters")
    props = {**properties, **target.properties, SHA256_KEY: sha256}
    if cancel is not None and cancel.is_set():
        raise CancelledError(f"the upload of {name} was cancelled")
    conn = _connect(target)
    try:
        api = _Api(conn, target, log)
        reused = _reuse_or_clear(api, path, name, sha256, props)
        if reused is not None:
            rec = _record(target, reused, a, reused=True, started=started)
            log.info("glance: %s is already image %s on %s (same content); reused",
                     name, reused["id"], target.cloud)
            return rec
        image = _upload_new(api, path, name=name, sha256=sha256, disk_format=disk_format,
                            min_disk=min_disk, props=props, deadline=deadline,
                            cancel=cancel)
        return _record(target, image, a, reused=False, started=started)
    finally:
        conn.close()


# -- the steps -----------------------------------------------------------------------

class _Api:
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
            raise _unknown_cloud(self.cloud, exc) from exc
        except (ksa_exceptions.ClientException, openstack.exceptions.SDKException,
                OSError) as exc:
            if _timed_out(exc):
                raise CloudError(f"glance ({self.cloud}): {what}: no progress for "
                                 f"{self.target.timeout} s (glance.timeout): "
                                 f"{_oneline(str(exc))}") from exc
            raise CloudError(f"glance ({self.cloud}): {what}: "
                             f"{type(exc).__name__}: {_oneline(str(exc))}") from exc
        if resp.status_code not in ok:
            raise CloudError(f"glance ({self.cloud}): {what}: HTTP {resp.status_code}: "
                             f"{_body(resp)}")
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


def _reuse_or_clear(api: _Api, path: Path, name: str, sha256: str,
                    props: Mapping[str, str]) -> dict[str, Any] | None:
    """The existing image to reuse, or None after deleting our own leftovers."""
    same = api.by_name(name)
    ours = [i for i in same if i.get(SHA256_KEY) == sha256 and i.get("status") == "active"]
    leftovers = [i for i in same if i.get(SHA256_KEY) and i.get("status") in LEFTOVER]
    others = [i for i in same if i not in ours and i not in leftovers]
    if others:
        o = others[0]
        if o.get(SHA256_KEY) == sha256:
            how = f"with this content but status {o.get('status')}"
        elif o.get(SHA256_KEY):
            how = f"with other content ({SHA256_KEY}={o[SHA256_KEY]})"
        else:
            how = f"with other content (no {SHA256_KEY}: not uploaded by koji-image)"
        raise CloudError(
            f"glance ({api.cloud}): an image named {name} already exists {how}: "
            f"{o.get('id')} (status {o.get('status')}); this upload has "
            f"{SHA256_KEY}={sha256}; delete that image (openstack image delete "
            f"{o.get('id')}) or upload under another name (a new release)")
    for old in leftovers:
        api.log.warning("glance: deleting %s (%s), left %s by an interrupted upload",
                        old["id"], name, old.get("status"))
        why = api.delete(old["id"])
        if why:
            raise CloudError(f"{why}; it is a leftover of an interrupted upload of "
                             f"{name}, delete it by hand", leftover=old["id"])
    if not ours:
        return None
    image = ours[0]
    digests = _file_digests(path, image.get("os_hash_algo") or "sha512")
    _verify(api, image, digests, sha256, size=path.stat().st_size)
    ops = _patch_ops(image, props, api.target.visibility)
    if ops:
        api.log.info("glance: updating %s of image %s",
                     ", ".join(o["path"].lstrip("/") for o in ops), image["id"])
        image = api.patch(image["id"], ops)
    return image


def _upload_new(api: _Api, path: Path, *, name: str, sha256: str, disk_format: str,
                min_disk: int, props: Mapping[str, str], deadline: float,
                cancel: threading.Event | None) -> dict[str, Any]:
    body = {"name": name, "disk_format": disk_format, "container_format": "bare",
            "visibility": api.target.visibility, "min_disk": min_disk, **props}
    try:
        created = api.call("POST", "/images", f"creating image {name}", ok=(201,),
                           json=body).json()
    except CloudError as exc:
        rule = VISIBILITY_POLICY.get(api.target.visibility)
        if "HTTP 403" in str(exc) and rule:
            raise CloudError(f"{exc} (glance.visibility: {api.target.visibility} needs "
                             f"Glance's {rule} policy for this user; ask the cloud's "
                             "admins or choose another visibility)") from exc
        raise
    image_id: str = created["id"]
    api.log.info("glance: created image %s (%s) on %s; uploading %s",
                 image_id, name, api.cloud, path)
    try:
        data = _Stream(path, deadline, cancel, api.target.timeout)
        t0 = time.monotonic()
        # One attempt only: a retry would resend a half-consumed stream.
        api.call("PUT", f"/images/{image_id}/file", f"uploading {path.name} to {image_id}",
                 ok=(204,), data=data, connect_retries=0, status_code_retries=0,
                 headers={"Content-Type": "application/octet-stream"})
        api.log.info("glance: sent %d bytes in %.1f s", data.sent, time.monotonic() - t0)
        image = _wait_active(api, image_id, deadline)
        algo = image.get("os_hash_algo") or "sha512"
        digests = data.digests() if algo in data.hashes else {
            **data.digests(), **_file_digests(path, algo)}
        _verify(api, image, digests, sha256, size=data.sent)
    except BaseException as exc:
        why = api.delete(image_id)
        if why is None:
            api.log.info("glance: deleted image %s after the failed upload", image_id)
        elif isinstance(exc, CloudError):
            raise CloudError(f"{exc}; and image {image_id} could not be deleted ({why}): "
                             f"the next upload of {name} deletes it", leftover=image_id
                             ) from exc
        else:
            api.log.error("glance: image %s could not be deleted: %s", image_id, why)
        raise
    return image


def _wait_active(api: _Api, image_id: str, deadline: float) -> dict[str, Any]:
    while True:
        image = api.show(image_id)
        status = image.get("status")
        if status == "active":
            return image
        if status not in LEFTOVER - {"killed"}:
            raise CloudError(f"glance ({api.cloud}): image {image_id} went {status} after "
                             "the upload; see the glance-api log")
        if time.monotonic() > deadline:
            raise CloudError(f"glance ({api.cloud}): image {image_id} still {status} "
                             f"after {api.target.timeout} s (glance.timeout)")
        time.sleep(POLL)


def _verify(api: _Api, image: Mapping[str, Any], digests: Mapping[str, str], sha256: str,
            size: int) -> None:
    """Glance's size, MD5 and os_hash_value against what we sent (or hold, when reusing)."""
    algo = image.get("os_hash_algo") or "sha512"
    wrong = []
    if digests["sha256"] != sha256:
        wrong.append(f"the file's sha256 is {digests['sha256']}, the build recorded "
                     f"{sha256} (the file changed)")
    if image.get("size") != size:
        wrong.append(f"size {image.get('size')} != {size} bytes")
    if image.get("checksum") and image["checksum"] != digests["md5"]:
        wrong.append(f"checksum (md5) {image['checksum']} != {digests['md5']}")
    if not image.get("os_hash_value"):
        wrong.append("glance reports no os_hash_value")
    elif image["os_hash_value"] != digests.get(algo):
        wrong.append(f"os_hash_value ({algo}) {image['os_hash_value'][:16]}... != "
                     f"{digests.get(algo, '')[:16]}...")
    if wrong:
        raise CloudError(f"glance ({api.cloud}): image {image.get('id')} does not hold "
                         f"{image.get('name')} as sent: " + "; ".join(wrong))


def _patch_ops(image: Mapping[str, Any], props: Mapping[str, str],
               visibility: str) -> list[dict[str, Any]]:
    """JSON-patch operations that bring a reused image to the configured visibility and
    properties (Glance's ``add`` fails on an existing property, hence ``replace``)."""
    ops: list[dict[str, Any]] = []
    if image.get("visibility") != visibility:
        ops.append({"op": "replace", "path": "/visibility", "value": visibility})
    for key, value in sorted(props.items()):
        if image.get(key) != value:
            ops.append({"op": "replace" if key in image else "add", "path": f"/{key}",
                        "value": value})
    return ops


def _record(target: GlanceTarget, image: Mapping[str, Any], arch: Arch, *, reused: bool,
            started: float) -> dict[str, Any]:
    return {
        "cloud": target.cloud,
        "image_id": image["id"],
        "name": image["name"],
        "checksum": image["os_hash_value"],
        "checksum_algo": image.get("os_hash_algo") or "sha512",
        "md5": image.get("checksum"),
        "size": image.get("size"),
        "disk_format": image.get("disk_format"),
        "visibility": image.get("visibility"),
        "status": image.get("status"),
        "arch": arch.value,
        "reused": reused,
        "seconds": round(time.monotonic() - started, 1),
    }


# -- helpers -----------------------------------------------------------------------

class _Stream:
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


def _file_digests(path: Path, algo: str) -> dict[str, str]:
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


def _inspect(path: Path) -> tuple[str, int]:
    """Glance's disk_format from the name, checked against the content, and the
    virtual size in GiB (rounded up) for ``min_disk``, so Nova refuses a flavor whose
    disk is too small before it boots anything."""
    fmt = next((f for ext, f in DISK_FORMATS.items() if path.name.endswith(ext)), None)
    if fmt is None:
        raise CloudError(f"{path.name}: Glance takes the qcow2 or an uncompressed raw "
                         f"image ({', '.join(DISK_FORMATS)}), not this file")
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


def _connect(target: GlanceTarget) -> Any:
    try:
        return openstack.connect(cloud=target.cloud, api_timeout=target.timeout)
    except openstack.exceptions.ConfigException as exc:
        raise _unknown_cloud(target.cloud, exc) from exc
    except (openstack.exceptions.SDKException, ksa_exceptions.ClientException) as exc:
        raise CloudError(f"glance.cloud: {target.cloud!r}: {_oneline(str(exc))}") from exc


def _unknown_cloud(cloud: str, exc: Exception) -> CloudError:
    return CloudError(f"glance.cloud: {cloud!r} is not usable: {_oneline(str(exc))} "
                      "(openstacksdk reads $OS_CLIENT_CONFIG_FILE, ./clouds.yaml, "
                      "~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml)")


def _timed_out(exc: BaseException) -> bool:
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


def _is_reserved(key: str) -> bool:
    return key in RESERVED or key.startswith("os_glance")


def _reserved_hint(key: str) -> str:
    return ("is set by Glance or by the upload itself; choose another property name"
            if key != SHA256_KEY else "is set by the upload from the image's sha256")


def _oneline(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()[:300]


def _body(resp: Any) -> str:
    """Glance's error text without the HTML around it."""
    text = re.sub(r"<[^>]+>", " ", html.unescape(resp.text or ""))
    return _oneline(text) or resp.reason or "no body"
