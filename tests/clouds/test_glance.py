"""Glance uploads against a real glance-api (Debian's package) on 127.0.0.1.

Network faults are made real by tests.glanceserver.TcpProxy between openstacksdk and
glance-api; what Glance holds is read back over plain HTTP, not through the module under
test.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from koji_image_plugin.clouds import glance
from koji_image_plugin.errors import CancelledError, CloudError, SpecError
from koji_image_plugin.spec.distro import Distro
from koji_image_plugin.spec.firmware import Firmware
from tests.glanceserver import GlanceServer, TcpProxy

LOG = logging.getLogger("test.glance")
CLOUD = "koji-image-test"


@pytest.fixture
def clouds(tmp_path: Path, glance_server: GlanceServer,
           monkeypatch: pytest.MonkeyPatch) -> Path:
    """openstacksdk's config for the test cloud (restored after the test)."""
    path = glance_server.clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    return path


@pytest.fixture
def qcow2(tmp_path: Path, small_disk: Path) -> Path:
    out = tmp_path / "Test-Cloud-Base-12-1.x86_64.qcow2"
    subprocess.run(["qemu-img", "convert",
                    "-O", "qcow2",
                    str(small_disk), str(out)], check=True)
    return out


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def get(server: GlanceServer, path: str) -> Any:
    with urllib.request.urlopen(f"{server.url}/v2{path}", timeout=30) as resp:
        if resp.headers.get_content_type() == "application/json":
            return json.load(resp)
        return resp.read()


def named(server: GlanceServer, name: str) -> list[dict[str, Any]]:
    """Every image of that name Glance has, whatever its status or visibility."""
    images: list[dict[str, Any]] = get(
        server, f"/images?visibility=all&limit=1000&name={name}")["images"]
    return images


def target(**kw: Any) -> glance.GlanceTarget:
    return glance.GlanceTarget(**{"cloud": CLOUD, "timeout": 60, **kw})


def props(nvr: str = "Test-Cloud-Base-12-1") -> dict[str, str]:
    return glance.image_properties(Distro.parse("Debian-12"), "x86_64", "generic", nvr=nvr)


def up(path: Path, name: str, tgt: glance.GlanceTarget | None = None,
       **kw: Any) -> dict[str, Any]:
    return glance.upload(path, name=name, sha256=kw.pop("sha256", sha256_of(path)),
                         arch="x86_64", properties=kw.pop("properties", props()),
                         target=tgt or target(), log=LOG, **kw)


# -- configuration and properties (no Glance needed) ---------------------------------

@pytest.mark.parametrize("config,error", [
    ({"cloud": "c", "visibility": "everyone"},
     "glance.visibility: 'everyone' is not allowed; use one of: private, shared, "
     "community, public"),
    ({"visibility": "public"}, "cloud: is required"),
    ({"cloud": ""}, "glance.cloud: must not be empty"),
    ({"cloud": "c", "timeout": 0}, "glance.timeout: 0 is out of range: at least 1"),
    ({"cloud": "c", "region": "x"}, "glance.region: unknown field; allowed fields: cloud, "
     "properties, timeout, visibility"),
    ({"cloud": "c", "properties": {"size": "1"}}, "glance.properties.size: is set by Glance"),
    ({"cloud": "c", "properties": {"hw_x": 1}}, "glance.properties.hw_x: must be of type "
     "string"),
])
def test_target_config_problems_name_the_field(config: dict[str, Any], error: str) -> None:
    with pytest.raises(SpecError) as exc:
        glance.GlanceTarget.from_dict(config)
    assert error in str(exc.value)
    assert "\n" not in str(exc.value)


def test_target_from_dict_and_every_problem_at_once() -> None:
    t = glance.GlanceTarget.from_dict({"cloud": "prod", "visibility": "public",
                                       "timeout": 900, "properties": {"hw_x": "1"}})
    assert t == glance.GlanceTarget("prod", "public", 900, {"hw_x": "1"})
    with pytest.raises(SpecError) as exc:
        glance.GlanceTarget.from_dict({"cloud": 3, "visibility": "x", "timeout": "9"})
    assert len(exc.value.problems) == 3
    with pytest.raises(SpecError, match=r"glance\.visibility"):
        glance.GlanceTarget("prod", visibility="everyone")


def test_image_properties_follow_openstack_names() -> None:
    p = glance.image_properties(Distro.parse("Debian-12"), "amd64", "generic", nvr="A-1-2")
    assert p["os_distro"] == "debian" and p["os_version"] == "12"
    assert p["architecture"] == "x86_64"
    assert p["hw_disk_bus"] == p["hw_vif_model"] == p["hw_rng_model"] == "virtio"
    assert p["koji_image_nvr"] == "A-1-2" and p["koji_image_variant"] == "generic"
    f = glance.image_properties(Distro.parse("Fedora-rawhide"), "i386", "ec2")
    assert (f["os_distro"], f["os_version"], f["architecture"]) == ("fedora", "rawhide",
                                                                     "i686")
    assert "koji_image_nvr" not in f
    assert p["hw_firmware_type"] == f["hw_firmware_type"] == "bios"
    # the image's firmware: a UEFI-only one must be started with UEFI by Nova
    a = glance.image_properties(Distro.parse("Debian-12"), "arm64", "generic",
                                firmware=Firmware.UEFI)
    assert (a["architecture"], a["hw_firmware_type"]) == ("aarch64", "uefi")
    h = glance.image_properties(Distro.parse("Debian-12"), "x86_64", "generic",
                                firmware=Firmware.HYBRID)
    assert h["hw_firmware_type"] == "bios"  # it boots either: Nova's default works
    with pytest.raises(ValueError):
        glance.image_properties(Distro.parse("Debian-12"), "arm", "generic")


def test_files_glance_cannot_boot_are_refused(tmp_path: Path, small_disk: Path) -> None:
    xz = tmp_path / "a.raw.xz"
    xz.write_bytes(b"\xfd7zXZ\x00")
    with pytest.raises(CloudError, match="qcow2 or an uncompressed raw"):
        up(xz, "never-created")
    fake = tmp_path / "a.qcow2"
    fake.write_bytes(small_disk.read_bytes()[:4096])
    with pytest.raises(CloudError, match="the name says qcow2 but the content is not"):
        up(fake, "never-created")


@pytest.mark.parametrize("kwargs,error", [
    ({"name": ""}, "name: '' must be 1 to 255 characters"),
    ({"sha256": "abc"}, "sha256: 'abc' is not a SHA-256 hex digest"),
    ({"properties": {"visibility": "public"}}, "properties.visibility: is set by Glance"),
    ({"properties": {"hw_x": 1}}, "properties.hw_x: 1 must be a string"),
])
def test_bad_arguments_are_refused_before_any_request(qcow2: Path, kwargs: dict[str, Any],
                                                      error: str) -> None:
    # the cloud does not exist: reaching it would be a different error
    args: dict[str, Any] = {"name": "x", "tgt": target(cloud="nosuch"), **kwargs}
    with pytest.raises(CloudError) as exc:
        up(qcow2, args.pop("name"), args.pop("tgt"), **args)
    assert str(exc.value).startswith(error)


# -- a real glance-api -------------------------------------------------------------

def test_upload_becomes_active_with_glance_checksums(glance_server: GlanceServer,
                                                     clouds: Path, qcow2: Path) -> None:
    name = "Test-Cloud-Base-12-1.x86_64"
    rec = up(qcow2, name, target(visibility="public", properties={"site": "test"}))
    data = qcow2.read_bytes()
    image = get(glance_server, f"/images/{rec['image_id']}")
    assert image["status"] == "active" and image["visibility"] == "public"
    assert image["disk_format"] == "qcow2" and image["container_format"] == "bare"
    assert image["os_hash_algo"] == "sha512"
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest() == rec["checksum"]
    assert image["checksum"] == hashlib.md5(data).hexdigest() == rec["md5"]
    assert image["size"] == len(data) == rec["size"]
    assert image["min_disk"] == 1  # 64 MiB virtual size, rounded up to GiB
    for key, value in {**props(), "site": "test", "koji_image_sha256": sha256_of(qcow2),
                       "os_distro": "debian", "architecture": "x86_64"}.items():
        assert image[key] == value, key
    assert rec == {"cloud": CLOUD, "image_id": image["id"], "name": name,
                   "checksum": image["os_hash_value"], "checksum_algo": "sha512",
                   "md5": image["checksum"], "size": len(data), "disk_format": "qcow2",
                   "visibility": "public", "status": "active", "arch": "x86_64",
                   "reused": False, "seconds": rec["seconds"]}
    # What Glance serves back is the file, byte for byte.
    assert hashlib.sha256(get(glance_server, f"/images/{image['id']}/file")).hexdigest() \
        == sha256_of(qcow2)


def test_second_upload_reuses_and_applies_new_visibility(glance_server: GlanceServer,
                                                         clouds: Path, qcow2: Path) -> None:
    name = "Reuse-12-1.x86_64"
    first = up(qcow2, name)
    again = up(qcow2, name, target(visibility="community"))
    assert again["reused"] is True and first["reused"] is False
    assert again["image_id"] == first["image_id"]
    assert [i["id"] for i in named(glance_server, name)] == [first["image_id"]]
    assert glance_server.stored_files().count(first["image_id"]) == 1
    assert glance_server.orphans() == []
    assert get(glance_server, f"/images/{first['image_id']}")["visibility"] == "community"


def test_same_name_other_content_is_refused_naming_the_image(
        glance_server: GlanceServer, clouds: Path, qcow2: Path, tmp_path: Path) -> None:
    name = "Conflict-12-1.x86_64"
    first = up(qcow2, name)
    other = tmp_path / "other.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(other), "1G"], check=True)
    with pytest.raises(CloudError) as exc:
        up(other, name)
    msg = str(exc.value)
    assert f"an image named {name} already exists with other content " \
           f"(koji_image_sha256={sha256_of(qcow2)}): {first['image_id']}" in msg
    assert f"openstack image delete {first['image_id']}" in msg and "\n" not in msg
    assert [i["id"] for i in named(glance_server, name)] == [first["image_id"]]


def test_raw_is_accepted(glance_server: GlanceServer, clouds: Path,
                         small_disk: Path) -> None:
    rec = up(small_disk, "Raw-12-1.x86_64")
    image = get(glance_server, f"/images/{rec['image_id']}")
    assert (image["disk_format"], image["status"]) == ("raw", "active")
    assert image["size"] == small_disk.stat().st_size


@pytest.mark.parametrize("fault,big,expect", [
    ("cut", False, "uploading"),
    ("flip", False, "does not hold"),
    # the whole small file fits in the socket buffers: the client waits for the answer
    ("hold", False, "no progress for 5 s (glance.timeout)"),
    # 160 MiB do not: the client is blocked sending when the timeout strikes
    ("hold", True, "no progress for 5 s (glance.timeout)"),
])
def test_network_fault_ends_in_clean_failure(glance_server: GlanceServer, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch, qcow2: Path,
                                             fault: str, big: bool, expect: str) -> None:
    """A connection cut mid-PUT, a byte changed on the way (Glance stores other data than
    we sent), a stall past the timeout: each a CloudError, and no image, no data left."""
    name = f"Fault-{fault}-{big}-12-1.x86_64"
    if big:
        qcow2 = tmp_path / "big.raw"
        subprocess.run(["truncate", "-s", "160M", str(qcow2)], check=True)
    proxy = TcpProxy(glance_server.port, after=1 << 20, fault=fault)
    try:
        cfg = glance_server.clouds_yaml(tmp_path / "clouds.yaml", CLOUD, proxy.url)
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(cfg))
        t0 = time.monotonic()
        with pytest.raises(CloudError) as exc:
            up(qcow2, name, target(timeout=5))
        took = time.monotonic() - t0
        assert proxy.fired.is_set()
        LOG.info("%s: %.1f s: %s", fault, took, exc.value)
    finally:
        proxy.close()
    assert expect in str(exc.value)
    assert exc.value.leftover is None
    assert took < 30
    assert named(glance_server, name) == []
    assert glance_server.orphans() == []
    if fault == "flip":
        assert "checksum (md5)" in str(exc.value) and "os_hash_value (sha512)" in str(exc.value)


def test_file_changed_since_the_build_is_refused_and_removed(
        glance_server: GlanceServer, clouds: Path, qcow2: Path) -> None:
    name = "Changed-12-1.x86_64"
    with pytest.raises(CloudError, match="the file changed"):
        up(qcow2, name, sha256="0" * 64)
    assert named(glance_server, name) == []


def test_cancel_deletes_the_image(glance_server: GlanceServer, clouds: Path,
                                  qcow2: Path) -> None:
    name = "Cancelled-12-1.x86_64"
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        up(qcow2, name, cancel=cancel)
    assert named(glance_server, name) == []


def test_cancel_after_the_image_exists_deletes_it(glance_server: GlanceServer,
                                                   clouds: Path, qcow2: Path) -> None:
    """The cancel comes once the image record exists (set when the upload logs that it
    created it): the stream stops at its next chunk and the image is deleted."""
    name = "Cancelled-late-12-1.x86_64"
    cancel = threading.Event()
    created: list[str] = []

    class CancelOnCreate(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("glance: created image"):
                created.append(str(record.args[0]) if record.args else "")
                cancel.set()

    handler = CancelOnCreate()
    level = LOG.level
    LOG.setLevel(logging.INFO)
    LOG.addHandler(handler)
    try:
        with pytest.raises(CancelledError):
            up(qcow2, name, cancel=cancel)
    finally:
        LOG.removeHandler(handler)
        LOG.setLevel(level)
    assert len(created) == 1
    assert named(glance_server, name) == []
    assert glance_server.orphans() == []


def test_unknown_cloud_is_one_line_naming_the_field(clouds: Path, qcow2: Path) -> None:
    t = target(cloud="nosuch")
    with pytest.raises(CloudError) as exc:
        glance.check_cloud(t)
    assert str(exc.value).startswith("glance.cloud: 'nosuch' is not usable: ")
    assert "\n" not in str(exc.value)
    with pytest.raises(CloudError, match=r"^glance\.cloud: 'nosuch'"):
        up(qcow2, "never-created", t)
    glance.check_cloud(target())


def test_glance_gone_mid_upload_names_leftover_and_next_run_replaces_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qcow2: Path) -> None:
    """glance-api dies mid-PUT: the upload fails naming the image it could not delete;
    with glance back, the next upload of that name deletes the leftover and succeeds."""
    server = GlanceServer(tmp_path / "glance")
    try:
        server.start()
        proxy = TcpProxy(server.port, after=1 << 20, fault="hold")
        cfg = server.clouds_yaml(tmp_path / "clouds.yaml", CLOUD, proxy.url)
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(cfg))
        name = "Crash-12-1.x86_64"
        errors: list[BaseException] = []

        def run() -> None:
            try:
                up(qcow2, name, target(timeout=30))
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                errors.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        assert proxy.fired.wait(30)
        t0 = time.monotonic()
        server.kill()
        proxy.close()
        worker.join(60)
        assert not worker.is_alive()
        assert time.monotonic() - t0 < 10  # the dead connection ends it, not the timeout
        assert len(errors) == 1 and isinstance(errors[0], CloudError), errors
        leftover = errors[0].leftover
        assert leftover and f"image {leftover} could not be deleted" in str(errors[0])

        server.start()
        # queued or saving, depending on how far glance got before it died
        left = named(server, name)
        assert [i["id"] for i in left] == [leftover]
        assert left[0]["status"] in ("queued", "saving")
        server.clouds_yaml(cfg, CLOUD)
        rec = up(qcow2, name)
        assert rec["reused"] is False and rec["image_id"] != leftover
        assert [(i["id"], i["status"]) for i in named(server, name)] == [
            (rec["image_id"], "active")]
        # Not asserted: whether the killed glance-api had flushed part of the data to its
        # store. When it had, that file belongs to no image after the leftover is
        # deleted (Glance never recorded its location), and only the operator can remove
        # it; Glance has no API for it.
    finally:
        server.remove()


def test_glance_refusing_public_is_a_clear_error_and_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qcow2: Path) -> None:
    """Glance's default policy: publicize_image is role:admin, and keystone-less
    requests have no role."""
    server = GlanceServer(tmp_path / "glance", policy="{}\n")
    try:
        server.start()
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE",
                           str(server.clouds_yaml(tmp_path / "clouds.yaml", CLOUD)))
        with pytest.raises(CloudError) as exc:
            up(qcow2, "Public-12-1.x86_64", target(visibility="public"))
        msg = str(exc.value)
        assert "creating image Public-12-1.x86_64: HTTP 403" in msg
        assert "glance.visibility: public needs Glance's publicize_image policy" in msg
        assert "\n" not in msg
        assert get(server, "/images?visibility=all")["images"] == []
        assert up(qcow2, "Private-12-1.x86_64")["visibility"] == "private"
    finally:
        server.remove()
