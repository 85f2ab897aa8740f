"""RPMs and tag repos in the stand-in hub, made as Koji makes them.

- ``build_fixture_rpms`` (tests/rpmfixtures.py): the fixture RPMs of tests/fixtures/rpms,
  built with the real ``rpmbuild`` (a source RPM and a noarch RPM each).
- ``import_rpms``: ``koji import`` (the real CLI, as an admin): source RPM first, which
  makes the build, then the binary RPMs.
- ``make_repo``: what kojid's ``newRepo`` task does for a tag, played by the test through
  the host API: ``host.repoInit`` (the hub writes each arch's ``pkglist`` and ``toplink``),
  the real ``createrepo_c`` over the pkglist, the repodata uploaded, ``host.repoDone``.
  The stand-in has no kojira, so nothing else makes repos (README.md).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import koji

from tests.rpmfixtures import build_fixture_rpms

from . import client_session, run_cli


def import_rpms(conf: Path, user: str, password: str, rpms: list[Path]) -> None:
    """``koji import`` each RPM (source RPMs first, so their builds exist)."""
    for rpm in rpms:
        done = run_cli(conf, user, password, "import", str(rpm))
        assert done.returncode == 0, done.stdout + done.stderr


@contextmanager
def host_session(hub: Any, host_user: str, password: str) -> Iterator[koji.ClientSession]:
    """An exclusive session of a host that kojid does not run, as a builder holds one."""
    session = client_session(hub, host_user, password)
    try:
        session.exclusiveSession()
        yield session
    finally:
        session.logout()


def make_repo(hub: Any, tag: str, host_user: str, password: str) -> int:
    """A new READY repo of ``tag`` (its latest builds), as kojid's newRepo makes it."""
    with host_session(hub, host_user, password) as session:
        repo_id, _event = session.host.repoInit(tag)
        info = session.repoInfo(repo_id, strict=True)
        repodir = Path(hub.topdir) / "repos" / info["tag_name"] / str(repo_id)
        data = {}
        for archdir in sorted(p for p in repodir.iterdir() if p.is_dir()):
            with tempfile.TemporaryDirectory(prefix="createrepo-") as tmp:
                subprocess.run(["createrepo_c", "--quiet",
                                "-i", str(archdir / "pkglist"), "-o", tmp, str(archdir)],
                               check=True, capture_output=True, text=True, timeout=120)
                uploadpath = f"repo-upload/{repo_id}/{archdir.name}"
                files = sorted(p.name for p in (Path(tmp) / "repodata").iterdir())
                for name in files:
                    session.uploadWrapper(str(Path(tmp) / "repodata" / name), uploadpath)
                data[archdir.name] = [uploadpath, files]
        session.host.repoDone(repo_id, data)
        return int(repo_id)


def rpm_nvras(rpms: list[Path]) -> list[str]:
    return [p.name[:-len(".rpm")] for p in rpms if not p.name.endswith(".src.rpm")]


__all__ = ["build_fixture_rpms", "host_session", "import_rpms", "make_repo", "rpm_nvras"]
