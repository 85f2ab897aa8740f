"""Where and how this host uploads images: the host config's ``[ec2]`` and
``[glance:CLOUD]`` sections, declared once (``settings.py``), and the typed objects the
uploaders take.

Credentials are never here and never in a request: boto3 finds them in the standard AWS
chain (environment, ``~/.aws/credentials`` or the named ``profile``, instance role), and
openstacksdk in ``clouds.yaml``. What this holds is where to go and how.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import Problem, SpecError
from .problems import collect
from .settings import Section, Setting, json_properties
from .upload import REGION_RE

EC2_SERVICES = ("ec2", "ebs", "s3")
ROOT_DEVICE_RE = r"^/dev/(xvd[a-z]|sd[a-z][0-9]?)\Z"
#: bucket names: S3's (lower case, digits, dots and dashes, 3 to 63), its legacy ones
#: and other S3 stores' (capitals and _, up to 255); never white space or a path
BUCKET_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]\Z"
VISIBILITIES = ("private", "shared", "community", "public")
#: Glance's longest property value
PROPERTY_MAX = 255
#: Glance's image property the upload keys its idempotence on
SHA256_KEY = "koji_image_sha256"
#: Glance's own image fields: set by Glance or by the upload from its arguments
RESERVED = frozenset({
    "id", "name", "status", "visibility", "protected", "os_hidden", "checksum",
    "os_hash_algo", "os_hash_value", "owner", "size", "virtual_size", "min_ram",
    "min_disk", "container_format", "disk_format", "created_at", "updated_at", "tags",
    "direct_url", "locations", "self", "file", "schema", "stores", SHA256_KEY,
})


def is_reserved(key: str) -> bool:
    return key in RESERVED or key.startswith("os_glance")


def reserved_hint(key: str) -> str:
    return ("is set by Glance or by the upload itself; choose another property name"
            if key != SHA256_KEY else "is set by the upload from the image's sha256")


@dataclass(frozen=True)
class Ec2Config:
    #: the first is the home region: the image is uploaded there and copied to the rest
    regions: tuple[str, ...] = ()
    profile: str | None = None
    endpoint_url: str | None = None
    endpoint_url_ec2: str | None = None
    endpoint_url_ebs: str | None = None
    endpoint_url_s3: str | None = None
    method: str = "ebs-direct"
    copy: str = "copy-image"
    bucket: str | None = None
    workers: int = 16
    stall_timeout: int = 300
    #: ImportSnapshot tasks sit at one progress figure for many minutes while converting
    import_stall_timeout: int = 3600
    wait_timeout: int = 3600
    retries: int = 10
    volume_type: str = "gp3"
    root_device: str = "/dev/xvda"
    #: auto: the image's own (``Firmware.ec2_boot_mode``)
    boot_mode: str = "auto"
    ena: bool = True
    imds_support: str | None = "v2.0"

    def endpoint(self, service: str) -> str | None:
        own: str | None = getattr(self, f"endpoint_url_{service}", None)
        return own or self.endpoint_url

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Ec2Config:
        return cls(**{**values, "imds_support": values.get("imds_support") or None})


def _regions(values: Mapping[str, Any]) -> list[str]:
    regions = values["regions"]
    problems = []
    if not regions:
        problems.append("regions is empty: name at least one region, the home region "
                        "first")
    bad = [r for r in regions if not re.match(REGION_RE, r)]
    if bad:
        problems.append(f"regions: {', '.join(bad)} do not look like region names "
                        "(e.g. us-east-1)")
    if len(set(regions)) != len(regions):
        problems.append("regions: a region is named twice")
    return problems


def _s3_import(values: Mapping[str, Any]) -> list[str]:
    if values["method"] != "s3-import":
        return []
    problems = []
    if values["copy"] == "upload":
        problems.append("method = s3-import with copy = upload: the regions would share "
                        "one staged object; use copy = copy-image")
    if not values["bucket"]:
        problems.append("method = s3-import needs 'bucket = NAME' (the disk is staged "
                        "there and deleted after the import)")
    return problems


def _root_device(value: str) -> str | None:
    if re.match(ROOT_DEVICE_RE, value):
        return None
    return "use a device name such as /dev/xvda or /dev/sda1"


def _bucket(value: str) -> str | None:
    if re.match(BUCKET_RE, value):
        return None
    return "use an S3 bucket name: letters, digits, '.', '_' and '-', 3 to 255"


def _ec2_settings() -> tuple[Setting, ...]:
    def seconds(key: str, default: int, low: int, what: str) -> Setting:
        return Setting(key, key, "int", default, what, low=low)

    endpoints = tuple(
        Setting(f"endpoint_url_{s}", f"endpoint_url_{s}", "url", None,
                f"the {s.upper()} endpoint, overriding endpoint_url") for s in EC2_SERVICES)
    return (
        Setting("regions", "regions", "words", (), "the regions the AMI is registered in; "
                "the first is the home region (uploaded there, copied to the others)",
                example="us-east-1 us-west-2 eu-west-1"),
        Setting("profile", "profile", "text", None, "the AWS profile of the uploading user "
                "(credentials stay in the AWS chain)", example="fedora-releng"),
        Setting("endpoint_url", "endpoint_url", "url", None, "an EC2-compatible cloud's "
                "endpoint for every service (default: AWS's)"),
        *endpoints,
        Setting("method", "method", "choice", "ebs-direct", "how the snapshot is made: "
                "EBS direct APIs, or staged in S3 and imported (needs bucket)",
                choices=("ebs-direct", "s3-import")),
        Setting("copy", "copy", "choice", "copy-image", "how the other regions get the "
                "AMI: CopyImage, or the blocks uploaded into each",
                choices=("copy-image", "upload")),
        Setting("bucket", "bucket", "text", None, "the S3 bucket s3-import stages disks in",
                check=_bucket),
        Setting("workers", "workers", "int", 16, "blocks uploaded at once", low=1, high=256),
        seconds("stall_timeout", 300, 5, "seconds without a block written before the "
                "upload counts as stalled"),
        seconds("import_stall_timeout", 3600, 60, "seconds an ImportSnapshot may sit at one "
                "progress figure"),
        seconds("wait_timeout", 3600, 10, "seconds to wait for a snapshot, an AMI or an "
                "import"),
        Setting("retries", "retries", "int", 10, "attempts per call (botocore's standard "
                "retry mode)", low=1),
        Setting("volume_type", "volume_type", "choice", "gp3", "the root volume's type",
                choices=("gp3", "gp2", "io1", "io2", "standard")),
        Setting("root_device", "root_device", "text", "/dev/xvda", "the AMI's root device "
                "name", check=_root_device),
        Setting("boot_mode", "boot_mode", "choice", "auto", "the AMI's boot mode; auto: "
                "the image's (hybrid uefi-preferred, uefi uefi, bios legacy-bios)",
                choices=("auto", "legacy-bios", "uefi", "uefi-preferred")),
        Setting("ena", "ena", "bool", True, "ENA networking (x86_64 and arm64 AMIs)"),
        Setting("imds_support", "imds_support", "choice", "v2.0", "v2.0: instances must "
                "use IMDSv2; empty: the account's default", choices=("v2.0", "")),
    )


EC2_SECTION = Section(
    "ec2", "Uploads to EC2 (koji-image upload --to ec2, kojid's uploadCloudImage). "
    "Credentials are not here: boto3 reads the standard AWS chain of the uploading user.",
    _ec2_settings(), rules=(_regions, _s3_import), cloud=True)


def _properties(value: Mapping[str, str]) -> str | None:
    reserved = [k for k in value if is_reserved(k)]
    return f"{', '.join(reserved)}: {reserved_hint(reserved[0])}" if reserved else None


GLANCE_SECTION = Section(
    "glance:*", "Uploads to OpenStack Glance: one section per clouds.yaml cloud "
    "(credentials stay in clouds.yaml). A cloud without a section gets the defaults.",
    (Setting("visibility", "visibility", "choice", "private", "the image's visibility",
             choices=VISIBILITIES),
     Setting("timeout", "timeout", "int", 3600, "seconds the upload and the wait for "
             "active may take", low=1, high=86400),
     Setting("properties", "properties", "pairs", {}, "image properties set on every "
             "image", high=PROPERTY_MAX, check=_properties, default_doc="(none)",
             example="hw_qemu_guest_agent=no")),
    cloud=True, title="glance:CLOUD")


#: A Glance target given as a mapping (the API's edge): the section's settings as JSON
#: Schema, plus the cloud's name.
GLANCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["cloud"],
    "properties": {
        "cloud": {"type": "string", "minLength": 1,
                  "description": "a cloud name from clouds.yaml"},
        **json_properties(GLANCE_SECTION.settings),
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
    problems = collect(GLANCE_SCHEMA, dict(data), prefix=where)
    props = data.get("properties")
    if isinstance(props, Mapping):
        problems += [Problem(f"{where}.properties.{k}", reserved_hint(str(k)))
                     for k in props if is_reserved(str(k))]
    return problems
