"""A cancel as a real kojid delivers it: kojid learns of it at its next poll (``sleeptime``,
15 s by default) and signals the task's processes; the task does not wait for that: it
asks the hub for its own state while it streams its logs, stops its work, uploads
nothing more and ends quietly, so neither kojid nor the hub logs a traceback.

The task here is a small builder plugin around the builder's own ``run_streaming``; the
VM test in test_plugins.py cancels a real build the same way."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import koji
import pytest

from tests.koji.test_plugins import SEED
from tests.kojistub import client_session, start_hub, start_kojid
from tests.proc import child_processes

HUB_PLUGIN = '''
import kojihub
from koji.context import context
from koji.plugin import export


@export
def stubMakeTask(method, arglist, channel=None):
    context.session.assertLogin()
    return kojihub.make_task(method, arglist, channel=channel or "default")
'''

BUILDER_PLUGIN = '''
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from koji.tasks import BaseTaskHandler

from koji_image_plugin.koji import tasklogs
from koji_image_plugin.koji.tasklogs import run_streaming


class UploadingBuild(BaseTaskHandler):
    """A build whose work is done, then minutes of uploads (as the images are)."""

    Methods = ["stubUploadingBuild"]
    _taskWeight = 0.1

    def handler(self, marker):
        logdir = Path(self.workdir) / "logs"
        logdir.mkdir(parents=True)
        image = Path(self.workdir) / "image.qcow2"
        image.write_bytes(b"x" * 4096)
        watch = tasklogs.Watch(self)
        run_streaming(self, lambda: "built", logdir, threading.Event(), "stub-up", watch)
        Path(marker).write_text("uploading")
        with watch.quiet_if_cancelled():
            for _ in range(600):
                self.uploadFile(str(image))
                time.sleep(0.1)
        return "uploaded"


class SlowBuild(BaseTaskHandler):
    """Works until its cancel event is set, the way the build pipeline does."""

    Methods = ["stubSlowBuild"]
    _taskWeight = 0.1

    def handler(self, marker):
        logdir = Path(self.workdir) / "logs"
        logdir.mkdir(parents=True)
        cancel = threading.Event()

        def work():
            with open(logdir / "slow.log", "a") as log:
                log.write("working\\n")
            Path(marker).write_text("started")
            if cancel.wait(120):
                Path(marker).write_text(f"stopped {time.time()}")
                return "stopped"
            return "done"

        return run_streaming(self, work, logdir, cancel, "stub-slow")
'''


@pytest.fixture
def slow_kojid(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """The stand-in hub, and kojid with the small tasks above and kojid's own default
    poll (sleeptime = 15): it learns of a cancel up to 15 s late."""
    hubplugins, builderplugins = tmp_path / "hubplugins", tmp_path / "builderplugins"
    for d, name, text in ((hubplugins, "stubmake", HUB_PLUGIN),
                          (builderplugins, "stubslow", BUILDER_PLUGIN)):
        d.mkdir()
        (d / f"{name}.py").write_text(text)
    h = start_hub(tmp_path / "top", SEED, tmp_path, plugin_path=hubplugins,
                  plugins=("stubmake",))
    d = start_kojid(h.url, h.topurl, "builder", "builder-pw", tmp_path / "kojid",
                    plugin_path=builderplugins, plugins=("stubslow",), sleeptime=15)
    try:
        yield h, d
    finally:
        d.stop()
        h.stop()


def no_tracebacks(kojid: Any, hub_log: Path, refused: int = 0) -> None:
    """Neither kojid nor the hub logged a traceback (``refused``: the uploads in flight
    when the cancel came, which the hub logs as it logs every refusal)."""
    assert "TRACEBACK" not in kojid.output(), kojid.output()[-3000:]
    text = hub_log.read_text()
    assert text.count("Traceback") <= refused, text[-3000:]


def wait_for(marker: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (marker.exists() and marker.read_text().startswith(text)):
        assert time.monotonic() < deadline, f"never {text}"
        time.sleep(0.1)


def test_a_cancelled_task_stops_by_itself_before_kojid_looks_and_nobody_logs_a_traceback(
        tmp_path: Path, slow_kojid: tuple[Any, Any]) -> None:
    h, d = slow_kojid
    session = client_session(h, "releng", "releng-pw")
    marker = tmp_path / "marker"
    task_id = session.stubMakeTask("stubSlowBuild", [str(marker)])
    wait_for(marker, "started", 60)
    time.sleep(6)  # past one log upload
    t0, w0 = time.monotonic(), time.time()
    session.cancelTask(task_id)
    wait_for(marker, "stopped", 10)
    stopped = float(marker.read_text().split()[1])
    while child_processes(d.proc.pid):
        assert time.monotonic() - t0 < 8, "the task process outlived the cancel"
        time.sleep(0.1)
    print(f"cancel: work stopped after {stopped - w0:.1f} s, task process gone after "
          f"{time.monotonic() - t0:.1f} s (kojid polls every 15 s)")
    assert session.getTaskInfo(task_id)["state"] == koji.TASK_STATES["CANCELED"]
    # the logs written before the cancel were streamed; nothing after it was refused
    log = tmp_path / "top" / "work" / koji.pathinfo.taskrelpath(task_id) / "slow.log"
    assert log.read_text() == "working\n"
    no_tracebacks(d, tmp_path / "hub-requests.log")


def test_a_cancel_during_the_uploads_after_the_build_ends_the_task_quietly(
        tmp_path: Path, slow_kojid: tuple[Any, Any]) -> None:
    h, d = slow_kojid
    session = client_session(h, "releng", "releng-pw")
    marker = tmp_path / "marker"
    task_id = session.stubMakeTask("stubUploadingBuild", [str(marker)])
    wait_for(marker, "uploading", 60)
    time.sleep(1)
    t0 = time.monotonic()
    session.cancelTask(task_id)
    while child_processes(d.proc.pid):
        assert time.monotonic() - t0 < 8, "the task went on uploading"
        time.sleep(0.1)
    print(f"cancel during uploads: task gone after {time.monotonic() - t0:.1f} s")
    no_tracebacks(d, tmp_path / "hub-requests.log", refused=1)
