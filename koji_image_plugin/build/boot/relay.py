"""Carry one guest TCP connection to a metadata server on loopback.

qemu's user network runs this once per connection the guest opens to a forwarded
address (``guestfwd=tcp:ADDR:PORT-cmd:python3 relay.py HOST PORT``), the connection on
its stdin and stdout. (The ``-tcp:HOST:PORT`` form connects once when qemu starts and
cannot carry the many HTTP connections cloud-init makes.) It imports nothing of the
project, so it starts fast with ``python3 -S -I``.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys


def relay(host: str, port: int, inp: int = 0, out: int = 1) -> None:
    sock = socket.create_connection((host, port), timeout=30)
    sock.settimeout(None)
    sel = selectors.DefaultSelector()
    sel.register(inp, selectors.EVENT_READ, "guest")
    sel.register(sock, selectors.EVENT_READ, "server")
    open_ends = 2
    while open_ends:
        ready = sel.select(timeout=300)
        if not ready:  # nothing for 5 minutes: the guest went away
            return
        for key, _ in ready:
            if key.data == "guest":
                data = os.read(inp, 65536)
                if not data:
                    sel.unregister(inp)
                    sock.shutdown(socket.SHUT_WR)
                    open_ends -= 1
                else:
                    sock.sendall(data)
            else:
                data = sock.recv(65536)
                if not data:
                    return
                while data:
                    data = data[os.write(out, data):]


if __name__ == "__main__":
    relay(sys.argv[1], int(sys.argv[2]))
