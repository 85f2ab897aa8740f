"""The drives that hand an instance its identity where the cloud uses a drive: the
NoCloud seed (volume ``cidata``) and OpenStack's config drive (volume ``config-2``, the
``openstack/latest`` tree Nova writes). Host tools: cloud-localds, genisoimage.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from ...runner import Runner
from .instance import Instance

#: the user-data of every profile: nothing to do; the checks run over ssh
USER_DATA = "#cloud-config\n{}\n"


def nocloud(inst: Instance, tmp: Path, runner: Runner, log_name: str) -> Path:
    """A NoCloud seed ISO with the instance's id, hostname and ssh key in meta-data."""
    (tmp / "user-data").write_text(USER_DATA)
    (tmp / "meta-data").write_text(json.dumps({
        "instance-id": inst.instance_id,
        "local-hostname": inst.hostname,
        "public-keys": [inst.public_key],
    }, indent=1) + "\n")
    seed = tmp / "seed.iso"
    runner.run([
        "cloud-localds",
        str(seed),
        str(tmp / "user-data"),
        str(tmp / "meta-data"),
    ], log_name=log_name)
    return seed


def meta_data(inst: Instance) -> dict[str, object]:
    """Nova's ``openstack/latest/meta_data.json`` for the instance."""
    return {
        "uuid": inst.instance_id,
        "name": inst.hostname,
        "hostname": inst.fqdn,
        "launch_index": 0,
        "availability_zone": "nova",
        "project_id": uuid.uuid4().hex,
        "public_keys": {"boot-test": inst.public_key},
        "keys": [{"name": "boot-test", "type": "ssh", "data": inst.public_key}],
        "meta": {},
    }


def network_data(inst: Instance) -> dict[str, object]:
    """Nova's ``network_data.json``: one NIC, DHCP."""
    return {
        "links": [{"id": "tap0", "type": "phy", "ethernet_mac_address": inst.mac,
                   "mtu": 1500}],
        "networks": [{"id": "network0", "type": "ipv4_dhcp", "link": "tap0",
                      "network_id": str(uuid.uuid4())}],
        "services": [],
    }


def config_drive(inst: Instance, tmp: Path, runner: Runner, log_name: str) -> Path:
    """An OpenStack config drive ISO (``config-2``) for the instance."""
    tree = tmp / "config-drive"
    latest = tree / "openstack" / "latest"
    latest.mkdir(parents=True)
    (latest / "meta_data.json").write_text(json.dumps(meta_data(inst), indent=1))
    (latest / "network_data.json").write_text(json.dumps(network_data(inst), indent=1))
    (latest / "user_data").write_text(USER_DATA)
    iso = tmp / "config-drive.iso"
    runner.run([
        "genisoimage",
        "-quiet",
        "-output", str(iso),
        "-volid", "config-2",
        "-rational-rock",
        "-joliet",
        str(tree),
    ], log_name=log_name)
    return iso
