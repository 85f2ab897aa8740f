"""The Koji stand-in (tests/kojistub) against the real koji client library and CLI."""

from __future__ import annotations

import base64
import hashlib
import os
import time
import urllib.request

import koji
import pytest

from tests.kojistub import (
    client_session,
    run_cli,
    start_hub,
    start_kojid,
    write_client_config,
)
from tests.proc import child_processes

SEED = {
    "users": [
        {"name": "admin", "password": "admin-pw", "perms": ["admin"]},
        {"name": "alice", "password": "alice-pw"},
        {"name": "builder", "password": "builder-pw", "host": True},
        {"name": "builder2", "password": "builder2-pw", "host": True},
    ],
    "channels": [{"name": "manual"}],
    # builder (run by kojid) takes default-channel tasks; the tests drive builder2 by hand
    "hosts": [{"name": "builder", "arches": "x86_64", "channels": ["default"]},
              {"name": "builder2", "arches": "x86_64", "channels": ["manual"]}],
    "tags": [{"name": "base", "arches": "x86_64 aarch64"},
             {"name": "img-build", "parent": "base"},
             {"name": "img-dest"}],
    "targets": [{"name": "img", "build_tag": "img-build", "dest_tag": "img-dest"}],
    "packages": [{"tag": "img-dest", "package": "cloud-img", "owner": "admin"}],
    "policies": {"build_rpm": "all :: deny only admins build images",
                 "vm": "all :: frobnicate"},
}

HUB_PLUGIN = '''
import kojihub
from koji.context import context
from koji.plugin import callback, export

IMPORTS = []


@export
def stubMakeTask(method, arglist, channel=None):
    """Debug call: any task, owned by the caller."""
    context.session.assertLogin()
    opts = {"channel": channel} if channel else {}
    return kojihub.make_task(method, arglist, **opts)


@callback("postImport")
def record_import(cbtype, *args, **kws):
    if kws["type"] == "image":
        IMPORTS.append({"image": kws["image"], "nvr": kws["build"]["nvr"],
                        "fullpath": kws["fullpath"]})


@export
def stubImports():
    return IMPORTS
'''

BUILDER_PLUGIN = '''
import os

from koji.tasks import BaseTaskHandler


class EchoTask(BaseTaskHandler):
    Methods = ["stubEcho"]
    _taskWeight = 0.1

    def handler(self, text, suffix="!"):
        path = os.path.join(self.workdir, "echo.log")
        with open(path, "w") as f:
            f.write(text + suffix)
        self.uploadFile(path)
        return {"echo": text + suffix, "pid": os.getpid()}
'''


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    """Hub (with the test hub plugin) and kojid (with the test builder plugin)."""
    work = tmp_path_factory.mktemp("kojistub")
    plugins = work / "plugins"
    (plugins / "hub").mkdir(parents=True)
    (plugins / "builder").mkdir()
    (plugins / "hub" / "stubtest.py").write_text(HUB_PLUGIN)
    (plugins / "builder" / "stubbuilder.py").write_text(BUILDER_PLUGIN)
    hub = start_hub(work / "topdir", SEED, work, plugins / "hub", ("stubtest",))
    try:
        kojid = start_kojid(hub.url, hub.topurl, "builder", "builder-pw", work / "kojid",
                            plugins / "builder", ("stubbuilder",))
    except Exception:
        hub.stop()
        raise
    conf = write_client_config(work / "koji.conf", hub)
    yield hub, kojid, conf
    kojid.stop()
    assert task_processes(kojid.proc.pid) == []
    hub.stop()


def task_processes(kojid_pid: int) -> list[int]:
    """Processes forked by kojid (its task processes), exited ones not yet reaped too."""
    return child_processes(kojid_pid, running=False)


def wait_state(session, task_id, states, timeout=15.0):
    """Poll getTaskInfo until the task is in one of ``states`` (names)."""
    deadline = time.monotonic() + timeout
    while True:
        info = session.getTaskInfo(task_id)
        if koji.TASK_STATES[info["state"]] in states:
            return info
        assert time.monotonic() < deadline, f"task {task_id} stuck in {info}"
        time.sleep(0.1)


def test_cli_hello_and_call(stub):
    _hub, _kojid, conf = stub
    out = run_cli(conf, "alice", "alice-pw", "hello")
    assert out.returncode == 0, out.stderr
    assert "alice!" in out.stdout and "Authenticated via password" in out.stdout
    out = run_cli(conf, "alice", "alice-pw", "call", "--json-output", "getLoggedInUser")
    assert out.returncode == 0, out.stderr
    assert '"name": "alice"' in out.stdout


def test_wrong_password_is_an_auth_error(stub):
    hub, _kojid, conf = stub
    out = run_cli(conf, "alice", "wrong", "call", "getLoggedInUser")
    assert out.returncode != 0
    assert "invalid username or password" in out.stderr
    with pytest.raises(koji.AuthError, match="invalid username or password"):
        client_session(hub, "alice", "wrong")


def test_uploads_round_trip(stub, tmp_path):
    hub, _kojid, _conf = stub
    session = client_session(hub, "alice", "alice-pw")
    data = os.urandom(2_500_000)
    src = tmp_path / "blob.bin"
    src.write_bytes(data)
    # the fast path (rawUpload POSTs) that uploadWrapper takes with a hub that has checkUpload
    session.uploadWrapper(str(src), "cli-build/t1", blocksize=1_000_000)
    assert (hub.topdir / "work/cli-build/t1/blob.bin").read_bytes() == data
    with urllib.request.urlopen(f"{hub.topurl}/work/cli-build/t1/blob.bin") as r:
        assert r.read() == data
    # the old uploadFile call: chunks, then offset -1 with the whole file's sha256
    chunk = data[:1000]
    assert session.uploadFile("cli-build/t2", "part.bin", 1000,
                              ("sha256", hashlib.sha256(chunk).hexdigest()), 0,
                              base64.b64encode(chunk).decode())
    assert session.uploadFile("cli-build/t2", "part.bin", 1000,
                              ("sha256", hashlib.sha256(chunk).hexdigest()), -1, "")
    assert not session.uploadFile("cli-build/t2", "bad.bin", 5, ("sha256", "0" * 64), 0,
                                  base64.b64encode(b"hello").decode())
    assert (hub.topdir / "work/cli-build/t2/part.bin").read_bytes() == chunk
    with pytest.raises(koji.GenericError, match="Invalid upload directory"):
        session.uploadWrapper(str(src), "../outside")
    # only the host running a task may write to its directory
    with pytest.raises(koji.GenericError, match="is not a host"):
        session.uploadWrapper(str(src), "tasks/1/1")
    uploads = [u["path"] for u in hub.state()["uploads"]]
    assert "cli-build/t1/blob.bin" in uploads and "cli-build/t2/part.bin" in uploads


def test_sleep_task_runs_and_watch_task_shows_it(stub):
    hub, _kojid, conf = stub
    session = client_session(hub, "alice", "alice-pw")
    task_id = session.stubMakeTask("sleep", [0.2])
    out = run_cli(conf, "alice", "alice-pw", "watch-task", str(task_id))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{task_id} sleep (noarch): " in out.stdout and " -> closed" in out.stdout
    assert "completed successfully" in out.stdout
    info = session.getTaskInfo(task_id, request=True)
    assert info["state"] == koji.TASK_STATES["CLOSED"]
    assert info["request"] == [0.2] and info["owner"] == session.getLoggedInUser()["id"]
    assert session.getTaskResult(task_id) is None
    assert session.getHost(info["host_id"])["name"] == "builder"


def test_parent_waits_for_subtasks(stub):
    """koji.tasks' waittest: two sleep subtasks and a failing 'canfail' one; the parent
    waits (signal.pause) and is woken by kojid's SIGUSR2 when the hub flags it."""
    hub, _kojid, _conf = stub
    session = client_session(hub, "alice", "alice-pw")
    task_id = session.stubMakeTask("waittest", [2, 0.2])
    info = wait_state(session, task_id, ("CLOSED", "FAILED"))
    assert info["state"] == koji.TASK_STATES["CLOSED"], session.getTaskResult(task_id)
    children = session.getTaskChildren(task_id, request=True)
    assert sorted(c["label"] for c in children) == ["0", "1", "bad"]
    bad = next(c for c in children if c["label"] == "bad")
    assert bad["state"] == koji.TASK_STATES["FAILED"]
    assert session.getTaskResult(bad["id"], raise_fault=False)["faultCode"] == 1
    with pytest.raises(koji.xmlrpcplus.Fault, match="TypeError"):
        session.getTaskResult(bad["id"])
    listed = session.listTasks({"parent": task_id, "decode": True})
    assert {t["id"] for t in listed} == {c["id"] for c in children}


def test_cancel_kills_the_task_process(stub):
    hub, kojid, conf = stub
    session = client_session(hub, "alice", "alice-pw")
    task_id = session.stubMakeTask("sleep", [120])
    wait_state(session, task_id, ("OPEN",))
    deadline = time.monotonic() + 5
    while not task_processes(kojid.proc.pid):
        assert time.monotonic() < deadline, "no task process"
        time.sleep(0.05)
    out = run_cli(conf, "alice", "alice-pw", "cancel", str(task_id))
    assert out.returncode == 0, out.stderr
    assert session.getTaskInfo(task_id)["state"] == koji.TASK_STATES["CANCELED"]
    with pytest.raises(koji.GenericError, match=f"Task {task_id} is canceled"):
        session.getTaskResult(task_id)
    deadline = time.monotonic() + 5
    while task_processes(kojid.proc.pid):
        assert time.monotonic() < deadline, "task process survived cancel"
        time.sleep(0.05)


def test_builder_plugin_loaded_by_path(stub):
    hub, _kojid, _conf = stub
    session = client_session(hub, "alice", "alice-pw")
    task_id = session.stubMakeTask("stubEcho", koji.encode_args("hi", suffix="?"))
    info = wait_state(session, task_id, ("CLOSED", "FAILED"))
    assert info["state"] == koji.TASK_STATES["CLOSED"], session.getTaskResult(task_id)
    assert session.getTaskResult(task_id)["echo"] == "hi?"
    assert session.listTaskOutput(task_id) == ["echo.log"]
    assert session.downloadTaskOutput(task_id, "echo.log") == b"hi?"


def test_hub_plugin_import_error_stops_the_hub(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text("import no_such_module_for_kojistub\n")
    with pytest.raises(RuntimeError) as exc:
        start_hub(tmp_path / "topdir", SEED, tmp_path, plugins, ("broken",))
    assert "No module named 'no_such_module_for_kojistub'" in str(exc.value)


@pytest.fixture
def manual_task(stub):
    """builder2 (not run by kojid) takes a task by hand: (hub, host session, task id)."""
    hub, _kojid, _conf = stub
    user = client_session(hub, "alice", "alice-pw")
    task_id = user.stubMakeTask("createImage", [], channel="manual")
    host = client_session(hub, "builder2", "builder2-pw")
    with pytest.raises(koji.AuthError, match="requires an exclusive session"):
        host.host.getID()
    host.exclusiveSession()
    host.host.updateHost(0.0, True)
    assert [t["id"] for t in host.host.getTasks()] == [task_id]
    assert host.host.openTask(task_id)["id"] == task_id
    yield hub, host, task_id
    # free builder2's capacity (2.0) for the next test's task
    host.host.closeTask(task_id, koji.xmlrpcplus.dumps((None,), methodresponse=1))
    host.logout()


def upload_to_task(host, task_id, tmp_path, files):
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        host.uploadWrapper(str(tmp_path / name), koji.pathinfo.taskrelpath(task_id))


def test_complete_image_build_rejects_unknown_file_types(manual_task, tmp_path):
    hub, host, task_id = manual_task
    build = host.host.initImageBuild(task_id, {"name": "cloud-img", "version": "1",
                                               "release": None, "epoch": 0})
    assert build["release"] == "1"
    upload_to_task(host, task_id, tmp_path, {"disk.qcow2": b"q" * 100, "disk.weird": b"w"})
    results = {"x86_64": {"arch": "x86_64", "task_id": task_id, "logs": [], "rpmlist": [],
                          "files": ["disk.qcow2", "disk.weird"]}}
    with pytest.raises(koji.BuildError, match=r"Unsupported file type: disk\.weird"):
        host.host.completeImageBuild(task_id, build["id"], results)
    assert host.listArchives(buildID=build["id"]) == []
    assert host.getBuild(build["id"])["state"] == koji.BUILD_STATES["BUILDING"]
    workdir = hub.topdir / "work" / koji.pathinfo.taskrelpath(task_id)
    assert not (workdir / "disk.qcow2").is_symlink()
    host.host.failBuild(task_id, build["id"])
    assert host.getBuild(build["id"])["state"] == koji.BUILD_STATES["FAILED"]
    with pytest.raises(koji.GenericError, match="cannot update build"):
        host.host.failBuild(task_id, build["id"])


def test_post_import_callback_sees_the_image(manual_task, tmp_path):
    hub, host, task_id = manual_task
    build = host.host.initImageBuild(task_id, {"name": "cloud-img", "version": "2",
                                               "release": "3", "epoch": 0})
    upload_to_task(host, task_id, tmp_path, {"disk.raw.xz": b"x" * 64, "oz.log": b"log"})
    results = {"x86_64": {"arch": "x86_64", "task_id": task_id, "logs": ["oz.log"],
                          "rpmlist": [], "files": ["disk.raw.xz"]}}
    host.host.completeImageBuild(task_id, build["id"], results)
    binfo = host.getBuild("cloud-img-2-3")
    assert binfo["state"] == koji.BUILD_STATES["COMPLETE"] and binfo["extra"] is None
    [archive] = host.listArchives(buildID=build["id"], type="image")
    assert archive["type_name"] == "raw-xz" and archive["arch"] == "x86_64"
    assert archive["checksum"] == hashlib.sha256(b"x" * 64).hexdigest()
    builddir = hub.topdir / "packages/cloud-img/2/3"
    assert (builddir / "images/disk.raw.xz").read_bytes() == b"x" * 64
    assert (builddir / "data/logs/image/x86_64/oz.log").read_bytes() == b"log"
    [seen] = [i for i in host.stubImports() if i["nvr"] == "cloud-img-2-3"]
    assert seen["image"]["files"] == ["disk.raw.xz"]
    assert seen["image"]["relpath"] == koji.pathinfo.taskrelpath(task_id)
    assert seen["fullpath"].endswith("/disk.raw.xz")
    host.host.tagBuild(task_id, "img-dest", build["id"])
    assert [b["nvr"] for b in host.listTagged("img-dest")] == ["cloud-img-2-3"]
    assert [c["name"] for c in hub.state()["policy_calls"]][-1] == "tag"
    with pytest.raises(koji.TagError, match="already tagged"):
        host.host.tagBuild(task_id, "img-dest", build["id"])


def test_task_ownership_is_checked(manual_task):
    hub, host, task_id = manual_task
    other = client_session(hub, "alice", "alice-pw")
    with pytest.raises(koji.AuthError, match="is not a host"):
        other.host.closeTask(task_id, "")
    not_opened = other.stubMakeTask("createImage", [], channel="manual")
    with pytest.raises(koji.ActionNotAllowed, match=f"does not own task {not_opened}"):
        host.host.closeTask(not_opened, "")
    with pytest.raises(koji.GenericError, match="No such task"):
        host.host.closeTask(10**6, "")


def test_policies_refuse_as_kojihubs_do(stub):
    hub, _kojid, _conf = stub
    host = client_session(hub, "builder2", "builder2-pw")
    host.exclusiveSession()
    data = {"user_id": 1, "scratch": False}
    with pytest.raises(koji.ActionNotAllowed,
                       match=r"^policy violation \(build_rpm\): only admins build images$"):
        host.host.assertPolicy("build_rpm", data)
    assert host.host.checkPolicy("build_rpm", data) == [False, "only admins build images"]
    assert host.host.checkPolicy("vm", data) == [False, "error in policy"]
    # a policy the hub has no rules for is allowed (MissingPolicyOk, the hub's default)
    assert host.host.checkPolicy("tag", data) == [True, "missing policy"]
    assert host.host.assertPolicy("tag", data) is None
    host.logout()
