"""The hostile-input catalogue's one check: ``koji-image`` run in this process (the real
``command.main``, as the console script calls it) in a sandbox directory, and the
refusal it must give: the exit status, one short line naming the field or file, no
traceback, and the sandbox exactly as it was (nothing created, nothing left).

Running in-process keeps the few hundred cases fast; ``tests/command/test_cli.py`` and
the drop and upload tests run the installed command as a subprocess, so the two agree.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from koji_image_plugin import command
from koji_image_plugin.errors import has_control

#: a refusal quotes at most a short excerpt of what it was given
MAX_LINE = 600


@dataclass(frozen=True)
class Case:
    """One hostile input: an id for the report, and what the refusal must name."""
    id: str
    names: tuple[str, ...]


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with what it is (a file's digest, a link's target)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            elif not p.is_file():  # a FIFO the case made: never open it
                out[rel] = "special"
            else:
                with open(p, "rb") as f:
                    out[rel] = hashlib.sha256(f.read()).hexdigest()
    return out


def run(sandbox: Path, argv: list[str]) -> tuple[int, str, str]:
    """``koji-image ARGV`` in ``sandbox`` (its cwd, its temp dir, its host config)."""
    saved_cwd, saved_tmp = os.getcwd(), tempfile.tempdir
    saved_env = os.environ.get("KOJI_IMAGE_CONFIG")
    saved_term = signal.getsignal(signal.SIGTERM)
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    saved_handlers = root.handlers[:]
    os.chdir(sandbox)
    tempfile.tempdir = str(sandbox / "tmp")
    os.environ["KOJI_IMAGE_CONFIG"] = str(sandbox / "host.conf")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            root.handlers = []  # main's logging writes to this run's stderr
            try:
                code = command.main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        root.handlers = saved_handlers
        os.chdir(saved_cwd)
        tempfile.tempdir = saved_tmp
        if saved_env is None:
            os.environ.pop("KOJI_IMAGE_CONFIG", None)
        else:
            os.environ["KOJI_IMAGE_CONFIG"] = saved_env
        signal.signal(signal.SIGTERM, saved_term)
    return code, out.getvalue(), err.getvalue()


def refused(sandbox: Path, argv: list[str], names: tuple[str, ...] | str, *,
            code: int = 2, lines: int = 1) -> str:
    """Run and check the refusal; returns its (first) line."""
    names = (names,) if isinstance(names, str) else names
    before = snapshot(sandbox)
    got, out, err = run(sandbox, argv)
    shown = err.strip().splitlines()
    assert got == code, (got, out, err[-2000:])
    assert "Traceback" not in err and "Traceback" not in out, err[-3000:]
    assert 1 <= len(shown) <= lines, shown[:30]
    assert all(len(line) <= MAX_LINE for line in shown), [len(x) for x in shown]
    assert all(line.startswith("koji-image") for line in shown), shown
    assert not any(has_control(line) for line in shown), shown  # escaped, never raw
    assert any(n in shown[0] for n in names), (names, shown[0])
    assert snapshot(sandbox) == before, "the sandbox changed"
    return shown[0]


def fifo(name: str) -> Callable[[Path], str]:
    """A maker of a FIFO named ``name`` in a directory (what a reader must not open)."""
    def make(d: Path) -> str:
        os.mkfifo(d / name)
        return name
    return make


def symlink_loop(name: str) -> Callable[[Path], str]:
    def make(d: Path) -> str:
        (d / name).symlink_to(name)
        return name
    return make


def directory(name: str) -> Callable[[Path], str]:
    def make(d: Path) -> str:
        (d / name).mkdir()
        return name
    return make


def make_sandbox(root: Path) -> Path:
    """A directory holding a good spec, its preseed, a host config and a temp dir."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir()
    (root / "work").mkdir()
    (root / "host.conf").write_text(f"[paths]\nworkdir = {root / 'work'}\n")
    (root / "preseed.cfg").write_text("d-i debian-installer/locale string en_US\n")
    (root / "good.yaml").write_text(GOOD_SPEC)
    return root


GOOD_SPEC = """\
name: Test-Cloud-Base
version: "12"
distro: Debian-12
arches: [x86_64]
install_tree: file:///srv/trees/debian-12-$arch
preseed: preseed.cfg
formats: [qcow2]
"""
