"""The install engine: Oz, driven through its Python API, in a libvirt guest.

The sequence is the one ImageFactory's Oz plugin uses: TDL -> ``guest_factory`` ->
``generate_install_media`` -> ``generate_diskimage`` -> ``install`` ->
``cleanup_install``. What this module adds around it: a unique guest name, every Oz path
inside the build's work dir, the accelerator from the host config, timeouts scaled for
TCG, the serial console kept in a log, progress from the guest's disk writes, a readable
diagnosis when the install stalls, and a guest that is always destroyed, whatever
happened (Oz leaves it running when it gives up).
Host tools: libvirt (libvirtd, virtlogd), qemu, through Oz.
"""

from __future__ import annotations

import configparser
import logging
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from . import diagnose, ozcompat
from .arches import Arch
from .errors import CancelledError, HostError, InstallError, KojiImageError
from .hostconfig import HostConfig
from .spec import ImageSpec

DATA = Path(__file__).parent / "data"
DEFAULT_AUTO = {"Debian": DATA / "debian.preseed"}


@dataclass(frozen=True)
class InstallResult:
    disk: Path
    seconds: float
    guest_name: str
    tdl: Path
    console_log: Path
    oz_log: Path


def guest_name(spec: ImageSpec, arch: Arch) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", spec.name)[:40]
    return f"koji-image-{safe}-{arch.value}-{uuid.uuid4().hex[:8]}"


def tdl_xml(spec: ImageSpec, arch: Arch, name: str) -> str:
    """Oz's template for one arch of ``spec``."""
    repos = "".join(
        f"    <repository name='repo{i}'><url>{escape(url.replace('$arch', arch.value))}"
        f"</url><signed>no</signed></repository>\n"
        for i, url in enumerate(spec.repos))
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
        + (f"  <repositories>\n{repos}  </repositories>\n" if repos else "")
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
                       "inactivity": str(ozcompat.oz_inactivity(inactivity)),
                       "boot": "600", "shutdown": "120"}
    return cfg


def check_libvirt(uri: str) -> None:
    """Fail early and clearly when libvirt or its NAT network is not there."""
    import libvirt

    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise HostError(f"cannot connect to libvirt at {uri}: {exc.get_error_message()}; "
                        "start libvirtd and virtlogd (scripts/start-services.sh)") from exc
    try:
        if not any(conn.networkLookupByName(n).isActive() for n in conn.listNetworks()):
            raise HostError(f"libvirt at {uri} has no active network; run "
                            "'virsh net-start default' (scripts/start-services.sh does)")
    finally:
        conn.close()


#: What an install tree must hold, per distro family (any one of the alternatives).
TREE_FILES = {
    "Debian": ("debian-installer/{deb}/linux", "mini.iso"),
    "Fedora": ("images/pxeboot/vmlinuz", ".treeinfo"),
}


def check_tree(spec: ImageSpec, arch: Arch) -> None:
    """Fail in a second, not after an install timeout, when the tree is not reachable."""
    import oz.ozutil

    url = spec.tree_for(arch).rstrip("/")
    tried = []
    for rel in TREE_FILES.get(spec.distro.family, ()):
        target = f"{url}/{rel.format(deb=arch.deb_arch)}"
        try:
            code = int(oz.ozutil.http_get_header(target).get("HTTP-Code", 0))
        except Exception as exc:  # noqa: BLE001 - any failure to reach it is the answer
            tried.append(f"{rel.format(deb=arch.deb_arch)}: "
                         f"{getattr(exc, 'strerror', None) or type(exc).__name__}")
            continue
        if code == 200:
            return
        tried.append(f"{rel.format(deb=arch.deb_arch)}: HTTP {code}")
    raise InstallError(f"install_tree: cannot fetch the installer from {url} "
                       f"({'; '.join(tried)}); check the URL and that this host reaches it")


@contextmanager
def _oz_log(path: Path) -> Iterator[None]:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("oz")
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()


class _Watch(threading.Thread):
    """Reports the guest's disk writes as progress and kills it on cancel."""

    def __init__(self, uri: str, name: str, report: Callable[[str], None],
                 cancel: threading.Event) -> None:
        super().__init__(daemon=True, name=f"watch-{name}")
        self.uri, self.name_, self.report, self.cancel = uri, name, report, cancel
        self.stop = threading.Event()

    def run(self) -> None:
        import libvirt

        conn = libvirt.open(self.uri)
        last = -1
        try:
            ticks = 0
            while not self.stop.is_set():
                # A cancel destroys the guest within half a second: kojid follows its
                # SIGINT with SIGKILL a few seconds later, and a guest outlives the
                # task's process. Progress is read every 5 s.
                cancelled = self.cancel.wait(0.5)
                ticks += 1
                if self.stop.is_set() or not (cancelled or ticks % 10 == 0):
                    continue
                try:
                    dom = conn.lookupByName(self.name_)
                    if cancelled:
                        dom.destroy()
                        return
                    _, _, _, wr_bytes, _ = dom.blockStats("vda")
                except libvirt.libvirtError:
                    if cancelled:  # no guest yet: look again, without spinning
                        self.stop.wait(0.5)
                    continue
                mib = wr_bytes >> 20
                if mib != last:
                    self.report(f"guest has written {mib} MiB")
                    last = mib
        finally:
            conn.close()


def destroy_guest(uri: str, name: str) -> bool:
    """Destroy (and undefine) the guest ``name`` if it exists; True if there was one."""
    import libvirt

    conn = libvirt.open(uri)
    try:
        try:
            dom = conn.lookupByName(name)
        except libvirt.libvirtError:
            return False
        # Oz's guests are transient: once destroyed they are gone, so ask first.
        persistent = dom.isPersistent()
        if dom.isActive():
            dom.destroy()
        if persistent:
            dom.undefine()
        return True
    finally:
        conn.close()


class OzEngine:
    """Installs one arch of a spec onto a raw base disk."""

    def __init__(self, host: HostConfig, log: logging.Logger,
                 cancel: threading.Event | None = None) -> None:
        self.host = host
        self.log = log
        self.cancel = cancel or threading.Event()

    def install(self, spec: ImageSpec, arch: Arch, workdir: Path, diag_dir: Path,
                report: Callable[[str], None]) -> InstallResult:
        import oz.GuestFactory
        import oz.OzException
        import oz.TDL

        ozcompat.register()
        check_libvirt(self.host.libvirt_uri)
        check_tree(spec, arch)
        workdir.mkdir(parents=True, exist_ok=True)
        diag_dir.mkdir(parents=True, exist_ok=True)
        # libvirt runs qemu as libvirt-qemu: it must reach the disk, kernel and initrd.
        for d in (workdir, diag_dir):
            d.chmod(0o755)
        name = guest_name(spec, arch)
        disk = workdir / "base.raw"
        tdl_path = diag_dir / f"oz-{arch.value}.tdl"
        console_log = diag_dir / f"install-console-{arch.value}.log"
        oz_log = diag_dir / f"oz-{arch.value}.log"
        xml = tdl_xml(spec, arch, name)
        tdl_path.write_text(xml)
        auto = spec.auto_file or DEFAULT_AUTO.get(spec.distro.family)
        install_timeout, inactivity = self.host.timeouts()
        start = time.monotonic()
        self.log.info("%s: installing %s with Oz in guest %s (%s, disk %d GiB)",
                      arch.value, spec.distro, name, self.host.resolved_domain_type,
                      spec.disk_size)
        with _oz_log(oz_log):
            try:
                tdl = oz.TDL.TDL(xml)
                guest = oz.GuestFactory.guest_factory(
                    tdl, oz_config(self.host, workdir, diag_dir),
                    str(auto) if auto else None, output_disk=str(disk))
            except oz.OzException.OzException as exc:
                raise InstallError(f"Oz refused the install of {spec.distro} {arch.value}: "
                                   f"{exc}") from exc
            if guest is None:
                raise InstallError(f"Oz does not know {spec.distro}")
            ozcompat.instrument(guest, console_log)
            watch = _Watch(self.host.libvirt_uri, name, report, self.cancel)
            try:
                report("fetching the installer from " + spec.tree_for(arch))
                guest.generate_install_media(force_download=True)
                guest.generate_diskimage(size=spec.disk_size, force=True)
                report("installing")
                watch.start()
                guest.install(install_timeout, True)
            except oz.OzException.OzException as exc:
                raise self._failure(exc, spec, arch, inactivity, console_log, oz_log,
                                    diag_dir) from exc
            except KojiImageError:
                raise
            except Exception as exc:
                if self.cancel.is_set():
                    raise CancelledError("the build was cancelled") from exc
                raise InstallError(f"install of {arch.value} failed: "
                                   f"{type(exc).__name__}: {exc} (Oz log: {oz_log})") from exc
            finally:
                watch.stop.set()
                if watch.is_alive():
                    watch.join()
                if destroy_guest(self.host.libvirt_uri, name):
                    self.log.info("%s: destroyed guest %s", arch.value, name)
                try:
                    guest.cleanup_install()
                finally:
                    shutil.rmtree(workdir / "oz-output", ignore_errors=True)
                    shutil.rmtree(workdir / "oz-data", ignore_errors=True)
        if self.cancel.is_set():
            raise CancelledError("the build was cancelled")
        if not disk.exists():
            raise InstallError(f"Oz reported success but wrote no disk at {disk}")
        seconds = time.monotonic() - start
        self.log.info("%s: install finished in %.0f s", arch.value, seconds)
        return InstallResult(disk, seconds, name, tdl_path, console_log, oz_log)

    def _failure(self, exc: Any, spec: ImageSpec, arch: Arch, inactivity: int,
                 console_log: Path, oz_log: Path, diag_dir: Path) -> InstallError:
        text = str(exc)
        console = ""
        if console_log.exists():
            console = diagnose.clean_console(console_log.read_bytes())
        tail_path = diag_dir / f"install-console-{arch.value}.tail.txt"
        tail_path.write_text(diagnose.tail(console) + "\n")
        shots = sorted(diag_dir.glob("*.ppm")) + sorted(diag_dir.glob("*.png"))
        cause = diagnose.diagnose(diagnose.tail(console), seconds=inactivity,
                                  accel=self.host.accel)
        if "No disk activity" in text:
            what = f"stalled: no disk activity for {inactivity} s"
        elif "Timed out" in text:
            what = "timed out"
        else:
            what = "failed: " + text.split(".  ")[0]
        files = {"console": str(tail_path), "oz_log": str(oz_log)}
        if shots:
            files["screenshot"] = str(shots[-1])
        where = ", ".join(f"{k} {v}" for k, v in files.items())
        return InstallError(f"install of {spec.distro} {arch.value} {what}; probable cause: "
                            f"{cause}; see {where}", files)
