"""The offline customization that makes a variant of the base disk: cloud-init
datasources, the kernel console, and no instance identity shipped (machine-id, SSH host
keys). It works on a mounted root filesystem; ``disk.py`` mounts it."""

from __future__ import annotations

import re
from pathlib import Path

from ..spec.arches import Arch
from ..spec.variants import Variant

DATASOURCE_CFG = "etc/cloud/cloud.cfg.d/90-koji-image-datasources.cfg"
INSTANCE_CFG = "etc/cloud/cloud.cfg.d/91-koji-image-instance.cfg"
#: ds-identify reads Ec2's strict_id only from files named *ec2*.cfg (and unquoted)
EC2_CFG = "etc/cloud/cloud.cfg.d/92-koji-image-ec2.cfg"
DS_IDENTIFY_CFG = "etc/cloud/ds-identify.cfg"
#: every variant: the metadata's hostname resolves (sudo needs it) and sshd takes keys
#: only (a cloud may hand in a password: CloudStack's password server does)
INSTANCE_SETTINGS = "manage_etc_hosts: true\nssh_pwauth: false\n"
GRUB_DEFAULTS = "etc/default/grub"
GRUB_CFGS = ("boot/grub/grub.cfg", "boot/grub2/grub.cfg")
_CONSOLE = re.compile(r"\s*\bconsole=\S+")


def customize(root: Path, variant: Variant, arch: Arch) -> list[str]:
    """Apply ``variant`` to the mounted root filesystem ``root`` of an ``arch`` image;
    return the files changed."""
    changed = []
    console = variant.console_args(arch)
    if (root / "etc/cloud").is_dir():
        changed += cloud_init(root, variant)
    defaults = root / GRUB_DEFAULTS
    if defaults.is_file():
        text = defaults.read_text()
        line = f'GRUB_CMDLINE_LINUX="{console}"'
        if re.search(r"^GRUB_CMDLINE_LINUX=.*$", text, re.M):
            text = re.sub(r"^GRUB_CMDLINE_LINUX=.*$", line, text, flags=re.M)
        else:
            text += line + "\n"
        defaults.write_text(text)
        changed.append(GRUB_DEFAULTS)
    for rel in GRUB_CFGS:
        cfgfile = root / rel
        if cfgfile.is_file():
            lines = []
            for ln in cfgfile.read_text().splitlines(keepends=True):
                if re.match(r"\s*linux(16|efi)?\s", ln):
                    body = _CONSOLE.sub("", ln.rstrip("\n"))
                    ln = f"{body} {console}\n"
                lines.append(ln)
            cfgfile.write_text("".join(lines))
            changed.append(rel)
    # Instance identity must be made at first boot, not shipped.
    machine_id = root / "etc/machine-id"
    if machine_id.is_file() and machine_id.stat().st_size:
        machine_id.write_text("")
        changed.append("etc/machine-id")
    for key in sorted((root / "etc/ssh").glob("ssh_host_*")):
        key.unlink()
        changed.append(str(key.relative_to(root)))
    return changed


def cloud_init(root: Path, variant: Variant) -> list[str]:
    """cloud-init's settings for the variant's clouds; the files written."""
    head = f"# written by koji-image-plugin for the {variant.value} variant\n"
    files = {DATASOURCE_CFG: f"datasource_list: [ {', '.join(variant.datasources)} ]\n",
             INSTANCE_CFG: INSTANCE_SETTINGS}
    if variant.lenient_ec2:
        files[EC2_CFG] = "datasource:\n  Ec2:\n    strict_id: false\n"
        files[DS_IDENTIFY_CFG] = "policy: search,found=all,maybe=all,notfound=disabled\n"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(head + text)
    return list(files)
