"""The weekly job: scratch builds of each configured branch, a drop of what booted, pruning.

For each branch of the config (e.g. rawhide and 19), under a per-branch lock:

1. if today's weekly of the branch is already published, nothing is built;
2. if today's run submitted a build that has not been seen to finish (the job was killed,
   or timed out waiting), that task is waited for again, not resubmitted;
3. otherwise one scratch ``cloudImageBuild`` is submitted with release ``YYYYMMDD.N``
   (``N`` counts today's runs of the branch, so a re-run after a failed build gets a new
   release), the kickstart/preseed uploaded first as ``koji cloud-image-build`` does;
4. when the task finishes, the images whose boot test passed become the weekly drop
   ``weekly/BRANCH/YYYYMMDD.N`` (nothing unbooted is published);
5. weeklies beyond ``keep`` are pruned, and the index page and feed are rewritten.

What each run did is kept in ``STATE_DIR/BRANCH.json`` so running the job twice on one day
gives one build and one drop. The ``koji`` library is imported only for the hub
(``kojisession.py``, and ``koji_cli.lib`` here for the upload path).
"""


from __future__ import annotations

import datetime
import importlib
import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..koji import request
from . import index, publish
from .drop import DropError, DropInputError, Verdict, drop_id, make_drop
from .kojisession import koji_module, koji_session
from .sources import KojiSource
from .weekly_config import Branch, WeeklyConfig, WeeklyError, prepared
from .weekly_state import locked_state, save_state

DONE_STATES = ("CLOSED", "FAILED", "CANCELED")


# -- Koji -------------------------------------------------------------------------------

def connect(cfg: WeeklyConfig) -> tuple[Any, dict[str, Any]]:
    try:
        return koji_session(cfg.koji["profile"], cfg.koji.get("config"),
                            cfg.koji.get("user"), cfg.koji.get("password_file"),
                            names=("koji.profile", "koji.config"))
    except DropInputError as exc:  # the config's fault: exit 2, as its other problems
        raise DropInputError(f"{cfg.source}: {exc}") from None
    except DropError as exc:
        raise WeeklyError(f"{cfg.source}: {exc}") from exc


def submit(session: Any, branch: Branch, release: str) -> int:
    """Upload the branch's kickstart/preseed as ``koji cloud-image-build`` does, then
    queue its scratch build."""
    cli_lib = importlib.import_module("koji_cli.lib")
    return prepared(branch, release).submit(session, cli_lib.unique_path(request.UPLOAD_PREFIX))


def wait_task(session: Any, task_id: int, poll: float, timeout: float,
              log: logging.Logger) -> str:
    """Follow a task and its children like koji's watch_tasks; its final state's name."""
    koji = koji_module()
    deadline = time.monotonic() + timeout
    seen: dict[int, str] = {}
    while True:
        info = session.getTaskInfo(task_id)
        tasks = [info, *session.getTaskChildren(task_id)]
        for t in tasks:
            state = koji.TASK_STATES[t["state"]]
            if seen.get(t["id"]) != state:
                log.info("task %s %s (%s): %s", t["id"], t["method"], t.get("label") or
                         t.get("arch"), state)
                seen[t["id"]] = state
        state = koji.TASK_STATES[info["state"]]
        if state in DONE_STATES:
            return str(state)
        if time.monotonic() > deadline:
            raise WeeklyError(f"task {task_id} did not finish in {timeout:.0f} s; the next "
                              "run of the job waits for it again")
        time.sleep(poll)



# -- the job ----------------------------------------------------------------------------

@dataclass(frozen=True)
class BranchOutcome:
    release: str
    status: str  # published | already published | failed
    detail: str
    drop: Path | None = None
    task_id: int | None = None
    pruned: tuple[Path, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def _next_n(runs: list[dict[str, Any]], mirror: Path, release: str, day: str) -> int:
    taken = {int(r["n"]) for r in runs}
    n = 0
    while n in taken or (mirror / "weekly" / release / f"{day}.{n}").exists():
        n += 1
    return n


def start_branch(cfg: WeeklyConfig, session: Any, branch: Branch, day: str,
                 state: dict[str, Any], log: logging.Logger) -> dict[str, Any] | BranchOutcome:
    """Today's run of a branch: an outcome when it was published already, else the run
    to wait for (one submitted now, or one an earlier run today left waiting)."""
    runs = [r for r in state["runs"] if r["day"] == day]
    done = [r for r in runs if r["status"] == "published"]
    if done:
        r = done[-1]
        return BranchOutcome(branch.release, "already published",
                             f"weekly {day}.{r['n']} was published by an earlier run "
                             "today", cfg.mirror / r["drop"], r["task_id"])
    pending = [r for r in runs if r["status"] == "submitted"]
    if pending:
        again: dict[str, Any] = pending[-1]
        log.info("%s: waiting again for task %s of an earlier run today",
                 branch.release, again["task_id"])
        return again
    n = _next_n(runs, cfg.mirror, branch.release, day)
    release = f"{day}.{n}"
    task_id = submit(session, branch, release)
    run = {"day": day, "n": n, "release": release, "task_id": task_id,
           "status": "submitted", "submitted": _stamp()}
    state["runs"].append(run)
    save_state(cfg.state_dir / f"{branch.release}.json", state)
    log.info("%s: submitted scratch build %s as task %s", branch.release, release, task_id)
    return run


def finish_branch(cfg: WeeklyConfig, session: Any, topurl: str, branch: Branch, day: str,
                  run: dict[str, Any], poll: float, log: logging.Logger) -> BranchOutcome:
    """Wait for the run's task; publish what booted as the weekly drop."""
    task_id = int(run["task_id"])
    final = wait_task(session, task_id, poll, cfg.timeout, log)
    # A parent that failed moved nothing to scratch: only a closed one has images.
    images = KojiSource(session, topurl).task_images(task_id) if final == "CLOSED" else []
    booted = [i for i in images if i.verdict is Verdict.PASSED]
    if not booted:
        why = "no image passed its boot test" if final == "CLOSED" else \
            _arch_errors(session, task_id)
        run.update(status="failed", finished=_stamp(),
                   detail=f"task {task_id} {final}: {why}")
        return BranchOutcome(branch.release, "failed", run["detail"], None, task_id)
    did = drop_id(branch.release, weekly=f"{day}.{run['n']}")
    drop = make_drop(did, booted, bug_url=cfg.bug_url,
                     description=f"Scratch build task {task_id} ({final}).",
                     sources=[f"task {task_id}"])
    result = publish.publish(drop, cfg.mirror, signer=cfg.signer, product=cfg.product,
                             log=log)
    run.update(status="published", finished=_stamp(),
               drop=result.path.relative_to(cfg.mirror).as_posix())
    return BranchOutcome(branch.release, "published",
                         f"{len(booted)} of {len(images)} images booted", result.path,
                         task_id)


def _arch_errors(session: Any, task_id: int) -> str:
    """Why a build failed, per arch, as cloudImageInfo reports it."""
    try:
        info = session.cloudImageInfo(task=task_id)
    except koji_module().GenericError as exc:
        return str(exc).strip().splitlines()[-1]
    errors = [f"{arch}: {rec['error']}" for arch, rec in
              sorted((info.get("arches") or {}).items()) if rec.get("error")]
    return "; ".join(errors) or "no arch finished"


def _stamp() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def run_weekly(cfg: WeeklyConfig, today: datetime.date | None = None,
               log: logging.Logger | None = None) -> list[BranchOutcome]:
    log = log or logging.getLogger("koji_image_plugin")
    day = (today or datetime.datetime.now(datetime.UTC).date()).strftime("%Y%m%d")
    session, opts = connect(cfg)
    topurl = opts.get("topurl")
    if not topurl:
        raise WeeklyError(f"{cfg.source}: koji.profile: {cfg.koji['profile']} has no "
                          "topurl; set it in the koji config (where the hub's files are "
                          "served)")
    poll = float(cfg.poll_interval or opts.get("poll_interval") or 6)
    errors = (DropError, WeeklyError, koji_module().GenericError, OSError)
    outcomes: dict[str, BranchOutcome] = {}
    # Every branch's build is submitted before any is waited for, so they build side by
    # side; each branch's lock is held until the job ends.
    with ExitStack() as locks:
        waiting: list[tuple[Branch, dict[str, Any], dict[str, Any]]] = []
        locked: set[str] = set()
        for branch in cfg.branches:
            try:
                state = locks.enter_context(locked_state(cfg.state_dir, branch.release))
                locked.add(branch.release)
                started = start_branch(cfg, session, branch, day, state, log)
            except errors as exc:
                outcomes[branch.release] = BranchOutcome(branch.release, "failed",
                                                         str(exc).strip())
                continue
            if isinstance(started, BranchOutcome):
                outcomes[branch.release] = started
            else:
                waiting.append((branch, state, started))
        for branch, state, run in waiting:
            try:
                outcomes[branch.release] = finish_branch(cfg, session, topurl, branch, day,
                                                         run, poll, log)
            except errors as exc:
                outcomes[branch.release] = BranchOutcome(branch.release, "failed",
                                                         str(exc).strip(), None,
                                                         int(run["task_id"]))
            save_state(cfg.state_dir / f"{branch.release}.json", state)
        out = []
        for branch in cfg.branches:
            o = outcomes[branch.release]
            # only branches this job holds the lock of: another job may be publishing
            pruned = publish.prune_weeklies(cfg.mirror, branch.release, cfg.keep, log) \
                if branch.release in locked else []
            out.append(BranchOutcome(o.release, o.status, o.detail, o.drop, o.task_id,
                                     tuple(pruned)))
    index.write_index(cfg.mirror, cfg.base_url)
    return out
