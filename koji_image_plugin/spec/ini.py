"""Koji ``image-build --config`` INI files, read as specs, so users of Koji's built-in
command can switch without rewriting their configs (one ``[image-build]`` section)."""

from __future__ import annotations

import configparser
import re
from collections.abc import Callable
from typing import Any

from ..errors import Problem, SpecError, quote
from .arches import Arch
from .distro import auto_file_key
from .formats import from_koji_name
from .settings import syntax_problem

SECTION = "image-build"
BOOLEANS = {"true": True, "yes": True, "on": True, "1": True,
            "false": False, "no": False, "off": False, "0": False}
#: Koji's keys this project does not use (a command-line matter, or ImageFactory's)
IGNORED = {"specfile", "noverifyssl", "background", "wait", "nowait", "noprogress",
           "ova_option", "factory_parameter"}


def _split(value: str) -> list[str]:
    return [x.strip() for x in re.split(r"[,\s]+", value) if x.strip()]


def _text(value: str) -> str:
    return value.strip()


def _flag(value: str) -> bool:
    flag = value.strip().lower()
    if flag not in BOOLEANS:
        raise ValueError(f"{quote(value)} is not a yes/no value; use true or false")
    return BOOLEANS[flag]


def _gib(value: str) -> int:
    # ASCII digits only: int() also takes "1_0" and the digits of other scripts
    if not re.fullmatch(r"[0-9]{1,6}", value.strip()):
        raise ValueError(f"{quote(value)} is not a whole number of GiB")
    return int(value)


def _can_fail(value: str) -> list[str]:
    return [Arch.parse(a).value if a in ("i386", "i586") else a for a in _split(value)]


#: Koji's key -> (the spec's field, how its text becomes the field's value)
KEYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "name": ("name", _text), "version": ("version", _text), "release": ("release", _text),
    "target": ("target", _text), "install_tree": ("install_tree", _text),
    "distro": ("distro", _text), "kickstart": ("kickstart", _text),
    "ksurl": ("ksurl", _text), "ksversion": ("ksversion", _text),
    "arches": ("arches", lambda v: Arch.parse_each(list(_split(v)))),
    "can_fail": ("can_fail", _can_fail),
    "format": ("formats", lambda v: [from_koji_name(f) for f in _split(v)]),
    "repo": ("repos", _split), "variants": ("variants", _split),
    "disk_size": ("disk_size", _gib), "scratch": ("scratch", _flag),
    "skip_tag": ("skip_tag", _flag),
}


def is_koji_ini(text: str) -> bool:
    return re.search(rf"^\s*\[{SECTION}\]\s*$", text, re.M) is not None


def ini_to_dict(text: str, source: str) -> dict[str, Any]:
    """Translate a ``koji image-build --config`` file into this project's spec mapping."""
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        where, what = syntax_problem(exc)
        raise SpecError(source, [Problem(where, what)]) from None
    if not parser.has_section(SECTION):
        raise SpecError(source, [Problem(f"[{SECTION}]", "section is missing; Koji's "
                                         "image-build config has one [image-build] section")])
    problems = []
    out: dict[str, Any] = {}
    for key, value in parser.items(SECTION):
        if key in IGNORED:
            continue
        if key not in KEYS:
            problems.append(Problem(f"[{SECTION}].{key}", "unknown key; Koji's image-build "
                                    "keys are: " + ", ".join(sorted({*KEYS, *IGNORED}))))
            continue
        field, convert = KEYS[key]
        try:
            out[field] = convert(value)
        except ValueError as exc:
            problems.append(Problem(f"[{SECTION}].{key}", str(exc)))
    if problems:
        raise SpecError(source, problems)
    auto_file_key(out)
    return out
