"""A build run inside a kojid task: the work in a thread while the task asks the hub for
its own state and streams its logs (the builder plugin's ``tick``), a cancel turned into
the build's cancel event, and time for the work to unwind (the guest, tools, loop
devices, mounts, half-made snapshots).

kojid learns of a cancel only at its next poll (``sleeptime``, 15 s by default), then
sends the task's processes SIGINT, SIGTERM 3 s later and SIGKILL 5 s later. So the task
looks itself: ``tick`` raises :class:`Cancelled` when the hub no longer has the task open,
the work unwinds while nothing is uploaded any more, and the task ends before kojid
comes; kojid's own SIGINT is still honoured, with the time its SIGKILL leaves."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Generic, TypeVar

from ..build.results import Progress, ProgressFn

T = TypeVar("T")

#: seconds between two looks at the task's own state
POLL = 2
#: seconds between two uploads of the growing logs
LOG_INTERVAL = 5
#: seconds a build cancelled by kojid's SIGINT may take to unwind before the task removes
#: its disks itself: kojid sends SIGKILL about 5 s after its SIGINT
CANCEL_GRACE = 3.5
#: seconds at most a build the task found cancelled may take to unwind (it ends sooner:
#: kojid's SIGKILL comes about 5 s after its next poll, which sends SIGINT)
UNWIND_GRACE = 60


class Cancelled(Exception):
    """The hub no longer has this task open for this builder (cancelled, or taken away)."""


class Streamed(Generic[T]):
    """``work()`` in its own thread; ``result()`` calls ``tick()`` every POLL seconds
    until the work ends, then returns its result or raises its exception. ``tick`` raises
    :class:`Cancelled` to stop the work. ``finished`` says whether the work ran to its
    end (False: the task was cancelled, or kojid signalled it)."""

    def __init__(self, work: Callable[[], T], tick: Callable[[], None],
                 cancel: threading.Event, name: str) -> None:
        self.work, self.tick, self.cancel, self.name = work, tick, cancel, name
        self.finished = False
        self._result: T | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()

    def _run(self) -> None:
        try:
            self._result = self.work()
        except BaseException as exc:  # noqa: BLE001 - re-raised by the task's thread
            self._error = exc
        finally:
            self._done.set()

    def result(self) -> T:
        # Waited for with an Event, not Thread.join: a KeyboardInterrupt inside join()
        # marks a running thread as stopped in CPython < 3.13, and the cleanup would
        # not wait for it.
        threading.Thread(target=self._run, name=self.name).start()
        try:
            while not self._done.wait(POLL):
                self.tick()
            self.finished = True
        except Cancelled:
            self._stop(UNWIND_GRACE)
            raise
        except BaseException:
            # kojid's SIGINT (or a failed tick): SIGTERM and SIGKILL follow within 5 s
            self._stop(CANCEL_GRACE)
            raise
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]

    def _stop(self, grace: float) -> None:
        """Cancel the work (the guest is destroyed at once, tools are killed) and give it
        ``grace`` seconds to unwind; kojid's SIGINT and SIGTERM no longer interrupt that
        (kojid's SIGKILL still ends it, 5 s after its SIGINT)."""
        self.cancel.set()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
        self._done.wait(grace)


@contextmanager
def file_log(path: Path, name: str) -> Iterator[logging.Logger]:
    """A logger that writes to ``path`` (a log the task streams) while the block runs."""
    log = logging.getLogger(name)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield log
    finally:
        log.removeHandler(handler)
        handler.close()


def progress_log(path: Path) -> ProgressFn:
    """A progress callback that appends each step to ``path``, a log the task streams."""
    def progress(p: Progress) -> None:
        with open(path, "a") as f:
            f.write(f"{p.arch or '-'} {p.stage}: {p.message}\n")
    return progress
