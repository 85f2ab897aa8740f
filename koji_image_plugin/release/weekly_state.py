"""The weekly job's record of each branch's runs (``STATE_DIR/BRANCH.json``), locked
against a second job on the same branch, saved atomically."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..files import atomic_write
from .weekly_config import WeeklyError


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
    atomic_write(path, json.dumps(state, indent=2) + "\n", mode=0o600)

