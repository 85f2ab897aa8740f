"""Strict checks of an Atom feed against RFC 4287's MUSTs, for the drop tests.

Why not feedparser alone: it is a liberal parser built to read broken feeds; its ``bozo``
flag is set only for XML that is not well-formed, and a feed without ids, dates or titles
parses fine. So the tests parse with lxml (which refuses anything not well-formed) and
check here what RFC 4287 requires (sections 4.1.1, 4.1.2, 4.2.6, 3.3, 4.2.7), and then
read the same bytes with feedparser, the library feed readers use, to see it as Atom 1.0
with the same entries.
"""

from __future__ import annotations

import re
import urllib.parse

from lxml import etree

NS = "http://www.w3.org/2005/Atom"
A = f"{{{NS}}}"
#: RFC 3339 date-time (section 3.3 of RFC 4287: upper-case T and Z, seconds required)
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _absolute_iri(text: str) -> bool:
    parsed = urllib.parse.urlsplit(text)
    return bool(parsed.scheme) and (bool(parsed.netloc) or parsed.scheme in ("urn", "tag")
                                     or bool(parsed.path))


def problems(data: bytes) -> list[str]:
    """Every RFC 4287 violation found; an empty list for a valid feed."""
    out: list[str] = []
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False))
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    if root.tag != A + "feed":
        return [f"root element is {root.tag}, not atom:feed"]

    def one(parent: etree._Element, name: str, where: str, required: bool = True) -> None:
        found = parent.findall(A + name)
        if len(found) > 1:
            out.append(f"{where}: more than one atom:{name}")
        if required and not found:
            out.append(f"{where}: atom:{name} is missing")
        for el in found:
            text = (el.text or "").strip()
            if name in ("updated", "published") and not DATE.match(text):
                out.append(f"{where}: atom:{name} {text!r} is not an RFC 3339 date-time")
            if name == "id" and not _absolute_iri(text):
                out.append(f"{where}: atom:id {text!r} is not an absolute IRI")
            if name in ("title", "summary", "subtitle") and \
                    el.get("type", "text") not in ("text", "html", "xhtml"):
                out.append(f"{where}: atom:{name} has an unknown type")

    def links(parent: etree._Element, where: str) -> None:
        alternates = set()
        for link in parent.findall(A + "link"):
            if not link.get("href"):
                out.append(f"{where}: atom:link without href")
            if link.get("rel", "alternate") == "alternate":
                key = (link.get("type"), link.get("hreflang"))
                if key in alternates:
                    out.append(f"{where}: two alternate links with the same type/hreflang")
                alternates.add(key)

    for name in ("id", "title", "updated"):
        one(root, name, "feed")
    for name in ("subtitle", "icon", "logo", "rights", "generator"):
        one(root, name, "feed", required=False)
    links(root, "feed")
    feed_author = root.find(A + "author") is not None
    ids = set()
    for i, entry in enumerate(root.findall(A + "entry")):
        where = f"entry[{i}]"
        for name in ("id", "title", "updated"):
            one(entry, name, where)
        for name in ("published", "summary", "content", "rights", "source"):
            one(entry, name, where, required=False)
        links(entry, where)
        if not feed_author and entry.find(A + "author") is None:
            out.append(f"{where}: no atom:author in the entry or the feed")
        if entry.find(A + "content") is None and not any(
                link.get("rel", "alternate") == "alternate"
                for link in entry.findall(A + "link")):
            out.append(f"{where}: no atom:content and no alternate link")
        entry_id = (entry.findtext(A + "id") or "").strip()
        if entry_id in ids:
            out.append(f"{where}: atom:id {entry_id} repeats another entry's")
        ids.add(entry_id)
        for author in entry.findall(A + "author") + root.findall(A + "author"):
            if not (author.findtext(A + "name") or "").strip():
                out.append(f"{where}: atom:author without atom:name")
    return out
