"""Where and how this host uploads images: the ``[ec2]`` and ``[glance:CLOUD]`` sections
of the host config (``/etc/koji-image/koji-image.conf``, or kojid's
``/etc/kojid/plugins/cloud_image.conf``).

Credentials are never here and never in a request: boto3 finds them in the standard AWS
chain (environment, ``~/.aws/credentials`` or the named ``profile``, instance role), and
openstacksdk in ``clouds.yaml``. What this file holds is where to go and how.
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import hostconfig
from .errors import CloudError

if TYPE_CHECKING:
    from .glance import GlanceTarget

METHODS = ("ebs-direct", "s3-import")
KEYS = {"regions", "profile", "endpoint_url", "method", "copy", "bucket", "workers",
        "stall_timeout", "import_stall_timeout", "wait_timeout", "retries", "volume_type",
        "root_device", "boot_mode", "ena", "imds_support"}
COPY_MODES = ("copy-image", "upload")
BOOT_MODES = ("legacy-bios", "uefi", "uefi-preferred")
VOLUME_TYPES = ("gp3", "gp2", "io1", "io2", "standard")
REGION_RE = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"


@dataclass(frozen=True)
class Ec2Config:
    #: the first is the home region: the image is uploaded there and copied to the rest
    regions: tuple[str, ...] = ()
    profile: str | None = None
    endpoint_url: str | None = None
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
    boot_mode: str = "legacy-bios"
    ena: bool = True
    imds_support: str | None = "v2.0"
    #: service -> endpoint, overriding endpoint_url (ec2, ebs, s3)
    endpoints: dict[str, str] = field(default_factory=dict)

    def endpoint(self, service: str) -> str | None:
        return self.endpoints.get(service) or self.endpoint_url


def _parser(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    if path.exists():
        try:
            parser.read(path)
        except configparser.Error as exc:
            raise CloudError(f"{path}: {str(exc).splitlines()[0]}") from exc
    return parser


def config_path(path: Path | None = None) -> Path:
    return path or Path(os.environ.get("KOJI_IMAGE_CONFIG", hostconfig.DEFAULT_PATH))


def load_ec2(path: Path | None = None) -> Ec2Config:
    """The ``[ec2]`` section; every problem in it is named with its key and the fix."""
    path = config_path(path)
    parser = _parser(path)
    if not parser.has_section("ec2"):
        raise CloudError(f"{path}: no [ec2] section; add one with at least "
                         "'regions = us-east-1 ...' (see the README, Uploading to EC2)")
    sec = parser["ec2"]
    problems: list[str] = []

    def choice(key: str, allowed: tuple[str, ...], default: str) -> str:
        value = sec.get(key, default).strip()
        if value not in allowed:
            problems.append(f"[ec2] {key} = {value!r}: use one of {', '.join(allowed)}")
        return value

    def number(key: str, default: int, low: int) -> int:
        text = sec.get(key, str(default)).strip()
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            problems.append(f"[ec2] {key} = {text!r}: use a whole number of at least {low}")
        return value

    regions = tuple(sec.get("regions", "").replace(",", " ").split())
    if not regions:
        problems.append("[ec2] regions is empty: name at least one region, the home "
                        "region first")
    bad = [r for r in regions if not re.match(REGION_RE, r)]
    if bad:
        problems.append(f"[ec2] regions: {', '.join(bad)} do not look like region names "
                        "(e.g. us-east-1)")
    if len(set(regions)) != len(regions):
        problems.append("[ec2] regions: a region is named twice")
    try:
        ena = sec.getboolean("ena", True)
    except ValueError:
        problems.append(f"[ec2] ena = {sec.get('ena')!r}: use yes or no")
        ena = True
    cfg = Ec2Config(
        regions=regions,
        profile=sec.get("profile", "").strip() or None,
        endpoint_url=sec.get("endpoint_url", "").strip() or None,
        method=choice("method", METHODS, "ebs-direct"),
        copy=choice("copy", COPY_MODES, "copy-image"),
        bucket=sec.get("bucket", "").strip() or None,
        workers=number("workers", 16, 1),
        stall_timeout=number("stall_timeout", 300, 5),
        import_stall_timeout=number("import_stall_timeout", 3600, 60),
        wait_timeout=number("wait_timeout", 3600, 10),
        retries=number("retries", 10, 1),
        volume_type=choice("volume_type", VOLUME_TYPES, "gp3"),
        root_device=sec.get("root_device", "/dev/xvda").strip(),
        boot_mode=choice("boot_mode", BOOT_MODES, "legacy-bios"),
        ena=ena,
        imds_support=choice("imds_support", ("v2.0", ""), "v2.0") or None,
        endpoints={s: sec[f"endpoint_url_{s}"].strip() for s in ("ec2", "ebs", "s3")
                   if sec.get(f"endpoint_url_{s}", "").strip()},
    )
    unknown = sorted(set(sec) - KEYS - {f"endpoint_url_{s}" for s in ("ec2", "ebs", "s3")})
    if unknown:
        problems.append(f"[ec2] {', '.join(unknown)}: unknown key(s); the keys are "
                        f"{', '.join(sorted(KEYS))}, endpoint_url_ec2/_ebs/_s3")
    if not re.match(r"^/dev/(xvd[a-z]|sd[a-z][0-9]?)$", cfg.root_device):
        problems.append(f"[ec2] root_device = {cfg.root_device!r}: use a device name "
                        "such as /dev/xvda or /dev/sda1")
    if cfg.method == "s3-import" and cfg.copy == "upload":
        problems.append("[ec2] method = s3-import with copy = upload: the regions would "
                        "share one staged object; use copy = copy-image")
    if cfg.method == "s3-import" and not cfg.bucket:
        problems.append("[ec2] method = s3-import needs 'bucket = NAME' (the disk is "
                        "staged there and deleted after the import)")
    if problems:
        raise CloudError(f"{path}: " + "; ".join(problems))
    return cfg


def load_glance(cloud: str, path: Path | None = None) -> GlanceTarget:
    """The ``[glance:CLOUD]`` section: how to upload to that clouds.yaml cloud.

        [glance:openstack-prod]
        visibility = public            # private (default), shared, community, public
        timeout = 3600                 # s for the upload and the wait for active
        properties = hw_qemu_guest_agent=no os_admin_user=fedora

    A cloud without a section gets the defaults (private)."""
    from .errors import SpecError
    from .glance import GlanceTarget

    path = config_path(path)
    parser = _parser(path)
    section = f"glance:{cloud}"
    data: dict[str, object] = {"cloud": cloud}
    if parser.has_section(section):
        sec = parser[section]
        unknown = sorted(set(sec) - {"visibility", "timeout", "properties"})
        if unknown:
            raise CloudError(f"{path}: [{section}] {', '.join(unknown)}: unknown; use "
                             "visibility, timeout, properties")
        if "visibility" in sec:
            data["visibility"] = sec["visibility"].strip()
        if "timeout" in sec:
            text = sec["timeout"].strip()
            data["timeout"] = int(text) if text.isdigit() else text
        props: dict[str, str] = {}
        for item in sec.get("properties", "").split():
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise CloudError(f"{path}: [{section}] properties: {item!r} is not "
                                 "KEY=VALUE")
            props[key] = value
        data["properties"] = props
    try:
        return GlanceTarget.from_dict(data, where=f"[{section}]")
    except SpecError as exc:
        raise CloudError(f"{path}: " + "; ".join(str(p) for p in exc.problems)) from exc
