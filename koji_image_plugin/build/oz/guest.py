"""An install guest's life in libvirt: is libvirt there, watch the guest's disk writes
(progress) and destroy it at once on a cancel, and make sure it is gone afterwards."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ...errors import HostError


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


class Watch(threading.Thread):
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


