"""A hub build request: ``cloudImageBuild``'s arguments checked with the spec's own schema.

The hub plugin and the CLI plugin both call :func:`build_request`, so a bad request fails
on the user's machine in well under a second with the same messages the hub would send.
On top of the spec's rules a hub build adds what a shared service must refuse: paths on
the builder (``file://`` trees, absolute kickstart paths) and URLs that are not SCM URLs.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Problem, quote
from ..spec import kickstart
from ..spec.arches import Arch
from ..spec.distro import AUTO_KEYS, Family, auto_file_key
from ..spec.image import CONSENT, check, file_problem, install_file_problems
from ..spec.urls import HUB, shape_problem

#: Where the CLI uploads a kickstart or preseed in the hub's work dir
#: (``koji_cli.lib.unique_path(UPLOAD_PREFIX)/FILE``); the builder fetches it from there.
UPLOAD_PREFIX = "cli-cloud-image"
UPLOAD_RE = re.compile(rf"^{UPLOAD_PREFIX}/[A-Za-z0-9_-][A-Za-z0-9._-]*/"
                       r"[A-Za-z0-9_+-][A-Za-z0-9._+-]*\Z")
#: koji.daemon.SCM.types, flattened (a test checks they agree).
SCM_SCHEMES = ("cvs://", "cvs+ssh://", "git://", "git+http://", "git+https://",
               "git+rsync://", "git+ssh://", "svn://", "svn+http://", "svn+https://",
               "svn+ssh://")
#: The arguments of cloudImageBuild; opts must not repeat them.
ARGUMENTS = ("name", "version", "target", "arches")


def split_arches(arches: Any) -> tuple[list[Any], list[Problem]]:
    """Koji's arch list forms (a list, or a space/comma separated string), with Koji's
    spellings (i386, i586) mapped to this project's (i686)."""
    if isinstance(arches, str):
        items: list[Any] = [a for a in re.split(r"[\s,]+", arches) if a]
    elif isinstance(arches, (list, tuple)):
        items = list(arches)
    else:
        return [], [Problem("arches", f"must be a list of arches, not "
                            f"{type(arches).__name__}")]
    return Arch.parse_each(items), []


def build_request(name: Any, version: Any, target: Any, arches: Any,
                  opts: Any = None) -> tuple[dict[str, Any], list[Problem]]:
    """The request as one spec mapping, and every problem with it."""
    problems: list[Problem] = []
    if opts is None:
        opts = {}
    if not isinstance(opts, Mapping):
        problems.append(Problem("opts", "must be a mapping of spec fields to values, not "
                                f"{type(opts).__name__}"))
        opts = {}
    for key in ARGUMENTS:
        if key in opts:
            problems.append(Problem(f"opts.{key}", "is an argument of cloudImageBuild; "
                                    "give it there, not in opts"))
    arch_list, arch_problems = split_arches(arches)
    problems += arch_problems
    data = {k: v for k, v in opts.items() if k not in ARGUMENTS}
    data.update(name=name, version=version, target=target, arches=arch_list)
    for key in ("version", "release"):  # Koji's NVR fields are strings
        if isinstance(data.get(key), int) and not isinstance(data[key], bool):
            data[key] = str(data[key])
    if isinstance(data.get("can_fail"), (str, list)):
        data["can_fail"] = split_arches(data["can_fail"])[0]
    if arch_problems:
        data.pop("arches")
    checked = check_request(data)
    if arch_problems:  # the schema would only add "arches: is required"
        checked = [p for p in checked if p.field != "arches"]
    problems += checked
    return data, sorted(set(problems), key=lambda p: (p.field, p.message))


def check_request(data: Mapping[str, Any]) -> list[Problem]:
    """The spec's problems plus the hub's own rules."""
    problems = check(data, base_dir=None, edge=HUB)
    if "target" not in data:
        problems.append(Problem("target", "must name a Koji build target"))
    ksurl = data.get("ksurl")
    if isinstance(ksurl, str):
        why = shape_problem(ksurl)
        if why is None and not ksurl.startswith(SCM_SCHEMES):
            why = f"{quote(ksurl)} is not an SCM URL; use one of " + ", ".join(SCM_SCHEMES)
        problems += [Problem("ksurl", why)] if why else []
    for key in AUTO_KEYS:
        value = data.get(key)
        if not isinstance(value, str):
            continue
        if ksurl is not None:
            parts = value.split("/")
            if value.startswith("/") or ".." in parts:
                problems.append(Problem(key, f"{quote(value)} must be a path inside the ksurl "
                                        "checkout, without '..' or a leading '/'"))
        elif not UPLOAD_RE.match(value):
            problems.append(Problem(key, f"{quote(value)} is not an uploaded file; give "
                                    f"--{key} "
                                    "FILE to the CLI (it uploads it) or a ksurl"))
    return problems



@dataclass
class Prepared:
    """A request checked as the hub will check it, with the local kickstart or preseed
    that goes up with it (``koji cloud-image-build`` and the weekly job submit these)."""

    name: str
    version: str
    target: str
    arches: list[str]
    opts: dict[str, Any]
    #: the file to upload, where the request names one on this machine
    local: Path | None

    def submit(self, session: Any, serverdir: str, *, priority: int | None = None,
               callback: Callable[..., None] | None = None) -> int:
        """Upload the file (into the hub's ``work/SERVERDIR``), then queue the build. A
        kickstart's ``%include`` files go up in it: one file is uploaded, so it is the
        flattened kickstart (the builder refuses an include it cannot find)."""
        if self.local is not None:
            key = auto_file_key(self.opts)
            with tempfile.TemporaryDirectory(prefix="koji-cloud-image-") as tmp:
                path = self.local
                if key == Family.FEDORA.auto_key:
                    flat = kickstart.flatten(self.local)
                    if flat.included:
                        path = Path(tmp) / self.local.name
                        path.write_text(flat.text, encoding="utf-8")
                session.uploadWrapper(str(path), serverdir, callback=callback)
            self.opts[key] = f"{serverdir}/{self.local.name}"
        return int(session.cloudImageBuild(self.name, self.version, self.target,
                                           self.arches, self.opts, priority=priority))


def prepare(data: Mapping[str, Any], base_dir: Path, *, allow_outside: bool = False,
            consent: str = CONSENT) -> tuple[Prepared | None, list[Problem]]:
    """A spec mapping as a hub request, its install file relative to ``base_dir``; or
    every problem with it (the file missing, or outside ``base_dir`` unless
    ``allow_outside``, among them), before anything is uploaded."""
    data = dict(data)
    key = auto_file_key(data)
    local = None
    problems = []
    if isinstance(data.get(key), str) and data[key] and not data.get("ksurl"):
        local = base_dir / data[key]
        why = file_problem(base_dir, data[key], allow_outside, consent)
        problems += [Problem(key, why)] if why else []
        if not why:  # read as the builder will
            problems += install_file_problems(local, key, data)
        # checked as the hub will see it: a file this upload puts there
        data[key] = f"{UPLOAD_PREFIX}/check/{local.name}"
    name, version, target, arches = (data.pop(k, None) for k in ARGUMENTS)
    checked, more = build_request(name, version, target, arches, data)
    problems += more
    if problems:
        return None, problems
    opts = {k: v for k, v in checked.items() if k not in ARGUMENTS}
    return Prepared(name, str(version), target, checked["arches"], opts, local), []
