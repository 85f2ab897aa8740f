"""Logging in to a boot-test guest: ssh to its forwarded port on loopback as the
image's cloud user, with the key injected through the profile's metadata, and nothing
of the host's ssh setup (no agent, no config, a known_hosts of this boot only).
Host tools: ssh.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ...runner import Runner

LOGGED_IN = "koji-image-boot-test-logged-in"


def argv(key: Path, port: int, user: str, command: str,
         wrap: Sequence[str] = ()) -> list[str]:
    """ssh to the guest; ``wrap`` runs ssh inside it (``nsenter`` for a guest in its own
    network namespace)."""
    return [
        *wrap,
        "ssh",
        "-F", "/dev/null",
        "-i", str(key),
        "-p", str(port),
        "-o", "IdentitiesOnly=yes",
        "-o", "IdentityAgent=none",
        "-o", "BatchMode=yes",
        "-o", "PasswordAuthentication=no",
        # a guest of this boot on loopback, whose host keys cloud-init remakes while
        # it boots: nothing to remember them against
        "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "ConnectTimeout=10",
        "-o", "ServerAliveInterval=10",
        "-o", "LogLevel=ERROR",
        f"{user}@127.0.0.1",
        command,
    ]


def try_login(runner: Runner, key: Path, port: int, user: str, log_name: str,
              wrap: Sequence[str] = ()) -> bool:
    """One login attempt; True when a command ran in the guest."""
    try:
        out = runner.run(argv(key, port, user, f"echo {LOGGED_IN}", wrap),
                         log_name=log_name, capture=True, timeout=60, ok_codes=range(256))
    except subprocess.TimeoutExpired:
        return False
    return out.strip() == LOGGED_IN


def run_as_root(runner: Runner, key: Path, port: int, user: str, script: str,
                log_name: str, timeout: float, wrap: Sequence[str] = ()) -> str:
    """Run ``script`` with sudo in the guest; its output (stderr goes to the log)."""
    command = f"sudo -n sh -c {shlex.quote(script)}"
    return runner.run(argv(key, port, user, command, wrap), log_name=log_name,
                      capture=True, timeout=timeout, ok_codes=range(256))
