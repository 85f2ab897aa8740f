"""The Fedora path for real: a kickstart install by Oz's Fedora code from the Fedora-shaped
fixture tree, whose installer installs the kickstart's %packages with real dnf from the
repos the kickstart names.

- Hub build: the fixture RPMs are built with rpmbuild, imported with ``koji import``,
  tagged into the build tag and published in its Koji repo with createrepo_c; the CLI
  submits, the parent takes the tag's repo, the arch task prepares the kickstart with it,
  dnf in the guest installs from the hub's topurl, the image's rpmdb is read, the build is
  imported with its RPM components, and ``koji cloud-image-info --rpms`` and
  ``koji cloud-image-find`` answer from Koji.

The local build of the same kickstart is tests/build/test_vm_fedora.py.
Only the installer is a fixture (tests/fixtures/offline_tree, --layout fedora).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import koji
import pytest

from tests.conftest import REPO, TREES, host_state, is_root
from tests.kojistub import client_session, run_cli, start_hub, start_kojid, write_client_config
from tests.kojistub.createrepo import build_fixture_rpms, import_rpms, make_repo, rpm_nvras
from tests.proc import GUEST_HOST, serve_http

pytestmark = [pytest.mark.vm,
              pytest.mark.skipif(not is_root(), reason="libvirt guests and mounts need root")]

SEED = {
    "users": [
        {"name": "admin", "password": "admin-pw", "perms": ["admin"]},
        {"name": "releng", "password": "releng-pw", "perms": ["image"]},
        {"name": "builder", "password": "builder-pw", "host": True},
        {"name": "repomaker", "password": "repomaker-pw", "host": True},
    ],
    "hosts": [{"name": "builder", "arches": "x86_64", "channels": ["default", "image"],
               "capacity": 8.0},
              {"name": "repomaker", "arches": "x86_64", "channels": ["createrepo"]}],
    "tags": [{"name": "f39-build", "arches": "x86_64"}, {"name": "f39"}],
    "targets": [{"name": "f39-candidate", "build_tag": "f39-build", "dest_tag": "f39"}],
    "packages": [{"tag": "f39", "package": "Fedora-Cloud-Base", "owner": "releng"},
                 {"tag": "f39-build", "package": "koji-fixture-hello", "owner": "admin"},
                 {"tag": "f39-build", "package": "koji-fixture-motd", "owner": "admin"}],
}
KICKSTART = REPO / "examples" / "fedora-fixture.ks"
NVR = "Fedora-Cloud-Base-39-1"


def test_a_fedora_style_hub_build_installs_from_the_tag_repo_and_records_its_rpms(
        tmp_path: Path, fedora_tree: Path) -> None:
    before = host_state()
    hub = start_hub(tmp_path / "top", SEED, tmp_path, REPO / "hub", ("cloud_image",),
                    bind=GUEST_HOST)
    kojid = None
    try:
        conf = write_client_config(tmp_path / "koji.conf", hub, plugin_paths=(REPO / "cli",))
        host_conf = tmp_path / "cloud_image.conf"
        host_conf.write_text("[timeouts]\ninactivity = 300\ninstall = 2400\n")
        kojid = start_kojid(hub.url, hub.topurl, "builder", "builder-pw", tmp_path / "kojid",
                            plugin_path=REPO / "builder", plugins=("cloud_image",),
                            env={"KOJI_CLOUD_IMAGE_CONF": str(host_conf)})
        rpms = build_fixture_rpms(tmp_path / "rpmbuild")
        import_rpms(conf, "admin", "admin-pw", rpms)
        for nvr in ("koji-fixture-hello-1.0-1", "koji-fixture-motd-2.1-3"):
            done = run_cli(conf, "admin", "admin-pw", "tag-build", "--wait", "f39-build", nvr)
            assert done.returncode == 0, done.stdout + done.stderr
        repo_id = make_repo(hub, "f39-build", "repomaker", "repomaker-pw")
        t0 = time.monotonic()
        with serve_http(TREES) as trees:
            done = run_cli(conf, "releng", "releng-pw", "cloud-image-build", "Fedora-Cloud-Base",
                           "39", "f39-candidate", f"{trees}/fedora-39-$arch/", "x86_64",
                           "--distro", "Fedora-39", "--ksversion", "F39",
                           "--kickstart", str(KICKSTART), "--disk-size", "2",
                           "--format", "qcow2", "--release", "1", "--wait",
                           # the Fedora path is what this proves; the hybrid kickstart's
                           # UEFI boot is proven by the local build (test_vm_fedora.py)
                           "--firmware", "bios", "--boot-cloud", "nocloud", timeout=3000)
        print(f"Fedora-style hub build: {time.monotonic() - t0:.0f} s\n{done.stdout}")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"Build: {NVR} (COMPLETE)" in done.stdout
        assert f"Built from: Koji repo {repo_id} of build tag f39-build" in done.stdout
        assert "boot test generic as NoCloud seed under SeaBIOS: passed" in done.stdout
        check_imported(hub, conf, repo_id, rpms)
    finally:
        if kojid:
            kojid.stop()
        hub.stop()
    assert host_state() == before


def check_imported(hub: Any, conf: Path, repo_id: int, rpms: list[Path]) -> None:
    session = client_session(hub)
    build = session.getBuild(NVR, strict=True)
    repo = build["extra"]["cloud_image"]["repo"]
    assert (repo["id"], repo["tag"]) == (repo_id, "f39-build")
    images = Path(hub.topdir) / "packages/Fedora-Cloud-Base/39/1/images"
    # the kickstart anaconda saw is the one imported with the build
    prepared = (images / f"{NVR}.x86_64.ks").read_text()
    print(f"prepared kickstart:\n{prepared}")
    base = koji.PathInfo(topdir=hub.topurl).repo(repo_id, "f39-build")
    assert f'repo --name="koji-f39-build-{repo_id}" --baseurl={base}/x86_64' in prepared
    assert prepared.count("repo --name") == 1 and "#version=F39" in prepared
    # the RPMs the image holds are Koji's own RPMs, linked to every image archive
    expected = sorted(session.getRPM(n, strict=True)["id"] for n in rpm_nvras(rpms))
    for archive in session.listArchives(buildID=build["id"]):
        linked = sorted(r["id"] for r in session.listRPMs(imageID=archive["id"]))
        # kojihub links every archive but the *xml ones (the Oz template here)
        want = [] if archive["filename"].endswith("xml") else expected
        assert linked == want, archive["filename"]
    manifest = json.loads((images / f"{NVR}.x86_64.manifest.json").read_text())
    got = {p["name"]: p for p in manifest["arches"]["x86_64"]["packages"]}
    assert {n: got[n]["repo"] for n in ("koji-fixture-hello", "koji-fixture-motd")} == {
        "koji-fixture-hello": f"koji-f39-build-{repo_id}",
        "koji-fixture-motd": f"koji-f39-build-{repo_id}"}
    info = run_cli(conf, "releng", "releng-pw", "cloud-image-info", "--rpms", NVR)
    print(info.stdout)
    assert info.returncode == 0, info.stderr
    assert "koji-fixture-hello-1.0-1.noarch" in info.stdout
    assert "koji-fixture-motd-1:2.1-3.noarch" in info.stdout
    found = run_cli(conf, "releng", "releng-pw", "cloud-image-find",
                    "koji-fixture-motd-2.1-3.noarch")
    print(found.stdout)
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith(f"{NVR}: contains koji-fixture-motd-2.1-3.noarch")
    by_build = run_cli(conf, "releng", "releng-pw", "cloud-image-find", "--tag", "f39",
                       "koji-fixture-hello-1.0-1")
    assert by_build.returncode == 0 and NVR in by_build.stdout, by_build
