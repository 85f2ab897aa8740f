"""Records read back from disk (a build's manifest.json, uploads.json, a drop's
drop.json, the weekly job's state), each checked against its JSON Schema before anything
acts on it: a damaged or hand-made record is refused in one line naming the file and the
field, never half used."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import CONTROL, RecordError, quote
from ..files import read_regular
from .problems import collect

#: records are small; a bigger one is not ours
MAX_BYTES = 64 << 20
SHA256 = {"type": "string", "pattern": r"^[0-9a-f]{64}\Z"}


def line(max_length: int) -> dict[str, Any]:
    """A one-line text field: no control characters (they would break a page, a feed or
    a CHECKSUM line), at most ``max_length`` characters."""
    return {"type": "string", "pattern": f"^[^{CONTROL}]*\\Z", "maxLength": max_length,
            "description": "must be one line without control characters"}


def read(path: Path, schema: Mapping[str, Any], fix: str) -> dict[str, Any]:
    """The record at ``path``, checked against ``schema``; ``fix`` says what to do about a
    damaged one (it ends the one-line RecordError)."""
    try:
        data = read_regular(path, MAX_BYTES)
    except OSError as exc:
        raise RecordError(f"{path}: cannot read it: {exc.strerror}; {fix}") from exc
    if len(data) > MAX_BYTES:
        raise RecordError(f"{path} is damaged: over {MAX_BYTES >> 20} MiB, not a record of "
                          f"ours; {fix}")
    try:
        record = json.loads(data.decode("utf-8"), object_pairs_hook=_unique)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise RecordError(f"{path} is damaged: not valid JSON ({reason}); {fix}") from None
    check(record, schema, str(path), fix)
    return dict(record)


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused when it gives a key twice (json would keep the last)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {quote(key)} is given twice in one object")
        out[key] = value
    return out


def check(record: Any, schema: Mapping[str, Any], where: str, fix: str) -> None:
    problems = collect(schema, record, plain=True)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RecordError(f"{where} is damaged: {problems[0]}{more}; {fix}")
