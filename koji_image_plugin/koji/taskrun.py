"""A build run inside a kojid task: the work in a thread while the task streams its logs
to the hub, a cancel (kojid's SIGINT) turned into the build's cancel event, and a grace
time for the work to unwind (loop devices, mounts, half-made snapshots) before kojid's
SIGKILL. The Koji side (what a log upload is) is the builder plugin's ``tick``."""

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

#: seconds between two uploads of the growing logs
LOG_INTERVAL = 5
#: seconds a cancelled build may take to unwind before the task removes its disks
#: itself: kojid sends SIGKILL about 5 s after its SIGINT
CANCEL_GRACE = 3.5


class Streamed(Generic[T]):
    """``work()`` in its own thread; ``result()`` calls ``tick()`` every LOG_INTERVAL
    seconds until the work ends, then returns its result or raises its exception.
    ``finished`` says whether the work ran to its end (False: the task was cancelled)."""

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
            while not self._done.wait(LOG_INTERVAL):
                self.tick()
            self.finished = True
        except BaseException:
            # kojid cancels a task with SIGINT, then SIGTERM, then SIGKILL. The cancel
            # destroys a guest at once and stops uploads; the work unwinds if it can in
            # the grace time.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
            self.cancel.set()
            self._done.wait(CANCEL_GRACE)
            raise
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]


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
