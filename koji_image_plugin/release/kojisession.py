"""A session with a Koji hub for the release tools, logged in by koji's own code.

The ``koji`` client library is imported only here, when a drop or the weekly job talks
to a hub."""

from __future__ import annotations

import configparser
import importlib
import optparse
from pathlib import Path
from typing import Any

from .drop import DropError, DropInputError


def koji_module() -> Any:
    """The koji client library, imported only when a drop comes from Koji."""
    try:
        return importlib.import_module("koji")
    except ImportError as exc:
        raise DropInputError("--koji: the koji client library is not installed; install the "
                             "koji package, or make the drop from local build directories") \
            from exc


def koji_session(profile: str, config: str | None = None, user: str | None = None,
                 password_file: str | None = None, login: bool = True,
                 names: tuple[str, str] = ("--koji", "--koji-config"),
                 ) -> tuple[Any, dict[str, Any]]:
    """A koji.ClientSession for a koji client profile, logged in by koji's own code
    (``koji_cli.lib.activate_session``: Kerberos, SSL or password, as configured) when
    ``login`` (reading builds needs no login, as for ``koji buildinfo``); ``user`` and
    ``password_file`` are for password logins; ``names``: how refusals name the profile
    and the config file (the options, or the weekly config's keys)."""
    koji = koji_module()
    cli_lib = importlib.import_module("koji_cli.lib")
    try:
        opts: dict[str, Any] = koji.read_config(profile, user_config=config)
    except koji.ConfigurationError as exc:
        raise DropInputError(f"{names[0]}: {exc}; give a profile of your koji config") \
            from None
    except (configparser.Error, UnicodeDecodeError, OSError) as exc:
        what = " ".join(str(exc).split())[:200]
        raise DropInputError(f"{names[1]}: the koji config cannot be read: {what}; fix "
                             "it (an INI file, as koji's own)") from None
    if user:
        opts["user"] = user
        opts["authtype"] = opts.get("authtype") or "password"
    if password_file:
        opts["password"] = Path(password_file).read_text().strip()
    session = koji.ClientSession(opts["server"], opts)
    if not login:
        return session, opts
    try:
        cli_lib.activate_session(session, optparse.Values(opts))
    except SystemExit as exc:  # koji_cli.lib.error() exits
        raise DropError(f"koji: cannot log in to {opts['server']} with profile "
                        f"{profile}") from exc
    except (koji.GenericError, OSError) as exc:  # requests' errors are OSErrors
        raise DropError(f"koji: cannot log in to {opts['server']}: "
                        f"{koji_message(exc)}") from exc
    return session, opts


def koji_message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__

