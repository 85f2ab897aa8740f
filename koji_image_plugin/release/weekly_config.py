"""The weekly job's config (YAML): the mirror, the hub, and the branches to build.
Every problem is reported at once, and each branch's spec is checked as the hub will
check its request before anything is built."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import KojiImageError, Problem, SpecError, quote
from ..koji import request
from ..spec.load import read
from ..spec.problems import collect
from ..spec.records import line
from ..spec.schema import MAX_PATH, MAX_URL
from . import publish
from .drop import BASE_URL_RE, BUG_URL_RE, PRODUCT_RE, RELEASE_RE


def _text() -> dict[str, Any]:
    """A name on one line (a profile, a target, a key id)."""
    return {**line(255), "minLength": 1}


def _path() -> dict[str, Any]:
    return {**line(MAX_PATH), "minLength": 1}


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["mirror", "koji", "branches"],
    "properties": {
        "mirror": _path(),
        "base_url": {"type": "string", "pattern": BASE_URL_RE.pattern, "maxLength": MAX_URL},
        "keep": {"type": "integer", "minimum": 1, "maximum": 1000},
        "state_dir": _path(),
        "poll_interval": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
        "timeout": {"type": "integer", "minimum": 60, "maximum": 14 * 86400},
        "gpg_key": _text(),
        "gpg_homedir": _path(),
        "bug_url": {"type": "string", "pattern": r"^\Z|" + BUG_URL_RE.pattern,
                    "maxLength": MAX_URL,
                    "description": "a web URL (http:// or https://) on one line"},
        "product": {"type": "string", "pattern": PRODUCT_RE.pattern},
        "allow_outside_files": {"type": "boolean",
                                "description": "let the specs name files outside their "
                                               "own directory (--allow-outside-files)"},
        "koji": {
            "type": "object",
            "additionalProperties": False,
            "required": ["profile"],
            "properties": {
                "profile": _text(),
                "config": _path(),
                "user": _text(),
                "password_file": _path(),
            },
        },
        "branches": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["release", "spec", "target"],
                "properties": {
                    "release": {"type": ["string", "integer"], "minimum": 1,
                                "pattern": RELEASE_RE.pattern},
                    "spec": _path(),
                    "target": _text(),
                    "arches": {"type": "array", "items": _text(), "minItems": 1,
                               "maxItems": 16},
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
    #: the config's allow_outside_files: its specs may name files outside their dir
    allow_outside: bool = False


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
    problems = collect(SCHEMA, data, plain=True)
    if problems:
        raise SpecError(source, problems)
    base = path.parent.resolve()

    def rel(p: str) -> Path:
        return (base / p) if not os.path.isabs(p) else Path(p)

    branches = []
    seen: set[str] = set()
    for i, b in enumerate(data["branches"]):
        b = dict(b, release=str(b["release"]))  # release: 12 is the branch "12"
        if b["release"] in seen:
            problems.append(Problem(f"branches.{i}.release",
                                    f"{quote(b['release'])} is configured twice; keep one"))
        seen.add(b["release"])
        spec = rel(b["spec"])
        if not spec.is_file():
            problems.append(Problem(f"branches.{i}.spec", f"{spec} is not a regular file"
                                    if spec.exists() else f"{spec} does not exist"))
        branches.append(Branch(b["release"], spec, b["target"],
                               tuple(b["arches"]) if "arches" in b else None,
                               bool(data.get("allow_outside_files", False))))
    for key in ("mirror", "state_dir", "gpg_homedir"):  # made when missing; not a file
        if key in data and rel(data[key]).exists() and not rel(data[key]).is_dir():
            problems.append(Problem(key, f"{rel(data[key])} is not a directory; give a "
                                    "directory (it is made when missing)"))
    koji_cfg = dict(data["koji"])
    for key in ("config", "password_file"):
        if key in koji_cfg:
            koji_cfg[key] = str(rel(koji_cfg[key]))
            if not Path(koji_cfg[key]).is_file():
                problems.append(Problem(f"koji.{key}", f"{koji_cfg[key]} does not exist"))
    if problems:
        raise SpecError(source, problems)
    for b in branches:  # the request as the hub will check it, before anything is built
        prepared(b, "20000101.0")
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




def prepared(branch: Branch, release: str) -> request.Prepared:
    """cloudImageBuild's request for one branch's spec, as the hub will check it, with
    the kickstart/preseed to upload."""
    data = read(branch.spec)
    if not isinstance(data, dict):
        raise SpecError(str(branch.spec), [Problem("(file)", "a spec must be a mapping")])
    data = dict(data, release=release, scratch=True, target=branch.target)
    if branch.arches:
        data["arches"] = list(branch.arches)
    ready, problems = request.prepare(data, branch.spec.parent,
                                      allow_outside=branch.allow_outside,
                                      consent="set allow_outside_files: true in the "
                                              "weekly config")
    if ready is None:
        raise SpecError(str(branch.spec), problems)
    return ready
