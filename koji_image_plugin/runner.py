"""The one way this project runs host tools.

Every command is looked up on PATH first (a missing tool is a ToolMissingError naming the
Debian package), logged with shlex.join, run with stdin closed and LC_ALL=C.UTF-8, its
output streamed to a per-step log file that the build keeps among its outputs (the kojid
plugin uploads it), its exit status checked, and a failure raised as a ToolError carrying
the tail of that log. Cancelling a Runner kills what it has running, so Ctrl-C or a Koji
task cancel leaves no orphaned qemu or xz behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .errors import CancelledError, ToolError, ToolMissingError

#: Which Debian package provides a tool, for the "not found" hint.
PACKAGES = {
    "qemu-img": "qemu-utils",
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-system-i386": "qemu-system-x86",
    "xz": "xz-utils",
    "tar": "tar",
    "cloud-localds": "cloud-image-utils",
    "genisoimage": "genisoimage",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "ip": "iproute2",
    "losetup": "mount",
    "mount": "mount",
    "umount": "mount",
    "sfdisk": "fdisk",
    "fstrim": "util-linux",
    "blkid": "util-linux",
    "virsh": "libvirt-clients",
    "debootstrap": "debootstrap",
    "sha256sum": "coreutils",
    "cp": "coreutils",
}

TAIL_LINES = 20
CHUNK = 1 << 20
#: seconds between two looks at the cancel event while a tool runs
CANCEL_POLL = 0.5
#: seconds a tear-down step (umount, losetup --detach) may take
CLEANUP_TIMEOUT = 120


def which(tool: str) -> str:
    """Absolute path of a host tool, or a ToolMissingError naming its package."""
    found = shutil.which(tool, path=os.environ.get("PATH", os.defpath) + ":/usr/sbin:/sbin")
    if not found:
        raise ToolMissingError(tool, PACKAGES.get(tool))
    return found


class Runner:
    """Runs host tools for one build, logging each into ``log_dir``."""

    def __init__(self, log_dir: Path, log: logging.Logger | None = None,
                 cancel: threading.Event | None = None) -> None:
        self.log_dir = log_dir
        self.log = log or logging.getLogger("koji_image_plugin")
        self.cancel_event = cancel or threading.Event()
        self._live: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        log_dir.mkdir(parents=True, exist_ok=True)

    # -- cancellation ---------------------------------------------------------
    def cancel(self) -> None:
        """Kill everything this runner has running; later runs raise CancelledError."""
        self.cancel_event.set()
        with self._lock:
            procs = list(self._live)
        for proc in procs:
            _kill(proc)

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise CancelledError("the build was cancelled")

    # -- running --------------------------------------------------------------
    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def run(self, argv: Sequence[str], *, log_name: str,
            capture: bool = False, cwd: Path | None = None,
            env: dict[str, str] | None = None, timeout: float | None = None,
            ok_codes: Sequence[int] = (0,), cleanup: bool = False) -> str:
        """Run one command; return its stdout when ``capture`` (else it goes to the log).
        ``cleanup``: a step of tearing down (umount, losetup --detach) that must run,
        and run to its end, after a cancel too; it gets CLEANUP_TIMEOUT at most."""
        procs, logf, start = self._start([list(argv)], log_name=log_name, cwd=cwd, env=env,
                                         capture=capture, cleanup=cleanup)
        out = b""
        try:
            with contextlib.nullcontext() if cleanup else self._killed_on_cancel():
                if capture:
                    assert procs[0].stdout is not None
                    out = procs[0].stdout.read()
                self._wait(procs, CLEANUP_TIMEOUT if cleanup and timeout is None else timeout)
        finally:
            self._finish(procs, logf)
        self._check(procs, [list(argv)], log_name, start, ok_codes, cleanup=cleanup)
        return out.decode("utf-8", "replace")

    def pipeline(self, cmds: Sequence[Sequence[str]], *, log_name: str,
                 sink: Callable[[bytes], None], cwd: Path | None = None,
                 timeout: float | None = None) -> None:
        """Run ``cmd1 | cmd2 | ...`` and feed the last one's stdout to ``sink`` in chunks.

        Every stage's exit status is checked (pipefail), so a tar that failed behind an
        xz that succeeded is still an error.
        """
        argvs = [list(c) for c in cmds]
        procs, logf, start = self._start(argvs, log_name=log_name, cwd=cwd, env=None,
                                         capture=True)
        try:
            out = procs[-1].stdout
            assert out is not None
            with self._killed_on_cancel():
                while chunk := out.read(CHUNK):
                    sink(chunk)
                self._wait(procs, timeout)
        finally:
            self._finish(procs, logf)
        self._check(procs, argvs, log_name, start, (0,))

    def spawn(self, argv: Sequence[str], *, log_name: str,
              stdout: IO[bytes] | int | None = None) -> subprocess.Popen[bytes]:
        """Start a long-running tool (a qemu guest); the caller must ``reap`` it."""
        self.check_cancelled()
        argv = [which(argv[0]), *argv[1:]]
        logf = self._open_log(log_name, argv)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=stdout if stdout is not None else logf,
                                stderr=logf, env=_env(None), start_new_session=True)
        logf.close()
        with self._lock:
            self._live.add(proc)
        return proc

    def reap(self, proc: subprocess.Popen[bytes], grace: float = 5.0) -> int:
        """Stop a spawned tool (if still running) and return its exit status."""
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _kill(proc)
        with self._lock:
            self._live.discard(proc)
        return proc.returncode

    # -- internals ------------------------------------------------------------
    def _open_log(self, log_name: str, argv: Sequence[str]) -> IO[bytes]:
        self.log.debug("$ %s", shlex.join(argv))
        logf = open(self.log_path(log_name), "ab")
        logf.write(f"### {time.strftime('%Y-%m-%dT%H:%M:%S')} $ {shlex.join(argv)}\n"
                   .encode())
        logf.flush()
        return logf

    def _start(self, argvs: list[list[str]], *, log_name: str, cwd: Path | None,
               env: dict[str, str] | None, capture: bool, cleanup: bool = False
               ) -> tuple[list[subprocess.Popen[bytes]], IO[bytes], int]:
        if not cleanup:
            self.check_cancelled()
        for argv in argvs:
            argv[0] = which(argv[0])
        logf = self._open_log(log_name, [w for a in argvs for w in (*a, "|")][:-1])
        start = logf.tell()
        procs: list[subprocess.Popen[bytes]] = []
        prev: IO[bytes] | None = None
        try:
            for i, argv in enumerate(argvs):
                last = i == len(argvs) - 1
                proc = subprocess.Popen(
                    argv, cwd=cwd, env=_env(env),
                    stdin=prev if prev is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE if (not last or capture) else logf,
                    stderr=logf)
                if prev is not None:
                    prev.close()  # the next stage owns it now; SIGPIPE reaches the writer
                prev = proc.stdout if not last else None
                procs.append(proc)
                if not cleanup:  # a cancel kills the others; a tear-down step runs on
                    with self._lock:
                        self._live.add(proc)
        except BaseException:
            self._finish(procs, logf)
            raise
        return procs, logf, start

    def _wait(self, procs: list[subprocess.Popen[bytes]], timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for proc in procs:
            left = None if deadline is None else max(0.1, deadline - time.monotonic())
            proc.wait(timeout=left)

    @contextmanager
    def _killed_on_cancel(self) -> Iterator[None]:
        """While the block runs, a cancel (the event set from any thread, e.g. by the kojid
        task that found itself cancelled) kills the tools at once; the run then raises
        CancelledError instead of waiting for them to finish."""
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(CANCEL_POLL):
                if self.cancel_event.is_set():
                    self.cancel()
                    return

        threading.Thread(target=watch, daemon=True, name="runner-cancel").start()
        try:
            yield
        finally:
            stop.set()

    def _finish(self, procs: list[subprocess.Popen[bytes]], logf: IO[bytes]) -> None:
        for proc in procs:
            if proc.poll() is None:
                _kill(proc)
            if proc.stdout:
                proc.stdout.close()
            with self._lock:
                self._live.discard(proc)
        logf.close()

    def _check(self, procs: list[subprocess.Popen[bytes]], argvs: list[list[str]],
               log_name: str, start: int, ok_codes: Sequence[int],
               cleanup: bool = False) -> None:
        path = self.log_path(log_name)
        with open(path, "ab") as logf:
            codes = " ".join(str(p.returncode) for p in procs)
            logf.write(f"### exit status: {codes}\n".encode())
        if not cleanup:
            self.check_cancelled()
        for proc, argv in zip(procs, argvs, strict=True):
            if proc.returncode not in ok_codes:
                raise ToolError(os.path.basename(argv[0]), proc.returncode, str(path),
                                _tail(path, start))


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env["LC_ALL"] = "C.UTF-8"
    env.setdefault("PATH", os.defpath)
    if "/usr/sbin" not in env["PATH"]:
        env["PATH"] += ":/usr/sbin:/sbin"
    if extra:
        env.update(extra)
    return env


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _tail(path: Path, start: int) -> str:
    with open(path, "rb") as f:
        f.seek(start)
        text = f.read()[-16384:].decode("utf-8", "replace")
    lines = [ln for ln in text.splitlines() if not ln.startswith("### ")]
    return "\n".join(lines[-TAIL_LINES:])
