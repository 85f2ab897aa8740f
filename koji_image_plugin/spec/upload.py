"""An upload request: where a build's images go after it is imported (the spec's
``upload``, the hub's ``cloudImageUpload`` options, ``koji-image upload``'s flags), and
which image each kind of cloud takes. Credentials never appear here; the builder or the
local machine has them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import Problem
from .formats import ImageFormat
from .problems import collect
from .variants import Variant

REGION_RE = r"^[a-z]{2}(-[a-z]+)+-[0-9]+\Z"
CLOUD_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]*\Z"


class Cloud(enum.StrEnum):
    """A kind of cloud, the image it takes and what identifies one of its records."""

    EC2 = "ec2"
    GLANCE = "glance"

    @property
    def takes(self) -> tuple[Variant, ImageFormat]:
        """EC2 boots the ec2 variant's raw disk; Glance takes the generic qcow2."""
        return {Cloud.EC2: (Variant.EC2, ImageFormat.RAW_XZ),
                Cloud.GLANCE: (Variant.GENERIC, ImageFormat.QCOW2)}[self]

    @property
    def place(self) -> str:
        """The key of a record that names where it went: an EC2 region or a cloud."""
        return {Cloud.EC2: "region", Cloud.GLANCE: "cloud"}[self]

    @property
    def record_keys(self) -> tuple[str, str, str]:
        """A record of the same arch, variant and place replaces an older one."""
        return ("arch", "variant", self.place)


UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "ec2": {
            "type": "object",
            "additionalProperties": False,
            "description": "upload the ec2 variant's raw.xz as an AMI",
            "properties": {
                "regions": {"type": "array", "minItems": 1, "uniqueItems": True,
                            "items": {"type": "string", "pattern": REGION_RE},
                            "description": "default: every region of the builder's "
                                           "[ec2] regions; the first is the home region"},
            },
        },
        "glance": {
            "type": "object",
            "additionalProperties": False,
            "required": ["clouds"],
            "description": "upload the generic variant's qcow2 to OpenStack Glance",
            "properties": {
                "clouds": {"type": "array", "minItems": 1, "uniqueItems": True,
                           "items": {"type": "string", "pattern": CLOUD_RE},
                           "description": "clouds.yaml names known to the builder"},
            },
        },
        "public": {"type": "boolean",
                   "description": "release build: public launch permission on EC2"},
    },
}


@dataclass(frozen=True)
class UploadRequest:
    """Where to upload a build's images (the ``upload`` of a spec or a hub request)."""

    ec2: bool = False
    #: () means the builder's configured regions
    ec2_regions: tuple[str, ...] = ()
    glance: tuple[str, ...] = ()
    public: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UploadRequest:
        ec2 = data.get("ec2")
        return cls(ec2=ec2 is not None, ec2_regions=tuple((ec2 or {}).get("regions", ())),
                   glance=tuple((data.get("glance") or {}).get("clouds", ())),
                   public=bool(data.get("public")))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.ec2:
            out["ec2"] = {"regions": list(self.ec2_regions)} if self.ec2_regions else {}
        if self.glance:
            out["glance"] = {"clouds": list(self.glance)}
        if self.public:
            out["public"] = True
        return out


def from_flags(*, ec2: bool, regions: Sequence[str] = (), clouds: Sequence[str] = (),
               public: bool = False) -> dict[str, Any]:
    """The request a command line's flags make (``koji cloud-image-upload``, ``koji-image
    upload``): EC2 when asked or a region is named, Glance for the clouds named."""
    return UploadRequest(ec2=ec2 or bool(regions), ec2_regions=tuple(regions),
                         glance=tuple(clouds), public=public).as_dict()


def check_upload(data: Any, where: str = "upload") -> list[Problem]:
    """Every problem with an upload request, each named under ``where``."""
    problems = collect(UPLOAD_SCHEMA, data, prefix=where)
    if isinstance(data, Mapping) and not problems and not ({c.value for c in Cloud}
                                                           & set(data)):
        problems.append(Problem(where, "names no cloud; add ec2 and/or glance"))
    return problems
