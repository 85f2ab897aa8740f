"""Reading a spec file: YAML (this project's format) or a Koji image-build INI file.

What is read is bounded before it is parsed: at most MAX_BYTES of UTF-8 text, YAML with
at most MAX_ALIASES aliases (an alias bomb expands to gigabytes) nested at most
MAX_DEPTH deep (deeper would exhaust the parser's recursion), read with libyaml's C
loader where the system has it. Each refusal is one line naming the file.

The loader is strict where YAML 1.1 would quietly misread a value: a number in another
notation (``012`` is 10, ``1:30`` is 90, ``0x13``, ``1_000``, ``1e5``, ``.nan``) is
refused with "quote it", a date stays the text it was, and a key given twice in one
mapping is refused (YAML would keep the last, silently).
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import Problem, SpecError, quote
from ..files import read_regular
from .image import ImageSpec, from_dict
from .ini import SECTION, ini_to_dict, is_koji_ini

MAX_BYTES = 1 << 20
MAX_ALIASES = 100
MAX_DEPTH = 64
LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLAIN_INT = re.compile(r"[-+]?(0|[1-9][0-9]{0,17})\Z")
_PLAIN_FLOAT = re.compile(r"[-+]?(0|[1-9][0-9]{0,17})\.[0-9]{1,18}\Z")


class StrictLoader(LOADER):  # type: ignore[misc]
    """The safe loader with the strict scalars of the module docstring."""


def _keys_once(root: Any) -> None:
    """Refuse a key given twice in one mapping, as written: checked on the composed
    nodes, before merges (``<<``) are flattened into them."""
    todo, seen_nodes = [root], set()
    while todo:
        node = todo.pop()
        if id(node) in seen_nodes:  # an alias: the same node again
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[tuple[str, str]] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if (key.tag, key.value) in keys:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"{quote(key.value)} is given twice in one "
                            "mapping; keep one", key.start_mark)
                    keys.add((key.tag, key.value))
                todo += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value


def _number(pattern: re.Pattern[str], kind: type) -> Any:
    def construct(loader: Any, node: Any) -> Any:
        text = loader.construct_scalar(node)
        if re.fullmatch(r"[-+]?[0-9]{19,}", text):
            raise yaml.constructor.ConstructorError(
                None, None, f"{quote(text)} has more digits than any field takes",
                node.start_mark)
        if not pattern.match(text):
            raise yaml.constructor.ConstructorError(
                None, None, f"{quote(text)} is a number in a notation YAML reads "
                "differently than it looks; quote it, or write plain digits", node.start_mark)
        return kind(text)
    return construct


def _bool(loader: Any, node: Any) -> bool:
    text = loader.construct_scalar(node)
    value = loader.bool_values.get(text.lower())  # PyYAML's own table: yes, on, true...
    if value is None:
        raise yaml.constructor.ConstructorError(None, None, f"{quote(text)} is not true or "
                                                "false", node.start_mark)
    return bool(value)


StrictLoader.add_constructor("tag:yaml.org,2002:int", _number(_PLAIN_INT, int))
StrictLoader.add_constructor("tag:yaml.org,2002:float", _number(_PLAIN_FLOAT, float))
StrictLoader.add_constructor("tag:yaml.org,2002:bool", _bool)
StrictLoader.add_constructor("tag:yaml.org,2002:timestamp",
                             lambda loader, node: loader.construct_scalar(node))
#: an INI section header as a file's first line (``[something]``, no spaces or commas)
_INI_HEADER = re.compile(r"^\s*\[[A-Za-z0-9_.:-]+\]\s*$")


def read_text(path: Path, what: str = "a spec") -> str:
    """The file's text: refused when it cannot be read, is too big or is not UTF-8."""
    source = str(path)
    try:
        data = read_regular(path, MAX_BYTES)
    except OSError as exc:
        raise SpecError(source, [Problem("(file)", f"cannot read it: {exc.strerror}")]) from exc
    if len(data) > MAX_BYTES:
        raise SpecError(source, [Problem("(file)", f"is over {MAX_BYTES >> 20} MiB; {what} "
                                         "is a small text file")])
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # an editor's byte order mark
    except UnicodeDecodeError as exc:
        raise SpecError(source, [Problem("(file)", f"is not UTF-8 text (byte {exc.start}); "
                                         f"give {what} in YAML")]) from None


def read(path: Path) -> Any:
    """The raw mapping of a YAML spec or a Koji image-build INI file (by its
    ``[image-build]``), not yet validated."""
    source = str(path)
    text = read_text(path)
    if is_koji_ini(text):
        return ini_to_dict(text, source)
    first = next((ln for ln in text.splitlines() if ln.strip() and not
                  ln.lstrip().startswith(("#", ";"))), "")
    if _INI_HEADER.match(first):
        raise SpecError(source, [Problem(f"[{SECTION}]", "section is missing: this is an INI "
                                         f"file, and Koji's image-build config has one "
                                         f"[{SECTION}] section")])
    return load_yaml(text, source)


def load_yaml(text: str, source: str) -> Any:
    """YAML, bounded (see the module docstring); one SpecError line when it is not."""
    try:
        _check_shape(text, source)
        loader = StrictLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _keys_once(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        detail = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(source, [Problem(where, f"not valid YAML: {detail}")]) from None
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
        # a value a YAML tag cannot build (``!!binary`` of bad base64, ...)
        raise SpecError(source, [Problem("(file)", "not valid YAML: a value cannot be "
                                         f"read ({type(exc).__name__})")]) from None


def _check_shape(text: str, source: str) -> None:
    aliases = depth = 0
    for event in yaml.parse(text, Loader=LOADER):
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise SpecError(source, [Problem("(file)", f"uses over {MAX_ALIASES} YAML "
                                                 "aliases; write the values out")])
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError(source, [Problem("(file)", f"nests deeper than {MAX_DEPTH} "
                                                 "levels; a spec is a few levels deep")])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def load(path: Path, today: datetime.date | None = None,
         allow_outside: bool = False) -> ImageSpec:
    """Read and check a spec file; relative file names in it are relative to it, and the
    files it names must be inside its directory unless ``allow_outside``."""
    return from_dict(read(path), source=str(path), base_dir=path.parent.resolve(),
                     today=today, allow_outside=allow_outside)
