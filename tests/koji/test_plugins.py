"""The three Koji plugins, loaded by path the way Koji loads them, driven through the real
koji library and CLI against the stand-in hub and kojid (tests/kojistub).

The fast tests cover what is refused and where; the VM test runs one build end to end:
CLI submit -> hub plugin -> kojid parent and child -> the real pipeline (offline tree,
TCG here) -> import -> tag -> ``koji cloud-image-info``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import koji
import pytest

from koji_image_plugin.koji import archivetypes
from koji_image_plugin.spec.formats import ImageFormat
from tests.conftest import REPO, TREES, host_state, is_root
from tests.kojistub import (
    client_session,
    free_port,
    run_cli,
    start_hub,
    start_kojid,
    write_client_config,
)
from tests.proc import serve_http

GOOD = {"distro": "Debian-12", "install_tree": "http://192.168.122.1:8/debian-12-$arch/",
        "disk_size": 2}
SEED = {
    "users": [
        {"name": "admin", "password": "admin-pw", "perms": ["admin"]},
        {"name": "releng", "password": "releng-pw", "perms": ["image"]},
        {"name": "alice", "password": "alice-pw"},
        {"name": "builder", "password": "builder-pw", "host": True},
    ],
    "hosts": [{"name": "builder", "arches": "x86_64 i386 i686",
               "channels": ["default", "image"], "capacity": 8.0}],
    "tags": [{"name": "f19-build", "arches": "x86_64 i686"},
             {"name": "el-build", "arches": "x86_64"},
             {"name": "arm-build", "arches": "aarch64"},
             {"name": "f19"}],
    "targets": [{"name": "f19", "build_tag": "f19-build", "dest_tag": "f19"},
                {"name": "arm", "build_tag": "arm-build", "dest_tag": "f19"},
                {"name": "el", "build_tag": "el-build", "dest_tag": "f19"}],
    "packages": [{"tag": "f19", "package": "Test-Cloud-Base", "owner": "releng"},
                 {"tag": "f19", "package": "Blocked-Image", "owner": "releng",
                  "blocked": True}],
}


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Any]:
    h = start_hub(tmp_path / "top", SEED, tmp_path, plugin_path=REPO / "hub",
                  plugins=("cloud_image",))
    yield h
    h.stop()


@pytest.fixture
def cli_conf(tmp_path: Path, hub: Any) -> Path:
    return write_client_config(tmp_path / "koji.conf", hub, plugin_paths=(REPO / "cli",))


def tasks(hub: Any) -> list[dict[str, Any]]:
    return list(hub.state()["tasks"].values()) if isinstance(hub.state()["tasks"], dict) \
        else list(hub.state()["tasks"])


@pytest.mark.parametrize("user,args,kwargs,error", [
    ("releng", ("Test-Cloud-Base", "12", "nosuch", ["x86_64"], GOOD), {},
     "target: no build target 'nosuch'"),
    ("releng", ("Test-Cloud-Base", "12", "el", "x86_64 i386", GOOD), {},
     "arches: i686 not among the arches of build tag el-build (x86_64)"),
    ("releng", ("Test-Cloud-Base", "12", "f19", ["x86_64"],
                dict(GOOD, install_tree="file:///srv/tree", preseed="/etc/shadow",
                     colour="blue")), {},
     "colour: unknown field"),
    ("releng", ("Test-Cloud-Base", "12", "f19", ["x86_64"],
                dict(GOOD, preseed="cli-cloud-image/1.2.abc/cloud.preseed")), {},
     "preseed: no uploaded file work/cli-cloud-image/1.2.abc/cloud.preseed"),
    ("releng", ("Test-Cloud-Base", "12", "f19", ["x86_64"], GOOD), {"priority": -5},
     "priority: only admins may create high-priority tasks"),
    ("alice", ("Test-Cloud-Base", "12", "f19", ["x86_64"], GOOD), {},
     "image permission required (logged in as alice)"),
    (None, ("Test-Cloud-Base", "12", "f19", ["x86_64"], GOOD), {},
     "you must be logged in for this operation"),
])
def test_hub_refuses_bad_requests_naming_the_field_and_queues_nothing(
        hub: Any, user: str | None, args: tuple[Any, ...], kwargs: dict[str, Any],
        error: str) -> None:
    session = client_session(hub, user, f"{user}-pw") if user else client_session(hub)
    with pytest.raises(koji.GenericError) as exc:
        session.cloudImageBuild(*args, **kwargs)
    assert error in str(exc.value)
    assert tasks(hub) == []


def test_hub_reports_every_problem_of_a_request_at_once(hub: Any) -> None:
    session = client_session(hub, "releng", "releng-pw")
    with pytest.raises(koji.ParameterError) as exc:
        session.cloudImageBuild("bad name", "1-2", "f19", ["ppc64le"],
                                dict(GOOD, install_tree="file:///srv", formats=["iso"],
                                     preseed="/etc/shadow", repos=["file:///r"]))
    message = str(exc.value)
    for field in ("arches[0]", "formats[0]", "install_tree", "name", "preseed",
                  "repos[0]", "version"):
        assert f"{field}: " in message, message


def test_a_good_request_is_queued_in_the_image_channel(hub: Any) -> None:
    admin = client_session(hub, "admin", "admin-pw")
    task_id = admin.cloudImageBuild("Test-Cloud-Base", "12", "f19", "x86_64 i386",
                                    GOOD, priority=-5)
    info = admin.getTaskInfo(task_id, request=True)
    assert info["method"] == "cloudImageBuild"
    assert admin.getChannel(info["channel_id"])["name"] == "image"
    assert info["priority"] == koji.PRIO_DEFAULT - 5
    name, version, target, arches, opts = info["request"]
    assert (name, version, target, arches) == ("Test-Cloud-Base", "12", "f19",
                                               ["x86_64", "i686"])
    assert opts == GOOD


def test_cli_refuses_a_bad_request_before_contacting_the_hub(hub: Any, cli_conf: Path,
                                                               tmp_path: Path) -> None:
    t0 = time.monotonic()
    done = run_cli(cli_conf, "releng", "wrong-password", "cloud-image-build",
                   "Test-Cloud-Base", "12", "f19", "file:///srv/tree", "ppc64le",
                   "--distro", "Debian-12", "--format", "iso", "--disk-size", "0",
                   "--kickstart", str(tmp_path / "missing.preseed"))
    elapsed = time.monotonic() - t0
    assert done.returncode == 2, done
    for line in ("arches[0]: 'ppc64le' is not allowed; use one of: x86_64, i686, aarch64",
                 "disk_size: 0 is out of range: at least 1",
                 "formats[0]: 'iso' is not allowed",
                 "install_tree: file:// is a path on the builder",
                 f"preseed: file '{tmp_path / 'missing.preseed'}' does not exist"):
        assert line in done.stderr, done.stderr
    # the wrong password proves it: a request that reached the hub would fail on login
    assert "password" not in done.stderr
    assert tasks(hub) == [] and not hub.state()["uploads"]
    print(f"CLI refused the request in {elapsed:.2f} s")


def test_cli_submits_a_koji_ini_config_and_uploads_the_preseed(
        hub: Any, cli_conf: Path, tmp_path: Path) -> None:
    preseed = tmp_path / "cloud.preseed"
    preseed.write_text("d-i debian-installer/locale string en_US\n")
    ini = tmp_path / "image-build.ini"
    ini.write_text("[image-build]\nname = Test-Cloud-Base\nversion = 12\ntarget = f19\n"
                   f"install_tree = {GOOD['install_tree']}\narches = x86_64,i386\n"
                   "format = qcow2,raw-xz\ndistro = Debian-12\nkickstart = cloud.preseed\n"
                   "disk_size = 2\nscratch = true\n")
    done = run_cli(cli_conf, "releng", "releng-pw", "cloud-image-build", "--config",
                   str(ini), "--nowait")
    assert done.returncode == 0, done.stderr
    task_id = int(done.stdout.split("Created task: ")[1].split()[0])
    session = client_session(hub, "releng", "releng-pw")
    _, _, _, arches, opts = session.getTaskInfo(task_id, request=True)["request"]
    assert arches == ["x86_64", "i686"]
    assert opts["formats"] == ["qcow2", "raw.xz"] and opts["scratch"] is True
    uploaded = Path(hub.topdir) / "work" / opts["preseed"]
    assert uploaded.read_text() == preseed.read_text()


def test_cloud_image_build_does_not_shadow_kojis_image_build(cli_conf: Path) -> None:
    done = run_cli(cli_conf, "releng", "releng-pw", "help")
    assert "cloud-image-build" in done.stdout and "cloud-image-info" in done.stdout
    builtin = run_cli(cli_conf, "releng", "releng-pw", "image-build", "--help")
    assert "--ova-option" in builtin.stdout  # still Koji's own command


def test_hub_and_cli_plugins_load_when_the_core_library_is_broken(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a dependency of the library broken (the library itself comes first on the path)
    broken = tmp_path / "shadow" / "jsonschema"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('simulated broken install')\n")
    monkeypatch.setenv("PYTHONPATH", str(broken.parent))
    h = start_hub(tmp_path / "top", SEED, tmp_path, plugin_path=REPO / "hub",
                  plugins=("cloud_image",))
    try:
        session = client_session(h, "releng", "releng-pw")
        assert session.hello()  # the hub stays up
        with pytest.raises(koji.GenericError, match="simulated broken install"):
            session.cloudImageBuild("Test-Cloud-Base", "12", "f19", ["x86_64"], GOOD)
        # so does the koji command: only the plugin's own commands report it
        conf = write_client_config(tmp_path / "koji.conf", h, plugin_paths=(REPO / "cli",))
        assert run_cli(conf, "releng", "releng-pw", "hello").returncode == 0
        done = run_cli(conf, "releng", "releng-pw", "cloud-image-build", "--help")
        assert done.returncode == 1
        assert "koji_image_plugin library does not import" in done.stderr
        assert "simulated broken install" in done.stderr
    finally:
        h.stop()


@pytest.fixture
def kojid(tmp_path: Path, hub: Any) -> Iterator[Any]:
    conf = tmp_path / "cloud_image.conf"
    conf.write_text("[timeouts]\ninactivity = 120\ninstall = 1800\n")
    d = start_kojid(hub.url, hub.topurl, "builder", "builder-pw", tmp_path / "kojid",
                    plugin_path=REPO / "builder", plugins=("cloud_image",),
                    env={"KOJI_CLOUD_IMAGE_CONF": str(conf)})
    yield d
    d.stop()


def wait_task(session: koji.ClientSession, task_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = session.getTaskInfo(task_id)
        if info["state"] in (koji.TASK_STATES[s] for s in ("CLOSED", "FAILED", "CANCELED")):
            return info
        time.sleep(0.5)
    raise AssertionError(f"task {task_id} did not finish in {timeout} s")


def test_an_aarch64_build_is_an_aarch64_child_that_an_x86_64_builder_leaves(
        hub: Any, kojid: Any) -> None:
    """Koji's canonical arch all the way: arm64 asked, an aarch64 child task queued, which
    kojid's TaskManager on an x86_64 host does not take (an aarch64 builder would)."""
    session = client_session(hub, "releng", "releng-pw")
    task_id = session.cloudImageBuild("Test-Cloud-Base", "12", "arm", ["arm64"], GOOD)
    assert session.getTaskInfo(task_id, request=True)["request"][3] == ["aarch64"]
    deadline = time.monotonic() + 60
    while not (children := session.getTaskChildren(task_id)):
        assert time.monotonic() < deadline, session.getTaskInfo(task_id)
        time.sleep(0.5)
    [child] = children
    assert (child["method"], child["arch"], child["label"]) == ("createCloudImage",
                                                                 "aarch64", "aarch64")
    assert session.getTaskInfo(child["id"], request=True)["request"][3] == "aarch64"
    queued = time.time()
    time.sleep(8)  # 16 of kojid's polls (sleeptime 0.5 s here): still not taken
    assert session.getTaskInfo(child["id"])["state"] == koji.TASK_STATES["FREE"]
    # and kojid was polling all along (each poll's host.updateHost stamps the host)
    assert session.getHost("builder")["update_ts"] > queued + 6
    admin = client_session(hub, "admin", "admin-pw")
    admin.cancelTask(task_id)
    assert wait_task(admin, task_id)["state"] == koji.TASK_STATES["CANCELED"]


def test_parent_refuses_a_package_not_on_the_tag_list(hub: Any, kojid: Any) -> None:
    session = client_session(hub, "releng", "releng-pw")
    for name, error in (("Unlisted-Image", "package (image) Unlisted-Image not in list "
                         "for tag f19; add it with: koji add-pkg"),
                        ("Blocked-Image", "package (image) Blocked-Image is blocked")):
        task_id = session.cloudImageBuild(name, "12", "f19", ["x86_64"], GOOD)
        assert wait_task(session, task_id)["state"] == koji.TASK_STATES["FAILED"]
        with pytest.raises(koji.GenericError, match=re.escape(error)):
            session.getTaskResult(task_id)
        assert session.getTaskChildren(task_id) == []
    assert not hub.state()["builds"]


def test_parent_names_the_command_that_adds_a_missing_archive_type(
        hub: Any, kojid: Any, cli_conf: Path) -> None:
    session = client_session(hub, "releng", "releng-pw")
    opts = dict(GOOD, formats=["qcow2", "vhd"])
    task_id = session.cloudImageBuild("Test-Cloud-Base", "12", "f19", ["x86_64"], opts)
    assert wait_task(session, task_id)["state"] == koji.TASK_STATES["FAILED"]
    with pytest.raises(koji.GenericError) as info:
        session.getTaskResult(task_id)
    fix = "koji call addArchiveType vhdfixed 'Azure fixed VHD, xz compressed' vhdfixed.xz"
    (line,) = [ln for ln in str(info.value).splitlines() if "no archive type" in ln]
    assert line.endswith("this hub has no archive type for .vhdfixed.xz files, so it could "
                         f"not import the build; an admin adds it with: {fix}")
    assert session.getTaskChildren(task_id) == [] and not hub.state()["builds"]
    # only an admin may run it; the command as given fixes the hub
    args = shlex.split(fix)[1:]
    refused = run_cli(cli_conf, "releng", "releng-pw", *args)
    assert refused.returncode != 0 and "admin" in refused.stderr
    done = run_cli(cli_conf, "admin", "admin-pw", *args)
    assert done.returncode == 0, done.stderr
    assert session.getArchiveType(filename="X.vhdfixed.xz")["name"] == "vhdfixed"
    # the same request now passes the check and stops at the next one
    task_id = session.cloudImageBuild("Unlisted-Image", "12", "f19", ["x86_64"], opts)
    assert wait_task(session, task_id)["state"] == koji.TASK_STATES["FAILED"]
    with pytest.raises(koji.GenericError, match="not in list for tag f19"):
        session.getTaskResult(task_id)


def test_a_build_rpm_policy_that_denies_fails_the_build_cleanly(tmp_path: Path) -> None:
    seed = dict(SEED, policies={"build_rpm": "all :: deny images are built by releng-bot"})
    h = start_hub(tmp_path / "top", seed, tmp_path, plugin_path=REPO / "hub",
                  plugins=("cloud_image",))
    conf = tmp_path / "cloud_image.conf"
    conf.write_text("")
    d = start_kojid(h.url, h.topurl, "builder", "builder-pw", tmp_path / "kojid",
                    plugin_path=REPO / "builder", plugins=("cloud_image",),
                    env={"KOJI_CLOUD_IMAGE_CONF": str(conf)})
    try:
        session = client_session(h, "releng", "releng-pw")
        task_id = session.cloudImageBuild("Test-Cloud-Base", "12", "f19", ["x86_64"], GOOD)
        assert wait_task(session, task_id)["state"] == koji.TASK_STATES["FAILED"]
        with pytest.raises(koji.ActionNotAllowed, match=re.escape(
                "policy violation (build_rpm): images are built by releng-bot")):
            session.getTaskResult(task_id)
        # refused before anything was reserved or started
        assert session.getTaskChildren(task_id) == []
        assert not h.state()["builds"]
    finally:
        d.stop()
        h.stop()


# -- end to end, with a real guest ------------------------------------------------------

@pytest.fixture
def tree_server(trees: None) -> Iterator[str]:
    """The offline trees over HTTP on libvirt's bridge: the hub refuses file:// trees."""
    with serve_http(TREES) as base:
        yield f"{base}/debian-12-$arch/"


@pytest.mark.vm
@pytest.mark.skipif(not is_root(), reason="libvirt guests and mounts need root")
def test_end_to_end_cli_hub_kojid_pipeline_import_tag_info(
        hub: Any, kojid: Any, cli_conf: Path, tree_server: str) -> None:
    before = host_state()
    t0 = time.monotonic()
    done = run_cli(cli_conf, "releng", "releng-pw", "cloud-image-build", "Test-Cloud-Base",
                   "12", "f19", tree_server, "x86_64", "--distro", "Debian-12",
                   "--disk-size", "2", "--format", "qcow2", "--release", "1", "--wait",
                   "--kickstart", str(REPO / "koji_image_plugin/data/debian.preseed"),
                   "--boot-cloud", "nocloud", timeout=1800)
    print(f"end to end: {time.monotonic() - t0:.0f} s\n{done.stdout}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Build: Test-Cloud-Base-12-1 (COMPLETE)" in done.stdout
    assert "boot test generic as NoCloud seed under SeaBIOS: passed" in done.stdout
    assert "boot test generic as NoCloud seed under OVMF" in done.stdout
    assert "12 checks passed: ssh-login, cloud-init, metadata" in done.stdout

    session = client_session(hub)
    build = session.getBuild("Test-Cloud-Base-12-1", strict=True)
    result = session.getTaskResult(build["task_id"])
    assert (result["nvr"], result["build_id"], result["scratch"], result["failed_arches"]) \
        == ("Test-Cloud-Base-12-1", build["id"], False, [])
    assert build["state"] == koji.BUILD_STATES["COMPLETE"]
    assert [b["nvr"] for b in session.listTagged("f19")] == ["Test-Cloud-Base-12-1"]
    archives = {a["filename"]: a for a in session.listArchives(buildID=build["id"])}
    assert {n: a["type_name"] for n, a in archives.items()} == {
        "Test-Cloud-Base-12-1.x86_64.qcow2": "qcow2",
        "Test-Cloud-Base-12-1.x86_64.manifest.json": "json",
        "Test-Cloud-Base-12-1.x86_64.CHECKSUM.sha256": "checksum",
        "Test-Cloud-Base-12-1.x86_64.tdl.xml": "xml",
        "Test-Cloud-Base-12-1.preseed.cfg": "cfg",
        # the preseed the installer read (the spec's, prepared: no repos to add here)
        "Test-Cloud-Base-12-1.x86_64.preseed.cfg": "cfg"}
    record = build["extra"]["cloud_image"]["arches"]["x86_64"]
    assert record["boot_test_passed"] is True
    image = record["images"][0]
    assert archives[image["file"]]["checksum"] == image["sha256"]
    images = Path(hub.topdir) / "packages/Test-Cloud-Base/12/1/images"
    check = subprocess.run(["sha256sum", "-c", "Test-Cloud-Base-12-1.x86_64.CHECKSUM.sha256"],
                           cwd=images, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    logs = Path(hub.topdir) / "packages/Test-Cloud-Base/12/1/data/logs/image/x86_64"
    assert {"install-console-x86_64.log", "oz-x86_64.log", "cloud-image.log",
            "boot-x86_64-generic-nocloud-seabios-console.log",
            "boot-x86_64-generic-nocloud-seabios-checks.log",
            # x86_64's default firmware is hybrid: the same image booted under OVMF too
            "boot-x86_64-generic-nocloud-ovmf-console.log",
            "boot-x86_64-generic-nocloud-ovmf-checks.log"} <= {
                p.name for p in logs.iterdir()}

    info = run_cli(cli_conf, "releng", "releng-pw", "cloud-image-info",
                   "Test-Cloud-Base-12-1")
    assert info.returncode == 0 and image["file"] in info.stdout, info
    assert host_state() == before


@pytest.mark.vm
@pytest.mark.skipif(not is_root(), reason="libvirt guests and mounts need root")
def test_cancelling_a_build_destroys_its_guest_and_removes_its_disks(
        hub: Any, tmp_path: Path, tree_server: str) -> None:
    # kojid's own default poll (sleeptime = 15): the arch task must not wait for it
    conf = tmp_path / "cloud_image.conf"
    conf.write_text("[timeouts]\ninactivity = 120\ninstall = 1800\n")
    kojid = start_kojid(hub.url, hub.topurl, "builder", "builder-pw", tmp_path / "kojid",
                        plugin_path=REPO / "builder", plugins=("cloud_image",),
                        env={"KOJI_CLOUD_IMAGE_CONF": str(conf)}, sleeptime=15)
    before = host_state()
    try:
        session = client_session(hub, "releng", "releng-pw")
        parent = session.cloudImageBuild("Test-Cloud-Base", "12", "f19", ["x86_64"],
                                         dict(GOOD, install_tree=tree_server, scratch=True))
        deadline = time.monotonic() + 300
        while not (host_state()["guests"] - before["guests"]):
            assert time.monotonic() < deadline, "the install guest never started"
            time.sleep(1)
        t0 = time.monotonic()
        session.cancelTask(parent)
        while host_state() != before:
            assert time.monotonic() - t0 < 60, f"left behind: {host_state()} vs {before}"
            time.sleep(0.5)
        took = time.monotonic() - t0
        print(f"cancel: guest destroyed and disks removed in {took:.1f} s (kojid polls "
              "every 15 s)")
        assert took < 15, "the arch task waited for kojid's poll"
        states = {t["method"]: t["state"] for t in session.listTasks()}
        assert states == {"cloudImageBuild": koji.TASK_STATES["CANCELED"],
                          "createCloudImage": koji.TASK_STATES["CANCELED"]}
        time.sleep(16)  # kojid's next poll: it finds the arch task gone, signals the parent
    finally:
        kojid.stop()
    assert "TRACEBACK" not in kojid.output(), kojid.output()[-3000:]
    hub_log = (tmp_path / "hub-requests.log").read_text()
    assert "Traceback" not in hub_log, hub_log[-3000:]


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[str]:
    """A repository of kickstarts served by git daemon on loopback: git://HOST:PORT."""
    work = tmp_path / "ks-work"
    (work / "cloud").mkdir(parents=True)
    (work / "cloud" / "debian.preseed").write_text("d-i debian-installer/locale string C\n")

    def git(*args: str, cwd: Path = work) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com",
                        *args], cwd=cwd, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("add", ".")
    git("commit", "-q", "-m", "kickstarts")
    git("clone", "-q", "--bare", str(work), str(tmp_path / "git" / "kickstarts.git"),
        cwd=tmp_path)
    port = free_port()
    daemon = subprocess.Popen(["git", "daemon", "--export-all", "--reuseaddr",
                               f"--base-path={tmp_path / 'git'}", "--listen=127.0.0.1",
                               f"--port={port}", str(tmp_path / "git")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while subprocess.run(["git", "ls-remote", f"git://127.0.0.1:{port}/kickstarts.git"],
                         capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "git daemon did not start"
        time.sleep(0.2)
    yield f"git://127.0.0.1:{port}"
    daemon.terminate()
    daemon.wait(10)


@pytest.mark.root
@pytest.mark.skipif(not is_root(), reason="the arch task reaches libvirt before the tree")
def test_scm_kickstarts_are_checked_out_under_the_builders_allowed_scms(
        hub: Any, tmp_path: Path, git_server: str) -> None:
    kojid = start_kojid(hub.url, hub.topurl, "builder", "builder-pw", tmp_path / "kojid",
                        plugin_path=REPO / "builder", plugins=("cloud_image",),
                        allowed_scms="127.0.0.1*:/kickstarts.git:no")
    session = client_session(hub, "releng", "releng-pw")
    # a tree that refuses connections (port 1 of the host's address on the libvirt
    # network): the arch task fails right after the checkout
    opts = dict(GOOD, install_tree="http://192.168.122.1:1/tree/$arch/", scratch=True,
                ksurl=f"{git_server}/kickstarts.git#main")
    try:
        errors = {}
        for name, preseed in (("found", "cloud/debian.preseed"),
                              ("missing", "cloud/missing.preseed")):
            parent = session.cloudImageBuild("Test-Cloud-Base", "12", "f19", ["x86_64"],
                                             dict(opts, preseed=preseed))
            wait_task(session, parent)
            (child,) = session.getTaskChildren(parent)
            with pytest.raises(koji.GenericError) as exc:
                session.getTaskResult(child["id"])
            errors[name] = str(exc.value)
            assert "checkout.log" in session.listTaskOutput(child["id"])
        assert "install_tree: cannot fetch the installer from http://192.168.122.1:1" in \
            errors["found"], errors["found"]
        assert "preseed: cloud/missing.preseed is not a file in git://" in errors["missing"]
    finally:
        kojid.stop()


# -- uploads: cloudImageUpload, uploadCloudImage, host.cloudImageUploaded -----------------

@pytest.mark.parametrize("user,build,opts,error", [
    ("releng", "Test-Cloud-Base-12-1", {"ec2": {"regions": ["Mars"]}},
     "opts.ec2.regions[0]: 'Mars' is not valid"),
    ("releng", "Test-Cloud-Base-12-1", {"public": True},
     "opts: names no cloud; add ec2 and/or glance"),
    ("releng", "Test-Cloud-Base-12-1", {"ec2": {}, "password": "x"},
     "opts.password: unknown field"),
    ("releng", "No-Such-1-1", {"ec2": {}}, "No such build: 'No-Such-1-1'"),
    ("alice", "Test-Cloud-Base-12-1", {"ec2": {}}, "image permission required"),
    (None, "Test-Cloud-Base-12-1", {"ec2": {}}, "you must be logged in"),
])
def test_hub_refuses_bad_upload_requests_and_queues_nothing(
        hub: Any, user: str | None, build: str, opts: dict[str, Any], error: str) -> None:
    session = client_session(hub, user, f"{user}-pw") if user else client_session(hub)
    with pytest.raises(koji.GenericError) as exc:
        session.cloudImageUpload(build, opts)
    assert error in str(exc.value)
    assert tasks(hub) == []


def test_only_the_uploading_host_may_record_uploads(hub: Any) -> None:
    session = client_session(hub, "releng", "releng-pw")
    with pytest.raises(koji.GenericError, match="is not a host"):
        session.host.cloudImageUploaded(1, 1, {"ec2": []})


def test_cli_upload_needs_a_cloud(cli_conf: Path) -> None:
    done = run_cli(cli_conf, "releng", "releng-pw", "cloud-image-upload",
                   "Test-Cloud-Base-12-1", "--public")
    assert done.returncode == 2
    assert "name a cloud: --ec2, --ec2-region REGION or --glance CLOUD" in done.stderr


REGIONS = ("us-east-1", "us-west-2", "eu-west-1")


@pytest.fixture
def upload_kojid(tmp_path: Path, hub: Any, moto: Any, glance_server: Any) -> Iterator[Any]:
    """kojid whose builder config uploads to moto and to glance-api (credentials in its
    environment and clouds.yaml only)."""
    from tests.awsserver import CREDENTIALS

    moto.reset()
    conf = tmp_path / "cloud_image.conf"
    conf.write_text("[timeouts]\ninactivity = 120\ninstall = 1800\n"
                    f"[ec2]\nregions = {' '.join(REGIONS)}\nendpoint_url = {moto.url}\n"
                    "copy = upload\nworkers = 8\n"
                    "[glance:test-cloud]\nvisibility = public\n")
    clouds = glance_server.clouds_yaml(tmp_path / "clouds.yaml", "test-cloud")
    d = start_kojid(hub.url, hub.topurl, "builder", "builder-pw", tmp_path / "kojid",
                    plugin_path=REPO / "builder", plugins=("cloud_image",),
                    env={"KOJI_CLOUD_IMAGE_CONF": str(conf), "OS_CLIENT_CONFIG_FILE":
                         str(clouds), **CREDENTIALS})
    yield d
    d.stop()


def glance_server_images(server: Any) -> list[str]:
    with urllib.request.urlopen(f"{server.url}/v2/images") as r:
        return sorted(i["id"] for i in json.load(r)["images"])


def _aws_inventory(moto: Any) -> dict[str, tuple[list[str], list[str]]]:
    import boto3

    from tests.awsserver import CREDENTIALS
    out = {}
    for region in REGIONS:
        ec2 = boto3.client("ec2", region_name=region, endpoint_url=moto.url,
                           aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
        out[region] = (
            sorted(i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]),
            sorted(s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])[
                "Snapshots"] if s.get("Description", "").endswith("(koji-image-plugin)")))
    return out


#: the generic variant's formats in the upload test: every one but EC2's raw.xz
GENERIC_ALL = [f.value for f in ImageFormat if f is not ImageFormat.RAW_XZ]


@pytest.mark.vm
@pytest.mark.skipif(not is_root(), reason="libvirt guests and mounts need root")
def test_a_builds_images_become_public_amis_in_three_regions_and_a_glance_image(
        hub: Any, upload_kojid: Any, cli_conf: Path, tree_server: str, moto: Any,
        glance_server: Any, tmp_path: Path) -> None:
    """The done-when of the clouds issue: a build's EC2 image lands as public AMIs in
    three regions with the disk's blocks, its qcow2 as an active Glance image with the
    right checksum, the ids in the build's extra, and a second upload makes nothing."""
    import lzma

    import boto3

    from koji_image_plugin.clouds import ebs
    from tests.awsserver import CREDENTIALS

    spec = tmp_path / "image.yaml"
    # the preseed beside the spec: a spec's files are kept inside its directory
    (tmp_path / "debian.preseed").write_bytes(
        (REPO / "koji_image_plugin" / "data" / "debian.preseed").read_bytes())
    spec.write_text(
        "name: Test-Cloud-Base\nversion: '12'\nrelease: '2'\ndistro: Debian-12\n"
        f"install_tree: '{tree_server}'\narches: [x86_64]\ntarget: f19\ndisk_size: 2\n"
        "preseed: debian.preseed\n"
        # every format Koji imports: the generic variant in all but raw.xz, EC2's
        f"variants: [generic, ec2]\nvariant_formats: {{generic: [{', '.join(GENERIC_ALL)}], "
        "ec2: [raw.xz]}\n"
        "xz_preset: 1\nupload: {ec2: {}, glance: {clouds: [test-cloud]}, public: true}\n"
        # a BIOS image here (its boots, once each): the uploads are what this proves; the
        # boot mode of hybrid and UEFI images is proven against moto (test_ec2.py)
        "firmware: bios\nboot_test: {profiles: {generic: [nocloud]}}\n")
    host_before = host_state()
    # the Azure VHD's archive type, added as the builder's error says an admin adds it
    added = run_cli(cli_conf, "admin", "admin-pw",
                    *shlex.split(archivetypes.add_command("x.vhdfixed.xz"))[1:])
    assert added.returncode == 0, added.stderr
    t0 = time.monotonic()
    done = run_cli(cli_conf, "releng", "releng-pw", "cloud-image-build", "--config",
                   str(spec), "--wait", timeout=1800)
    print(f"build + upload: {time.monotonic() - t0:.0f} s\n{done.stdout}")
    assert done.returncode == 0, done.stdout + done.stderr
    session = client_session(hub)
    build = session.getBuild("Test-Cloud-Base-12-2", strict=True)
    # each format's file imported under its archive type, as its record says
    archives = {a["filename"]: a for a in session.listArchives(buildID=build["id"])}
    images = build["extra"]["cloud_image"]["arches"]["x86_64"]["images"]
    assert sorted(i["format"] for i in images) == sorted([*GENERIC_ALL, "raw.xz"])
    for i in images:
        fmt = ImageFormat(i["format"])
        assert archives[i["file"]]["type_name"] == fmt.koji_archive_type, i
        assert archives[i["file"]]["checksum"] == i["sha256"]
        assert i["file"].endswith("." + fmt.extension)
        print(f"{i['file']}: {archives[i['file']]['size']} bytes")
    records = build["extra"]["cloud_image"]["uploads"]["ec2"]
    assert sorted(r["region"] for r in records) == sorted(REGIONS)
    assert all(r["public"] and r["arch"] == "x86_64" and r["variant"] == "ec2"
               for r in records)
    # every region's snapshot holds exactly the non-zero blocks of the build's disk
    xz = (Path(hub.topdir) / "packages/Test-Cloud-Base/12/2/images"
          / "Test-Cloud-Base-EC2-12-2.x86_64.raw.xz")
    want = {}
    with lzma.open(xz) as f:
        for index, block in enumerate(iter(lambda: f.read(ebs.BLOCK_SIZE), b"")):
            if block.ljust(ebs.BLOCK_SIZE, b"\0") != ebs.ZERO_BLOCK:
                want[index] = block.ljust(ebs.BLOCK_SIZE, b"\0")
    creds = {"aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
             "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    for rec in records:
        client = functools.partial(boto3.client, region_name=rec["region"],
                                   endpoint_url=moto.url, **creds)
        assert ebs.read_back(client("ebs"), rec["snapshot_id"]) == want, rec["region"]
        attr = client("ec2").describe_image_attribute(ImageId=rec["image_id"],
                                                      Attribute="launchPermission")
        assert {"Group": "all"} in attr["LaunchPermissions"]
    [glanced] = build["extra"]["cloud_image"]["uploads"]["glance"]
    qcow2 = (Path(hub.topdir) / "packages/Test-Cloud-Base/12/2/images"
             / "Test-Cloud-Base-12-2.x86_64.qcow2").read_bytes()
    with urllib.request.urlopen(f"{glance_server.url}/v2/images/{glanced['image_id']}") as r:
        held = json.load(r)
    assert (held["status"], held["visibility"], held["name"]) == \
        ("active", "public", "Test-Cloud-Base-12-2.x86_64")
    assert held["os_hash_value"] == glanced["checksum"] == hashlib.sha512(qcow2).hexdigest()
    assert held["koji_image_nvr"] == "Test-Cloud-Base-12-2"
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in repr(build)
    # nor in any task's arguments, results or logs on the hub
    secret = CREDENTIALS["AWS_SECRET_ACCESS_KEY"].encode()
    assert not [p for p in Path(hub.topdir).rglob("*") if p.is_file() and
                p.stat().st_size < 50 << 20 and secret in p.read_bytes()]
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in repr(hub.state()["tasks"])
    upload_log = [p for p in Path(hub.topdir).rglob("upload.log")]
    assert upload_log and "snapshot" in upload_log[0].read_text()

    before = _aws_inventory(moto)
    glance_before = glance_server_images(glance_server)
    again = run_cli(cli_conf, "releng", "releng-pw", "cloud-image-upload",
                    "Test-Cloud-Base-12-2", "--ec2", "--glance", "test-cloud", "--public",
                    "--wait", timeout=600)
    print(again.stdout)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("[public, reused]") == 3
    assert _aws_inventory(moto) == before
    assert glance_server_images(glance_server) == glance_before
    info = run_cli(cli_conf, "releng", "releng-pw", "cloud-image-info",
                   "Test-Cloud-Base-12-2")
    for rec in records:
        assert f"ec2 {rec['region']} x86_64: {rec['image_id']}" in info.stdout
    assert f"glance test-cloud x86_64: {glanced['image_id']}" in info.stdout

    # the Final drop of the tag: the images Koji imported, with their AMI and Glance ids
    mirror = tmp_path / "mirror"
    drop = subprocess.run([str(Path(sys.executable).with_name("koji-image")), "drop",
                           "--release", "12", "--milestone", "Final", "--koji", "kojistub",
                           "--koji-config", str(cli_conf), "--tag", "f19",
                           "--mirror", str(mirror)], capture_output=True, text=True,
                          timeout=600)
    assert drop.returncode == 0, drop.stderr
    final = mirror / "releases/12/Cloud"
    check = subprocess.run(["sha256sum", "-c", "CHECKSUM"], cwd=final, capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert (final / "x86_64/generic/Test-Cloud-Base-12-2.x86_64.qcow2").read_bytes() == qcow2
    assert sorted(p.name for p in (final / "x86_64/generic").iterdir()) == sorted(
        f"Test-Cloud-Base-12-2.x86_64.{ImageFormat(f).extension}" for f in GENERIC_ALL)
    assert (final / "x86_64/EC2/Test-Cloud-Base-EC2-12-2.x86_64.raw.xz").read_bytes() == \
        xz.read_bytes()
    assert json.loads((final / "drop.json").read_text())["sources"] == \
        ["Koji build Test-Cloud-Base-12-2"]
    readme = (final / "README").read_text()
    page = (mirror / "index.html").read_text()
    # the verdicts are Koji's: the drop says which build and task they come from
    froms = {i["boot_test_from"] for i in json.loads((final / "drop.json").read_text())
             ["images"]}
    assert len(froms) == 1 and re.fullmatch(
        r"Koji build Test-Cloud-Base-12-2 \(task [0-9]+\)", froms.pop() or ""), froms
    assert "The boot verdicts above come from:\n  Koji build Test-Cloud-Base-12-2" in readme
    # a Debian install uses no Koji repo, and the drop says so
    assert "Their packages came from:\n  its install tree, not a Koji repo" in readme
    assert "not\n  traced in Koji" not in readme
    for rec in records:
        assert rec["region"] in readme and rec["image_id"] in readme
        assert rec["image_id"] in page
    assert glanced["image_id"] in readme
    assert host_state() == host_before
