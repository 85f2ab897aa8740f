"""The one collector of problems: a mapping checked against a JSON Schema, every problem
at once, each a :class:`Problem` naming its field and what is allowed there.

Every edge uses it: the image spec, the hub's request options, an upload request, a
Glance target, the weekly job's config. ``plain`` keeps jsonschema's own wording with
dotted paths (the weekly config's messages have always read that way).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import jsonschema

from ..errors import Problem, quote

TOP = "(top level)"
#: a message longer than this quotes its value only in part
MAX_MESSAGE = 200
#: problems collected of one input at most
MAX_PROBLEMS = 100


#: JSON Schema 2020-12, where an integer is an int: the standard's "integer" takes 4.0,
#: which the code would then slice or format as a float
_VALIDATOR: Any = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int)
        and not isinstance(value, bool)))


def collect(schema: Mapping[str, Any], data: Any, *, prefix: str = "",
            plain: bool = False) -> list[Problem]:
    """Every problem of ``data`` against ``schema``; fields are named under ``prefix``."""
    validator = _VALIDATOR(schema)
    problems: list[Problem] = []
    for err in validator.iter_errors(data):
        problems += _plain(err) if plain else explain(err)
        if len(problems) >= MAX_PROBLEMS:  # more than anyone reads; see errors.listed
            break
    if not prefix:
        return problems
    return [Problem(f"{prefix}.{p.field}" if p.field != TOP else prefix, p.message)
            for p in problems]


def where(path: Sequence[Any]) -> str:
    """A schema path as people write it: ``branches[0].release``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or TOP


def explain(err: jsonschema.ValidationError) -> list[Problem]:
    """The problems behind one schema error (an unknown-fields error names several)."""
    if err.validator == "additionalProperties":
        return _unknown(err, f"{where(err.absolute_path)}." if err.absolute_path else "")
    return [_explain_one(err)]


def _unknown(err: jsonschema.ValidationError, prefix: str) -> list[Problem]:
    schema = err.schema if isinstance(err.schema, dict) else {}
    known = schema.get("properties", {})
    allowed = ", ".join(sorted(known))
    instance: Any = err.instance
    unknown = [prefix + _field(x) for x in sorted(set(instance) - set(known), key=str)]
    # the allowed fields once: ten thousand unknown keys must not repeat them each time
    return [Problem(field, f"unknown field; allowed fields: {allowed}" if i == 0 else
                    f"unknown field (the allowed fields are listed at {unknown[0]})")
            for i, field in enumerate(unknown)]


def _field(name: object) -> str:
    """A field name as a message names it: a strange one quoted (and cut)."""
    text = str(name)
    return text if text.isidentifier() and len(text) <= 40 else quote(name, 40)


def _shown(pattern: str) -> str:
    """A pattern as a message shows it: ``\\Z`` (end of text, not before a newline as
    ``$`` is) written as the familiar ``$``."""
    return pattern.replace("\\Z", "$")


def _plain(err: jsonschema.ValidationError) -> list[Problem]:
    path = ".".join(str(p) for p in err.absolute_path)
    if err.validator == "additionalProperties":
        return _unknown(err, f"{path}." if path else "")
    message = err.message
    if err.validator == "pattern":
        hint = err.schema.get("description") if isinstance(err.schema, dict) else None
        message = f"{quote(err.instance)} " + (
            f"is not valid: {hint}" if hint else
            f"does not match {_shown(str(err.validator_value))!r}")
    if len(message) > MAX_MESSAGE:  # jsonschema quotes the whole value
        message = f"{quote(err.instance)} is not valid ({err.validator} " \
                  f"{quote(err.validator_value)})"
    return [Problem(path or "(file)", message)]


def _explain_one(err: jsonschema.ValidationError) -> Problem:
    at = where(err.absolute_path)
    schema = err.schema if isinstance(err.schema, dict) else {}
    v = err.validator
    value: Any = err.validator_value
    if v == "required":
        missing = re.findall(r"'([^']+)' is a required property", err.message)
        name = missing[0] if missing else err.message
        return Problem(f"{at}.{name}" if err.absolute_path else name,
                       "is required; add it to the spec")
    if v == "enum":
        return Problem(at, f"{quote(err.instance)} is not allowed; use one of: "
                       + ", ".join(str(x) for x in value))
    if v == "propertyNames":
        return Problem(at, f"{quote(err.instance)} has an unknown key; keys must be one of: "
                       + ", ".join(str(x) for x in value.get("enum", [])))
    if v == "pattern":
        hint = schema.get("description", f"must match {_shown(value)}")
        return Problem(at, f"{quote(err.instance)} is not valid: {hint}")
    if v == "type":
        want = " or ".join(value) if isinstance(value, list) else value
        if isinstance(err.instance, float) and "string" in str(want):
            return Problem(at, f"{quote(err.instance)} was read as a number; quote it, "
                           f"e.g. '{err.instance}'")
        return Problem(at, f"must be of type {want}, not {type(err.instance).__name__}")
    if v in ("minimum", "maximum"):
        return Problem(at, f"{err.instance} is out of range: "
                       f"{'at least' if v == 'minimum' else 'at most'} {value}")
    if v == "minItems":
        return Problem(at, "must list at least one item")
    if v == "uniqueItems":
        return Problem(at, "lists an item twice; list each once")
    if v == "minLength":
        return Problem(at, "must not be empty")
    instance: Any = err.instance
    if v == "maxLength":
        return Problem(at, f"is {len(instance)} characters long; at most {value}")
    if v in ("maxItems", "maxProperties"):
        return Problem(at, f"has {len(instance)} entries; at most {value}")
    if len(err.message) > MAX_MESSAGE:
        return Problem(at, f"{quote(err.instance)} is not valid ({v} {quote(value)})")
    return Problem(at, err.message)
