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

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import CancelledError, InstallError, KojiImageError
from ...spec.arches import Arch
from ...spec.hostconfig import HostConfig
from ...spec.image import ImageSpec
from ..console import clean_console, tail
from ..installfile import InstallFile
from ..results import InstallInfo
from . import compat, diagnose
from .guest import Watch, check_libvirt, destroy_guest
from .template import guest_name, oz_config, tdl_xml


def check_tree(spec: ImageSpec, arch: Arch) -> None:
    """Fail in a second, not after an install timeout, when the tree is not reachable."""
    import oz.ozutil

    url = spec.tree_for(arch).rstrip("/")
    tried = []
    for rel in (r.format(deb=arch.deb_arch) for r in spec.distro.family.tree_files):
        try:
            code = int(oz.ozutil.http_get_header(f"{url}/{rel}").get("HTTP-Code", 0))
        except Exception as exc:  # noqa: BLE001 - any failure to reach it is the answer
            tried.append(f"{rel}: {getattr(exc, 'strerror', None) or type(exc).__name__}")
            continue
        if code == 200:
            return
        tried.append(f"{rel}: HTTP {code}")
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


@dataclass(frozen=True)
class _Paths:
    """Where one install's files go: its work dir, and its records in the log dir."""

    workdir: Path
    diag_dir: Path
    arch: Arch

    @property
    def disk(self) -> Path:
        return self.workdir / "base.raw"

    @property
    def nvram(self) -> Path:
        """The UEFI install guest's variable store (libvirt copies the template here)."""
        return self.workdir / f"install-{self.arch.value}_VARS.fd"

    @property
    def tdl(self) -> Path:
        return self.diag_dir / f"oz-{self.arch.value}.tdl"

    @property
    def console_log(self) -> Path:
        return self.diag_dir / f"install-console-{self.arch.value}.log"

    @property
    def oz_log(self) -> Path:
        return self.diag_dir / f"oz-{self.arch.value}.log"


class OzEngine:
    """Installs one arch of a spec onto a raw base disk."""

    def __init__(self, host: HostConfig, log: logging.Logger,
                 cancel: threading.Event | None = None) -> None:
        self.host = host
        self.log = log
        self.cancel = cancel or threading.Event()

    def install(self, spec: ImageSpec, arch: Arch, prepared: InstallFile | None,
                workdir: Path, diag_dir: Path,
                report: Callable[[str], None]) -> tuple[Path, InstallInfo]:
        """The base disk (``workdir/base.raw``) and the record of the install.
        ``prepared``: the kickstart/preseed Oz injects, kept in ``diag_dir`` (None: Oz's
        own default)."""
        compat.register()
        check_libvirt(self.host.libvirt_uri)
        check_tree(spec, arch)
        paths = _Paths(workdir, diag_dir, arch)
        for d in (workdir, diag_dir):
            d.mkdir(parents=True, exist_ok=True)
            # libvirt runs qemu as libvirt-qemu: it must reach the disk, kernel and initrd.
            d.chmod(0o755)
        name = guest_name(spec, arch)
        xml = tdl_xml(spec, arch, name)
        paths.tdl.write_text(xml)
        auto = prepared.write(diag_dir) if prepared else None
        start = time.monotonic()
        self.log.info("%s: installing %s with Oz in guest %s (%s, disk %d GiB)",
                      arch.value, spec.distro, name, self.host.resolved_domain_type,
                      spec.disk_size)
        with _oz_log(paths.oz_log):
            guest = self._guest(spec, arch, xml, auto, paths)
            try:
                self._run(guest, name, spec, arch, paths, report)
            finally:
                if destroy_guest(self.host.libvirt_uri, name):
                    self.log.info("%s: destroyed guest %s", arch.value, name)
                try:
                    guest.cleanup_install()
                finally:
                    shutil.rmtree(workdir / "oz-output", ignore_errors=True)
                    shutil.rmtree(workdir / "oz-data", ignore_errors=True)
        if self.cancel.is_set():
            raise CancelledError("the build was cancelled")
        if not paths.disk.exists():
            raise InstallError(f"Oz reported success but wrote no disk at {paths.disk}")
        seconds = time.monotonic() - start
        self.log.info("%s: install finished in %.0f s", arch.value, seconds)
        return paths.disk, InstallInfo(name, seconds, self.host.resolved_domain_type,
                                       paths.tdl, paths.console_log, paths.oz_log, auto)

    def _guest(self, spec: ImageSpec, arch: Arch, xml: str, auto: Path | None,
               paths: _Paths) -> Any:
        import oz.GuestFactory
        import oz.OzException
        import oz.TDL

        try:
            guest = oz.GuestFactory.guest_factory(
                oz.TDL.TDL(xml), oz_config(self.host, paths.workdir, paths.diag_dir),
                str(auto) if auto else None, output_disk=str(paths.disk))
        except oz.OzException.OzException as exc:
            raise InstallError(f"Oz refused the install of {spec.distro} {arch.value}: "
                               f"{exc}") from exc
        if guest is None:
            raise InstallError(f"Oz does not know {spec.distro}")
        compat.instrument(guest, paths.console_log, arch, paths.nvram)
        return guest

    def _run(self, guest: Any, name: str, spec: ImageSpec, arch: Arch, paths: _Paths,
             report: Callable[[str], None]) -> None:
        """Oz's install, its errors made into ours; the watch stopped whatever happens."""
        import oz.OzException

        install_timeout, inactivity = self.host.timeouts()
        watch = Watch(self.host.libvirt_uri, name, report, self.cancel)
        try:
            report("fetching the installer from " + spec.tree_for(arch))
            guest.generate_install_media(force_download=True)
            guest.generate_diskimage(size=spec.disk_size, force=True)
            report("installing")
            watch.start()
            with compat.cancellable(self.cancel):
                guest.install(install_timeout, True)
        except oz.OzException.OzException as exc:
            if self.cancel.is_set():
                raise CancelledError("the build was cancelled") from exc
            raise self._failure(exc, spec, arch, inactivity, paths) from exc
        except KojiImageError:
            raise
        except Exception as exc:
            if self.cancel.is_set():
                raise CancelledError("the build was cancelled") from exc
            raise InstallError(f"install of {arch.value} failed: {type(exc).__name__}: "
                               f"{exc} (Oz log: {paths.oz_log})") from exc
        finally:
            watch.stop.set()
            if watch.is_alive():
                watch.join()

    def _failure(self, exc: Any, spec: ImageSpec, arch: Arch, inactivity: int,
                 paths: _Paths) -> InstallError:
        text = str(exc)
        console = ""
        if paths.console_log.exists():
            console = clean_console(paths.console_log.read_bytes())
        tail_path = paths.diag_dir / f"install-console-{arch.value}.tail.txt"
        tail_path.write_text(tail(console) + "\n")
        shots = sorted(paths.diag_dir.glob("*.ppm")) + sorted(paths.diag_dir.glob("*.png"))
        cause = diagnose.diagnose(tail(console), seconds=inactivity, accel=self.host.accel)
        if "No disk activity" in text:
            what = f"stalled: no disk activity for {inactivity} s"
        elif "Timed out" in text:
            what = "timed out"
        else:
            what = "failed: " + text.split(".  ")[0]
        files = {"console": str(tail_path), "oz_log": str(paths.oz_log)}
        if shots:
            files["screenshot"] = str(shots[-1])
        where = ", ".join(f"{k} {v}" for k, v in files.items())
        return InstallError(f"install of {spec.distro} {arch.value} {what}; probable cause: "
                            f"{cause}; see {where}", files)
