"""One boot's instance: the identity a cloud would give it (instance id, hostname, a
NIC address) and a fresh ssh key pair, made for this boot only.

The ids take each cloud's own shape (EC2's ``i-`` and 17 hex digits, Nova's and
CloudStack's UUIDs), since cloud-init and the image see them as a real cloud's. Host
tools: ssh-keygen.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from ...runner import Runner
from ...spec.bootprofiles import BootProfile

#: the domain instances' metadata hostnames are in (RFC 6761's reserved ``.test``)
DOMAIN = "boot.koji-image.test"


@dataclass(frozen=True)
class Instance:
    profile: BootProfile
    instance_id: str
    hostname: str
    #: the NIC's MAC address, which the EC2 metadata describes
    mac: str
    key: Path
    public_key: str

    @property
    def fqdn(self) -> str:
        return f"{self.hostname}.{DOMAIN}"


def instance_id(profile: BootProfile) -> str:
    if profile in (BootProfile.EC2, BootProfile.EUCALYPTUS):
        return "i-" + secrets.token_hex(9)[:17]
    if profile is BootProfile.NOCLOUD:
        return "iid-" + secrets.token_hex(8)
    return str(uuid.uuid4())


def make(profile: BootProfile, tmp: Path, runner: Runner, log_name: str) -> Instance:
    """A new instance of ``profile`` whose private key is in ``tmp`` (mode 0600)."""
    key = tmp / "id_ed25519"
    runner.run([
        "ssh-keygen",
        "-q",
        "-t", "ed25519",
        "-N", "",
        "-C", f"koji-image-boot-test-{profile}",
        "-f", str(key),
    ], log_name=log_name)
    # a locally administered unicast address, as clouds give
    mac = "02:" + ":".join(secrets.token_hex(1) for _ in range(5))
    return Instance(profile=profile, instance_id=instance_id(profile),
                    hostname=f"ki-{profile}-{secrets.token_hex(3)}", mac=mac, key=key,
                    public_key=key.with_suffix(".pub").read_text().strip())
