"""EC2 publishing against moto in server mode on loopback, through the fault proxy
(tests/awsserver.py): EBS direct snapshots read back block by block, AMIs in three
regions, public launch permission, idempotent reruns, and faults that end either in
success or in a clean failure with nothing left behind."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from koji_image_plugin.clouds import ebs
from koji_image_plugin.clouds.ec2 import Ec2Image, Ec2Publisher, Ec2Result
from koji_image_plugin.errors import CancelledError, CloudError
from koji_image_plugin.runner import Runner
from koji_image_plugin.spec import cloudconfig, hostconfig
from koji_image_plugin.spec.arches import Arch
from koji_image_plugin.spec.firmware import Firmware
from koji_image_plugin.spec.variants import Variant
from tests.awsserver import CREDENTIALS, FaultProxy, MotoServer
from tests.conftest import make_disk

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")


@pytest.fixture
def proxy(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    moto.reset()
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(k, raising=False)
    p = FaultProxy(moto)
    yield p
    p.stop()


@pytest.fixture(scope="session")
def ec2_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ec2Image, Path]:
    """A real 64 MiB disk (MBR + ext4 with random and repetitive data), compressed with
    xz as the pipeline's raw.xz; returns the image and the raw disk it expands to."""
    d = tmp_path_factory.mktemp("ec2img")
    raw = make_disk(d / "disk.raw", 64, {"data/random.bin": os.urandom(5 << 20),
                                        "etc/hostname": b"cloud\n"})
    xz = d / "Test-Cloud-Base-EC2-1-1.x86_64.raw.xz"
    with xz.open("wb") as out:
        subprocess.run(["xz", "-T0", "-1", "-c", str(raw)], stdout=out, check=True)
    sha = hashlib.sha256(xz.read_bytes()).hexdigest()
    return Ec2Image(xz, "Test-Cloud-Base-1-1", Arch.X86_64, Variant.EC2, sha, build_id=7), raw


def write_config(path: Path, proxy: FaultProxy, **extra: str) -> cloudconfig.Ec2Config:
    keys = {"regions": " ".join(REGIONS), "endpoint_url": proxy.url, "workers": "8",
            "stall_timeout": "20", "wait_timeout": "60", "retries": "6", **extra}
    path.write_text("[ec2]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()))
    return hostconfig.load_ec2(path)


def publisher(cfg: cloudconfig.Ec2Config, tmp_path: Path) -> Ec2Publisher:
    return Ec2Publisher(cfg, Runner(tmp_path / "logs", logging.getLogger("test-ec2")),
                        poll=0.2)


def client(moto: MotoServer, service: str, region: str) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=moto.url)


def inventory(moto: MotoServer) -> dict[str, tuple[list[str], list[str]]]:
    """region -> (AMI ids, snapshot ids) owned by the account, straight from moto."""
    out = {}
    for region in REGIONS:
        ec2 = client(moto, "ec2", region)
        images = sorted(i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"])
        snaps = sorted(s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])[
            "Snapshots"] if s.get("Description", "").endswith("(koji-image-plugin)"))
        out[region] = (images, snaps)
    return out


def disk_blocks(raw: Path) -> dict[int, bytes]:
    data = raw.read_bytes()
    out = {}
    for off in range(0, len(data), ebs.BLOCK_SIZE):
        block = data[off:off + ebs.BLOCK_SIZE].ljust(ebs.BLOCK_SIZE, b"\0")
        if block != ebs.ZERO_BLOCK:
            out[off // ebs.BLOCK_SIZE] = block
    return out


def check_ok(result: Ec2Result, regions: tuple[str, ...] = REGIONS) -> None:
    assert result.errors == {}
    assert sorted(r.region for r in result.regions) == sorted(regions)


def test_ebs_direct_three_regions_public_blocks_identical_and_rerun_makes_nothing(
        proxy: FaultProxy, moto: MotoServer, ec2_image: tuple[Ec2Image, Path],
        tmp_path: Path) -> None:
    image, raw = ec2_image
    cfg = write_config(tmp_path / "c.conf", proxy, copy="upload")
    result = publisher(cfg, tmp_path).publish(image, public=True)
    check_ok(result)
    want = disk_blocks(raw)
    assert 0 < len(want) < 128, "the test disk should have data and zero blocks"
    for rec in result.regions:
        assert rec.public and not rec.reused and rec.name == "Test-Cloud-Base-EC2-1-1.x86_64"
        got = ebs.read_back(client(moto, "ebs", rec.region), rec.snapshot_id)
        assert got == want, f"{rec.region}: snapshot blocks differ from the disk"
        ec2 = client(moto, "ec2", rec.region)
        attr = ec2.describe_image_attribute(ImageId=rec.image_id, Attribute="launchPermission")
        assert {"Group": "all"} in attr["LaunchPermissions"]
        tags = {t["Key"]: t["Value"] for t in
                ec2.describe_images(ImageIds=[rec.image_id])["Images"][0]["Tags"]}
        assert tags["koji-image:nvr"] == "Test-Cloud-Base-1-1"
        assert tags["koji-image:build-id"] == "7" and tags["koji-image:arch"] == "x86_64"
        assert tags["koji-image:sha256"] == image.sha256
    # zero blocks were never sent
    assert proxy.count("PutSnapshotBlock") == 3 * len(want)
    before = inventory(moto)
    puts = proxy.count("PutSnapshotBlock")
    again = publisher(cfg, tmp_path).publish(image, public=True)
    check_ok(again)
    assert all(r.reused for r in again.regions)
    assert {r.image_id for r in again.regions} == {r.image_id for r in result.regions}
    assert inventory(moto) == before
    assert proxy.count("PutSnapshotBlock") == puts
    assert proxy.count("RegisterImage") == 3 and proxy.count("StartSnapshot") == 3


def test_copy_image_to_every_region_in_parallel_and_rerun(
        proxy: FaultProxy, moto: MotoServer, ec2_image: tuple[Ec2Image, Path],
        tmp_path: Path) -> None:
    image, raw = ec2_image
    cfg = write_config(tmp_path / "c.conf", proxy)
    result = publisher(cfg, tmp_path).publish(image, public=True)
    check_ok(result)
    home = next(r for r in result.regions if r.region == "us-east-1")
    assert ebs.read_back(client(moto, "ebs", "us-east-1"), home.snapshot_id) == \
        disk_blocks(raw)
    assert proxy.count("CopyImage") == 2 and proxy.count("StartSnapshot") == 1
    for rec in result.regions:
        found = client(moto, "ec2", rec.region).describe_images(ImageIds=[rec.image_id])
        assert found["Images"][0]["Name"] == image.name and rec.public
    before = inventory(moto)
    again = publisher(cfg, tmp_path).publish(image, public=True)
    check_ok(again)
    assert inventory(moto) == before and proxy.count("CopyImage") == 2


def test_throttling_and_5xx_are_retried_to_success(
        proxy: FaultProxy, moto: MotoServer, ec2_image: tuple[Ec2Image, Path],
        tmp_path: Path) -> None:
    image, raw = ec2_image
    proxy.add(op="PutSnapshotBlock", status=503, code="ServiceUnavailable", times=6,
              skip=2)
    proxy.add(op="PutSnapshotBlock", status=400, code="ThrottlingException", times=4)
    proxy.add(op="RegisterImage", status=400, code="RequestLimitExceeded", times=2)
    proxy.add(op="CopyImage", status=500, code="InternalError", times=2)
    proxy.add(op="DescribeImages", status=503, code="Unavailable", times=3)
    result = publisher(write_config(tmp_path / "c.conf", proxy), tmp_path).publish(image)
    check_ok(result)
    statuses = [s for _, _, s in proxy.log]
    assert statuses.count(503) == 9 and statuses.count(500) == 2 and statuses.count(400) == 6
    home = next(r for r in result.regions if r.region == "us-east-1")
    assert ebs.read_back(client(moto, "ebs", "us-east-1"), home.snapshot_id) == \
        disk_blocks(raw)


def test_a_failing_region_is_reported_leaves_nothing_and_a_rerun_fills_it_in(
        proxy: FaultProxy, moto: MotoServer, ec2_image: tuple[Ec2Image, Path],
        tmp_path: Path) -> None:
    image, _ = ec2_image
    cfg = write_config(tmp_path / "c.conf", proxy, copy="upload")
    # eu-west-1 breaks after its snapshot is written: registering there fails for good
    proxy.add(op="RegisterImage", region="eu-west-1", status=500, code="InternalError")
    result = publisher(cfg, tmp_path).publish(image)
    assert sorted(r.region for r in result.regions) == ["us-east-1", "us-west-2"]
    assert list(result.errors) == ["eu-west-1"]
    assert "InternalError" in result.errors["eu-west-1"]
    assert inventory(moto)["eu-west-1"] == ([], []), "the failed region kept something"
    proxy.clear()
    again = publisher(cfg, tmp_path).publish(image)
    check_ok(again)
    assert sum(r.reused for r in again.regions) == 2
    assert all(len(images) == 1 for images, _ in inventory(moto).values())


def test_an_interrupted_upload_fails_cleanly(
        proxy: FaultProxy, moto: MotoServer, ec2_image: tuple[Ec2Image, Path],
        tmp_path: Path) -> None:
    image, _ = ec2_image
    cfg = write_config(tmp_path / "c.conf", proxy, retries="3")
    proxy.add(op="PutSnapshotBlock", action="cut", skip=5)
    result = publisher(cfg, tmp_path).publish(image)
    assert result.regions == [] and set(result.errors) == set(REGIONS)
    assert "us-east-1" in result.errors and "Connection" in result.errors["us-east-1"]
    assert inventory(moto) == {r: ([], []) for r in REGIONS}


def test_a_stalled_upload_is_detected_and_cleaned_up(
        proxy: FaultProxy, moto: MotoServer, ec2_image: tuple[Ec2Image, Path],
        tmp_path: Path) -> None:
    image, _ = ec2_image
    cfg = write_config(tmp_path / "c.conf", proxy, stall_timeout="5")
    proxy.add(op="PutSnapshotBlock", action="hang", skip=3)
    done = threading.Event()
    out: list[Ec2Result] = []

    def run() -> None:
        out.append(publisher(cfg, tmp_path).publish(image, regions=("us-east-1",)))
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(60), "a stalled upload was waited on for a minute"
    assert "stalled: no block written for 5 s" in out[0].errors["us-east-1"]
    proxy.clear()
    assert inventory(moto)["us-east-1"] == ([], [])


def test_same_name_other_content_is_refused(
        proxy: FaultProxy, moto: MotoServer, ec2_image: tuple[Ec2Image, Path],
        tmp_path: Path) -> None:
    image, _ = ec2_image
    cfg = write_config(tmp_path / "c.conf", proxy, regions="us-east-1")
    check_ok(publisher(cfg, tmp_path).publish(image), ("us-east-1",))
    other = Ec2Image(image.path, image.nvr, image.arch, image.variant, "0" * 64)
    result = publisher(cfg, tmp_path).publish(other)
    assert "AMI name Test-Cloud-Base-EC2-1-1.x86_64 is taken by ami-" in \
        result.errors["us-east-1"]
    assert "deregister it or build a new release" in result.errors["us-east-1"]


def test_s3_import_fallback_stages_imports_and_deletes_the_object(
        proxy: FaultProxy, moto: MotoServer, ec2_image: tuple[Ec2Image, Path],
        tmp_path: Path) -> None:
    image, raw = ec2_image
    s3 = client(moto, "s3", "us-east-1")
    s3.create_bucket(Bucket="staging")
    cfg = write_config(tmp_path / "c.conf", proxy, regions="us-east-1",
                       method="s3-import", bucket="staging")
    result = publisher(cfg, tmp_path).publish(image)
    check_ok(result, ("us-east-1",))
    rec = result.regions[0]
    assert ebs.read_back(client(moto, "ebs", "us-east-1"), rec.snapshot_id) == \
        disk_blocks(raw)
    assert proxy.count("ImportSnapshot") == 1 and proxy.count("StartSnapshot") == 0
    assert s3.list_objects_v2(Bucket="staging").get("KeyCount") == 0


def test_s3_import_failure_leaves_nothing(
        proxy: FaultProxy, moto: MotoServer, ec2_image: tuple[Ec2Image, Path],
        tmp_path: Path) -> None:
    image, _ = ec2_image
    s3 = client(moto, "s3", "us-east-1")
    s3.create_bucket(Bucket="staging")
    proxy.import_fails = True
    cfg = write_config(tmp_path / "c.conf", proxy, regions="us-east-1",
                       method="s3-import", bucket="staging")
    result = publisher(cfg, tmp_path).publish(image)
    assert "Disk validation failed" in result.errors["us-east-1"]
    assert s3.list_objects_v2(Bucket="staging").get("KeyCount") == 0
    assert inventory(moto)["us-east-1"] == ([], [])


def test_credentials_come_only_from_the_aws_chain_and_never_show(
        proxy: FaultProxy, ec2_image: tuple[Ec2Image, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    image, _ = ec2_image
    cfg = write_config(tmp_path / "c.conf", proxy, regions="us-east-1")
    caplog.set_level(logging.DEBUG, logger="test-ec2")
    result = publisher(cfg, tmp_path).publish(image)
    text = caplog.text + repr([r.record() for r in result.regions])
    text += "".join(p.read_text() for p in (tmp_path / "logs").glob("*"))
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in text
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CloudError, match="no AWS credentials found"):
        publisher(cfg, tmp_path).publish(image)


def test_config_problems_are_named_with_their_keys(tmp_path: Path) -> None:
    conf = tmp_path / "c.conf"
    conf.write_text("[ec2]\nregions = us-east-1 Mars us-east-1\nmethod = ftp\n"
                    "workers = many\nboot_mode = bios\n")
    with pytest.raises(CloudError) as err:
        hostconfig.load_ec2(conf)
    msg = str(err.value)
    for part in ("regions: Mars do not look like region names", "a region is named twice",
                 "method = 'ftp': use one of ebs-direct, s3-import",
                 "workers = 'many': use a whole number", "boot_mode = 'bios'"):
        assert part in msg
    assert "\n" not in msg
    conf.write_text("[ec2]\nregions = us-east-1\nmethod = s3-import\n")
    with pytest.raises(CloudError, match="needs 'bucket = NAME'"):
        hostconfig.load_ec2(conf)
    conf.write_text("[ec2]\nregions = us-east-1\nmethod = s3-import\nbucket = b\n"
                    "copy = upload\nstall-timeout = 5\nimds_support = v1\n"
                    "root_device = sda\n")
    with pytest.raises(CloudError) as err:
        hostconfig.load_ec2(conf)
    for part in ("method = s3-import with copy = upload: the regions would share one "
                 "staged object", "stall-timeout: unknown key", "imds_support = 'v1'",
                 "root_device = 'sda': use a device name such as /dev/xvda"):
        assert part in str(err.value)
    conf.write_text("[libvirt]\n")
    with pytest.raises(CloudError, match=r"no \[ec2\] section"):
        hostconfig.load_ec2(conf)


def test_blocks_of_a_sparse_raw_and_of_its_xz_are_the_same(
        ec2_image: tuple[Ec2Image, Path], tmp_path: Path) -> None:
    image, raw = ec2_image
    runner = Runner(tmp_path / "logs", logging.getLogger("test-ec2"))
    size_raw, raw_iter = ebs.raw_blocks(raw, runner)
    size_xz, xz_iter = ebs.raw_blocks(image.path, runner)
    assert size_raw == size_xz == 64 << 20
    assert dict(raw_iter) == dict(xz_iter) == disk_blocks(raw)
    with pytest.raises(CloudError, match=r"build the ec2 variant with format raw\.xz"):
        ebs.raw_blocks(tmp_path / "x.qcow2", runner)


def test_a_cancel_mid_upload_stops_at_once_and_leaves_nothing(
        proxy: FaultProxy, moto: MotoServer, ec2_image: tuple[Ec2Image, Path],
        tmp_path: Path) -> None:
    image, _ = ec2_image
    cfg = write_config(tmp_path / "c.conf", proxy)
    proxy.add(op="PutSnapshotBlock", action="hang", skip=3)
    pub = publisher(cfg, tmp_path)
    errors: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            pub.publish(image)
        except BaseException as exc:  # noqa: BLE001 - what the test looks at
            errors.append(exc)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    while proxy.count("PutSnapshotBlock") < 4:
        time.sleep(0.1)
    t0 = time.monotonic()
    pub.runner.cancel_event.set()
    assert done.wait(10)
    print(f"cancel took {time.monotonic() - t0:.1f} s")
    assert isinstance(errors[0], CancelledError)
    proxy.clear()
    assert inventory(moto) == {r: ([], []) for r in REGIONS}


def test_an_ami_of_the_same_name_that_we_did_not_make_is_left_alone(
        proxy: FaultProxy, moto: MotoServer, ec2_image: tuple[Ec2Image, Path],
        tmp_path: Path) -> None:
    image, _ = ec2_image
    ec2 = client(moto, "ec2", "us-east-1")
    theirs = ec2.register_image(Name=image.name, RootDeviceName="/dev/xvda",
                                VirtualizationType="hvm")["ImageId"]
    cfg = write_config(tmp_path / "c.conf", proxy, regions="us-east-1")
    result = publisher(cfg, tmp_path).publish(image, public=True)
    assert f"is taken by {theirs}, which koji-image did not make" in result.errors["us-east-1"]
    attr = ec2.describe_image_attribute(ImageId=theirs, Attribute="launchPermission")
    assert attr["LaunchPermissions"] == []
    assert ec2.describe_images(ImageIds=[theirs])["Images"][0].get("Tags", []) == []
    assert proxy.count("StartSnapshot") == 0


def test_i686_with_uefi_is_refused_before_anything_is_sent(
        proxy: FaultProxy, ec2_image: tuple[Ec2Image, Path], tmp_path: Path) -> None:
    image, _ = ec2_image
    cfg = write_config(tmp_path / "c.conf", proxy, boot_mode="uefi")
    i686 = Ec2Image(image.path, image.nvr, Arch.I686, image.variant, image.sha256)
    with pytest.raises(CloudError, match="EC2 has no UEFI for i386 AMIs; use auto or "
                       "legacy-bios"):
        publisher(cfg, tmp_path).publish(i686)
    assert proxy.log == []


@pytest.mark.parametrize("arch,fw,mode", [
    (Arch.X86_64, Firmware.HYBRID, "uefi-preferred"), (Arch.X86_64, Firmware.UEFI, "uefi"),
    (Arch.X86_64, Firmware.BIOS, "legacy-bios"), (Arch.AARCH64, Firmware.UEFI, "uefi")])
def test_the_boot_mode_follows_the_image(
        proxy: FaultProxy, ec2_image: tuple[Ec2Image, Path], tmp_path: Path,
        arch: Arch, fw: Firmware, mode: str) -> None:
    image, _ = ec2_image
    cfg = write_config(tmp_path / "c.conf", proxy, regions="eu-west-1")
    own = tmp_path / image.path.name.replace("-EC2-", f"-EC2-{fw.value}-").replace(
        ".x86_64.", f".{arch.value}.")
    shutil.copyfile(image.path, own)  # an AMI name of its own: nothing to reuse
    result = publisher(cfg, tmp_path).publish(dataclasses.replace(image, path=own,
                                                                  arch=arch, firmware=fw))
    check_ok(result, ("eu-west-1",))
    sent = [p for op, p in proxy.params if op == "RegisterImage"]
    assert [(p["Architecture"], p["BootMode"], p["EnaSupport"]) for p in sent] == [
        (arch.ec2_arch, mode, "true")], sent


def test_a_boot_mode_the_image_cannot_start_with_is_refused(
        proxy: FaultProxy, ec2_image: tuple[Ec2Image, Path], tmp_path: Path) -> None:
    image, _ = ec2_image
    cfg = write_config(tmp_path / "c.conf", proxy, boot_mode="uefi-preferred")
    with pytest.raises(CloudError, match=r"^\[ec2\] boot_mode = uefi-preferred: "
                       r"Test-Cloud-Base-EC2-1-1.x86_64.raw.xz is a bios image and would "
                       r"not start; use auto \(the image's own: legacy-bios\)$"):
        publisher(cfg, tmp_path).publish(image)
    assert proxy.log == []
    hybrid = dataclasses.replace(image, firmware=Firmware.HYBRID)
    assert publisher(cfg, tmp_path).boot_mode(hybrid) == "uefi-preferred"
    legacy = write_config(tmp_path / "l.conf", proxy, boot_mode="legacy-bios")
    assert publisher(legacy, tmp_path).boot_mode(hybrid) == "legacy-bios"
