"""Running test servers (the stand-in hub and kojid, moto, glance-api) as subprocesses."""

from __future__ import annotations

import functools
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Put before a command that is sent SIGINT (a Ctrl-C, or kojid cancelling a task). A
#: shell that runs the tests in the background (a script's ``&``) starts them with SIGINT
#: ignored, and each child inherits that: Python then installs no KeyboardInterrupt
#: handler, and the SIGINT does nothing. A terminal's foreground job and a service that
#: systemd starts have SIGINT at its default; this gives the child that, however the
#: tests were started.
DEFAULT_SIGINT = ["env", "--default-signal=INT"]


def child_processes(pid: int, *, running: bool = True) -> list[int]:
    """The processes whose parent is ``pid`` (kojid's task processes); ``running``: not
    the exited ones that stay zombies until their parent reaps them."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid and not (running and state == "Z"):
                out.append(int(entry.name))
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """``python -m MODULE ARGS`` in its own session, output to ``log``."""

    def __init__(self, module: str, args: list[str], log: Path) -> None:
        self.log = log
        self.argv = [*DEFAULT_SIGINT, sys.executable, "-m", module, *args]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, cwd=REPO, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
        """Poll ``ready`` until it is true; RuntimeError (with the log) if the process
        exits first or the timeout passes."""
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError(f"{' '.join(self.argv)} exited with {rc} before {what}:\n"
                                   f"{self.output()}")
            if ready():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"no {what} after {timeout} s:\n{self.output()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL for the whole process group if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.proc.wait()


#: libvirt's default network: guests reach the host here
GUEST_HOST = "192.168.122.1"


@contextmanager
def serve_http(directory: Path | str, host: str = GUEST_HOST) -> Iterator[str]:
    """``directory`` over HTTP (on libvirt's bridge by default, where guests reach it)
    while the block runs; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(directory))
    server = http.server.ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
