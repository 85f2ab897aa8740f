"""How a kojid task runs its build (koji_image_plugin.koji.taskrun), without Koji: the
work in a thread, a cancel from the task's own look at the hub or from kojid's signal."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import pytest

from koji_image_plugin.koji import taskrun


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Short poll and grace; and the signal handlers a cancel sets (SIGINT and SIGTERM
    ignored, as a kojid task unwinding must) put back for the rest of the test run."""
    monkeypatch.setattr(taskrun, "POLL", 0.05)
    monkeypatch.setattr(taskrun, "CANCEL_GRACE", 0.5)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def test_the_result_of_work_that_ends() -> None:
    ticks: list[float] = []
    run = taskrun.Streamed(lambda: time.sleep(0.3) or "made", lambda: ticks.append(1),
                           threading.Event(), "t")
    assert run.result() == "made" and run.finished and ticks


def test_the_works_own_error_is_raised_and_the_work_counts_as_finished() -> None:
    def work() -> None:
        raise ValueError("the disk is damaged")

    run = taskrun.Streamed(work, lambda: None, threading.Event(), "t")
    with pytest.raises(ValueError, match="damaged"):
        run.result()
    assert run.finished


@pytest.mark.parametrize("stop", [taskrun.Cancelled("not ours"), KeyboardInterrupt()])
def test_a_cancel_stops_the_work_and_waits_for_it_to_unwind(stop: BaseException) -> None:
    """Cancelled: the task saw it on the hub; KeyboardInterrupt: kojid's SIGINT."""
    cancel = threading.Event()
    unwound = threading.Event()

    def work() -> str:
        cancel.wait(30)
        time.sleep(0.2)  # unwinding: the guest, the tools, the mounts
        unwound.set()
        return "stopped"

    calls = []

    def tick() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise stop

    run = taskrun.Streamed(work, tick, cancel, "t")
    t0 = time.monotonic()
    with pytest.raises(type(stop)):
        run.result()
    assert cancel.is_set() and unwound.is_set() and not run.finished
    assert time.monotonic() - t0 < 5
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # kojid's SIGTERM/SIGINT wait


def test_a_build_that_does_not_unwind_in_kojids_grace_is_left_to_kojids_sigkill() -> None:
    cancel = threading.Event()
    run = taskrun.Streamed(lambda: time.sleep(5), lambda: (_ for _ in ()).throw(
        KeyboardInterrupt()), cancel, "t")
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run.result()
    assert cancel.is_set() and 0.4 < time.monotonic() - t0 < 3
