"""The weekly job's record of each branch's runs (``STATE_DIR/BRANCH.json``), locked
against a second job on the same branch, saved atomically."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import RecordError
from ..files import atomic_write
from ..spec import records
from .drop import SAFE_NAME
from .weekly_config import WeeklyError

#: one run of a branch: what the next run of the day reads back
RUN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["day", "n", "release", "task_id", "status"],
    "properties": {
        "day": {"type": "string", "pattern": r"^[0-9]{8}\Z"},
        "n": {"type": "integer", "minimum": 0, "maximum": 9999},
        "release": {"type": "string", "pattern": SAFE_NAME.pattern, "maxLength": 64},
        "task_id": {"type": "integer", "minimum": 1},
        "status": {"enum": ["submitted", "published", "failed"]},
        "drop": {"type": "string", "pattern": r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*\Z",
                 "not": {"pattern": r"(^|/)\.\.(/|\Z)"}, "maxLength": 255},
    },
    "if": {"properties": {"status": {"const": "published"}}},
    "then": {"required": ["drop"]},
}
STATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["runs"],
    "properties": {"version": {"type": "integer"},
                   "runs": {"type": "array", "items": RUN_SCHEMA, "maxItems": 100000}},
}


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
                state = records.read(path, STATE_SCHEMA, "fix or remove it (it records "
                                     "which builds ran today)")
            except RecordError as exc:
                raise WeeklyError(f"branch {release}: {exc}") from exc
        try:
            yield state
        finally:
            save_state(path, state)


def save_state(path: Path, state: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(state, indent=2) + "\n", mode=0o600)

