"""Settings declared once: each key of an INI section with its type, range, default and
help, as mkosi's ``ConfigSetting`` does. The one table drives the parsing, the checks,
the README's table and the example config files; a key or section it does not declare
is an error, never silence.
"""

from __future__ import annotations

import ast
import configparser
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import has_control, quote
from .urls import masked, parse_url

#: a value in a host config, at most (the longest real one is a URL)
MAX_VALUE = 4096


@dataclass(frozen=True)
class Setting:
    key: str
    #: the field of the section's typed object that the value goes to
    attr: str
    #: text | url | int | choice | bool | words | path | pairs
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    #: an extra rule on the parsed value: None when it holds, else what to do
    check: Callable[[Any], str | None] | None = None
    #: how the default reads in docs when it is not a plain value
    default_doc: str | None = None
    #: an example value for the example config (commented out there)
    example: str | None = None

    def parse(self, text: str) -> Any:
        """The value of ``text``; ValueError with the fix when it is not one. An empty
        value of a key without a default leaves it unset."""
        if not text.strip() and self.default is None:
            return None
        text = text.strip()
        # words and pairs may go on over indented lines; nothing else has a line break
        spread = self.kind in ("words", "pairs")  # white space between the items
        if has_control(re.sub(r"[\n\t]", " ", text) if spread else text):
            raise ValueError("use one line of text without control characters")
        if len(text) > MAX_VALUE:
            raise ValueError(f"use at most {MAX_VALUE} characters")
        value = _KINDS[self.kind](self, text)
        if self.check is not None:
            hint = self.check(value)
            if hint:
                raise ValueError(hint)
        return value

    def doc_default(self) -> str:
        if self.default_doc is not None:
            return self.default_doc
        if self.default in (None, "", (), {}):
            return "(none)"
        if isinstance(self.default, bool):
            return "yes" if self.default else "no"
        if isinstance(self.default, tuple):
            return " ".join(self.default)
        return str(self.default)

    def doc_type(self, markdown: bool = False) -> str:
        if self.kind == "choice":
            return (" \\| " if markdown else " | ").join(c or '""' for c in self.choices)
        if self.kind == "int":
            if self.high is None:
                return f"integer >= {self.low}"
            return f"integer {self.low}-{self.high}"
        return {"text": "text", "url": "URL", "bool": "yes/no", "words": "words",
                "path": "absolute path", "pairs": "KEY=VALUE ..."}[self.kind]


def _text(s: Setting, text: str) -> str:
    return text


def _url(s: Setting, text: str) -> str:
    if masked(text) != text:
        raise ValueError("give the URL without a password: credentials are not kept in "
                         "this file (boto3 and openstacksdk read their own)")
    url = parse_url(text)
    if url is None or url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError("use an http:// or https:// URL with a host")
    return text


def _int(s: Setting, text: str) -> int:
    # plain ASCII digits: int() would also take "1_0" and other scripts' digits
    value = int(text) if re.fullmatch(r"[-+]?[0-9]{1,18}", text) else None
    low = s.low if s.low is not None else 0
    if value is None or value < low or (s.high is not None and value > s.high):
        raise ValueError(f"use a whole number of at least {low}" if s.high is None
                         else f"use a whole number from {low} to {s.high}")
    return value


def _choice(s: Setting, text: str) -> str:
    if text in ('""', "''") and "" in s.choices:  # empty, written as the docs show it
        return ""
    if text not in s.choices:
        raise ValueError(f"use one of {', '.join(c or '(empty)' for c in s.choices)}")
    return text


def _bool(s: Setting, text: str) -> bool:
    states = configparser.ConfigParser.BOOLEAN_STATES
    if text.lower() not in states:
        raise ValueError("use yes or no")
    return states[text.lower()]


def _words(s: Setting, text: str) -> tuple[str, ...]:
    return tuple(text.replace(",", " ").split())


def _path(s: Setting, text: str) -> Path:
    if not text.startswith("/"):
        raise ValueError("use an absolute path")
    return Path(text)


def _pairs(s: Setting, text: str) -> dict[str, str]:
    out = {}
    for item in text.split():
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"{quote(item)} is not KEY=VALUE")
        if s.high is not None and len(value) > s.high:
            raise ValueError(f"{key}: the value is longer than {s.high} characters")
        out[key] = value
    return out


_KINDS: dict[str, Callable[[Setting, str], Any]] = {
    "text": _text, "url": _url, "int": _int, "choice": _choice, "bool": _bool,
    "words": _words, "path": _path, "pairs": _pairs}


@dataclass(frozen=True)
class Section:
    """One INI section and its settings. ``name`` may end in ``:*`` for a family of
    sections named by the user (``glance:openstack-prod``)."""

    name: str
    help: str
    settings: tuple[Setting, ...]
    #: rules across the section's values: each returns problems (``key...: fix``)
    rules: tuple[Callable[[Mapping[str, Any]], list[str]], ...] = ()
    #: a cloud section: its problems stop uploads there, not builds
    cloud: bool = False
    title: str = field(default="")

    def matches(self, name: str) -> bool:
        if self.name.endswith(":*"):
            prefix = self.name[:-1]
            return name.startswith(prefix) and re.fullmatch(
                r"[A-Za-z0-9][A-Za-z0-9._-]*", name[len(prefix):]) is not None
        return name == self.name

    @property
    def shown(self) -> str:
        return self.title or self.name

    def setting(self, key: str) -> Setting | None:
        return next((s for s in self.settings if s.key == key), None)

    def defaults(self) -> dict[str, Any]:
        return {s.attr: s.default for s in self.settings}


@dataclass
class Parsed:
    """A config file read against the table: each section's values by attribute, and
    every problem found, one line each."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (the section's name in the file, or None for the file as a whole; the problem)
    problems: list[tuple[str | None, str]] = field(default_factory=list)

    def problems_of(self, owns: Callable[[str], bool]) -> list[str]:
        """The problems of the sections ``owns`` names, and those of the whole file."""
        return [p for name, p in self.problems if name is None or owns(name)]


def parse(text: str, sections: Iterable[Section], source: str) -> Parsed:
    """Every section of ``text`` read with the table; nothing unknown passes."""
    table = list(sections)
    out = Parsed()
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"),
                                       interpolation=None, default_section="\0none")
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        where, what = syntax_problem(exc)
        out.problems.append((None, f"{where}: {what}"))
        return out
    for name in parser.sections():
        section = next((s for s in table if s.matches(name)), None)
        if section is None:
            known = ", ".join(s.shown for s in table)
            out.problems.append((None, f"[{name}]: unknown section; the sections are: "
                                 f"{known}"))
            continue
        values = section.defaults()
        for key, text_value in parser.items(name):
            setting = section.setting(key)
            if setting is None:
                keys = ", ".join(s.key for s in section.settings)
                out.problems.append((name, f"[{name}] {key}: unknown key; the keys of "
                                     f"[{section.shown}] are: {keys}"))
                continue
            try:
                values[setting.attr] = setting.parse(text_value)
            except ValueError as exc:
                out.problems.append((name, f"[{name}] {key} = {quote(masked(text_value.strip()))}: "
                                     f"{exc}"))
        for rule in section.rules:
            out.problems += [(name, f"[{name}] {p}") for p in rule(values)]
        out.values[name] = values
    return out


def syntax_problem(exc: configparser.Error) -> tuple[str, str]:
    """Where an INI file cannot be parsed ("line N") and what to do, in one line:
    configparser's own text names the file and puts the line on a line of its own."""
    lineno = getattr(exc, "lineno", None)
    where = f"line {lineno}" if lineno else "(file)"
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return where, "no [section] header before it; start the file with one"
    if isinstance(exc, configparser.ParsingError) and exc.errors:
        lineno, shown = exc.errors[0]  # configparser gives the line as its repr()
        try:
            text = str(ast.literal_eval(shown))
        except (ValueError, SyntaxError):
            text = str(shown)
        return (f"line {lineno}", f"{quote(text.strip())} is not a 'key = value' line; "
                "write key = value, or start a comment with ; or #")
    if isinstance(exc, configparser.DuplicateOptionError):
        return where, f"{quote(exc.option)} is given twice in [{exc.section}]; keep one"
    if isinstance(exc, configparser.DuplicateSectionError):
        return where, f"section [{exc.section}] is given twice; keep one"
    return where, _one_line(str(exc))


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def json_properties(settings: Iterable[Setting]) -> dict[str, Any]:
    """The settings as JSON Schema properties, for the same values given as a mapping."""
    out: dict[str, Any] = {}
    for s in settings:
        prop: dict[str, Any]
        if s.kind == "int":
            prop = {"type": "integer", "minimum": s.low if s.low is not None else 0}
            if s.high is not None:
                prop["maximum"] = s.high
        elif s.kind == "choice":
            prop = {"enum": list(s.choices)}
        elif s.kind == "bool":
            prop = {"type": "boolean"}
        elif s.kind == "pairs":
            value: dict[str, Any] = {"type": "string"}
            if s.high is not None:
                value["maxLength"] = s.high
            prop = {"type": "object", "additionalProperties": value}
        elif s.kind == "words":
            prop = {"type": "array", "items": {"type": "string"}}
        else:
            prop = {"type": "string", "minLength": 1}
        out[s.attr] = prop
    return out


def markdown_table(sections: Iterable[Section]) -> str:
    """The settings as the README shows them."""
    rows = ["| section | key | type | default | meaning |", "|---|---|---|---|---|"]
    for section in sections:
        for s in section.settings:
            rows.append(f"| `[{section.shown}]` | `{s.key}` | {s.doc_type(markdown=True)} | "
                        f"{s.doc_default()} | {s.help} |")
    return "\n".join(rows) + "\n"


def example(sections: Iterable[Section], header: str) -> str:
    """An example config: every section and key with its help; defaults are commented
    out, so the file changes nothing until a line is edited."""
    lines = [f"# {ln}" if ln else "#" for ln in header.strip().splitlines()]
    for section in sections:
        lines += ["", *_comment(section.help)]
        prefix = "#" if section.cloud else ""
        lines.append(f"{prefix}[{section.shown}]")
        for s in section.settings:
            about = f"{s.help} ({s.doc_type()})"
            if s.default is None and s.default_doc:
                about += f"; unset: {s.default_doc}"
            lines += _comment(about)
            value = s.example if s.example is not None else s.doc_default()
            value = "" if value == "(none)" or (s.default is None and s.default_doc) else value
            lines.append(f"#{s.key} = {value}".rstrip())
    return "\n".join(lines) + "\n"


def _comment(text: str) -> list[str]:
    return [f"# {ln}" for ln in textwrap.wrap(text, 86, break_on_hyphens=False)]
