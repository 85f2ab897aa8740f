"""The conversion stage: every output of a base disk written at once.

All jobs start together. qemu-img compresses on its own thread pool with out-of-order
writes; xz jobs share the cores: as many run at once as there are groups of
``XZ_CORES_PER_JOB`` cores, each with an equal share as threads (threaded xz scales well
up to that many threads on a disk image, while more jobs than that side by side only
add switching and cache misses: on 2 cores, two xz jobs at once cost 6% more CPU than
one after the other). So the stage keeps every core busy and scales with the core count.
``bench/convert`` measures it against the sequential way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import resource
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checksums import Digest
from ..runner import Runner
from ..spec.formats import ImageFormat
from .formats import ConvertOptions, writer


@dataclass(frozen=True)
class Job:
    raw: Path
    dest: Path
    fmt: ImageFormat
    log_name: str


@dataclass(frozen=True)
class Done:
    job: Job
    digest: Digest
    seconds: float


@dataclass(frozen=True)
class StageStats:
    wall: float
    cpu: float


def run_concurrently(runner: Runner, calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run calls at once; on the first failure cancel the others and re-raise it."""
    with ThreadPoolExecutor(max_workers=max(1, len(calls))) as pool:
        futs: list[Future[Any]] = [pool.submit(fn) for fn in calls]
        try:
            finished, _ = wait(futs, return_when=FIRST_EXCEPTION)
            for fut in futs:
                exc = fut.exception() if fut in finished else None
                if exc is not None:
                    raise exc
        except BaseException:
            runner.cancel()
            wait(futs)
            raise
        return [f.result() for f in futs]


def convert_all(jobs: Sequence[Job], opts: ConvertOptions, runner: Runner,
                on_done: Callable[[Done], None] | None = None
                ) -> tuple[list[Done], StageStats]:
    """Write every job's output concurrently; return results in job order and the
    stage's wall and CPU seconds (CPU of the tools, from their rusage)."""
    lock = threading.Lock()
    xz_jobs = sum(1 for j in jobs if j.fmt.uses_xz) or 1
    xz_at_once = max(1, min(xz_jobs, cores() // XZ_CORES_PER_JOB))
    if opts.xz_threads == 0:
        opts = dataclasses.replace(opts, xz_threads=max(1, cores() // xz_at_once))
    xz_slots = threading.BoundedSemaphore(xz_at_once)

    def one(job: Job) -> Done:
        t0 = time.monotonic()
        with xz_slots if job.fmt.uses_xz else contextlib.nullcontext():
            digest = writer(job.fmt).write(job.raw, job.dest, opts, runner, job.log_name)
        done = Done(job, digest, time.monotonic() - t0)
        if on_done:
            with lock:
                on_done(done)
        return done

    for fmt in {j.fmt for j in jobs}:  # refuse bad options before any job starts
        writer(fmt).check(opts)
    cpu0, t0 = children_cpu(), time.monotonic()
    results = run_concurrently(runner, [functools.partial(one, j) for j in jobs])
    return results, StageStats(time.monotonic() - t0, children_cpu() - cpu0)


#: Cores per concurrent xz job (see the module docstring).
XZ_CORES_PER_JOB = 8


def cores() -> int:
    """CPUs this process may run on (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0))


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime
