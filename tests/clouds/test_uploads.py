"""``koji-image upload``: a local build's images to EC2 (moto server on loopback), the
records in uploads.json, and what is refused before anything is sent."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from koji_image_plugin.clouds import records as uploads
from tests.awsserver import CREDENTIALS, MotoServer
from tests.conftest import make_disk
from tests.glanceserver import GlanceServer

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local build's output dir: the ec2 variant's raw.xz of a real disk and the
    manifest fields `koji-image upload` reads."""
    d = tmp_path_factory.mktemp("out")
    raw = make_disk(d / "disk.raw", 32, {"data/random.bin": os.urandom(2 << 20)})
    name = "Test-Cloud-Base-EC2-1-3.x86_64.raw.xz"
    with (d / name).open("wb") as f:
        subprocess.run(["xz", "-1", "-c", str(raw)], stdout=f, check=True)
    qcow2 = "Test-Cloud-Base-1-3.x86_64.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(d / qcow2)],
                   check=True)
    raw.unlink()

    def image(file: str, variant: str, fmt: str, kind: str) -> dict[str, Any]:
        return {"file": file, "arch": "x86_64", "variant": variant, "format": fmt,
                "size": (d / file).stat().st_size, "koji_archive_type": kind,
                "sha256": hashlib.sha256((d / file).read_bytes()).hexdigest()}

    manifest = {"nvr": "Test-Cloud-Base-1-3", "spec": {"distro": "Debian-12"}, "images": [
        image(name, "ec2", "raw.xz", "raw-xz"), image(qcow2, "generic", "qcow2", "qcow2")]}
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d


@pytest.fixture
def env(moto: MotoServer, glance_server: GlanceServer,
        tmp_path: Path) -> Iterator[dict[str, str]]:
    moto.reset()
    conf = tmp_path / "koji-image.conf"
    conf.write_text(f"[ec2]\nregions = {' '.join(REGIONS)}\nendpoint_url = {moto.url}\n"
                    "[glance:test-cloud]\nvisibility = public\n"
                    "properties = hw_qemu_guest_agent=no\n")
    clouds = glance_server.clouds_yaml(tmp_path / "clouds.yaml", "test-cloud")
    yield {**os.environ, **CREDENTIALS, "KOJI_IMAGE_CONFIG": str(conf),
           "OS_CLIENT_CONFIG_FILE": str(clouds)}


def koji_image(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "koji_image_plugin.command", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_upload_registers_amis_writes_uploads_json_and_reruns_reuse(
        env: dict[str, str], outdir: Path) -> None:
    (outdir / "uploads.json").unlink(missing_ok=True)
    done = koji_image(env, "upload", str(outdir), "--to", "ec2", "--public")
    assert done.returncode == 0, done.stderr
    records = json.loads((outdir / "uploads.json").read_text())
    assert records["version"] == 1 and records["glance"] == []
    assert sorted(r["region"] for r in records["ec2"]) == sorted(REGIONS)
    assert all(r["public"] and r["image_id"].startswith("ami-") for r in records["ec2"])
    assert done.stdout.count("[public]") == 3
    again = koji_image(env, "upload", str(outdir), "--to", "ec2", "--public")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("[public, reused]") == 3
    rerun = json.loads((outdir / "uploads.json").read_text())
    assert [r["image_id"] for r in rerun["ec2"]] == [r["image_id"] for r in records["ec2"]]
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in (outdir / "uploads.json").read_text()


def test_upload_to_glance_becomes_active_with_the_right_checksum_and_reruns_reuse(
        env: dict[str, str], outdir: Path, glance_server: GlanceServer) -> None:
    (outdir / "uploads.json").unlink(missing_ok=True)
    done = koji_image(env, "upload", str(outdir), "--to", "glance", "--cloud", "test-cloud")
    assert done.returncode == 0, done.stderr
    [rec] = json.loads((outdir / "uploads.json").read_text())["glance"]
    assert (rec["cloud"], rec["arch"], rec["variant"], rec["status"], rec["visibility"]) \
        == ("test-cloud", "x86_64", "generic", "active", "public")
    qcow2 = (outdir / "Test-Cloud-Base-1-3.x86_64.qcow2").read_bytes()
    assert rec["checksum"] == hashlib.sha512(qcow2).hexdigest()
    assert rec["md5"] == hashlib.md5(qcow2).hexdigest()
    # what Glance holds, read over plain HTTP
    import urllib.request
    with urllib.request.urlopen(f"{glance_server.url}/v2/images/{rec['image_id']}") as r:
        held = json.load(r)
    assert held["status"] == "active" and held["os_hash_value"] == rec["checksum"]
    assert (held["os_distro"], held["os_version"], held["hw_qemu_guest_agent"]) == \
        ("debian", "12", "no")
    assert held["name"] == "Test-Cloud-Base-1-3.x86_64"
    again = koji_image(env, "upload", str(outdir), "--to", "glance", "--cloud", "test-cloud")
    assert again.returncode == 0, again.stderr
    [rerun] = json.loads((outdir / "uploads.json").read_text())["glance"]
    assert rerun["image_id"] == rec["image_id"] and rerun["reused"]


@pytest.mark.parametrize("args,error", [
    (["--to", "glance"], "--cloud: --to glance needs --cloud NAME"),
    (["--to", "ec2", "--cloud", "x"], "--cloud: is for Glance; add --to glance"),
    (["--to", "ec2", "--region", "Mars"],
     "argument --region: 'Mars' is not an EC2 region name; e.g. us-east-1"),
    (["--to", "ec2", "--region", "us-east-1", "--region", "us-east-1"],
     "upload.ec2.regions: lists an item twice"),
])
def test_bad_arguments_are_named_and_nothing_is_sent(
        env: dict[str, str], outdir: Path, args: list[str], error: str) -> None:
    done = koji_image(env, "upload", str(outdir), *args)
    assert done.returncode == 2 and error in done.stderr, done.stderr


def test_a_dir_without_a_manifest_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    done = koji_image(env, "upload", str(tmp_path), "--to", "ec2")
    assert done.returncode == 2
    assert "has no manifest.json; give the output dir of a koji-image build" in done.stderr


def test_a_build_without_the_ec2_variant_says_how_to_make_one(
        env: dict[str, str], tmp_path: Path, outdir: Path) -> None:
    manifest = json.loads((outdir / "manifest.json").read_text())
    for image in manifest["images"]:  # each image as the generic variant, named so
        name = image["file"].replace("-EC2-", "-")
        os.link(outdir / image["file"], tmp_path / name)
        image.update(variant="generic", file=name)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    done = koji_image(env, "upload", str(tmp_path), "--to", "ec2")
    assert done.returncode == 1
    assert ("ec2: this build has no ec2 variant in raw.xz (it has generic/qcow2, "
            "generic/raw.xz); build "
            "it with variants: [ec2] and format raw.xz") in done.stderr


def test_a_damaged_image_is_not_uploaded(env: dict[str, str], tmp_path: Path,
                                        outdir: Path, moto: MotoServer) -> None:
    import boto3

    manifest = json.loads((outdir / "manifest.json").read_text())
    name = manifest["images"][0]["file"]
    damaged = bytearray((outdir / name).read_bytes())
    damaged[100] ^= 0xFF
    (tmp_path / name).write_bytes(bytes(damaged))
    for image in manifest["images"][1:]:
        os.link(outdir / image["file"], tmp_path / image["file"])
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    done = koji_image(env, "upload", str(tmp_path), "--to", "ec2")
    assert done.returncode == 1
    assert "the copy is damaged, fetch it again" in done.stderr
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto.url,
                       aws_access_key_id="x", aws_secret_access_key="y")
    assert ec2.describe_images(Owners=["self"])["Images"] == []


def test_merge_replaces_the_record_of_the_same_place() -> None:
    old: dict[str, Any] = {"version": 1, "ec2": [
        {"arch": "x86_64", "variant": "ec2", "region": "us-east-1", "image_id": "ami-1"},
        {"arch": "i686", "variant": "ec2", "region": "us-east-1", "image_id": "ami-2"}],
        "glance": []}
    new = {"ec2": [{"arch": "x86_64", "variant": "ec2", "region": "us-east-1",
                    "image_id": "ami-3"}],
           "glance": [{"arch": "x86_64", "variant": "generic", "cloud": "c",
                       "image_id": "g-1"}]}
    merged = uploads.merge(old, new)
    assert [r["image_id"] for r in merged["ec2"]] == ["ami-2", "ami-3"]
    assert [r["image_id"] for r in merged["glance"]] == ["g-1"]
