"""A guest in a network namespace of its own, for CloudStack: its virtual router is the
guest's DHCP server and gateway, which qemu's user network maps to the host's loopback
at the same port (80 for metadata, 8080 for passwords), and forwarding rules cannot be
put on that address. In a namespace of its own the guest's loopback is ours alone: the
servers listen there on those ports (sockets made inside it, served from here), and ssh
goes in with nsenter. Needs root. Host tools: unshare, nsenter, ip.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading
import time
from collections.abc import Sequence

from ...errors import BootTestError

CLONE_NEWNET = 0x40000000
#: how the guest's qemu is started: in a new network namespace with its loopback up
WRAP = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"',
        "koji-image-netns"]


def require_root() -> None:
    if os.geteuid() != 0:
        raise BootTestError("the cloudstack boot profile needs root: its guest gets a "
                            "network namespace of its own (run as root, or boot the "
                            "image with another profile)")


def ns_path(pid: int) -> str:
    return f"/proc/{pid}/ns/net"


def enter(pid: int) -> list[str]:
    """The wrapper that runs a host tool (ssh) inside the guest's namespace."""
    return ["nsenter", f"--net={ns_path(pid)}", "--"]


def wait_ready(pid: int, timeout: float = 15) -> None:
    """Until ``pid`` runs qemu in a namespace of its own: the wrapper execs qemu only
    once the namespace's loopback is up."""
    ours = os.stat("/proc/self/ns/net").st_ino
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read()
            if comm.startswith("qemu") and os.stat(ns_path(pid)).st_ino != ours:
                return
        except (FileNotFoundError, ProcessLookupError):
            raise BootTestError("the guest's qemu exited while its network namespace "
                                "was being made") from None
        time.sleep(0.1)
    raise BootTestError(f"the guest's network namespace was not ready after "
                        f"{timeout:.0f} s")


def listeners(pid: int, ports: Sequence[int]) -> list[socket.socket]:
    """Listening sockets on 127.0.0.1:PORT inside ``pid``'s network namespace (made by a
    thread that enters it: a namespace is a thread's, and a socket stays in the one it
    was made in)."""
    made: list[socket.socket] = []
    failed: list[OSError] = []

    def inside() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(ns_path(pid), os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns: {os.strerror(err)}")
            for port in ports:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", port))
                sock.listen(64)
                made.append(sock)
        except OSError as exc:
            failed.append(exc)
        finally:
            os.close(fd)

    # the thread ends in the guest's namespace and is gone; nothing else enters it
    thread = threading.Thread(target=inside, name=f"netns-{pid}")
    thread.start()
    thread.join()
    if failed:
        for sock in made:
            sock.close()
        raise BootTestError(f"cannot listen in the guest's network namespace: {failed[0]}")
    return made
