"""A kojid task's side of a build: its logs streamed to the hub while they are written
(``koji watch-logs`` follows the install), its own state watched, and its end after a
cancel made quiet for kojid and the hub (see ``taskrun.py`` for how cancels arrive).
Used by the builder plugin only; it and ``scm.py`` are the modules here that import koji."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

import koji
import koji.daemon

from . import taskrun

T = TypeVar("T")


class Watch:
    """What the hub says of one task: open for this builder, or not any more."""

    def __init__(self, task: Any) -> None:
        self.task = task
        #: the host the task was open on at the first look
        self.host_id: int | None = None

    def ours(self) -> bool:
        """Whether the hub still has the task open on this builder (not cancelled, freed
        or given to another host). A hub error is raised, never taken for a cancel."""
        info = self.task.session.getTaskInfo(self.task.id)
        if not info or info["state"] != koji.TASK_STATES["OPEN"]:
            return False
        if self.host_id is None:
            self.host_id = info["host_id"]
        return bool(info["host_id"] == self.host_id)

    def ours_or_unsure(self) -> bool:
        """As ``ours``, for the way out: an unreachable hub counts as not ours."""
        try:
            return self.ours()
        except (koji.GenericError, OSError):
            return False

    @contextmanager
    def quiet_if_cancelled(self) -> Iterator[None]:
        """Hub calls (uploads, records) of a task the hub may have cancelled meanwhile: a
        refusal then ends the task quietly (SystemExit, which kojid passes on without a
        traceback or failTask), as a cancel found by ``tick`` does."""
        try:
            yield
        except koji.GenericError:
            if self.ours_or_unsure():
                raise
            self.task.logger.info("task %s was cancelled; it stops", self.task.id)
            raise SystemExit(0) from None


def run_streaming(task: Any, work: Callable[[], T], logdir: Path, cancel: Any,
                  name: str, watch: Watch | None = None) -> T:
    """``work()`` in a thread while the task watches its own state on the hub and streams
    every log in ``logdir`` (koji_image_plugin.koji.taskrun); its result, or its
    exception raised here. A task the hub cancelled stops the work, uploads nothing more
    and ends with SystemExit, which kojid passes on without a traceback or failTask."""
    watch = watch or Watch(task)
    watch.ours()  # the first look: the host the task is open on
    streamer = LogStreamer(task.session, logdir, task.getUploadDir())
    run = taskrun.Streamed(work, lambda: streamer.tick(watch), cancel, name)
    try:
        result = run.result()
    except BaseException as exc:
        if not run.finished and isinstance(exc, taskrun.Cancelled):
            streamer.close()
            task.logger.info("task %s: %s; the build stopped", task.id, exc)
            raise SystemExit(0) from None
        # the work failed (its logs say why), or kojid is stopping the task
        if watch.ours_or_unsure():
            streamer.finish(task, logdir, keep_going=True)
        else:
            streamer.close()
            if run.finished:
                raise SystemExit(0) from None
        raise
    with watch.quiet_if_cancelled():
        streamer.finish(task, logdir, keep_going=False)
    return result


def upload_diagnostics(task: Any, logdir: Path) -> None:
    """Screenshots, console tails and the Oz template: not logs, but the first thing to
    read when an install fails."""
    for p in sorted(logdir.iterdir()):
        if p.is_file() and not p.name.endswith(".log") and p.stat().st_size:
            task.uploadFile(str(p))


class LogStreamer:
    """koji.daemon.log_output's upload loop, for every log a build writes."""

    def __init__(self, session: Any, logdir: Path, uploadpath: str) -> None:
        self.session = session
        self.logdir = logdir
        self.uploadpath = uploadpath
        self.files: dict[str, IO[bytes]] = {}
        self.last = 0.0

    def tick(self, watch: Watch) -> None:
        """Every POLL s: stop a task the hub no longer has open; upload the logs every
        LOG_INTERVAL s (never after a cancel: the hub would refuse them)."""
        if not watch.ours():
            raise taskrun.Cancelled(f"the hub no longer has task {watch.task.id} open here")
        if time.monotonic() - self.last < taskrun.LOG_INTERVAL:
            return
        self.last = time.monotonic()
        try:
            self.upload()
        except koji.ActionNotAllowed:
            if not watch.ours():  # cancelled since the look above
                raise taskrun.Cancelled(f"task {watch.task.id} was cancelled") from None
            raise

    def finish(self, task: Any, logdir: Path, keep_going: bool) -> None:
        """The last of the logs and the diagnostics. ``keep_going``: on the way out of a
        failure, a refused upload is logged, so the build's own error is the one raised."""
        try:
            self.upload()
            upload_diagnostics(task, logdir)
        except koji.GenericError as exc:
            if not keep_going:
                raise
            task.logger.warning("logs not uploaded: %s", exc)
        finally:
            self.close()

    def upload(self) -> None:
        for path in sorted(self.logdir.glob("*.log")):
            fd = self.files.get(path.name)
            if fd is None:
                fd = self.files[path.name] = open(path, "rb")
            koji.daemon.incremental_upload(self.session, path.name, fd, self.uploadpath)

    def close(self) -> None:
        for fd in self.files.values():
            fd.close()
        self.files.clear()
