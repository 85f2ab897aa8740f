"""Typed errors. Every message is one line that names what is wrong and how to fix it."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: characters no one-line field may hold and no terminal gets raw: C0 and C1 controls,
#: DEL, and the bidi overrides and isolates that reorder what a line shows
CONTROL = r"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[{CONTROL}]")


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def printable(text: str) -> str:
    """``text`` with each :data:`CONTROL` character written as its escape (``\\n``,
    ``\\x1b``, ``\\u202e``): one line on a terminal, showing what it holds."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def quote(value: object, limit: int = 80) -> str:
    """A value the user gave, as a message shows it: escaped (repr), and cut when long,
    so a message stays one short line whatever the input."""
    text = repr(value)
    if len(text) <= limit:
        return text
    cut = repr(value[:limit] if isinstance(value, str) else text[:limit])
    return cut[:limit - 4] + "...'" if isinstance(value, str) else cut[1:limit - 3] + "..."


class KojiImageError(Exception):
    """Base of every error the library raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem in a spec: the field it concerns and what is allowed there."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


#: problems shown of one input; the rest are counted (fix these first, then look again)
MAX_SHOWN = 20


def listed(problems: list[Problem]) -> list[str]:
    """The problems as lines to show: the first :data:`MAX_SHOWN`, then a count of the
    rest, so a hostile input cannot make a message of megabytes."""
    lines = [str(p) for p in problems[:MAX_SHOWN]]
    if len(problems) > MAX_SHOWN:
        lines.append(f"(and {len(problems) - MAX_SHOWN} more problems; fix these first)")
    return lines


class SpecError(KojiImageError):
    """A spec with one or more problems; all of them are reported at once."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = sorted(problems, key=lambda p: (p.field, p.message))
        super().__init__(f"{source}: {len(self.problems)} problem(s): "
                         + "; ".join(listed(self.problems)))


class ToolMissingError(KojiImageError):
    """A host tool is not installed."""

    def __init__(self, tool: str, package: str | None) -> None:
        self.tool = tool
        hint = (f"install the Debian package {package} (scripts/setup.sh does)"
                if package else "install it")
        super().__init__(f"{tool}: not found on this host: {hint}")


class ToolError(KojiImageError):
    """A host tool exited non-zero (or was killed)."""

    def __init__(self, tool: str, returncode: int, log: str, tail: str) -> None:
        self.tool = tool
        self.returncode = returncode
        self.log = log
        self.tail = tail
        last = tail.strip().splitlines()[-1] if tail.strip() else "no output"
        super().__init__(f"{tool} failed with exit status {returncode}: {last} (log: {log})")


class InputError(KojiImageError):
    """Bad input on the command line (an option, a file it names); nothing was done."""


class RecordError(KojiImageError):
    """A record this project wrote (manifest.json, uploads.json, drop.json, a weekly
    state) is damaged or was written by hand wrongly; nothing was done with it."""


class CancelledError(KojiImageError):
    """The build was interrupted (Ctrl-C, SIGTERM or a Koji task cancel)."""


class HostError(KojiImageError):
    """The host cannot run the build (libvirt down, no space, no root, ...)."""


class ConfigError(HostError):
    """The host config has problems; the message names each one's ``[section] key``."""


class NoSpaceError(HostError):
    """Not enough free space for the build."""


class InstallError(KojiImageError):
    """The OS install in the guest failed; the message carries the diagnosis."""

    def __init__(self, message: str, diagnostics: dict[str, str] | None = None) -> None:
        self.diagnostics = diagnostics or {}
        super().__init__(message)


class BootTestError(KojiImageError):
    """A boot test could not be run (not a failed verdict: that is a result)."""


class VerifyError(KojiImageError):
    """An output does not expand to the same disk content as the booted image."""


class BootFailedError(KojiImageError):
    """An image booted but did not pass its boot test (a hub build fails on it)."""


class CloudError(KojiImageError):
    """An upload to a cloud (OpenStack Glance, EC2) failed or was refused.

    The upload removes what it created before raising; ``leftover`` names what it could
    not remove (for example the cloud went away mid-upload), or is None.
    """

    def __init__(self, message: str, leftover: str | None = None) -> None:
        self.leftover = leftover
        super().__init__(message)


class CloudConfigError(ConfigError, CloudError):
    """Problems in a cloud section of the host config ([ec2], [glance:CLOUD]): the
    uploads there cannot start; builds go on (the problem is logged)."""
