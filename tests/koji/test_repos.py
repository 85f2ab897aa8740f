"""The build tag's Koji repo and the RPM components of images, through the real koji CLI
and library against the stand-in hub and kojid: fixture RPMs built with rpmbuild and
imported with ``koji import``, the tag's repo made with createrepo_c, the parent task's
repo choice (current repo, waitrepo, a pinned repo), and an image build's RPM components
linked at import and found again with ``koji cloud-image-info --rpms`` and
``koji cloud-image-find``."""

from __future__ import annotations

import gzip
import hashlib
import re
import subprocess
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import koji
import pytest

from koji_image_plugin.koji import components, repos
from koji_image_plugin.koji.record import RECORD_KEY, arch_result
from koji_image_plugin.spec.kickstart import Repo
from tests.conftest import REPO
from tests.kojistub import client_session, run_cli, start_hub, start_kojid, write_client_config
from tests.kojistub.createrepo import (
    build_fixture_rpms,
    host_session,
    import_rpms,
    make_repo,
    rpm_nvras,
)

SEED = {
    "users": [
        {"name": "admin", "password": "admin-pw", "perms": ["admin"]},
        {"name": "releng", "password": "releng-pw", "perms": ["image"]},
        {"name": "builder", "password": "builder-pw", "host": True},
        {"name": "builder2", "password": "builder2-pw", "host": True},
        {"name": "repomaker", "password": "repomaker-pw", "host": True},
    ],
    "channels": [{"name": "manual"}],
    "hosts": [{"name": "builder", "arches": "x86_64", "channels": ["default", "image"],
               "capacity": 8.0},
              {"name": "builder2", "arches": "x86_64", "channels": ["manual"]},
              # plays kojid's newRepo tasks (tests/kojistub/createrepo.py)
              {"name": "repomaker", "arches": "x86_64", "channels": ["createrepo"]}],
    "tags": [{"name": "f39-build", "arches": "x86_64"}, {"name": "f39"},
             {"name": "f40-build", "arches": "x86_64"}],
    "targets": [{"name": "f39-candidate", "build_tag": "f39-build", "dest_tag": "f39"},
                {"name": "f40-candidate", "build_tag": "f40-build", "dest_tag": "f39"}],
    "packages": [{"tag": "f39", "package": "Fedora-Cloud-Base", "owner": "releng"},
                 {"tag": "f39-build", "package": "koji-fixture-hello", "owner": "admin"},
                 {"tag": "f39-build", "package": "koji-fixture-motd", "owner": "admin"}],
}

STUB_PLUGIN = '''
import kojihub
from koji.context import context
from koji.plugin import export


@export
def stubMakeTask(method, arglist, channel=None):
    """Debug call: any task, owned by the caller."""
    context.session.assertLogin()
    return kojihub.make_task(method, arglist, **({"channel": channel} if channel else {}))
'''
KS = "rootpw --lock\nbootloader --location=mbr\n%packages\nkoji-fixture-hello\n%end\n"


@pytest.fixture(scope="module")
def koji_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("repos")
    (work / "plugins").mkdir()
    (work / "plugins" / "stubtest.py").write_text(STUB_PLUGIN)
    hub = start_hub(work / "top", SEED, work, f"{REPO / 'hub'}:{work / 'plugins'}",
                    ("cloud_image", "stubtest"))
    conf = write_client_config(work / "koji.conf", hub, plugin_paths=(REPO / "cli",))
    kojid = None
    try:
        kojid = start_kojid(hub.url, hub.topurl, "builder", "builder-pw", work / "kojid",
                            plugin_path=REPO / "builder", plugins=("cloud_image",))
        rpms = build_fixture_rpms(work / "rpmbuild")
        import_rpms(conf, "admin", "admin-pw", rpms)
        for nvr in ("koji-fixture-hello-1.0-1", "koji-fixture-motd-2.1-3"):
            done = run_cli(conf, "admin", "admin-pw", "tag-build", "--wait", "f39-build", nvr)
            assert done.returncode == 0, done.stdout + done.stderr
        (work / "f.ks").write_text(KS)
        yield {"hub": hub, "conf": conf, "work": work, "rpms": rpms,
               "repo": make_repo(hub, "f39-build", "repomaker", "repomaker-pw")}
    finally:
        if kojid:
            kojid.stop()
        hub.stop()


def test_fixture_rpms_are_koji_rpms_and_the_tag_repo_serves_them(koji_env: dict) -> None:
    hub, rpms = koji_env["hub"], koji_env["rpms"]
    session = client_session(hub)
    for path in rpms:
        nvra = path.name[:-len(".rpm")]
        info = session.getRPM(nvra, strict=True)
        sigmd5 = subprocess.run(["rpm", "-qp", "--qf", "%{SIGMD5}", str(path)], check=True,
                                capture_output=True, text=True).stdout
        assert info["payloadhash"] == sigmd5 and info["external_repo_id"] == 0
    assert session.getBuild("koji-fixture-motd-2.1-3")["epoch"] == 1
    repo = session.repoInfo(koji_env["repo"], strict=True)
    assert (koji.REPO_STATES[repo["state"]], repo["tag_name"]) == ("READY", "f39-build")
    assert session.getRepo("f39-build")["id"] == repo["id"]
    # what dnf in a guest reads: repomd.xml, primary (hrefs through toplink), the RPMs
    base = koji.PathInfo(topdir=hub.topurl).repo(repo["id"], "f39-build") + "/x86_64"
    repomd = ET.fromstring(urllib.request.urlopen(f"{base}/repodata/repomd.xml").read())
    ns = {"r": "http://linux.duke.edu/metadata/repo", "c": "http://linux.duke.edu/metadata/common"}
    href = repomd.find("r:data[@type='primary']/r:location", ns).get("href")
    primary = ET.fromstring(gzip.decompress(urllib.request.urlopen(f"{base}/{href}").read()))
    hrefs = sorted(p.find("c:location", ns).get("href") for p in primary.findall("c:package", ns))
    assert hrefs == ["toplink/packages/koji-fixture-hello/1.0/1/noarch/"
                     "koji-fixture-hello-1.0-1.noarch.rpm",
                     "toplink/packages/koji-fixture-motd/2.1/3/noarch/"
                     "koji-fixture-motd-2.1-3.noarch.rpm"]
    hello = next(p for p in rpms if p.name == "koji-fixture-hello-1.0-1.noarch.rpm")
    assert urllib.request.urlopen(f"{base}/{hrefs[0]}").read() == hello.read_bytes()


def wait_for(session: koji.ClientSession, what: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.5)
    tasks = [(t["id"], t["method"], koji.TASK_STATES[t["state"]], t["host_id"])
             for t in session.listTasks()]
    raise AssertionError(f"not seen in {timeout} s; the hub's tasks: {tasks}")


def submit(env: dict, *args: str) -> int:
    done = run_cli(env["conf"], "releng", "releng-pw", "cloud-image-build", "--nowait",
                   "--kickstart", str(env["work"] / "f.ks"), "--distro", "Fedora-39",
                   "--scratch", "Fedora-Cloud-Base", "39", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return int(re.search(r"Created task: (\d+)", done.stdout).group(1))


def arch_requests(session: koji.ClientSession, parent: int) -> list[list[Any]]:
    return [session.getTaskRequest(c["id"]) for c in session.getTaskChildren(parent)
            if c["method"] == "createCloudImage"]


# TEST-NET-1: the arch tasks fail reaching it; these tests look at what they were given
TREE = "http://192.0.2.1/f/$arch/os/"


def test_the_parent_takes_the_tags_current_repo_and_hands_it_to_each_arch(koji_env) -> None:
    session = client_session(koji_env["hub"])
    parent = submit(koji_env, "f39-candidate", TREE, "x86_64")
    [request] = wait_for(session, lambda: arch_requests(session, parent))
    repo_info = request[6]
    assert (repo_info["id"], repo_info["tag_name"]) == (koji_env["repo"], "f39-build")
    assert request[7]["distro"] == "Fedora-39"


def test_no_ready_repo_means_a_waitrepo_subtask_then_the_build_goes_on(koji_env) -> None:
    session = client_session(koji_env["hub"])
    parent = submit(koji_env, "f40-candidate", TREE, "x86_64")
    [wait] = wait_for(session, lambda: [c for c in session.getTaskChildren(parent)
                                        if c["method"] == "waitrepo"])
    assert wait["label"] == "waitrepo" and arch_requests(session, parent) == []
    repo_id = make_repo(koji_env["hub"], "f40-build", "repomaker", "repomaker-pw")
    [request] = wait_for(session, lambda: arch_requests(session, parent))
    assert request[6]["id"] == repo_id
    assert session.getTaskInfo(wait["id"])["state"] == koji.TASK_STATES["CLOSED"]


def test_a_pinned_repo_must_be_the_build_tags_and_ready_or_expired(koji_env) -> None:
    hub = koji_env["hub"]
    with host_session(hub, "repomaker", "repomaker-pw") as host:
        init_id, _ = host.host.repoInit("f39-build")  # never finished: INIT
    other = make_repo(hub, "f40-build", "repomaker", "repomaker-pw")
    for repo_id, error in (
            (99999, "repo_id: no repo 99999 on this hub; leave repo_id out to use the "
                    "current repo of f39-build"),
            (other, f"repo_id: repo {other} is a repo of tag f40-build, not of the target's "
                    "build tag f39-build"),
            (init_id, f"repo_id: repo {init_id} of f39-build is INIT; pin a READY or EXPIRED "
                      "one (koji list-repos), or leave repo_id out")):
        done = run_cli(koji_env["conf"], "releng", "releng-pw", "cloud-image-build",
                       "--nowait", "--kickstart", str(koji_env["work"] / "f.ks"),
                       "--distro", "Fedora-39", "--scratch", "--repo-id", str(repo_id),
                       "Fedora-Cloud-Base", "39", "f39-candidate", TREE, "x86_64")
        assert done.returncode != 0
        assert error in done.stderr, done.stderr
    # a newer repo expires the fixture's one; an EXPIRED repo may still be pinned
    newer = make_repo(hub, "f39-build", "repomaker", "repomaker-pw")
    session = client_session(hub)
    assert koji.REPO_STATES[session.repoInfo(koji_env["repo"])["state"]] == "EXPIRED"
    parent = submit(koji_env, "--repo-id", str(koji_env["repo"]), "f39-candidate", TREE,
                    "x86_64")
    [request] = wait_for(session, lambda: arch_requests(session, parent))
    assert request[6]["id"] == koji_env["repo"] != newer


def test_pinned_problem_and_the_repo_states_agree_with_koji() -> None:
    assert repos.STATES == tuple(koji.REPO_STATES[i] for i in range(len(repos.STATES)))
    info = {"id": 5, "tag_id": 1, "tag_name": "t", "state": koji.REPO_DELETED}
    assert repos.pinned_problem(5, info, 1, "t") == (
        "repo 5 of t is DELETED; pin a READY or EXPIRED one (koji list-repos), or leave "
        "repo_id out")
    assert repos.pinned_problem(5, dict(info, state=koji.REPO_EXPIRED), 1, "t") is None


def rpm_entry(path: Path, repo: str | None) -> dict[str, Any]:
    fields = subprocess.run(
        ["rpm", "-qp", "--qf", "%{NAME}\t%{VERSION}\t%{RELEASE}\t%{EPOCH}\t%{ARCH}\t"
         "%{SIGMD5}\t%{SIZE}\t%{BUILDTIME}", str(path)],
        check=True, capture_output=True, text=True).stdout.split("\t")
    name, version, release, epoch, arch, sigmd5, size, buildtime = fields
    return {"name": name, "version": version, "release": release,
            "epoch": None if epoch == "(none)" else int(epoch), "arch": arch,
            "payloadhash": sigmd5, "size": int(size), "buildtime": int(buildtime),
            "repo": repo}


def test_rpm_components_are_linked_at_import_and_found_again(koji_env, tmp_path) -> None:
    hub, conf = koji_env["hub"], koji_env["conf"]
    admin = client_session(hub, "admin", "admin-pw")
    admin.createExternalRepo("fedora-39-updates", "http://mirror.example/39/$arch/")
    admin.addExternalRepoToTag("f39-build", "fedora-39-updates", 10)
    repo_info = admin.repoInfo(koji_env["repo"], strict=True)
    koji_repo = repos.koji_repo(koji.PathInfo(topdir=hub.topurl).repo(
        repo_info["id"], "f39-build"), repo_info)
    install = (koji_repo, Repo("koji-override-0", "http://mirror.example/39/$arch"))
    binary = [p for p in koji_env["rpms"] if not p.name.endswith(".src.rpm")]
    external = {"name": "zlib", "version": "1.2.13", "release": "4.fc39", "epoch": None,
                "arch": "x86_64", "payloadhash": "0" * 32, "size": 200, "buildtime": 1,
                "repo": "koji-override-0"}
    packages = [rpm_entry(binary[0], koji_repo.name), rpm_entry(binary[1], koji_repo.name),
                external]
    ext_list = admin.getExternalRepoList(repo_info["tag_id"])
    rpmlist = components.rpmlist(packages, koji_repo.name, install, ext_list, "x86_64",
                                 tag="f39-build", scratch=False)
    assert [r.get("location") for r in rpmlist] == [None, None, ext_list[0]["external_repo_id"]]
    # an RPM from a repo Koji does not know cannot be imported
    with pytest.raises(components.ComponentError, match=r"zlib-1.2.13-4.fc39.x86_64 was "
                       r"installed from repo elsewhere \(not a repo of the build\), which is "
                       r"neither build tag f39-build's Koji repo"):
        components.rpmlist([dict(external, repo="elsewhere")], koji_repo.name, install,
                           ext_list, "x86_64", tag="f39-build", scratch=False)
    # a manual image import of one arch, as the parent task does it
    host = client_session(hub, "builder2", "builder2-pw")
    task_id = admin.stubMakeTask("cloudImageBuild", [], channel="manual")
    host.exclusiveSession()
    host.host.updateHost(0.0, True)
    host.host.openTask(task_id)
    build = host.host.initImageBuild(task_id, {"name": "Fedora-Cloud-Base", "version": "39",
                                               "release": "1", "epoch": 0,
                                               "extra": {RECORD_KEY: {"version": 1}}})
    name = "Fedora-Cloud-Base-39-1.x86_64.qcow2"
    (tmp_path / name).write_bytes(b"q" * 100)
    (tmp_path / "Fedora-Cloud-Base-39-1.x86_64.ks").write_text(KS)
    for f in (name, "Fedora-Cloud-Base-39-1.x86_64.ks"):
        host.uploadWrapper(str(tmp_path / f), koji.pathinfo.taskrelpath(task_id))
    image = {"file": name, "arch": "x86_64", "variant": "generic", "format": "qcow2",
             "size": 100, "sha256": hashlib.sha256(b"q" * 100).hexdigest()}
    result = arch_result(task_id, "x86_64", [name, "Fedora-Cloud-Base-39-1.x86_64.ks"], [],
                         {"images": [image], "boot_tests": []}, rpmlist)
    host.host.completeImageBuild(task_id, build["id"], {"x86_64": result})
    host.host.tagBuild(task_id, "f39", build["id"])
    archives = admin.listArchives(buildID=build["id"])
    for archive in archives:  # every archive of the arch, the kickstart too, as kojihub
        assert sorted(r["name"] for r in admin.listRPMs(imageID=archive["id"])) == [
            "koji-fixture-hello", "koji-fixture-motd", "zlib"]
    assert admin.buildReferences("koji-fixture-hello-1.0-1")["images"] == \
        sorted(a["id"] for a in archives)

    info = run_cli(conf, "releng", "releng-pw", "cloud-image-info", "--rpms",
                   "Fedora-Cloud-Base-39-1")
    assert info.returncode == 0, info.stderr
    assert f"x86_64: 3 RPM components (of {name})" in info.stdout
    assert "  koji-fixture-motd-1:2.1-3.noarch\n" in info.stdout
    assert "  zlib-1.2.13-4.fc39.x86_64  [fedora-39-updates]" in info.stdout
    for arg in ("koji-fixture-hello-1.0-1.noarch", "koji-fixture-motd-2.1-3"):
        found = run_cli(conf, "releng", "releng-pw", "cloud-image-find", arg)
        assert found.returncode == 0, found.stderr
        assert found.stdout.startswith("Fedora-Cloud-Base-39-1: contains koji-fixture-")
        assert f"  {name}\n" in found.stdout
    none = run_cli(conf, "releng", "releng-pw", "cloud-image-find", "--tag", "f39-build",
                   "koji-fixture-hello-1.0-1.noarch")
    assert none.returncode == 1
    assert none.stdout.strip() == ("no cloud image build tagged in f39-build contains "
                                   "koji-fixture-hello-1.0-1.noarch")
    tagged = run_cli(conf, "releng", "releng-pw", "cloud-image-find", "--tag", "f39",
                     "koji-fixture-hello-1.0-1.noarch")
    assert tagged.returncode == 0 and "Fedora-Cloud-Base-39-1" in tagged.stdout
    # an NVR that is no N-V-R.A at all is looked up as a build (this one holds no RPMs)
    image_build = run_cli(conf, "releng", "releng-pw", "cloud-image-find",
                          "Fedora-Cloud-Base-39-1")
    assert image_build.returncode == 1 and "Traceback" not in image_build.stderr
    assert image_build.stdout.strip() == "no cloud image build contains Fedora-Cloud-Base-39-1"
    with pytest.raises(koji.ParameterError, match="rpm: give a name or an id, not dict"):
        admin.cloudImageFind(rpm={"name": "x"})
    missing = run_cli(conf, "releng", "releng-pw", "cloud-image-find", "nosuch-1-1.noarch")
    assert missing.returncode == 1
    assert "nosuch-1-1.noarch: no such RPM (N-V-R.A) or build (NVR) on this hub" \
        in missing.stderr
    assert rpm_nvras(koji_env["rpms"]) == ["koji-fixture-hello-1.0-1.noarch",
                                           "koji-fixture-motd-2.1-3.noarch"]
    host.host.closeTask(task_id, koji.xmlrpcplus.dumps((None,), methodresponse=1))


def test_rpmlist_maps_origins_as_kojid_does() -> None:
    koji_repo = Repo("koji-f39-build-4", "http://hub/kojifiles/repos/f39-build/4/$arch")
    extra = Repo("koji-override-0", "http://extra.example/$arch/")
    pkg = {"name": "a", "version": "1", "release": "1", "epoch": None, "arch": "noarch",
           "payloadhash": "0" * 32, "size": 1, "buildtime": 1}
    dpkg = {"name": "bash", "version": "5.2", "arch": "amd64"}
    ext = [{"external_repo_id": 7, "url": "http://extra.example/$arch"}]

    def mapped(packages, external=(), scratch=False):
        return components.rpmlist(packages, koji_repo.name, (koji_repo, extra), list(external),
                                  "x86_64", tag="f39-build", scratch=scratch)

    assert mapped([dpkg]) == []  # a Debian image: its packages stay in the manifest
    assert mapped([dict(pkg, repo=koji_repo.name)]) == [pkg]
    # no external repos: all are taken for Koji's, as kojid does (the hub's import checks)
    assert mapped([dict(pkg, repo=None)]) == [pkg]
    assert mapped([dict(pkg, repo="koji-override-0")]) == [pkg]
    assert mapped([dict(pkg, repo="koji-override-0")], ext) == [dict(pkg, location=7)]
    assert mapped([dict(pkg, repo=koji_repo.name)], ext) == [pkg]
    with pytest.raises(components.ComponentError, match=r"does not say which repo it came "
                       r"from .*build tag f39-build has external repos"):
        mapped([dict(pkg, repo=None)], ext)
    other = [{"external_repo_id": 8, "url": "http://other.example/$arch"}]
    with pytest.raises(components.ComponentError, match=r"a-1-1.noarch was installed from "
                       r"repo koji-override-0 \(http://extra.example/x86_64/\)"):
        mapped([dict(pkg, repo="koji-override-0")], other)
    # a scratch build is not imported: the RPM is kept with where it came from
    assert mapped([dict(pkg, repo="koji-override-0")], other, scratch=True) == [
        dict(pkg, origin="http://extra.example/x86_64/")]


def test_the_build_records_where_its_packages_came_from() -> None:
    info = {"id": 4, "tag_id": 1, "tag_name": "f39-build", "create_event": 77}
    assert repos.describe(repos.record(info)) == "Koji repo 4 of build tag f39-build (event 77)"
    # the request's repos replaced the tag's: the record says so, not the unused Koji repo
    rec = repos.record(info, ["http://a/$arch/", "http://b/"])
    assert rec == {"repos": ["http://a/$arch/", "http://b/"]}
    assert repos.describe(rec) == ("the request's repos, not a Koji repo: http://a/$arch/, "
                                   "http://b/")
    assert repos.describe(repos.record(None)).startswith("its install tree, not a Koji repo")
