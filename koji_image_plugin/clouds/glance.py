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

import logging
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import openstack.config
import openstack.exceptions

from ..errors import CancelledError, CloudError
from ..spec.arches import Arch
from ..spec.cloudconfig import (
    PROPERTY_MAX,
    SHA256_KEY,
    GlanceTarget,
    is_reserved,
    reserved_hint,
)
from ..spec.distro import Distro
from ..spec.firmware import Firmware
from ..spec.variants import Variant
from .glanceapi import Api, Stream, connect, file_digests, inspect, unknown_cloud

#: the Glance policy rule each non-default visibility needs
VISIBILITY_POLICY = {"public": "publicize_image", "community": "communitize_image"}
NVR_KEY = "koji_image_nvr"
VARIANT_KEY = "koji_image_variant"
#: statuses an interrupted upload of ours leaves behind (deleted and uploaded again)
LEFTOVER = frozenset({"queued", "saving", "uploading", "importing", "killed"})
POLL = 1.0


def check_cloud(target: GlanceTarget) -> None:
    """Fail early (without network) when the cloud is not in any clouds.yaml."""
    try:
        openstack.config.OpenStackConfig().get_one(cloud=target.cloud)
    except openstack.exceptions.ConfigException as exc:
        raise unknown_cloud(target.cloud, exc) from exc


def image_properties(distro: Distro, arch: Arch | str, variant: Variant | str, *,
                     nvr: str | None = None, firmware: Firmware = Firmware.BIOS
                     ) -> dict[str, str]:
    """Glance properties Nova and users go by, for an image of this project.

    Our images have virtio drivers, boot with the image's firmware (``hw_firmware_type``:
    ``uefi`` for a UEFI-only image; a hybrid one boots Nova's default BIOS too), and seed
    the kernel's RNG from virtio-rng when there is one. ``hw_machine_type`` is left to
    the cloud: the images boot on both ``pc`` and ``q35``.
    """
    a = Arch.parse(arch)
    v = Variant(variant)
    props = {
        "os_type": "linux",
        "os_distro": distro.family.os_distro,
        "os_version": distro.version,
        "architecture": a.value,
        "hw_disk_bus": "virtio",
        "hw_vif_model": "virtio",
        "hw_rng_model": "virtio",
        "hw_firmware_type": firmware.glance_firmware_type,
        VARIANT_KEY: v.value,
    }
    if nvr:
        props[NVR_KEY] = nvr
    return props


def upload(path: Path, *, name: str, sha256: str, arch: Arch | str,
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
    disk_format, min_disk = inspect(path)
    sha256 = sha256.lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise CloudError(f"sha256: {sha256!r} is not a SHA-256 hex digest")
    if not name or len(name) > 255:
        raise CloudError(f"name: {name!r} must be 1 to 255 characters")
    a = Arch.parse(arch)
    for key, value in properties.items():
        if is_reserved(key):
            raise CloudError(f"properties.{key}: {reserved_hint(key)}")
        if not isinstance(value, str) or max(len(value), len(key)) > PROPERTY_MAX:
            raise CloudError(f"properties.{key}: {value!r} must be a string of at most "
                             f"{PROPERTY_MAX} characters")
    props = {**properties, **target.properties, SHA256_KEY: sha256}
    if cancel is not None and cancel.is_set():
        raise CancelledError(f"the upload of {name} was cancelled")
    conn = connect(target)
    try:
        api = Api(conn, target, log)
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

def _reuse_or_clear(api: Api, path: Path, name: str, sha256: str,
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
    digests = file_digests(path, image.get("os_hash_algo") or "sha512")
    _verify(api, image, digests, sha256, size=path.stat().st_size)
    ops = _patch_ops(image, props, api.target.visibility)
    if ops:
        api.log.info("glance: updating %s of image %s",
                     ", ".join(o["path"].lstrip("/") for o in ops), image["id"])
        image = api.patch(image["id"], ops)
    return image


def _upload_new(api: Api, path: Path, *, name: str, sha256: str, disk_format: str,
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
        data = Stream(path, deadline, cancel, api.target.timeout)
        t0 = time.monotonic()
        # One attempt only: a retry would resend a half-consumed stream.
        api.call("PUT", f"/images/{image_id}/file", f"uploading {path.name} to {image_id}",
                 ok=(204,), data=data, connect_retries=0, status_code_retries=0,
                 headers={"Content-Type": "application/octet-stream"})
        api.log.info("glance: sent %d bytes in %.1f s", data.sent, time.monotonic() - t0)
        image = _wait_active(api, image_id, deadline)
        algo = image.get("os_hash_algo") or "sha512"
        digests = data.digests() if algo in data.hashes else {
            **data.digests(), **file_digests(path, algo)}
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


def _wait_active(api: Api, image_id: str, deadline: float) -> dict[str, Any]:
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


def _verify(api: Api, image: Mapping[str, Any], digests: Mapping[str, str], sha256: str,
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
