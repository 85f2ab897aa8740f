"""Kickstart preparation, as kojid's ``OzImageTask.prepareKickstart`` does it.

The kickstart is read with the parser anaconda and kojid use (``pykickstart``), at the
request's ``ksversion`` (default: pykickstart's newest). ``%include`` lines are flattened
first, from files in the kickstart's own directory (the SCM checkout, or the directory of
the uploaded or local file); an include that leaves it is refused. Then, as Koji does:
every ``repo`` line of the kickstart is removed and the build's repos put in their place
(the build tag's Koji repo, or the request's ``repos`` when it has some), and ``url`` is set
to the install tree. The disk layout follows the build's firmware (``spec/firmware.py``):
a kickstart without storage commands gets the layout of that firmware; one with its own
must have the partitions the firmware boots from (or ``reqpart``/``autopart``, which make
them). What comes out is the kickstart anaconda sees, and the one kept with the build.

This module knows nothing of Koji: the builder hands it the repos as :class:`Repo` values.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, Problem, has_control, printable, quote
from ..files import read_regular, within
from .arches import Arch
from .firmware import Firmware, layout_kickstart

#: a kickstart (and each file it includes) is read up to this size
MAX_KICKSTART = 1 << 20
#: how deep ``%include`` may nest (anaconda has no limit; a loop must end somewhere)
MAX_DEPTH = 8


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
    """The request's own ``repos``, named as kojid names ``--repo`` ones (a URL given twice
    is one repo, as kojid keeps them)."""
    return tuple(Repo(f"koji-override-{i}", url) for i, url in enumerate(dict.fromkeys(urls)))


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


@dataclass
class Flattened:
    """A kickstart with its includes in it: the text, where each line came from, and
    whether it had any ``%include``."""

    text: str
    where: list[_Line]
    included: bool
    size: int = 0


def flatten(path: Path) -> Flattened:
    """The kickstart at ``path`` with every ``%include`` replaced by the file it names, as
    pykickstart reads it: the name is one shell-like word, relative to the including
    file's directory; no include may leave ``path``'s directory, and the whole is at
    most :data:`MAX_KICKSTART` bytes."""
    out = Flattened("", [], False)
    parts: list[str] = []
    _flatten(path, path.parent, out, parts, ())
    out.text = "".join(parts)
    return out


def _flatten(path: Path, top: Path, out: Flattened, parts: list[str],
             stack: tuple[Path, ...]) -> None:
    text = read_text(path)
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        here = f"{path}:{number}"
        name = _include(line, here)
        if name is None:
            parts.append(line if line.endswith("\n") else line + "\n")
            out.where.append(_Line(path, number))
            out.size += len(parts[-1])
            if out.size > MAX_KICKSTART:
                raise KickstartError(f"{path}: with its includes the kickstart is more "
                                     f"than {MAX_KICKSTART} bytes; is this the right file?")
            continue
        out.included = True
        target, why = _resolve(path, top, name)
        if why:
            raise KickstartError(f"{here}: %include {quote(name)}: {why}; an included file "
                                 f"must be a file in {top}")
        if target.resolve() in stack or len(stack) >= MAX_DEPTH:
            raise KickstartError(f"{here}: %include {quote(name)} nests too deep "
                                 f"(a loop, or more than {MAX_DEPTH} levels)")
        _flatten(target, top, out, parts, (*stack, path.resolve()))


def _include(line: str, here: str) -> str | None:
    """The file an ``%include`` line names (None: not an include line)."""
    if not line.lstrip().startswith("%include"):
        return None
    try:
        words = shlex.split(line, comments=True)
    except ValueError as exc:  # an open quote
        raise KickstartError(f"{here}: %include line: {exc}; give one file name") from exc
    if not words or words[0] != "%include":
        return None
    if len(words) != 2 or has_control(words[1]):
        raise KickstartError(f"{here}: %include takes one file name, not "
                             f"{quote(' '.join(words[1:]))}")
    return words[1]


def _resolve(path: Path, top: Path, name: str) -> tuple[Path, str | None]:
    """``name`` relative to the including file's directory, as a file of ``top``."""
    if os.path.isabs(name):
        return Path(name), "outside"
    return within(top, os.path.relpath(os.path.normpath(path.parent / name), top))


def read_text(path: Path) -> str:
    """An install file's text (a kickstart or a preseed): a regular file of at most
    :data:`MAX_KICKSTART` bytes, UTF-8, or one line saying why not."""
    try:
        data = read_regular(path, MAX_KICKSTART)
    except OSError as exc:
        raise KickstartError(f"{path}: cannot read it: {exc.strerror}") from exc
    if len(data) > MAX_KICKSTART:
        raise KickstartError(f"{path}: more than {MAX_KICKSTART} bytes; is this the right "
                             "file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KickstartError(f"{path}: not UTF-8 text (byte {exc.start})") from exc


def prepare(path: Path, arch: Arch, repos: Sequence[Repo], install_url: str,
            ksversion: str | None = None, firmware: Firmware | None = None) -> str:
    """The kickstart anaconda sees for ``arch``: ``path`` flattened and parsed at
    ``ksversion``, its ``repo`` lines replaced by ``repos``, ``url`` set to
    ``install_url`` and the disk laid out for ``firmware`` (default: the arch's)."""
    from pykickstart.errors import KickstartError as ParseError
    from pykickstart.parser import KickstartParser
    from pykickstart.version import DEVEL, makeVersion, stringToVersion

    flat = flatten(path)
    text, where = flat.text, flat.where
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
    fw = firmware or arch.default_firmware
    if _storage(handler):
        _check_storage(handler, fw, path)
    else:
        parser.readKickstartFromString("".join(line + "\n" for line in layout_kickstart(fw)))
    handler.repo.repoList = []  # delete whatever the kickstart said, as kojid does
    for repo in repos:
        handler.repo.repoList.append(handler.RepoData(
            name=repo.name, baseurl=repo.for_arch(arch).baseurl))
    handler.url(url=install_url)
    return str(handler)


def _storage(h: Any) -> bool:
    """Does the kickstart (pykickstart's handler ``h``) lay the disk out itself?"""
    return bool(h.partition.partitions or h.autopart.autopart or h.reqpart.reqpart
                or h.logvol.lvList or h.clearpart.type is not None)


def _check_storage(h: Any, fw: Firmware, path: Path) -> None:
    """A kickstart's own layout must boot with the build's firmware: a hybrid disk is GPT;
    BIOS boots GPT from a BIOS boot partition; UEFI boots from an EFI system partition."""
    label = h.clearpart.disklabel
    if fw is Firmware.HYBRID and label and label != "gpt":
        raise KickstartError(f"{path}: clearpart --disklabel={label} cannot make a hybrid "
                             "BIOS+UEFI disk, which is GPT; use --disklabel=gpt or set the "
                             "spec's firmware")
    if h.reqpart.reqpart or h.autopart.autopart:
        return  # anaconda makes the platform's boot partitions
    mounts = {(p.mountpoint or "").lower() for p in h.partition.partitions}
    gpt = label == "gpt" or (not label and fw.uefi)
    needed = []
    if fw.bios and gpt and "biosboot" not in mounts:
        needed.append("part biosboot --fstype=biosboot --size=1")
    if fw.uefi and "/boot/efi" not in mounts:
        needed.append("part /boot/efi --fstype=efi --size=100")
    if needed:
        raise KickstartError(f"{path}: firmware {fw.value} boots from partitions this "
                             f"kickstart does not make; add {' and '.join(needed)} (or "
                             "reqpart), or remove its storage commands so the layout is "
                             "made for you")


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


def problems(path: Path, field: str, ksversion: str | None,
             builds: Sequence[tuple[Arch, Firmware]]) -> list[Problem]:
    """A local kickstart checked as a build of each (arch, firmware) would prepare it (no
    repos, no url); with a ``ksversion`` pykickstart does not know, that is the problem
    (reported on its own)."""
    if ksversion is not None and version_problem(ksversion):
        return []
    found: list[Problem] = []
    for arch, fw in builds:
        try:
            prepare(path, arch, (), "file:///", ksversion, fw)
        except KickstartError as exc:
            if all(p.message != str(exc) for p in found):
                found.append(Problem(field, str(exc)))
    return found
