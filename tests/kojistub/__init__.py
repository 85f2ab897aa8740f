"""A small, faithful stand-in for a Koji hub and a build daemon, for tests.

The PyPI ``koji`` package is the client library and CLI only; kojihub and kojid are in no
registry. So the project's plugins are tested through the real koji library and CLI against:

- ``hub.py``: an XML-RPC hub process (state in memory, files under a topdir served as the
  topurl) that loads hub plugins the way the real hub does, with a ``kojihub`` module for
  them (``core.py``: the kojihub functions; ``exports.py``: RootExports/HostExports;
  ``auth.py``: password sessions);
- ``kojid.py``: kojid's main loop around the real koji.daemon.TaskManager, loading builder
  plugins by path.

Where they do not do what Koji does is written down in README.md, in one place.

Helpers here start them as subprocesses and drive the real ``koji`` CLI::

    hub = start_hub(tmp_path / "top", SEED, tmp_path)
    kojid = start_kojid(hub.url, hub.topurl, "builder", "pw", tmp_path / "kojid")
    conf = write_client_config(tmp_path / "koji.conf", hub)
    out = run_cli(conf, "alice", "pw", "watch-task", "1")
    kojid.stop(); hub.stop()
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import koji

from tests.proc import Daemon, free_port

if TYPE_CHECKING:
    from .hub import HubProcess, start_hub
    from .kojid import KojidProcess, start_kojid

# imported on first use, so that ``python -m tests.kojistub.hub`` (or .kojid) does not
# import its own module twice
_LAZY = {"HubProcess": "hub", "start_hub": "hub", "KojidProcess": "kojid",
         "start_kojid": "kojid"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["PROFILE", "Daemon", "HubProcess", "KojidProcess", "client_session", "free_port",
           "run_cli", "start_hub", "start_kojid", "write_client_config"]

KOJI_CLI = str(Path(sys.executable).with_name("koji"))
PROFILE = "kojistub"


def write_client_config(path: Path, hub: HubProcess, plugin_paths: tuple[Path, ...] = (),
                        profile: str = PROFILE) -> Path:
    """A koji client config (the ``[profile]`` section koji.read_config reads) for the hub:
    server, topurl, password auth, poll_interval 1 s, no retries, and ``plugin_paths``
    (':'-separated directories of CLI plugins)."""
    lines = [f"[{profile}]", f"server = {hub.url}", f"topurl = {hub.topurl}",
             f"topdir = {hub.topdir}", "authtype = password", "poll_interval = 1",
             "max_retries = 0", "anon_retry = false", "retry_interval = 1"]
    if plugin_paths:
        lines.append("plugin_paths = " + ":".join(str(p) for p in plugin_paths))
    path.write_text("\n".join(lines) + "\n")
    return path


def run_cli(config: Path, user: str, password: str, *args: str, profile: str = PROFILE,
            timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real koji CLI: ``koji --config CONF --profile P --user U --password PW ...``
    (``--user``/``--password`` with ``authtype = password`` make it call session.login())."""
    argv = [KOJI_CLI, "--config", str(config), "--profile", profile, "--user", user,
            "--password", password, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check)


def client_session(hub: HubProcess, user: str | None = None,
                   password: str | None = None) -> koji.ClientSession:
    """A koji.ClientSession on the hub, logged in when a user is given."""
    session = koji.ClientSession(hub.url, {"user": user, "password": password,
                                           "max_retries": 0, "anon_retry": False})
    if user:
        session.login()
    return session
