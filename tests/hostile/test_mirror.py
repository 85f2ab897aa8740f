"""Hostile records already in a mirror tree: a published drop's drop.json damaged or
forged (by hand, an older tool, a half-synced copy). The next drop is refused in one line
naming that drop.json before anything is published (the page and the feed are made from
every drop.json, so a drop published next to a damaged one would never be listed), and
what the schema lets through reaches the page escaped in every context."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.catalogue import make_sandbox, refused, run
from tests.hostile.test_records import CONTENT, IMAGE, good_manifest

FIRST = Path("mirror/weekly/12/20261201.0/Cloud/drop.json")
NEXT = ["drop", "--release", "12", "--weekly", "20261208.0", "--mirror", "mirror", "build"]


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A mirror holding one weekly drop, and a build dir to publish the next from."""
    root = make_sandbox(tmp_path / "sandbox")
    (root / "build").mkdir()
    (root / "build" / IMAGE).write_bytes(CONTENT)
    (root / "build" / "manifest.json").write_text(json.dumps(good_manifest()))
    code, _, err = run(root, ["drop", "--release", "12", "--weekly", "20261201.0",
                              "--mirror", "mirror", "build"])
    assert code == 0, err
    return root


def key(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(r: dict[str, Any]) -> None:
        if value is None:
            del r[name]
        else:
            r[name] = value
    return change


def image(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(r: dict[str, Any]) -> None:
        r["images"][0][name] = value
    return change


XSS = 'x"><svg onload=alert(1)>'

#: (id, a change to the first drop's record, what the refusal names); None: raw bytes
DROP_RECORDS: list[tuple[str, Callable[[dict[str, Any]], None] | bytes, str]] = [
    ("not-json", b"{drop: ", "not valid JSON"),
    ("binary", bytes(range(256)), "not valid JSON"),
    ("a-list", b"[]", "drop.json"),
    ("older-without-images", key("images", None), "images"),
    ("without-path", key("path", None), "path"),
    ("without-title", key("title", None), "title"),
    ("other-tool", key("drop", "pungi"), "drop"),
    ("title-newline", key("title", "12 weekly\n<script>"), "title"),
    ("path-xss", key("path", XSS), "path"),
    ("path-dotdot", key("path", "../../../etc"), "path"),
    ("path-absolute", key("path", "/etc"), "path"),
    ("published-number", key("published", 20261201), "published"),
    ("published-control", key("published", "\x01\u202eevil"), "published"),
    ("published-xss", key("published", XSS), "published"),
    ("release-xss", key("id", {"release": XSS, "milestone": None, "weekly": "20261201.0"}),
     "release"),
    ("weekly-xss", key("id", {"release": "12", "milestone": None, "weekly": XSS}), "weekly"),
    ("milestone-gamma", key("id", {"release": "12", "milestone": "Gamma", "weekly": None}),
     "milestone"),
    ("images-object", key("images", {"path": "x"}), "images"),
    ("verdict-xss", image("boot_test", XSS), "boot_test"),
    ("verdict-true", image("boot_test", True), "boot_test"),
    ("image-path-xss", image("path", XSS), "path"),
    ("image-path-dotdot", image("path", "../../x.qcow2"), "path"),
    ("image-file-xss", image("file", XSS), "file"),
    ("image-arch-xss", image("arch", XSS), "arch"),
    ("image-sha-short", image("sha256", "abc"), "sha256"),
    ("image-size-string", image("size", "25"), "size"),
    ("source-newline", image("boot_test_from", "local\nbuild"), "boot_test_from"),
    ("upload-no-id", image("uploads", [{"cloud": "ec2", "where": "us-east-1"}]), "image_id"),
    ("upload-cloud", image("uploads", [{"cloud": "azure", "where": "x", "image_id": "i"}]),
     "cloud"),
    ("nvrs-xss", key("nvrs", [XSS]), "nvrs"),
]


@pytest.mark.parametrize("change,names", [(c, n) for _, c, n in DROP_RECORDS],
                         ids=[i for i, _, _ in DROP_RECORDS])
def test_a_damaged_drop_record_in_the_mirror_stops_the_next_drop(
        sandbox: Path, change: Callable[[dict[str, Any]], None] | bytes, names: str) -> None:
    path = sandbox / FIRST
    if isinstance(change, bytes):
        path.write_bytes(change)
    else:
        record = json.loads(path.read_text())
        change(record)
        path.write_text(json.dumps(record))
    line = refused(sandbox, NEXT, ("--mirror",))
    assert "drop.json is damaged" in line and names in line, line
    assert "fix or remove that drop's drop.json" in line, line
    assert "<svg" not in line or "'" in line  # quoted, never raw in a terminal


def test_what_the_record_schema_lets_through_is_escaped_on_the_page(sandbox: Path) -> None:
    """A title may hold any one-line text: on the page and in the feed it is text."""
    path = sandbox / FIRST
    record = json.loads(path.read_text())
    record["title"] = XSS
    record["images"][0]["boot_test_from"] = XSS
    path.write_text(json.dumps(record))
    code, _, err = run(sandbox, NEXT)
    assert code == 0, err
    page = (sandbox / "mirror" / "index.html").read_text()
    feed = (sandbox / "mirror" / "drops.atom").read_text()
    assert "<svg" not in page and "<svg" not in feed
    assert "&lt;svg onload=alert(1)&gt;" in page
    assert 'id="drop-weekly-12-20261201-0-Cloud"' in page


@pytest.mark.parametrize("text", ['javascript:alert(1)//"><svg>\n',
                                  "https://mirror.example.org/" + "a" * 5000 + "\n"],
                         ids=["javascript", "over-2048"])
def test_a_damaged_kept_base_url_stops_the_next_drop(sandbox: Path, text: str) -> None:
    """The first --base-url is kept in the mirror, and the feed's links are made of it."""
    kept = sandbox / "mirror" / ".koji-image-staging" / "base-url"
    kept.parent.mkdir(exist_ok=True)
    kept.write_text(text)
    line = refused(sandbox, NEXT, "--mirror")
    assert "base-url is damaged" in line and "fix or remove it" in line, line


def test_a_drop_json_that_is_not_ours_elsewhere_in_the_mirror_is_left_alone(
        sandbox: Path) -> None:
    """Only releases/ and weekly/ are this tool's; a mirror holds other trees too."""
    (sandbox / "mirror" / "other").mkdir()
    (sandbox / "mirror" / "other" / "drop.json").write_text('{"name": "x"}')
    code, _, err = run(sandbox, NEXT)
    assert code == 0, err
    assert "20261208.0" in (sandbox / "mirror" / "index.html").read_text()
