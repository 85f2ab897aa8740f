"""Kickstart preparation, as kojid's ``OzImageTask.prepareKickstart`` does it.

The kickstart is read with the parser anaconda and kojid use (``pykickstart``), at the
request's ``ksversion`` (default: pykickstart's newest). ``%include`` lines are flattened
first, from files in the kickstart's own directory (the SCM checkout, or the directory of
the uploaded or local file); an include that leaves it is refused. Then, as Koji does:
every ``repo`` line of the kickstart is removed and the build's repos put in their place
(the build tag's Koji repo, or the request's ``repos`` when it has some), and ``url`` is set
to the install tree. What comes out is the kickstart anaconda sees, and the one kept with
the build.

This module knows nothing of Koji: the builder hands it the repos as :class:`Repo` values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, Problem, printable, quote
from ..files import read_regular, within
from .arches import Arch

#: a kickstart (and each file it includes) is read up to this size
MAX_KICKSTART = 1 << 20
#: how deep ``%include`` may nest (anaconda has no limit; a loop must end somewhere)
MAX_DEPTH = 8
_INCLUDE = re.compile(r"^\s*%include\s+(\S+)\s*$")


class KickstartError(InputError):
    """A kickstart that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Repo:
    """A repository the installer installs from: ``koji-TAG-ID`` and its URL (``$arch``
    is replaced by the arch being built)."""

    name: str
    baseurl: str

    def for_arch(self, arch: Arch) -> Repo:
        return Repo(self.name, self.baseurl.replace("$arch", arch.value))


def override_repos(urls: Sequence[str]) -> tuple[Repo, ...]:
    """The request's own ``repos``, named as kojid names ``--repo`` ones."""
    return tuple(Repo(f"koji-override-{i}", url) for i, url in enumerate(urls))


def version_problem(ksversion: str) -> str | None:
    """Why ``ksversion`` is not a kickstart syntax version pykickstart knows, or None."""
    from pykickstart.errors import KickstartVersionError
    from pykickstart.version import stringToVersion
    try:
        stringToVersion(ksversion)
    except KickstartVersionError:
        return (f"{quote(ksversion)} is not a kickstart version pykickstart knows; use one "
                "like F39, RHEL9 or DEVEL")
    return None


@dataclass(frozen=True)
class _Line:
    file: Path
    number: int


def flatten(path: Path) -> tuple[str, list[_Line]]:
    """The kickstart at ``path`` with every ``%include`` replaced by the file it names
    (relative to ``path``'s directory, which the include must not leave), and where each
    line came from."""
    lines: list[str] = []
    where: list[_Line] = []
    _flatten(path, path.parent, lines, where, ())
    return "".join(lines), where


def _flatten(path: Path, top: Path, lines: list[str], where: list[_Line],
             stack: tuple[Path, ...]) -> None:
    text = _read(path)
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        match = _INCLUDE.match(line)
        if not match:
            lines.append(line if line.endswith("\n") else line + "\n")
            where.append(_Line(path, number))
            continue
        here = f"{path}:{number}"
        target, why = within(top, match.group(1))
        if why:
            raise KickstartError(f"{here}: %include {quote(match.group(1))}: {why}; an "
                                 f"included file must be a file in {top}")
        if target.resolve() in stack or len(stack) >= MAX_DEPTH:
            raise KickstartError(f"{here}: %include {quote(match.group(1))} nests too deep "
                                 f"(a loop, or more than {MAX_DEPTH} levels)")
        _flatten(target, top, lines, where, (*stack, path.resolve()))


def _read(path: Path) -> str:
    try:
        data = read_regular(path, MAX_KICKSTART)
    except OSError as exc:
        raise KickstartError(f"{path}: cannot read the kickstart: {exc.strerror}") from exc
    if len(data) > MAX_KICKSTART:
        raise KickstartError(f"{path}: a kickstart of more than {MAX_KICKSTART} bytes; "
                             "is this the right file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KickstartError(f"{path}: not UTF-8 text (byte {exc.start})") from exc


def prepare(path: Path, arch: Arch, repos: Sequence[Repo], install_url: str,
            ksversion: str | None = None) -> str:
    """The kickstart anaconda sees for ``arch``: ``path`` flattened and parsed at
    ``ksversion``, its ``repo`` lines replaced by ``repos`` and ``url`` set to
    ``install_url``."""
    from pykickstart.errors import KickstartError as ParseError
    from pykickstart.parser import KickstartParser
    from pykickstart.version import DEVEL, makeVersion, stringToVersion

    text, where = flatten(path)
    version = stringToVersion(ksversion) if ksversion else DEVEL
    parser = KickstartParser(makeVersion(version), followIncludes=False)
    try:
        parser.readKickstartFromString(text)
    except ParseError as exc:
        raise KickstartError(_parse_message(exc, where, path)) from exc
    except (TypeError, ValueError, AttributeError) as exc:  # pykickstart trips on some input
        raise KickstartError(printable(f"{path}: the kickstart parser failed on it: "
                                       f"{type(exc).__name__}: {exc}")) from exc
    handler = parser.handler
    handler.repo.repoList = []  # delete whatever the kickstart said, as kojid does
    for repo in repos:
        handler.repo.repoList.append(handler.RepoData(
            name=repo.name, baseurl=repo.for_arch(arch).baseurl))
    handler.url(url=install_url)
    return str(handler)


def _parse_message(exc: Exception, where: list[_Line], path: Path) -> str:
    """pykickstart's error as one line: the file and line it concerns, then what it said."""
    lineno = getattr(exc, "lineno", None)
    what = getattr(exc, "message", None) or str(exc)
    what = " ".join(str(what).split())
    if isinstance(lineno, int) and 0 < lineno <= len(where):
        spot = f"{where[lineno - 1].file}:{where[lineno - 1].number}"
    else:
        spot = str(path)
    return printable(f"{spot}: the kickstart parser refused it: {what}")


def problems(path: Path, field: str, ksversion: str | None) -> list[Problem]:
    """A local kickstart checked as a build would prepare it (no repos, no url); with a
    ``ksversion`` pykickstart does not know, that is the problem (reported on its own)."""
    if ksversion is not None and version_problem(ksversion):
        return []
    try:
        prepare(path, Arch.X86_64, (), "file:///", ksversion)
    except KickstartError as exc:
        return [Problem(field, str(exc))]
    return []
