"""Host configuration: how this machine runs guests and where it uploads, declared once.

It belongs to the host, not to the image: the same spec builds with KVM on a bare-metal
builder and under TCG (software emulation) on a machine without usable KVM. Read from
``/etc/koji-image/koji-image.conf`` (``$KOJI_IMAGE_CONFIG``, or ``--config``), or on a
builder from ``/etc/kojid/plugins/cloud_image.conf`` (``$KOJI_CLOUD_IMAGE_CONF``); the
same sections in both: ``[libvirt]``, ``[timeouts]``, ``[boot]``, ``[paths]`` here,
``[ec2]`` and ``[glance:CLOUD]`` in ``cloudconfig.py``. Every key is declared in the
tables below (type, range, default, help); an unknown section or key, a value out of
range, or a config file that was named but cannot be read is refused in one line that
names ``[section] key``.

``type = auto`` picks KVM only where ``/dev/kvm`` exists *and* the CPU advertises vmx or
svm: a paravirtual ``/dev/kvm`` without them (as on cloud VMs) aborts qemu's ``-cpu
host`` and hangs Debian kernels, so there it means TCG.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import CloudConfigError, ConfigError, HostError, SpecError
from ..files import read_regular
from . import settings
from .cloudconfig import EC2_SECTION, GLANCE_SECTION, Ec2Config, GlanceTarget
from .settings import Section, Setting

log = logging.getLogger("koji_image_plugin")

DEFAULT_PATH = Path("/etc/koji-image/koji-image.conf")
ENV = "KOJI_IMAGE_CONFIG"
KOJID_PATH = Path("/etc/kojid/plugins/cloud_image.conf")
KOJID_ENV = "KOJI_CLOUD_IMAGE_CONF"
DOMAIN_TYPES = ("auto", "kvm", "qemu")
#: install and inactivity timeouts when the config gives none: (KVM, TCG)
INSTALL_TIMEOUTS = (1200, 3600)
INACTIVITY_TIMEOUTS = (300, 600)
#: a host config is a small INI file; a bigger one is not read
MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class HostConfig:
    libvirt_uri: str = "qemu:///system"
    domain_type: str = "auto"
    install_memory_mb: int = 2048
    install_cpus: int = 1
    #: None: scaled for the accelerator (see ``timeouts``)
    install_timeout: int | None = None
    inactivity_timeout: int | None = None
    boot_memory_mb: int = 1024
    boot_cpus: int = 2
    #: boot-test guests at once; None: as many as the cores allow (``guests``)
    boot_guests: int | None = None
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

    def guests(self, cores: int) -> int:
        """Boot-test guests at once: the config's, else one per ``boot_cpus`` cores."""
        return self.boot_guests or max(1, cores // self.boot_cpus)

    def timeouts(self) -> tuple[int, int]:
        """(install, inactivity) seconds; under TCG installs run several times slower."""
        slow = self.resolved_domain_type == "qemu"
        install = self.install_timeout or INSTALL_TIMEOUTS[slow]
        inactivity = self.inactivity_timeout or INACTIVITY_TIMEOUTS[slow]
        return install, inactivity

    def with_domain_type(self, domain_type: str) -> HostConfig:
        if domain_type not in DOMAIN_TYPES:
            raise HostError(f"domain type {domain_type!r} is not one of "
                            f"{', '.join(DOMAIN_TYPES)}")
        return replace(self, domain_type=domain_type)


def _mib(attr: str, default: int, what: str) -> Setting:
    return Setting("memory", attr, "int", default, f"MiB of {what}", low=256, high=1 << 20)


def _cpus(attr: str, default: int, what: str) -> Setting:
    return Setting("cpus", attr, "int", default, f"vCPUs of {what}", low=1, high=256)


BUILD_SECTIONS = (
    Section("libvirt", "How install guests run.", (
        Setting("uri", "libvirt_uri", "text", "qemu:///system", "libvirt connection"),
        Setting("type", "domain_type", "choice", "auto", "kvm, qemu (TCG: software "
                "emulation, several times slower) or auto: kvm only where /dev/kvm "
                "exists and the CPU has vmx/svm", choices=DOMAIN_TYPES),
        _mib("install_memory_mb", 2048, "the install guest"),
        _cpus("install_cpus", 1, "the install guest"))),
    Section("timeouts", "Seconds an install may take; unset, they follow the accelerator.", (
        Setting("install", "install_timeout", "int", None, "seconds the whole install may "
                "take", low=60, high=7 * 86400,
                default_doc=f"{INSTALL_TIMEOUTS[0]} with KVM, {INSTALL_TIMEOUTS[1]} "
                            "under TCG"),
        Setting("inactivity", "inactivity_timeout", "int", None, "seconds without disk "
                "activity before an install counts as stalled", low=30, high=86400,
                default_doc=f"{INACTIVITY_TIMEOUTS[0]} with KVM, {INACTIVITY_TIMEOUTS[1]} "
                            "under TCG"))),
    Section("boot", "The boot test's guests.", (
        _mib("boot_memory_mb", 1024, "the boot test's guest"),
        _cpus("boot_cpus", 2, "the boot test's guest"),
        Setting("guests", "boot_guests", "int", None, "boot-test guests at once (each "
                "variant is booted as each of its clouds; the boots start as soon as the "
                "variant's qcow2 is written)", low=1, high=64,
                default_doc="the host's cores divided by [boot] cpus"))),
    Section("paths", "Where the work happens.", (
        Setting("workdir", "workdir", "path", Path("/var/tmp"), "install disks and images "
                "are made here (a few GiB per arch being built); the libvirt-qemu user "
                "must reach it"),)),
)
SECTIONS = (*BUILD_SECTIONS, EC2_SECTION, GLANCE_SECTION)


def kvm_usable(dev: Path = Path("/dev/kvm"), cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    if not dev.exists():
        return False
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return re.search(r"^flags\s*:.*\b(vmx|svm)\b", flags, re.M) is not None


# -- where the file is -----------------------------------------------------------------

def named(path: Path, what: str = "--config") -> Path:
    """A config file the user named: it must be a readable regular file."""
    if not path.exists():
        raise ConfigError(f"{what}: {path} does not exist; give the host config file "
                          f"(see {DEFAULT_PATH} in the README), or leave it out for the "
                          "defaults")
    if not path.is_file():
        raise ConfigError(f"{what}: {path} is not a regular file; give the host config "
                          "file itself")
    return path


def resolve(path: Path | None = None, *, kojid: bool = False) -> Path:
    """The config file to read: ``path`` (named on a command line: it must exist), else
    the one the environment names (it must exist), else the default location (which may
    be absent: the defaults then apply)."""
    if path is not None:
        return named(path)
    env, default = (KOJID_ENV, KOJID_PATH) if kojid else (ENV, DEFAULT_PATH)
    if os.environ.get(env):
        return named(Path(os.environ[env]), f"${env}")
    return default


# -- reading it ------------------------------------------------------------------------

def read(path: Path) -> settings.Parsed:
    """Every section of the file read against the tables; a missing file is the
    defaults. Each reader below refuses the problems of the sections it reads."""
    try:
        data = read_regular(path, MAX_BYTES)
        text = data.decode("utf-8").removeprefix("\ufeff")  # an editor's byte order mark
    except FileNotFoundError:
        return settings.Parsed()
    except (OSError, UnicodeDecodeError) as exc:
        why = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{path}: cannot read it: {why}") from exc
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: is over {MAX_BYTES >> 20} MiB; a host config is a "
                          "small INI file")
    return settings.parse(text, SECTIONS, str(path))


def _is_cloud(name: str) -> bool:
    return any(s.cloud and s.matches(name) for s in SECTIONS)


def _refuse(path: Path, problems: list[str], error: type[ConfigError]) -> None:
    if problems:
        raise error(f"{path}: " + "; ".join(problems))


def check(path: Path) -> settings.Parsed:
    """The file with every problem of every section refused (``koji-image config``)."""
    parsed = read(path)
    problems = parsed.problems_of(lambda name: True)
    cloud_only = all(name is not None and _is_cloud(name) for name, _ in parsed.problems)
    _refuse(path, problems, CloudConfigError if cloud_only else ConfigError)
    return parsed


def load(path: Path | None = None) -> HostConfig:
    """The host config (``resolve`` decides which file); a missing default file means
    the defaults. A problem in a cloud section does not stop a build: it is logged, and
    the uploads that read that section refuse it."""
    path = path if path is not None else resolve()
    parsed = read(path)
    _refuse(path, parsed.problems_of(lambda name: not _is_cloud(name)), ConfigError)
    for name, problem in parsed.problems:
        if name is not None and _is_cloud(name):
            log.warning("%s: %s (uploads there will refuse it)", path, problem)
    values: dict[str, Any] = {}
    for section in BUILD_SECTIONS:
        values.update(parsed.values.get(section.name, section.defaults()))
    return HostConfig(**values)


def load_ec2(path: Path | None = None) -> Ec2Config:
    """The ``[ec2]`` section; every problem in it is named with its key and the fix."""
    path = path if path is not None else resolve()
    parsed = read(path)
    _refuse(path, parsed.problems_of(lambda name: name == EC2_SECTION.name),
            CloudConfigError)
    values = parsed.values.get(EC2_SECTION.name)
    if values is None:
        raise CloudConfigError(f"{path}: no [ec2] section; add one with at least "
                               "'regions = us-east-1 ...' (see the README, Uploading to "
                               "EC2)")
    return Ec2Config.from_values(values)


def load_glance(cloud: str, path: Path | None = None) -> GlanceTarget:
    """The ``[glance:CLOUD]`` section of a clouds.yaml cloud (the defaults, private, for
    a cloud without one)."""
    path = path if path is not None else resolve()
    parsed = read(path)
    section = f"glance:{cloud}"
    _refuse(path, parsed.problems_of(lambda name: name == section), CloudConfigError)
    values = parsed.values.get(section, GLANCE_SECTION.defaults())
    try:
        return GlanceTarget.from_dict(dict(values, cloud=cloud), where=f"[{section}]")
    except SpecError as exc:
        raise CloudConfigError(f"{path}: " + "; ".join(str(p) for p in exc.problems)) \
            from exc


def example(kojid: bool = False) -> str:
    """The example config shipped for local mode or for kojid: every key, commented."""
    where = KOJID_PATH if kojid else DEFAULT_PATH
    header = (f"{where}: the host config of {'kojid' if kojid else 'koji-image'}'s cloud "
              "image builds.\nEvery key with its default, commented out; `koji-image "
              "config --example` prints this.\n")
    return settings.example(SECTIONS, header)
