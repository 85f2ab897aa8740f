"""The test servers get SIGINT at its default, however the tests were started: a shell
that runs them in the background starts them with SIGINT ignored."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.proc import Daemon, free_port


@contextmanager
def started_in_the_background() -> Iterator[None]:
    """What a non-interactive shell's ``&`` gives the tests: SIGINT ignored."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def serving(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def server_args(port: int) -> list[str]:
    return ["--bind", "127.0.0.1", str(port)]


def test_a_daemon_stops_on_sigint_even_when_the_tests_ignore_it(tmp_path: Path) -> None:
    port = free_port()
    with started_in_the_background():
        daemon = Daemon("http.server", server_args(port), tmp_path / "server.log")
    try:
        daemon.wait_until(lambda: serving(port), "the server listening")
        daemon.proc.send_signal(signal.SIGINT)
        assert daemon.proc.wait(10) == 0
        assert "Keyboard interrupt received" in daemon.output()
    finally:
        daemon.stop()


def test_without_it_a_child_of_the_tests_would_ignore_sigint(tmp_path: Path) -> None:
    """The case DEFAULT_SIGINT exists for: the same server, started plainly, lives on."""
    port = free_port()
    with started_in_the_background():
        proc = subprocess.Popen([sys.executable, "-m", "http.server", *server_args(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not serving(port):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(2)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
