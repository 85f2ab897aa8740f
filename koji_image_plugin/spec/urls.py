"""URLs in a request: which schemes each edge takes, and what makes a URL unusable there
(no host, a bad port, white space, a password: a task's request is readable by every Koji
user, and a local build's resolved spec goes into its manifest). The same rules run on the
user's machine (the CLI's local check, ``koji-image validate``) and on the hub."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import ParseResult, urlparse

from ..errors import has_control, quote


@dataclass(frozen=True)
class Edge:
    """Where a request is checked: what it may fetch from, and what to suggest."""

    schemes: tuple[str, ...]
    #: what to use instead of localhost, which the install guest cannot reach
    instead_of_localhost: str


#: a local build: file:// is a path on this machine
LOCAL = Edge(("http", "https", "ftp", "file"),
             "use the host's address on the libvirt network or file://")
#: a hub build: builders cannot be handed paths
HUB = Edge(("http", "https", "ftp"),
           "use an address the builders and their guests reach")
LOCAL_SCHEMES = LOCAL.schemes
HUB_SCHEMES = HUB.schemes


def parse_url(text: str) -> ParseResult | None:
    """The parsed URL, or None where urllib cannot read it (e.g. ``http://[bad``)."""
    try:
        url = urlparse(text)
        url.hostname  # noqa: B018 - raises for some malformed host parts
    except ValueError:
        return None
    return url


def scheme(text: str) -> str:
    """The URL's scheme, "" when it is not a URL."""
    url = parse_url(text)
    return url.scheme if url is not None else ""


def schemes_hint(schemes: tuple[str, ...]) -> str:
    return ", ".join(s + "://" for s in schemes)


#: ``scheme://user:password@`` as written, whether urllib can read the rest or not
_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#@:]*):([^/?#]*)@")


def masked(text: str) -> str:
    """The URL as a message may show it: a password in it replaced by ***."""
    return _PASSWORD.sub(r"\1:***@", text, count=1)


def shape_problem(text: str) -> str | None:
    """What no URL of any scheme may have: a password, white space, control characters."""
    if _PASSWORD.match(text):
        return (f"{quote(masked(text))} carries a password, which every Koji user could "
                "read in the task and which a build's manifest keeps; give the URL without "
                "credentials (the builder's own configuration has them)")
    if any(c.isspace() for c in text) or has_control(text):
        return f"{quote(text)} has white space or a control character in it; give one URL"
    return None


def _loopback(host: str) -> bool:
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or address.is_unspecified
                or (mapped is not None and mapped.is_loopback))


def url_problem(text: str, edge: Edge) -> str | None:
    """Why ``text`` is not a URL ``edge`` can fetch from, or None when it is one."""
    problem = shape_problem(text)
    if problem:
        return problem
    url = parse_url(text)
    if url is None or url.scheme not in edge.schemes:
        if url is not None and url.scheme == "file":
            return ("file:// is a path on the builder; give an "
                    f"{', '.join(edge.schemes[:-1])} or {edge.schemes[-1]} URL the builder "
                    "can fetch")
        return f"{quote(text)} is not a URL; use one of {schemes_hint(edge.schemes)}"
    if url.scheme == "file":
        return None if url.path not in ("", "/") else f"{quote(text)} names no directory"
    if not url.hostname:
        return f"{quote(text)} has no host; give {url.scheme}://HOST/PATH"
    try:
        port = url.port
    except ValueError:
        port = 0
    if port == 0:
        return f"{quote(text)} has no valid port; a port is a number from 1 to 65535"
    if _loopback(url.hostname):
        return f"the guest cannot reach localhost; {edge.instead_of_localhost}"
    return None
