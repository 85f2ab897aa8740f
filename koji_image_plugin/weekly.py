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
gives one build and one drop. The ``koji`` library is imported only here and in
:mod:`drop`'s Koji source.
"""

from __future__ import annotations

import datetime
import fcntl
import importlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from . import index, publish, request
from .drop import (
    RELEASE_RE,
    DropError,
    KojiSource,
    Verdict,
    drop_id,
    koji_module,
    koji_session,
    make_drop,
)
from .errors import KojiImageError, Problem, SpecError
from .spec import auto_file_key, read

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["mirror", "koji", "branches"],
    "properties": {
        "mirror": {"type": "string", "minLength": 1},
        "base_url": {"type": "string", "pattern": "^(https?|file)://"},
        "keep": {"type": "integer", "minimum": 1},
        "state_dir": {"type": "string", "minLength": 1},
        "poll_interval": {"type": "number", "exclusiveMinimum": 0},
        "timeout": {"type": "integer", "minimum": 60},
        "gpg_key": {"type": "string", "minLength": 1},
        "gpg_homedir": {"type": "string", "minLength": 1},
        "bug_url": {"type": "string"},
        "product": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$"},
        "koji": {
            "type": "object",
            "additionalProperties": False,
            "required": ["profile"],
            "properties": {
                "profile": {"type": "string", "minLength": 1},
                "config": {"type": "string", "minLength": 1},
                "user": {"type": "string", "minLength": 1},
                "password_file": {"type": "string", "minLength": 1},
            },
        },
        "branches": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["release", "spec", "target"],
                "properties": {
                    "release": {"type": "string", "pattern": RELEASE_RE.pattern},
                    "spec": {"type": "string", "minLength": 1},
                    "target": {"type": "string", "minLength": 1},
                    "arches": {"type": "array", "items": {"type": "string"},
                               "minItems": 1},
                },
            },
        },
    },
}

DEFAULT_STATE_DIR = "/var/lib/koji-image/weekly"
DONE_STATES = ("CLOSED", "FAILED", "CANCELED")


class WeeklyError(KojiImageError):
    """A weekly run that could not finish a branch (the message names it)."""


@dataclass(frozen=True)
class Branch:
    release: str
    spec: Path
    target: str
    arches: tuple[str, ...] | None


@dataclass(frozen=True)
class WeeklyConfig:
    source: Path
    mirror: Path
    base_url: str | None
    keep: int
    state_dir: Path
    poll_interval: float | None
    timeout: int
    signer: publish.Signer | None
    bug_url: str
    product: str
    koji: dict[str, str]
    branches: tuple[Branch, ...]


def load_config(path: Path) -> WeeklyConfig:
    """Read and check a weekly CONFIG (YAML); every problem is reported at once."""
    data = read(path)
    source = str(path)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems = []
    for err in validator.iter_errors(data):
        where = ".".join(str(p) for p in err.absolute_path) or "(file)"
        if err.validator == "additionalProperties":
            allowed = ", ".join(sorted(err.schema.get("properties", {})))
            for extra in sorted(set(err.instance) - set(err.schema.get("properties", {}))):
                prefix = f"{where}." if err.absolute_path else ""
                problems.append(Problem(prefix + extra,
                                        f"unknown field; allowed fields: {allowed}"))
        else:
            problems.append(Problem(where, err.message))
    if problems:
        raise SpecError(source, problems)
    base = path.parent.resolve()

    def rel(p: str) -> Path:
        return (base / p) if not os.path.isabs(p) else Path(p)

    branches = []
    seen: set[str] = set()
    for i, b in enumerate(data["branches"]):
        if b["release"] in seen:
            problems.append(Problem(f"branches.{i}.release",
                                    f"{b['release']!r} is configured twice; keep one"))
        seen.add(b["release"])
        spec = rel(b["spec"])
        if not spec.is_file():
            problems.append(Problem(f"branches.{i}.spec", f"{spec} does not exist"))
        branches.append(Branch(b["release"], spec, b["target"],
                               tuple(b["arches"]) if "arches" in b else None))
    koji_cfg = dict(data["koji"])
    for key in ("config", "password_file"):
        if key in koji_cfg:
            koji_cfg[key] = str(rel(koji_cfg[key]))
            if not Path(koji_cfg[key]).is_file():
                problems.append(Problem(f"koji.{key}", f"{koji_cfg[key]} does not exist"))
    if problems:
        raise SpecError(source, problems)
    for b in branches:  # the request as the hub will check it, before anything is built
        build_args(b, "20000101.0")
    signer = publish.Signer(data["gpg_key"], rel(data["gpg_homedir"])
                            if "gpg_homedir" in data else None) if "gpg_key" in data else None
    return WeeklyConfig(
        source=path, mirror=rel(data["mirror"]), base_url=data.get("base_url"),
        keep=int(data.get("keep", 4)),
        state_dir=rel(data.get("state_dir", DEFAULT_STATE_DIR)),
        poll_interval=data.get("poll_interval"), timeout=int(data.get("timeout", 6 * 3600)),
        signer=signer, bug_url=str(data.get("bug_url", "")),
        product=str(data.get("product", "Cloud")), koji=koji_cfg,
        branches=tuple(branches))


# -- Koji -------------------------------------------------------------------------------

def connect(cfg: WeeklyConfig) -> tuple[Any, dict[str, Any]]:
    try:
        return koji_session(cfg.koji["profile"], cfg.koji.get("config"),
                            cfg.koji.get("user"), cfg.koji.get("password_file"))
    except DropError as exc:
        raise WeeklyError(f"{cfg.source}: {exc}") from exc


def build_args(branch: Branch, release: str) -> tuple[list[Any], Path | None]:
    """cloudImageBuild's (name, version, target, arches, opts) for one branch's spec, with
    the path of the kickstart/preseed to upload; checked as the hub will check it."""
    data = read(branch.spec)
    if not isinstance(data, dict):
        raise SpecError(str(branch.spec), [Problem("(file)", "a spec must be a mapping")])
    data = dict(data, release=release, scratch=True, target=branch.target)
    if branch.arches:
        data["arches"] = list(branch.arches)
    key = auto_file_key(data)
    local = None
    if data.get(key) and not data.get("ksurl"):
        local = (branch.spec.parent / data[key]).resolve()
        if not local.is_file():
            raise SpecError(str(branch.spec), [Problem(key, f"file {str(local)!r} does "
                                                       "not exist")])
        data[key] = f"{request.UPLOAD_PREFIX}/check/{local.name}"
    name, version, target, arches = (data.pop(k, None) for k in request.ARGUMENTS)
    checked, problems = request.build_request(name, version, target, arches, data)
    if problems:
        raise SpecError(str(branch.spec), problems)
    opts = {k: v for k, v in checked.items() if k not in request.ARGUMENTS}
    return [name, str(version), target, checked["arches"], opts], local


def submit(session: Any, branch: Branch, release: str) -> int:
    args, local = build_args(branch, release)
    if local is not None:
        cli_lib = importlib.import_module("koji_cli.lib")
        serverdir = cli_lib.unique_path(request.UPLOAD_PREFIX)
        session.uploadWrapper(str(local), serverdir)
        key = "preseed" if "preseed" in args[4] else "kickstart"
        args[4][key] = f"{serverdir}/{local.name}"
    return int(session.cloudImageBuild(*args))


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


# -- state ------------------------------------------------------------------------------

@contextmanager
def locked_state(state_dir: Path, release: str) -> Iterator[dict[str, Any]]:
    """The branch's run record, locked against a second job on the same branch, saved
    (atomically) on the way out, also when the run fails."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lock_path = state_dir / f"{release}.lock"
    path = state_dir / f"{release}.json"
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise WeeklyError(f"branch {release}: another weekly job is running it "
                              f"(lock {lock_path}); wait for it") from exc
        state: dict[str, Any] = {"version": 1, "runs": []}
        if path.exists():
            try:
                state = json.loads(path.read_text())
                if not isinstance(state.get("runs"), list):
                    raise ValueError("no list of runs")
            except (ValueError, AttributeError) as exc:
                raise WeeklyError(f"branch {release}: {path} is damaged ({exc}); fix or "
                                  "remove it (it records which builds ran today)") from exc
        try:
            yield state
        finally:
            save_state(path, state)


def save_state(path: Path, state: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(state, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


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
