"""What Oz is given for one arch of a spec: its template (TDL) and its config."""

from __future__ import annotations

import configparser
import re
import uuid
from pathlib import Path
from xml.sax.saxutils import escape

from ...spec.arches import Arch
from ...spec.hostconfig import HostConfig
from ...spec.image import ImageSpec
from . import compat


def guest_name(spec: ImageSpec, arch: Arch) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", spec.name)[:40]
    return f"koji-image-{safe}-{arch.value}-{uuid.uuid4().hex[:8]}"


def tdl_xml(spec: ImageSpec, arch: Arch, name: str) -> str:
    """Oz's template for one arch of ``spec``. The repos are not in it: Oz 0.17 reads a
    template's ``<repositories>`` only in its customize step, which is not run; they are
    in the prepared kickstart/preseed (``build/installfile.py``)."""
    return (
        "<template>\n"
        f"  <name>{escape(name)}</name>\n"
        f"  <description>{escape(spec.description or spec.nvr)}</description>\n"
        "  <os>\n"
        f"    <name>{escape(spec.distro.family)}</name>\n"
        f"    <version>{escape(spec.distro.version)}</version>\n"
        f"    <arch>{arch.oz_arch}</arch>\n"
        f"    <install type='url'><url>{escape(spec.tree_for(arch))}</url></install>\n"
        "  </os>\n"
        f"  <disk><size>{spec.disk_size}G</size></disk>\n"
        + "</template>\n")


def oz_config(host: HostConfig, workdir: Path, diag_dir: Path) -> configparser.ConfigParser:
    install, inactivity = host.timeouts()
    cfg = configparser.ConfigParser()
    cfg["paths"] = {
        "output_dir": str(workdir / "oz-output"),
        "data_dir": str(workdir / "oz-data"),
        "screenshot_dir": str(diag_dir),
        "sshprivkey": str(workdir / "oz-data" / "id_rsa-icicle-gen"),
    }
    cfg["libvirt"] = {
        "uri": host.libvirt_uri,
        "type": host.resolved_domain_type,
        "cpus": str(host.install_cpus),
        "memory": str(host.install_memory_mb),
        "image_type": "raw",
    }
    cfg["cache"] = {"original_media": "no", "modified_media": "no", "jeos": "no"}
    cfg["timeouts"] = {"install": str(install),
                       "inactivity": str(compat.oz_inactivity(inactivity)),
                       "boot": "600", "shutdown": "120"}
    return cfg
