"""Publish an EC2 image: a snapshot, an HVM AMI in the home region, copies in every other
region (in parallel), tags, and public launch permission when asked.

Idempotent: every run first looks for what an earlier run of the same image made (AMIs
by name, snapshots by their ``koji-image:sha256`` tag) and reuses it; an AMI of the same
name with other content is refused, never replaced. What a run makes is undone when that
run fails (the snapshot, a half-registered or half-copied AMI, the staged S3 object), so a
failure leaves nothing behind and a rerun starts clean. Regions fail independently: the
ones that worked are kept and reported, and a rerun fills in the rest.

Uses no host tools itself (``xz --list`` through :mod:`ebs`); talks to EC2, EBS and S3
with boto3, retrying throttling and 5xx with botocore's standard backoff.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import CancelledError, CloudError
from ..runner import Runner
from ..spec.arches import Arch
from ..spec.cloudconfig import Ec2Config
from . import ami, ebs, s3import
from .ami import TAG_PREFIX, Ec2Image, Ec2Result, RegionResult

#: seconds between two looks at a snapshot, AMI or import that is not ready yet
POLL = 5.0


class Ec2Publisher:
    """Publishes images with one configuration (one boto3 session, its clients)."""

    def __init__(self, cfg: Ec2Config, runner: Runner, *, poll: float = POLL) -> None:
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import ProfileNotFound
        except ImportError as exc:
            raise CloudError(f"EC2 uploads need boto3 ({exc}); install python3-boto3 or "
                             "pip install 'koji-image-plugin[clouds]'") from exc

        self.cfg = cfg
        self.runner = runner
        self.log = runner.log
        self.poll = poll
        try:
            self.session = boto3.session.Session(profile_name=cfg.profile)
        except ProfileNotFound as exc:
            raise CloudError(f"[ec2] profile = {cfg.profile}: {exc}; name a profile of "
                             "~/.aws/config or leave it empty") from exc
        self.botocfg = Config(retries={"mode": "standard", "max_attempts": cfg.retries},
                              connect_timeout=10, read_timeout=60,
                              max_pool_connections=cfg.workers + 4)
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                self._clients[key] = self.session.client(
                    service, region_name=region, endpoint_url=self.cfg.endpoint(service),
                    config=self.botocfg)
            return self._clients[key]

    def check_credentials(self) -> None:
        if self.session.get_credentials() is None:
            raise CloudError("EC2: no AWS credentials found: set them up for this host "
                             "(AWS_* environment, ~/.aws/credentials or [ec2] profile, or "
                             "an instance role); they never go in a request")

    def boot_mode(self, image: Ec2Image) -> str:
        """The AMI's ``BootMode``: the image's (``auto``: uefi-preferred for a hybrid
        image, uefi for a UEFI one, legacy-bios for BIOS), or the config's when the
        image boots with it."""
        mode, fw = self.cfg.boot_mode, image.firmware
        if mode == "auto":
            return fw.ec2_boot_mode
        if image.arch is Arch.I686 and mode != "legacy-bios":
            raise CloudError(f"[ec2] boot_mode = {mode}: EC2 has no UEFI for i386 AMIs; "
                             "use auto or legacy-bios for i686 images")
        boots = {"legacy-bios": fw.bios, "uefi": fw.uefi, "uefi-preferred": fw.uefi}[mode]
        if not boots:
            raise CloudError(f"[ec2] boot_mode = {mode}: {image.path.name} is a "
                             f"{fw.value} image and would not start; use auto (the "
                             f"image's own: {fw.ec2_boot_mode})")
        return mode

    # -- the whole job ------------------------------------------------------------------

    def publish(self, image: Ec2Image, *, regions: tuple[str, ...] | None = None,
                public: bool = False) -> Ec2Result:
        regions = regions or self.cfg.regions
        self.boot_mode(image)
        self.check_credentials()
        result = Ec2Result()
        home, rest = regions[0], regions[1:]
        try:
            first = self._home(image, home, public)
        except CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported per region, see the docstring
            result.errors[home] = ami.one_line(exc)
            for region in rest:
                result.errors[region] = f"not attempted: the home region {home} failed"
            return result
        result.regions.append(first)
        if rest:
            with ThreadPoolExecutor(len(rest), thread_name_prefix="ec2-region") as pool:
                futures = {r: pool.submit(self._other, image, r, first, public)
                           for r in rest}
                try:
                    for region, fut in futures.items():
                        try:
                            result.regions.append(fut.result())
                        except CancelledError:
                            raise
                        except Exception as exc:  # noqa: BLE001 - as above
                            result.errors[region] = ami.one_line(exc)
                except BaseException:
                    # Ctrl-C: the other regions' threads stop and undo what they made
                    self.runner.cancel_event.set()
                    raise
        return result

    def _home(self, image: Ec2Image, region: str, public: bool) -> RegionResult:
        start = time.monotonic()
        ec2 = self.client("ec2", region)
        found = self._find_image(ec2, image, region)
        if found:
            return self._finish(ec2, image, region, found, public, True, start)
        return self._make(ec2, image, region, public, start)

    def _make(self, ec2: Any, image: Ec2Image, region: str, public: bool,
              start: float) -> RegionResult:
        with contextlib.ExitStack() as undo:
            snapshot_id = self._snapshot(image, region, undo)
            image_id = self._register(ec2, image, region, snapshot_id, undo)
            result = self._finish(ec2, image, region, image_id, public, False, start,
                                  snapshot_id)
            undo.pop_all()
            return result

    def _other(self, image: Ec2Image, region: str, home: RegionResult,
               public: bool) -> RegionResult:
        start = time.monotonic()
        ec2 = self.client("ec2", region)
        found = self._find_image(ec2, image, region)
        if found:
            return self._finish(ec2, image, region, found, public, True, start)
        if self.cfg.copy == "upload":
            return self._make(ec2, image, region, public, start)
        with contextlib.ExitStack() as undo:
            # No ClientToken of our own: botocore makes one per call that its retries
            # reuse; a fixed one would hand a rerun the copy a failed run deregistered.
            resp = ec2.copy_image(
                Name=image.name,
                Description=ami.description(image),
                SourceImageId=home.image_id,
                SourceRegion=home.region,
                TagSpecifications=[{"ResourceType": kind, "Tags": ami.tag_list(image)}
                                   for kind in ("image", "snapshot")],
            )
            image_id = resp["ImageId"]
            undo.callback(self._deregister, ec2, region, image_id)
            self.log.info("%s: copying %s from %s as %s", region, home.image_id,
                          home.region, image_id)
            result = self._finish(ec2, image, region, image_id, public, False, start)
            undo.pop_all()
            return result

    # -- steps ----------------------------------------------------------------------------

    def _find_image(self, ec2: Any, image: Ec2Image, region: str) -> str | None:
        """An AMI an earlier run made of this image: reuse it, wait for it, or clear a
        failed one away. One of the same name with other content is refused."""
        images = ec2.describe_images(
            Owners=["self"], Filters=[{"Name": "name", "Values": [image.name]}])["Images"]
        for found in images:
            tags = {t["Key"]: t["Value"] for t in found.get("Tags", [])}
            sha = tags.get(f"{TAG_PREFIX}sha256")
            if sha is None:
                raise CloudError(
                    f"{region}: AMI name {image.name} is taken by {found['ImageId']}, which "
                    f"koji-image did not make (no {TAG_PREFIX}sha256 tag); it is left "
                    "alone: deregister it or build a new release")
            if sha != image.sha256:
                raise CloudError(
                    f"{region}: AMI name {image.name} is taken by {found['ImageId']} with "
                    f"other content (sha256 {sha[:12]}..., this image {image.sha256[:12]}"
                    "...); deregister it or build a new release")
            if found["State"] in ("failed", "invalid", "error", "deregistered"):
                self.log.info("%s: %s of an earlier run is %s; deregistering it", region,
                              found["ImageId"], found["State"])
                self._deregister(ec2, region, found["ImageId"])
                continue
            self.log.info("%s: reusing %s (%s)", region, found["ImageId"], image.name)
            return str(found["ImageId"])
        return None

    def _snapshot(self, image: Ec2Image, region: str, undo: contextlib.ExitStack) -> str:
        ec2 = self.client("ec2", region)
        snaps = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
            {"Name": f"tag:{TAG_PREFIX}sha256", "Values": [image.sha256]},
            {"Name": "tag:Name", "Values": [image.name]}])["Snapshots"]
        for snap in snaps:
            if snap["State"] == "completed":
                self.log.info("%s: reusing snapshot %s", region, snap["SnapshotId"])
                return str(snap["SnapshotId"])
            self.log.info("%s: deleting snapshot %s (%s) an interrupted run left", region,
                          snap["SnapshotId"], snap["State"])
            self._delete_snapshot(ec2, region, snap["SnapshotId"])
        made: list[str] = []

        def started(snapshot_id: str) -> None:
            made.append(snapshot_id)
            undo.callback(self._delete_snapshot, ec2, region, snapshot_id)

        if self.cfg.method == "s3-import":
            assert self.cfg.bucket
            snapshot_id = s3import.import_snapshot(
                ec2, self.client("s3", region), image.path, self.runner,
                bucket=self.cfg.bucket, key=f"koji-image/{image.name}.raw",
                description=ami.description(image), tags=image.tags(),
                wait_timeout=self.cfg.wait_timeout,
                stall_timeout=self.cfg.import_stall_timeout, poll=self.poll,
                on_start=started)
        else:
            snap = ebs.upload(self.client("ebs", region), image.path, self.runner,
                              description=ami.description(image), tags=image.tags(),
                              workers=self.cfg.workers,
                              stall_timeout=self.cfg.stall_timeout, on_start=started)
            snapshot_id = snap.snapshot_id
        self._wait(f"{region}: snapshot {snapshot_id}", lambda: ami.snapshot_state(
            ec2, snapshot_id), ok="completed", bad=("error",))
        return snapshot_id

    def _register(self, ec2: Any, image: Ec2Image, region: str, snapshot_id: str,
                  undo: contextlib.ExitStack) -> str:
        size = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]["VolumeSize"]
        args: dict[str, Any] = {
            "Name": image.name,
            "Description": ami.description(image),
            "Architecture": image.arch.ec2_arch,
            "VirtualizationType": "hvm",
            "RootDeviceName": self.cfg.root_device,
            "BlockDeviceMappings": [{
                "DeviceName": self.cfg.root_device,
                "Ebs": {"SnapshotId": snapshot_id, "VolumeSize": size,
                        "VolumeType": self.cfg.volume_type, "DeleteOnTermination": True},
            }],
            "BootMode": self.boot_mode(image),
            "EnaSupport": self.cfg.ena and image.arch is not Arch.I686,
            "SriovNetSupport": "simple",
        }
        if self.cfg.imds_support:
            args["ImdsSupport"] = self.cfg.imds_support
        # Tagged as it is made, so a run that dies before tagging leaves an AMI the
        # next run recognizes as its own.
        args["TagSpecifications"] = [{"ResourceType": "image", "Tags": ami.tag_list(image)}]
        try:
            image_id = str(ec2.register_image(**args)["ImageId"])
        except Exception as exc:
            # a retried RegisterImage whose first attempt did register
            if "InvalidAMIName.Duplicate" not in str(exc):
                raise
            found = self._find_image(ec2, image, region)
            if not found:
                raise
            image_id = found
        undo.callback(self._deregister, ec2, region, image_id)
        self.log.info("%s: registered %s (%s) from %s", region, image_id, image.name,
                      snapshot_id)
        return image_id

    def _finish(self, ec2: Any, image: Ec2Image, region: str, image_id: str, public: bool,
                reused: bool, start: float, snapshot_id: str | None = None) -> RegionResult:
        """Wait until the AMI is available, tag it and its snapshot, open it if asked."""
        self._wait(f"{region}: {image_id}", lambda: ami.image_state(ec2, image_id),
                   ok="available", bad=("failed", "invalid", "error", "deregistered"))
        found = ec2.describe_images(ImageIds=[image_id])["Images"][0]
        snapshot_ids = [m["Ebs"]["SnapshotId"] for m in found.get("BlockDeviceMappings", [])
                        if m.get("Ebs", {}).get("SnapshotId")]
        tags = ami.tag_list(image)
        own = snapshot_id or ami.own_snapshot(ec2, image, snapshot_ids)
        ec2.create_tags(Resources=sorted({image_id, *snapshot_ids, *([own] if own else [])}),
                        Tags=tags)
        if public:
            ec2.modify_image_attribute(ImageId=image_id,
                                       LaunchPermission={"Add": [{"Group": "all"}]})
        attr = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
        is_public = any(p.get("Group") == "all" for p in attr.get("LaunchPermissions", []))
        if public and not is_public:
            raise CloudError(f"{region}: {image_id} is not public after granting launch "
                             "permission to all; is block public access for AMIs on?")
        return RegionResult(image.arch.value, image.variant.value, region, image.name, image_id,
                            own, is_public, reused,
                            round(time.monotonic() - start, 1))

    def _wait(self, what: str, state: Callable[[], str], *, ok: str,
              bad: tuple[str, ...]) -> None:
        deadline = time.monotonic() + self.cfg.wait_timeout
        while True:
            now = state()
            if now == ok:
                return
            if now in bad:
                raise CloudError(f"{what} became {now}")
            if time.monotonic() > deadline:
                raise CloudError(f"{what} still {now} after {self.cfg.wait_timeout} s "
                                 "([ec2] wait_timeout); what this run made is removed, "
                                 "rerun to retry")
            if self.runner.cancel_event.wait(self.poll):
                raise CancelledError(f"{what}: cancelled while {now}")

    def _deregister(self, ec2: Any, region: str, image_id: str) -> None:
        try:
            found = ec2.describe_images(ImageIds=[image_id])["Images"]
            snaps = [m["Ebs"]["SnapshotId"] for f in found
                     for m in f.get("BlockDeviceMappings", [])
                     if m.get("Ebs", {}).get("SnapshotId")]
            ec2.deregister_image(ImageId=image_id)
            self.log.info("%s: deregistered %s", region, image_id)
            for snap in snaps:
                self._delete_snapshot(ec2, region, snap)
        except Exception as exc:  # noqa: BLE001 - cleanup goes on; the error is logged
            self.log.error("%s: could not deregister %s: %s; remove it by hand", region,
                           image_id, ami.one_line(exc))

    def _delete_snapshot(self, ec2: Any, region: str, snapshot_id: str) -> None:
        try:
            ec2.delete_snapshot(SnapshotId=snapshot_id)
            self.log.info("%s: deleted snapshot %s", region, snapshot_id)
        except Exception as exc:  # noqa: BLE001 - as above
            if "NotFound" not in str(exc):
                self.log.error("%s: could not delete snapshot %s: %s; remove it by hand",
                               region, snapshot_id, ami.one_line(exc))
