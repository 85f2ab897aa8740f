"""Teach Oz 0.17 (Debian's ``oz``) what it does not know yet, without patching its files.

- Debian 10 to 13: Oz's ``version_to_config`` stops at 9; newer releases install the same
  way (virtio disk and net, no ``auto=true`` for direct kernel boots), so they get 9's
  configuration.
- Fedora 30 and later: Oz already falls back to its newest entry (29) with a warning;
  registering them explicitly makes that choice deliberate and silent.
- The install guest: ``instrument`` makes a guest's libvirt XML keep its serial console in
  a log file and puts the kernel console on that serial port (the arch's: ttyAMA0 on
  aarch64), so a stalled install can be diagnosed from what the guest printed (Oz itself
  only takes a screenshot).
- aarch64: Oz names Debian's installer directory after the TDL arch (``aarch64``), but
  Debian calls it ``arm64``; and under TCG Oz gives the guest no CPU model, so qemu's
  ``virt`` machine starts a 32-bit Cortex-A15 that cannot run an arm64 kernel:
  ``instrument`` sets Debian's arch name and asks libvirt for the emulator's most capable
  CPU (``<cpu mode='maximum'/>``; under KVM Oz already passes the host's through); and
  Oz gives every guest a PS/2 mouse, which ``virt`` does not have (libvirt refuses the
  domain), so it is dropped (the guest has no screen either). Oz names AAVMF's variable
  store template but no file, so libvirt would keep the install's copy in its own
  ``nvram/`` directory after the build: the copy goes in the build's work dir instead.

- Inactivity: Oz 0.17's ``timed_loop`` calls its install callback once every 10 s, and
  the callback counts *calls*, so ``[timeouts] inactivity = 300`` means 3000 s of
  silence (while Oz's message says "300 seconds"). ``oz_inactivity`` converts real
  seconds into Oz's unit.
- Cancel: Oz waits for its guest in ``timed_loop``, which looks again only every 10 s.
  ``cancellable`` puts a loop of the same timing in its place for the install, one that
  ends as soon as the build is cancelled, so a cancelled install returns at once.

Everything here is applied at run time and is idempotent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lxml.etree

from ...spec.arches import Arch
from ...spec.distro import Family

#: the releases Oz 0.17 does not know, of those the spec accepts (spec/distro.py)
DEBIAN_NEW = tuple(str(v) for v in Family.DEBIAN.versions if v >= 10)
FEDORA_NEW = tuple(str(v) for v in Family.FEDORA.versions if v >= 30)


def register() -> None:
    import oz.Debian
    import oz.Fedora

    for version in DEBIAN_NEW:
        oz.Debian.version_to_config.setdefault(version, oz.Debian.version_to_config["9"])
    for version in FEDORA_NEW:
        oz.Fedora.version_to_config.setdefault(version, oz.Fedora.version_to_config["29"])


OZ_CHECK_INTERVAL = 10


def oz_inactivity(seconds: int) -> int:
    """Oz's ``inactivity`` setting for ``seconds`` of no disk or network activity."""
    return max(1, -(-seconds // OZ_CHECK_INTERVAL))


def supported(family: str, version: str) -> bool:
    register()
    import oz.Debian
    import oz.Fedora

    table = {"Debian": oz.Debian.version_to_config, "Fedora": oz.Fedora.version_to_config}
    return family in table and (version in table[family] or
                                (family == "Fedora" and version == "rawhide"))


def instrument(guest: Any, console_log: Path, arch: Arch, nvram: Path | None = None
               ) -> None:
    """Wrap ``guest._generate_xml`` to log the serial console and use it as kernel
    console, and give an aarch64 guest what Oz 0.17 does not (see above); ``nvram``:
    where the guest's UEFI variable store is kept (the build's work dir)."""
    original = guest._generate_xml
    if hasattr(guest, "debarch"):  # Oz's Debian guests
        guest.debarch = arch.deb_arch

    def generate_xml(*args: Any, **kwargs: Any) -> str:
        return adapt_xml(original(*args, **kwargs), console_log, arch, nvram)

    guest._generate_xml = generate_xml


def adapt_xml(xml: str, console_log: Path, arch: Arch, nvram: Path | None = None) -> str:
    doc = lxml.etree.fromstring(xml)
    for store in doc.xpath("/domain/os/nvram"):
        if nvram is not None and not (store.text or "").strip():
            store.text = str(nvram)
    for serial in doc.xpath("/domain/devices/serial[@type='pty']"):
        if not serial.xpath("log"):
            log = lxml.etree.Element("log", file=str(console_log), append="on")
            serial.insert(0, log)
    for cmdline in doc.xpath("/domain/os/cmdline"):
        if "console=" not in (cmdline.text or ""):
            cmdline.text = f"{cmdline.text or ''} {arch.console_args(screen=True)}".strip()
    if arch is Arch.AARCH64:
        for mouse in doc.xpath("/domain/devices/input[@bus='ps2']"):
            mouse.getparent().remove(mouse)
        if doc.get("type") == "qemu" and not doc.xpath("/domain/cpu"):
            doc.append(lxml.etree.Element("cpu", mode="maximum"))
    return str(lxml.etree.tostring(doc, pretty_print=True, encoding="unicode"))


_local = threading.local()
_lock = threading.Lock()
_users = 0
_oz_timed_loop: Any = None


def _timed_loop(max_time: float, cb: Callable[[Any], bool], msg: str,
                cb_arg: Any = None) -> bool:
    """Oz's timed_loop, timed as Oz's is (the callback every OZ_CHECK_INTERVAL seconds,
    so Oz's inactivity counts mean what ``oz_inactivity`` says), but over when this
    thread's install is cancelled (returning False, as on a timeout)."""
    cancel: threading.Event = getattr(_local, "cancel", None) or threading.Event()
    log = logging.getLogger("oz.ozutil")
    end = time.monotonic() + max_time
    while time.monotonic() < end:
        next_look = time.monotonic() + OZ_CHECK_INTERVAL
        log.debug("%s, %d/%d", msg, max(0, int(end - time.monotonic())), max_time)
        if cb(cb_arg):
            return True
        if cancel.wait(max(0.0, min(next_look, end) - time.monotonic())):
            return False
    return False


@contextmanager
def cancellable(cancel: threading.Event) -> Iterator[None]:
    """While the block runs in this thread, Oz's waits end within moments of ``cancel``
    being set. Oz's ``timed_loop`` is replaced once for as long as any block runs."""
    global _users, _oz_timed_loop
    import oz.ozutil

    with _lock:
        if _users == 0:
            _oz_timed_loop = oz.ozutil.timed_loop
            oz.ozutil.timed_loop = _timed_loop
        _users += 1
    outer = getattr(_local, "cancel", None)
    _local.cancel = cancel
    try:
        yield
    finally:
        _local.cancel = outer
        with _lock:
            _users -= 1
            if _users == 0:
                oz.ozutil.timed_loop = _oz_timed_loop
