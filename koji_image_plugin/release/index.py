"""The mirror's front page (``index.html``) and Atom feed (``drops.atom``) over every drop.

Both are made from the ``drop.json`` records :mod:`publish` leaves in each drop, newest
first, and each is written to a temporary file and renamed into place, so a mirror sync
sees the old page or the new one. The page is static HTML without scripts; every link in
it is relative to the mirror root. The feed's ids are ``urn:uuid`` values derived from
the base URL and the drop's path, so they stay the same when the feed is rewritten
(RFC 4287 section 4.2.6), and its links are absolute under the base URL.
"""

from __future__ import annotations

import datetime
import html
import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ..files import atomic_write
from ..spec.bootprofiles import titles
from ..spec.firmware import under
from ..units import human_size
from .drop import Verdict
from .publish import BASE_URL_FILE, STAGING, drop_dirs, kept_base_url, read_record

ATOM_NS = "http://www.w3.org/2005/Atom"
INDEX = "index.html"
FEED = "drops.atom"
MAX_FEED_ENTRIES = 50

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left;
         vertical-align: top; font-size: 0.9em; }
th { background: #eee; }
code { font-size: 0.85em; word-break: break-all; }
.passed { color: #060; } .failed, .warn { color: #a00; font-weight: bold; }
.not-run { color: #a60; font-weight: bold; }
.meta a { margin-right: 1em; }
"""


def _records(mirror: Path) -> list[dict[str, Any]]:
    out = []
    for d in drop_dirs(mirror):
        out.append(dict(read_record(d), path=d.relative_to(mirror).as_posix()))
    out.sort(key=lambda r: (r["published"], r["path"]), reverse=True)
    return out


def _anchor(rec: dict[str, Any]) -> str:
    """The drop's section id: only letters, digits, _ and -, whatever the record says."""
    return "drop-" + re.sub(r"[^A-Za-z0-9_]", "-", str(rec["path"]))


#: the CSS class of each boot verdict; anything else (a damaged record) gets none
VERDICT_CLASS = {v.value: v.value.replace(" ", "-") for v in Verdict}


def _uploads(img: dict[str, Any]) -> str:
    parts = []
    for u in img.get("uploads") or []:
        if u.get("cloud") == "ec2":
            parts.append(f"{html.escape(u['where'])}: <code>{html.escape(u['image_id'])}</code>")
        else:
            parts.append(f"Glance {html.escape(u['where'])}: "
                         f"<code>{html.escape(u['image_id'])}</code>")
    return "<br>".join(parts) if parts else "not uploaded"


def render_index(mirror: Path) -> str:
    """The page depends only on the drops, so rewriting it for an unchanged tree gives
    the same bytes (and :func:`write_index` then leaves the file alone)."""
    records = _records(mirror)
    h = html.escape
    latest = f"Latest drop published {h(records[0]['published'])}. " if records else ""
    body = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Cloud image drops</title>",
        '<link rel="icon" href="data:,">',
        f'<link rel="alternate" type="application/atom+xml" title="New drops" '
        f'href="{FEED}">',
        f"<style>{STYLE}</style>", "</head>", "<body>",
        "<h1>Cloud image drops</h1>",
        f'<p>Milestone and weekly drops, newest first. <a href="{FEED}">Atom feed of new '
        f"drops</a>. {latest}Verify a download "
        "with <code>sha256sum -c CHECKSUM</code> in its drop's directory.</p>",
    ]
    if not records:
        body.append("<p>No drops yet.</p>")
    for rec in records:
        path = rec["path"]
        kind = "weekly" if rec["id"].get("weekly") else "milestone"
        body += [
            f'<h2 id="{_anchor(rec)}">{h(rec["title"])} <small>({kind})</small></h2>',
            f'<p class="meta">Published {h(rec["published"])} from '
            f'{h(", ".join(rec.get("nvrs") or []))}.<br>'
            f'<a href="{h(path)}/README">README</a>'
            f'<a href="{h(path)}/CHECKSUM">CHECKSUM</a>'
            f'<a href="{h(path)}/images.json">images.json</a></p>',
        ]
        if rec.get("forced"):
            body.append('<p class="warn">Published with --force: images marked below did '
                        "not pass a boot test.</p>")
        body += ["<table>", "<tr><th>image</th><th>arch</th><th>type</th><th>format</th>"
                 "<th>size</th><th>SHA-256</th><th>boot test (verdict from)</th>"
                 "<th>AMI ids / uploads</th></tr>"]
        for img in rec["images"]:
            verdict = str(img["boot_test"])
            css = VERDICT_CLASS.get(verdict, "")
            source = img.get("boot_test_from") or "not recorded (an older drop)"
            clouds = titles(img.get("booted_on") or [])
            fws = under(img.get("booted_under") or [])
            booted = f"<br><small>booted on: {h(clouds)} {h(fws)}</small>" if clouds else ""
            body.append(
                f'<tr><td><a href="{h(path)}/{h(img["path"])}">{h(img["file"])}</a></td>'
                f'<td>{h(img["arch"])}</td><td>{h(img["type"])}</td>'
                f'<td>{h(img["format"])}</td>'
                f'<td title="{int(img["size"])} bytes">{human_size(int(img["size"]))}</td>'
                f'<td><code>{h(img["sha256"])}</code></td>'
                f'<td class="{h(css)}">{h(verdict)}{booted}<br><small>from {h(source)}</small></td>'
                f'<td>{_uploads(img)}</td></tr>')
        body.append("</table>")
    body += ["</body>", "</html>", ""]
    return "\n".join(body)


def _feed_id(base_url: str, path: str = "") -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, base_url + path).urn


def render_feed(mirror: Path, base_url: str) -> str:
    """Atom 1.0: feed id, title, updated, author, self link; per entry id, title, updated,
    published, an alternate link to the drop's section of the page, a summary. The
    feed's updated time is its newest entry's (an empty feed's: the epoch), so an
    unchanged tree gives the same feed."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    records = _records(mirror)[:MAX_FEED_ENTRIES]
    updated = records[0]["published"] if records else \
        datetime.datetime.fromtimestamp(0, datetime.UTC).isoformat()
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None,
            **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", _feed_id(base, FEED))
    sub(feed, "title", "Cloud image drops")
    sub(feed, "subtitle", "Milestone and weekly cloud image drops")
    sub(feed, "updated", updated)
    author = sub(feed, "author")
    sub(author, "name", "koji-image-plugin release tooling")
    sub(feed, "link", rel="self", type="application/atom+xml", href=base + FEED)
    sub(feed, "link", rel="alternate", type="text/html", href=base + INDEX)
    sub(feed, "generator", "koji-image-plugin")
    for rec in records:
        entry = sub(feed, "entry")
        sub(entry, "id", _feed_id(base, rec["path"]))
        sub(entry, "title", f"New cloud image drop: {rec['title']}")
        sub(entry, "published", rec["published"])
        sub(entry, "updated", rec["published"])
        sub(entry, "link", rel="alternate", type="text/html",
            href=f"{base}{INDEX}#{_anchor(rec)}")
        sub(entry, "link", rel="related", type="text/plain",
            href=f"{base}{rec['path']}/README")
        images = rec["images"]
        booted = sum(1 for i in images if i["boot_test"] == "passed")
        summary = (f"{len(images)} images ({', '.join(sorted({i['arch'] for i in images}))}"
                   f"), {booted} of them booted in their boot test; from "
                   f"{', '.join(rec.get('nvrs') or [])}.")
        if rec.get("forced"):
            summary += " Published with --force: some images did not pass a boot test."
        sub(entry, "summary", summary, type="text")
    ET.indent(feed)
    return "<?xml version='1.0' encoding='utf-8'?>\n" + ET.tostring(
        feed, encoding="unicode") + "\n"




def write_index(mirror: Path, base_url: str | None = None) -> tuple[Path, Path]:
    """Rewrite ``index.html`` and ``drops.atom`` at the mirror root."""
    mirror.mkdir(parents=True, exist_ok=True)
    # The feed's ids and links are made from the base URL; they must not change with
    # whoever runs next, so the first one given is kept beside the staging dir and
    # reused when none is given.
    kept = mirror / STAGING / BASE_URL_FILE
    if base_url:
        kept.parent.mkdir(exist_ok=True)
        atomic_write(kept, base_url + "\n", only_if_changed=True)
    else:
        base_url = kept_base_url(mirror)
    base = base_url or mirror.resolve().as_uri() + "/"
    atomic_write(mirror / INDEX, render_index(mirror), only_if_changed=True)
    atomic_write(mirror / FEED, render_feed(mirror, base), only_if_changed=True)
    return mirror / INDEX, mirror / FEED
