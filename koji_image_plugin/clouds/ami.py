"""What an AMI of this project is: the image it is made of, its name, tags and
description, and how its state and its snapshots are read back from EC2. The publisher
(``ec2.py``) does the steps."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..spec.arches import Arch
from ..spec.firmware import Firmware
from ..spec.variants import Variant

TAG_PREFIX = "koji-image:"


@dataclass(frozen=True)
class Ec2Image:
    """One image file to publish: the EC2 variant's raw disk of one arch."""

    path: Path
    nvr: str
    arch: Arch
    variant: Variant
    sha256: str
    build_id: int | None = None
    #: what the image boots with (its record's ``firmware``)
    firmware: Firmware = Firmware.BIOS

    @property
    def name(self) -> str:
        """The AMI name: the file name without its extension (AMI names allow letters,
        digits and ``( ) . - / _`` and spaces; anything else becomes ``_``)."""
        stem = self.path.name.split(f".{self.arch}.")[0] + f".{self.arch}"
        return re.sub(r"[^A-Za-z0-9().\-/_ ]", "_", stem)[:128]

    def tags(self) -> dict[str, str]:
        tags = {"Name": self.name, f"{TAG_PREFIX}nvr": self.nvr,
                f"{TAG_PREFIX}arch": self.arch.value,
                f"{TAG_PREFIX}variant": self.variant.value,
                f"{TAG_PREFIX}sha256": self.sha256}
        if self.build_id is not None:
            tags[f"{TAG_PREFIX}build-id"] = str(self.build_id)
        return tags


@dataclass
class RegionResult:
    arch: str
    variant: str
    region: str
    name: str
    image_id: str
    snapshot_id: str | None
    public: bool
    reused: bool
    seconds: float

    def record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Ec2Result:
    regions: list[RegionResult] = field(default_factory=list)
    #: region -> the one-line error of a region that failed
    errors: dict[str, str] = field(default_factory=dict)


def image_state(ec2: Any, image_id: str) -> str:
    try:
        found = ec2.describe_images(ImageIds=[image_id])["Images"]
    except Exception as exc:
        # EC2 is eventually consistent: a new AMI may not be visible yet
        if "InvalidAMIID.NotFound" in str(exc):
            return "not visible yet"
        raise
    return str(found[0]["State"]) if found else "deregistered"


def tag_list(image: Ec2Image) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(image.tags().items())]


def snapshot_state(ec2: Any, snapshot_id: str) -> str:
    return str(ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]["State"])


def own_snapshot(ec2: Any, image: Ec2Image, mapped: list[str]) -> str | None:
    """The snapshot behind a reused or copied AMI: the one this image's upload made in
    the region (found by its tags), else the one the AMI maps."""
    snaps = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": f"tag:{TAG_PREFIX}sha256", "Values": [image.sha256]},
        {"Name": "tag:Name", "Values": [image.name]},
        {"Name": "status", "Values": ["completed"]}])["Snapshots"]
    if snaps:
        return str(snaps[0]["SnapshotId"])
    return mapped[0] if mapped else None


def description(image: Ec2Image) -> str:
    return f"{image.nvr} {image.arch} {image.variant} (koji-image-plugin)"


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
