"""Image drops from real images: ``koji-image drop`` from one real local build (built once
per session: x86_64, qcow2, 2 GiB, boot test on), and ``koji-image weekly`` run twice
against the stand-in hub and kojid (tests/kojistub), building for real through them.

What is checked with real tools: ``sha256sum -c`` and ``gpg --verify`` on CHECKSUM,
productmd's ``Images().load()`` on images.json, the Atom feed against RFC 4287
(tests/atomcheck.py) and with feedparser, and the index page in Debian's headless
Chromium (tests/browser.py): no console errors, every link a file in the tree, and a
screenshot kept under tests/artifacts/.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import productmd.images
import pytest

from koji_image_plugin.spec.arches import Arch
from koji_image_plugin.spec.firmware import Firmware
from tests import atomcheck
from tests.conftest import REPO, is_root
from tests.koji.test_plugins import hub, kojid, tree_server  # noqa: F401 - fixtures
from tests.kojistub import client_session, start_kojid, write_client_config

KOJI_IMAGE = str(Path(sys.executable).with_name("koji-image"))
ARTIFACTS = REPO / "tests" / "artifacts"
PRESEED = REPO / "koji_image_plugin" / "data" / "debian.preseed"
BETA = "releases/test/19_Beta/Cloud"

pytestmark = [pytest.mark.vm,
              pytest.mark.skipif(not is_root(), reason="libvirt guests and mounts need root")]


def koji_image(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([KOJI_IMAGE, *args], capture_output=True, text=True,
                          timeout=timeout)
    print(f"$ koji-image {' '.join(args)}\n{done.stdout}{done.stderr}")
    return done


@pytest.fixture(scope="session")
def local_build(tmp_path_factory: pytest.TempPathFactory, trees: None) -> Path:
    """One real local build for every drop test: koji-image build with the boot test."""
    work = tmp_path_factory.mktemp("drop-build")
    spec = work / "image.yaml"
    spec.write_text(
        "name: Test-Cloud-Base\nversion: '12'\ndistro: Debian-12\narches: [x86_64]\n"
        "install_tree: file:///var/cache/koji-image-plugin/trees/debian-12-$arch\n"
        "disk_size: 2\nvariants: [generic]\nformats: [qcow2]\nfirmware: bios\n"
        "boot_test: {enabled: true, timeout: 600, profiles: {generic: [nocloud]}}\n")
    t0 = time.monotonic()
    done = koji_image("build", str(spec), "--output", str(work / "out"), "--release", "1")
    print(f"local build for the drop tests: {time.monotonic() - t0:.0f} s")
    assert done.returncode == 0, done.stderr
    return work / "out"


#: the local build's image: a BIOS one (one boot; the drop's words for a hybrid image's
#: two are tested in test_drops_input.py), booted under each firmware it boots with
FIRMWARE = Firmware.BIOS
BOOTS = Arch.X86_64.boot_firmwares(FIRMWARE)
UNDER = "under " + " and ".join(f.label for f in BOOTS)


@pytest.fixture(scope="session")
def gpg_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A throwaway signing key in its own GNUPGHOME."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
                    "Drops Test <drops@example.invalid>", "ed25519", "sign", "never"],
                   env=env, check=True, capture_output=True)
    out = subprocess.run(["gpg", "--list-keys", "--with-colons"], env=env, check=True,
                         capture_output=True, text=True).stdout
    fpr = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr"))
    return home, fpr


def check_drop_dir(drop: Path, files: list[str]) -> None:
    """sha256sum -c accepts CHECKSUM and names exactly ``files``; productmd loads
    images.json with the same files and checksums."""
    check = subprocess.run(["sha256sum", "-c", "CHECKSUM"], cwd=drop, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert sorted(line.split(": ")[0] for line in check.stdout.splitlines()) == sorted(files)
    assert all(line.endswith(": OK") for line in check.stdout.splitlines())
    im = productmd.images.Images()
    im.load(str(drop / "images.json"))
    loaded = {img.path: img.checksums["sha256"] for arches in im.images.values()
              for imgs in arches.values() for img in imgs}
    assert sorted(loaded) == sorted(files)
    for path, digest in loaded.items():
        assert f"SHA256 ({path}) = {digest}" in (drop / "CHECKSUM").read_text()


def check_feed(mirror: Path, titles: list[str]) -> None:
    data = (mirror / "drops.atom").read_bytes()
    assert atomcheck.problems(data) == []
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0 and parsed.version == "atom10", parsed.get("bozo_exception")
    assert [e.title for e in parsed.entries] == [f"New cloud image drop: {t}" for t in titles]


@pytest.fixture(scope="module")
def beta_mirror(tmp_path_factory: pytest.TempPathFactory, local_build: Path,
                gpg_home: tuple[Path, str]) -> Path:
    """A Beta drop of the real build, signed, with the upload record issue 4 writes."""
    build = tmp_path_factory.mktemp("beta-build") / "out"
    shutil.copytree(local_build, build, copy_function=os.link)
    (build / "uploads.json").write_text(json.dumps({"version": 1, "ec2": [
        {"arch": "x86_64", "variant": "generic", "region": "us-east-1",
         "image_id": "ami-0123456789abcdef0", "snapshot_id": "snap-1", "name": "n",
         "public": True},
        {"arch": "x86_64", "variant": "generic", "region": "eu-west-1",
         "image_id": "ami-0fedcba9876543210", "snapshot_id": "snap-2", "name": "n",
         "public": True}], "glance": []}))
    mirror = tmp_path_factory.mktemp("mirror")
    home, key = gpg_home
    t0 = time.monotonic()
    done = koji_image("drop", "--release", "19", "--milestone", "Beta", str(build),
                      "--local-builds",
                      "--mirror", str(mirror), "--gpg-key", key, "--gpg-homedir", str(home),
                      "--bug-url", "https://bugs.example.org/cloud")
    print(f"drop of one 165 MB image, signed: {time.monotonic() - t0:.1f} s")
    assert done.returncode == 0, done.stderr
    return mirror


def test_a_beta_drop_of_a_real_build_verifies_loads_and_is_in_the_feed(
        beta_mirror: Path, gpg_home: tuple[Path, str]) -> None:
    drop = beta_mirror / BETA
    image = "x86_64/generic/Test-Cloud-Base-12-1.x86_64.qcow2"
    assert (drop / image).is_file()
    check_drop_dir(drop, [image])
    verify = subprocess.run(["gpg", "--verify", "CHECKSUM"], cwd=drop, capture_output=True,
                            text=True, env=dict(os.environ, GNUPGHOME=str(gpg_home[0])))
    assert verify.returncode == 0 and "Good signature" in verify.stderr, verify.stderr
    readme = (drop / "README").read_text()
    for text in ("Beta milestone of release 19", "sha256sum -c CHECKSUM", "OpenStack",
                 "CloudStack", "Eucalyptus", "us-east-1", "ami-0123456789abcdef0",
                 "eu-west-1", "https://bugs.example.org/cloud", "booted in its boot test",
                 "The boot verdicts above come from:\n  local build Test-Cloud-Base-12-1 "
                 "(its manifest.json; not in Koji)", "they are not\n  traced in Koji",
                 "Their packages came from:\n  local build Test-Cloud-Base-12-1: the install "
                 "tree and repos of its spec, not a Koji repo",
                 "Test-Cloud-Base-12-1.x86_64.qcow2  (",
                 f"bytes, {FIRMWARE.value} firmware, booted in its boot test)\n"
                 f"    booted on: NoCloud seed {UNDER}\n"):
        assert text in readme, text
    page = (beta_mirror / "index.html").read_text()
    record = json.loads((drop / "drop.json").read_text())
    assert record["images"][0]["booted_on"] == ["nocloud"]
    assert record["images"][0]["firmware"] == FIRMWARE.value
    assert record["images"][0]["booted_under"] == [f.value for f in BOOTS]
    for text in ("19 Beta", "ami-0fedcba9876543210", record["images"][0]["sha256"],
                 "passed", "x86_64", "qcow2", "generic",
                 f"<small>booted on: NoCloud seed {UNDER}</small>",
                 "from local build Test-Cloud-Base-12-1 (its manifest.json; not in Koji)"):
        assert text in page, text
    check_feed(beta_mirror, ["19 Beta"])
    assert not (beta_mirror / ".koji-image-staging").exists()


def test_publishing_the_same_drop_again_changes_nothing(beta_mirror: Path,
                                                        local_build: Path) -> None:
    def tree() -> dict[Path, tuple[int, int]]:
        return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in beta_mirror.rglob("*")}

    before = tree()
    done = koji_image("drop", "--release", "19", "--milestone", "Beta", str(local_build),
                      "--local-builds",
                      "--mirror", str(beta_mirror))
    assert done.returncode == 0, done.stderr
    assert "already published, unchanged" in done.stdout
    assert tree() == before  # the drop, the page and the feed: not one file rewritten


def test_an_image_that_failed_its_boot_test_is_refused_unless_forced(
        beta_mirror: Path, local_build: Path, tmp_path: Path) -> None:
    # The real build, with its recorded verdict turned into a failure: what a build whose
    # guest did not boot leaves (images, manifest, boot_tests[].passed false).
    failed = tmp_path / "failed"
    shutil.copytree(local_build, failed, copy_function=os.link)
    manifest = json.loads((failed / "manifest.json").read_text())
    for boot in manifest["boot_tests"]:
        boot["passed"] = False
    (failed / "manifest.json").unlink()
    (failed / "manifest.json").write_text(json.dumps(manifest))
    before = sorted(p.relative_to(beta_mirror) for p in beta_mirror.rglob("*"))
    done = koji_image("drop", "--release", "19", "--milestone", "Final", str(failed),
                      "--local-builds",
                      "--mirror", str(beta_mirror))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "koji-image: --force: Test-Cloud-Base-12-1.x86_64.qcow2 did not pass a boot test; "
        "rebuild with the boot test on, or publish with --force (the page and README will "
        "say so)"]
    assert sorted(p.relative_to(beta_mirror) for p in beta_mirror.rglob("*")) == before

    done = koji_image("drop", "--release", "19", "--milestone", "Final", str(failed),
                      "--local-builds",
                      "--mirror", str(beta_mirror), "--force")
    assert done.returncode == 0, done.stderr
    final = beta_mirror / "releases/19/Cloud"
    check_drop_dir(final, ["x86_64/generic/Test-Cloud-Base-12-1.x86_64.qcow2"])
    assert "FAILED its boot test" in (final / "README").read_text()
    assert "published with --force" in (final / "README").read_text()
    page = (beta_mirror / "index.html").read_text()
    assert "Published with --force" in page and ">failed<" in page
    check_feed(beta_mirror, ["19 Final", "19 Beta"])


def test_a_drop_that_fails_midway_leaves_nothing_in_the_tree(
        local_build: Path, tmp_path: Path, gpg_home: tuple[Path, str]) -> None:
    mirror = tmp_path / "mirror"
    # a signing key that is not there: everything is fetched, then gpg fails
    done = koji_image("drop", "--release", "19", "--milestone", "Alpha", str(local_build),
                      "--local-builds",
                      "--mirror", str(mirror), "--gpg-key", "NOSUCHKEY",
                      "--gpg-homedir", str(gpg_home[0]))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "koji-image: --gpg-key: gpg could not sign CHECKSUM with NOSUCHKEY: gpg: "
        "clear-sign failed: No secret key; check the key id and --gpg-homedir"], done.stderr
    assert not mirror.exists()
    # an image changed since its build: refused on the checksum, nothing published
    changed = tmp_path / "changed"
    shutil.copytree(local_build, changed)
    with open(changed / "Test-Cloud-Base-12-1.x86_64.qcow2", "ab") as f:
        f.write(b"\0")
    done = koji_image("drop", "--release", "19", "--milestone", "Alpha", str(changed),
                      "--local-builds",
                      "--mirror", str(mirror))
    assert done.returncode == 1
    assert "the file changed since the build: rebuild it" in done.stderr
    assert not mirror.exists()


def test_the_index_page_in_headless_chromium(beta_mirror: Path, tmp_path: Path) -> None:
    from tests.browser import Chromium

    browser = Chromium()
    try:
        # The checker itself: a page with a console error, an exception and a missing
        # file must be reported, or a clean result below would mean nothing.
        bad = tmp_path / "bad.html"
        bad.write_text('<!DOCTYPE html><title>bad</title><a href="missing.txt">x</a>'
                       '<img src="nope.png"><script>console.error("boom"); nosuch();'
                       "</script>")
        report = browser.load(bad.as_uri())
        assert any("boom" in e for e in report.errors), report.errors
        assert any(e.startswith("exception") for e in report.errors), report.errors
        assert any("ERR_FILE_NOT_FOUND" in e for e in report.errors), report.errors

        shot = ARTIFACTS / "drops-index.png"
        t0 = time.monotonic()
        report = browser.load((beta_mirror / "index.html").as_uri(), shot)
        print(f"index page in chromium: {time.monotonic() - t0:.1f} s; screenshot: {shot}")
    finally:
        browser.close()
    assert report.errors == []
    assert report.title == "Cloud image drops"
    files = [link for link in report.links if not link.startswith("data:")]
    root = beta_mirror.resolve().as_uri() + "/"
    for link in files:
        assert link.startswith(root), link
        path = beta_mirror / link.removeprefix(root).split("#")[0]
        assert path.is_file(), link
    names = {link.rsplit("/", 1)[-1] for link in files}
    assert {"drops.atom", "README", "CHECKSUM", "images.json",
            "Test-Cloud-Base-12-1.x86_64.qcow2"} <= names
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- the weekly job against the stand-in hub and kojid ----------------------------------

@pytest.fixture
def weekly_config(tmp_path: Path, hub: Any, tree_server: str) -> Path:  # noqa: F811
    koji_conf = write_client_config(tmp_path / "koji.conf", hub)
    (tmp_path / "password").write_text("releng-pw\n")
    # the preseed beside the spec: a spec's files are kept inside its directory
    (tmp_path / "debian.preseed").write_bytes(PRESEED.read_bytes())
    (tmp_path / "rawhide.yaml").write_text(
        "name: Test-Cloud-Base\nversion: rawhide\ndistro: Debian-12\narches: [x86_64]\n"
        f"install_tree: '{tree_server}'\ndisk_size: 2\nformats: [qcow2]\n"
        # a BIOS image: one boot (the weekly job is what this proves; hybrid images'
        # boots under both firmwares are test_vm.py's)
        "preseed: debian.preseed\nfirmware: bios\n"
        "boot_test: {enabled: true, timeout: 600, profiles: {generic: [nocloud]}}\n")
    config = tmp_path / "weekly.yaml"
    config.write_text(
        f"mirror: {tmp_path / 'mirror'}\nstate_dir: {tmp_path / 'state'}\nkeep: 2\n"
        "poll_interval: 1\ntimeout: 1800\n"
        f"koji: {{profile: kojistub, config: {koji_conf}, user: releng, "
        f"password_file: {tmp_path / 'password'}}}\n"
        "branches:\n  - {release: rawhide, spec: rawhide.yaml, target: f19}\n")
    return config


def test_weekly_twice_one_build_one_drop_old_weeklies_pruned(
        weekly_config: Path, hub: Any, kojid: Any, local_build: Path) -> None:  # noqa: F811
    mirror = weekly_config.parent / "mirror"
    today = datetime.datetime.now(datetime.UTC).date()
    old = [(today - datetime.timedelta(days=d)).strftime("%Y%m%d") + ".0" for d in (14, 7)]
    for weekly_id in old:  # two earlier weeklies of the branch, from the real local build
        done = koji_image("drop", "--release", "rawhide", "--weekly", weekly_id,
                          str(local_build), "--mirror", str(mirror))
        assert done.returncode == 0, done.stderr

    t0 = time.monotonic()
    first = koji_image("weekly", str(weekly_config))
    print(f"weekly, first run (submit, build, boot test, drop): {time.monotonic() - t0:.0f} s")
    assert first.returncode == 0, first.stderr
    day = today.strftime("%Y%m%d")
    new = f"weekly/rawhide/{day}.0/Cloud"
    assert "rawhide: published (task " in first.stdout
    assert f"pruned {mirror / 'weekly/rawhide' / old[0] / 'Cloud'}" in first.stdout

    t0 = time.monotonic()
    second = koji_image("weekly", str(weekly_config))
    print(f"weekly, second run: {time.monotonic() - t0:.1f} s")
    assert second.returncode == 0, second.stderr
    assert "rawhide: already published" in second.stdout

    session = client_session(hub)
    builds = [t for t in session.listTasks() if t["method"] == "cloudImageBuild"]
    assert len(builds) == 1, builds
    assert session.getTaskInfo(builds[0]["id"], request=True)["request"][4]["release"] \
        == f"{day}.0"
    assert sorted(p.name for p in (mirror / "weekly/rawhide").iterdir()) == \
        sorted([old[1], f"{day}.0"])
    image = f"x86_64/generic/Test-Cloud-Base-rawhide-{day}.0.x86_64.qcow2"
    check_drop_dir(mirror / new, [image])
    record = json.loads((mirror / new / "drop.json").read_text())
    assert [i["boot_test"] for i in record["images"]] == ["passed"]
    assert "Rawhide weekly" in (mirror / new / "README").read_text()
    check_feed(mirror, [f"Rawhide weekly {day}.0", f"Rawhide weekly {old[1]}"])
    page = (mirror / "index.html").read_text()
    assert f"{day}.0" in page and old[0] not in page
    state = json.loads((weekly_config.parent / "state" / "rawhide.json").read_text())
    assert [(r["release"], r["status"]) for r in state["runs"]] == [(f"{day}.0", "published")]
    assert not list(mirror.glob(".koji-image-staging*"))


@pytest.fixture(autouse=True, scope="module")
def _artifacts() -> Iterator[None]:
    ARTIFACTS.mkdir(exist_ok=True)
    yield


def test_weekly_resumes_a_killed_run_and_counts_reruns_of_a_day(
        weekly_config: Path, hub: Any, tmp_path: Path) -> None:  # noqa: F811
    """A build that fails (the install tree is not there): the job killed while waiting
    waits for the same task next time; a run after a failed one submits release .1.
    kojid starts only after the kill, so the first run is surely still waiting then."""
    spec = weekly_config.parent / "rawhide.yaml"
    spec.write_text(spec.read_text().replace("/debian-12-$arch/", "/no-such-tree-$arch/"))
    state = weekly_config.parent / "state" / "rawhide.json"
    argv = [KOJI_IMAGE, "weekly", str(weekly_config), "--date", "2026-01-05"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (state.exists() and "submitted" in state.read_text()):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.terminate()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "builds already submitted go on in Koji, and the next run waits for them" in err
    assert [r["status"] for r in json.loads(state.read_text())["runs"]] == ["submitted"]
    conf = tmp_path / "cloud_image.conf"
    conf.write_text("[timeouts]\ninactivity = 120\ninstall = 1800\n")
    daemon = start_kojid(hub.url, hub.topurl, "builder", "builder-pw", tmp_path / "kojid",
                         plugin_path=REPO / "builder", plugins=("cloud_image",),
                         env={"KOJI_CLOUD_IMAGE_CONF": str(conf)})
    try:
        second, third = (koji_image(*argv[1:], timeout=600) for _ in range(2))
    finally:
        daemon.stop()

    assert second.returncode == 1, second.stderr
    assert "waiting again for task 1 of an earlier run today" in second.stderr
    assert "rawhide: failed (task 1): task 1 FAILED: x86_64: " in second.stdout
    assert "no-such-tree" in second.stdout  # the arch task's own error, from the hub
    assert third.returncode == 1
    assert "submitted scratch build 20260105.1 as task" in third.stderr

    session = client_session(hub)
    releases = sorted(session.getTaskInfo(t["id"], request=True)["request"][4]["release"]
                      for t in session.listTasks() if t["method"] == "cloudImageBuild")
    assert releases == ["20260105.0", "20260105.1"]
    assert [(r["release"], r["status"]) for r in json.loads(state.read_text())["runs"]] \
        == [("20260105.0", "failed"), ("20260105.1", "failed")]
    mirror = weekly_config.parent / "mirror"
    assert not (mirror / "weekly").exists()
    assert "No drops yet" in (mirror / "index.html").read_text()


def test_weekly_submits_every_branch_before_waiting_and_reports_each(
        weekly_config: Path, hub: Any, kojid: Any) -> None:  # noqa: F811
    """Two branches whose builds fail at once (no install tree): both are submitted
    before the job waits, each gets its own outcome line, the job exits 1."""
    spec = weekly_config.parent / "rawhide.yaml"
    spec.write_text(spec.read_text().replace("/debian-12-$arch/", "/no-such-tree-$arch/"))
    (weekly_config.parent / "f19.yaml").write_text(
        spec.read_text().replace("version: rawhide", "version: '19'"))
    weekly_config.write_text(weekly_config.read_text() +
                             "  - {release: '19', spec: f19.yaml, target: f19}\n")
    done = koji_image("weekly", str(weekly_config), timeout=600)
    assert done.returncode == 1
    log = done.stderr.splitlines()
    submitted = [i for i, line in enumerate(log) if "submitted scratch build" in line]
    waited = [i for i, line in enumerate(log) if " task " in line and "): " in line]
    assert len(submitted) == 2 and submitted[1] < min(waited), done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith("rawhide: failed (task 1): task 1 FAILED: x86_64: "), out
    assert re.match(r"19: failed \(task (\d+)\): task \1 FAILED: x86_64: ", out[1]), out
