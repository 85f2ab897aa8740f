"""A guest's serial console as text people (and the diagnosis) can read."""

from __future__ import annotations

import re


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def clean_console(raw: bytes) -> str:
    """Serial output as text, without terminal escape sequences and carriage returns."""
    text = raw.decode("utf-8", "replace")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    return text.replace("\r", "")
