"""URLs in a request: which schemes each edge takes, read without crashing on bad ones."""

from __future__ import annotations

from urllib.parse import ParseResult, urlparse

#: What a local build may fetch from (file:// is a path on this machine).
LOCAL_SCHEMES = ("http", "https", "ftp", "file")
#: What a hub build may fetch from: builders cannot be handed paths.
HUB_SCHEMES = ("http", "https", "ftp")


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
