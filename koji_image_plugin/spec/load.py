"""Reading a spec file: YAML (this project's format) or a Koji image-build INI file."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import yaml

from ..errors import Problem, SpecError
from .image import ImageSpec, from_dict
from .ini import ini_to_dict, is_koji_ini


def read(path: Path) -> Any:
    """The raw mapping of a YAML spec or a Koji image-build INI file (by its
    ``[image-build]``), not yet validated."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(source, [Problem("(file)", f"cannot read it: {exc.strerror}")]) from exc
    if is_koji_ini(text):
        return ini_to_dict(text, source)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise SpecError(source, [Problem(where, f"not valid YAML: "
                                 f"{getattr(exc, 'problem', exc)}")]) from exc


def load(path: Path, today: datetime.date | None = None) -> ImageSpec:
    """Read and check a spec file; relative file names in it are relative to it."""
    return from_dict(read(path), source=str(path), base_dir=path.parent.resolve(),
                     today=today)
