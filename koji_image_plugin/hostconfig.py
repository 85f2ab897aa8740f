"""Host configuration: how this machine runs guests (libvirt URI, KVM or TCG, timeouts).

It belongs to the host, not to the image: the same spec builds with KVM on a bare-metal
builder and under TCG (software emulation) on a machine without usable KVM. Read from
``/etc/koji-image/koji-image.conf`` (or ``$KOJI_IMAGE_CONFIG``), INI sections
``[libvirt]``, ``[timeouts]``, ``[boot]``, ``[paths]``. ``domain_type = auto`` picks KVM
only where ``/dev/kvm`` exists *and* the CPU advertises vmx or svm: a paravirtual
``/dev/kvm`` without them (as on cloud VMs) aborts qemu's ``-cpu host`` and hangs Debian
kernels, so there it means TCG.
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import HostError

DEFAULT_PATH = Path("/etc/koji-image/koji-image.conf")
DOMAIN_TYPES = ("auto", "kvm", "qemu")


@dataclass(frozen=True)
class HostConfig:
    libvirt_uri: str = "qemu:///system"
    domain_type: str = "auto"
    install_memory_mb: int = 2048
    install_cpus: int = 1
    #: None: Oz's defaults scaled for the accelerator (see ``timeouts``)
    install_timeout: int | None = None
    inactivity_timeout: int | None = None
    boot_memory_mb: int = 1024
    boot_cpus: int = 2
    workdir: Path = Path("/var/tmp")

    @property
    def resolved_domain_type(self) -> str:
        if self.domain_type != "auto":
            return self.domain_type
        return "kvm" if kvm_usable() else "qemu"

    @property
    def accel(self) -> str:
        """qemu's -accel for the boot test, matching libvirt's domain type."""
        return "kvm" if self.resolved_domain_type == "kvm" else "tcg"

    def timeouts(self) -> tuple[int, int]:
        """(install, inactivity) seconds; under TCG installs run several times slower."""
        slow = self.resolved_domain_type == "qemu"
        install = self.install_timeout or (3600 if slow else 1200)
        inactivity = self.inactivity_timeout or (600 if slow else 300)
        return install, inactivity

    def with_domain_type(self, domain_type: str) -> HostConfig:
        if domain_type not in DOMAIN_TYPES:
            raise HostError(f"domain type {domain_type!r} is not one of "
                            f"{', '.join(DOMAIN_TYPES)}")
        return replace(self, domain_type=domain_type)


def kvm_usable(dev: Path = Path("/dev/kvm"), cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    if not dev.exists():
        return False
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return re.search(r"^flags\s*:.*\b(vmx|svm)\b", flags, re.M) is not None


def load(path: Path | None = None) -> HostConfig:
    """Read the host config; a missing file means the defaults."""
    path = path or Path(os.environ.get("KOJI_IMAGE_CONFIG", DEFAULT_PATH))
    cfg = HostConfig()
    if not path.exists():
        return cfg
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    try:
        parser.read(path)
        get = parser.get
        values: dict[str, object] = {}
        for key, section, name, conv in [
            ("libvirt_uri", "libvirt", "uri", str),
            ("domain_type", "libvirt", "type", str),
            ("install_memory_mb", "libvirt", "memory", int),
            ("install_cpus", "libvirt", "cpus", int),
            ("install_timeout", "timeouts", "install", int),
            ("inactivity_timeout", "timeouts", "inactivity", int),
            ("boot_memory_mb", "boot", "memory", int),
            ("boot_cpus", "boot", "cpus", int),
            ("workdir", "paths", "workdir", Path),
        ]:
            if parser.has_option(section, name):
                values[key] = conv(get(section, name))
    except (configparser.Error, ValueError) as exc:
        raise HostError(f"{path}: {str(exc).splitlines()[0]}") from exc
    cfg = replace(cfg, **values)  # type: ignore[arg-type]
    if cfg.domain_type not in DOMAIN_TYPES:
        raise HostError(f"{path}: [libvirt] type = {cfg.domain_type!r}; use one of "
                        f"{', '.join(DOMAIN_TYPES)}")
    return cfg
