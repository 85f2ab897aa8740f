"""What a real Koji hub showed (issue: refusals at submit, readable info): URLs that cannot
work are refused at submit by the hub and by the CLI's local check, each message offers
only what that edge accepts, a wrong type is one problem, cloudImageInfo names a missing
task or build, a failed arch's error reads as its task reported it, and per-variant
formats can be given from the command line. Through the real koji library and CLI against
the stand-in hub (tests/kojistub)."""

# ruff: noqa: F811 - the fixtures imported from test_plugins are parameters here
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import koji
import pytest

from tests.conftest import REPO
from tests.koji.test_plugins import GOOD, SEED, cli_conf, hub, tasks  # noqa: F401 - fixtures
from tests.kojistub import client_session, run_cli, start_hub, write_client_config

BAD_URLS = [
    ("http://", "'http://' has no host"),
    ("http:///x/", "'http:///x/' has no host"),
    ("https://x:99999/", "has no valid port"),
    ("http://mirror.example.org/a b/", "has white space or a control character"),
    ("http://mirror.example.org/\n/x", "'http://mirror.example.org/\\n/x' has white space"),
    ("http://user:pw@mirror.example.org/t/", "'http://user:***@mirror.example.org/t/' "
     "carries a password"),
    ("http://user:pw@mirror.example.org/a b/", "carries a password"),
    ("http://user:pw@[bad/", "'http://user:***@[bad/' carries a password"),
    ("http://mirror.example.org:0/t/", "has no valid port"),
    ("http://mirror.example.org:http/t/", "has no valid port"),
    ("http://[::1]/t/", "the guest cannot reach localhost"),
    ("http://127.0.0.2/t/", "the guest cannot reach localhost"),
]


@pytest.mark.parametrize("url,error", BAD_URLS)
def test_the_hub_refuses_urls_that_cannot_work_and_queues_nothing(
        hub: Any, url: str, error: str) -> None:
    session = client_session(hub, "releng", "releng-pw")
    for opts in (dict(GOOD, install_tree=url), dict(GOOD, repos=[url])):
        with pytest.raises(koji.ParameterError) as exc:
            session.cloudImageBuild("Test-Cloud-Base", "12", "f19", ["x86_64"], opts)
        field = "install_tree" if "install_tree" in opts and opts["install_tree"] == url \
            else "repos[0]"
        assert f"{field}: " in str(exc.value) and error in str(exc.value), str(exc.value)
        # one line, and the password never comes back
        assert "\n" not in str(exc.value) and ":pw@" not in str(exc.value)
    assert tasks(hub) == []


#: XML cannot carry this one to a hub at all; the CLI refuses it first
CONTROL = ("http://mirror.example.org/\x07/", "has white space or a control character")


@pytest.mark.parametrize("url,error", [*BAD_URLS, CONTROL])
def test_the_cli_refuses_them_on_the_users_machine_with_the_same_words(
        hub: Any, cli_conf: Path, url: str, error: str) -> None:
    done = run_cli(cli_conf, "releng", "wrong-password", "cloud-image-build",
                   "Test-Cloud-Base", "12", "f19", url, "x86_64", "--distro", "Debian-12")
    assert done.returncode == 2, done.stderr
    assert "install_tree: " in done.stderr and error in done.stderr
    assert ":pw@" not in done.stderr
    assert tasks(hub) == [] and not hub.state()["uploads"]


def test_urls_that_work_are_accepted(hub: Any) -> None:
    session = client_session(hub, "releng", "releng-pw")
    for url in ("http://[fd00::1]/tree/$arch/", "ftp://anonymous@mirror.example.org/t/",
                "https://mirror.example.org:8443/a%20b/$arch/os/"):
        assert session.cloudImageBuild("Test-Cloud-Base", "12", "f19", ["x86_64"],
                                       dict(GOOD, install_tree=url, repos=[url]))
    assert len(tasks(hub)) == 3


def test_the_same_rules_run_for_a_local_build(tmp_path: Path) -> None:
    import subprocess
    import sys

    spec = tmp_path / "spec.yaml"
    spec.write_text("name: T\nversion: '1'\ndistro: Debian-12\narches: [x86_64]\n"
                    "install_tree: 'http://u:secret@mirror.example.org:99999/t/'\n"
                    "repos: ['http://127.0.0.1/r/', 'file:///srv/repo']\n")
    done = subprocess.run([sys.executable, "-m", "koji_image_plugin.command", "validate",
                           str(spec)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"koji-image: {spec}: install_tree: 'http://u:***@mirror.example.org:99999/t/' "
        "carries a password, which every Koji user could read in the task and which a "
        "build's manifest keeps; give the URL without credentials (the builder's own "
        "configuration has them)",
        f"koji-image: {spec}: repos[0]: the guest cannot reach localhost; use the host's "
        "address on the libvirt network or file://"]
    assert "secret" not in done.stderr


def test_credentials_in_an_scm_url_are_refused_at_both_edges(
        hub: Any, cli_conf: Path) -> None:
    secret = "git+https://builder:s3cret@git.example.org/kickstarts.git#f19"
    session = client_session(hub, "releng", "releng-pw")
    with pytest.raises(koji.ParameterError, match=r"ksurl: .* carries a password") as exc:
        session.cloudImageBuild("Test-Cloud-Base", "12", "f19", ["x86_64"],
                                dict(GOOD, ksurl=secret, preseed="cloud/debian.preseed"))
    assert "s3cret" not in str(exc.value)
    done = run_cli(cli_conf, "releng", "wrong-password", "cloud-image-build",
                   "Test-Cloud-Base", "12", "f19", "http://10.0.0.1/t/", "x86_64",
                   "--distro", "Debian-12", "--ksurl", secret, "--kickstart", "a.preseed")
    assert done.returncode == 2 and "carries a password" in done.stderr
    assert "s3cret" not in done.stderr
    # an SSH user is no secret: allowed
    ok = dict(GOOD, ksurl="git+ssh://git@git.example.org/kickstarts.git#f19",
              preseed="cloud/debian.preseed")
    assert session.cloudImageBuild("Test-Cloud-Base", "12", "f19", ["x86_64"], ok)
    assert [t["method"] for t in tasks(hub)] == ["cloudImageBuild"]


@pytest.mark.parametrize("url", ["file:///srv/tree", "gopher://x/tree/",
                                 "http://localhost/tree/"])
def test_the_hubs_messages_offer_only_what_the_hub_accepts(
        hub: Any, url: str) -> None:
    session = client_session(hub, "releng", "releng-pw")
    with pytest.raises(koji.ParameterError) as exc:
        session.cloudImageBuild("Test-Cloud-Base", "12", "f19", ["x86_64"],
                                dict(GOOD, install_tree=url))
    assert "install_tree: " in str(exc.value)
    assert "file://" not in str(exc.value).replace(f"'{url}'", "").replace(
        "file:// is a path on the builder", "")


def test_repos_given_as_a_string_is_one_problem(hub: Any) -> None:
    session = client_session(hub, "releng", "releng-pw")
    with pytest.raises(koji.ParameterError) as exc:
        session.cloudImageBuild("Test-Cloud-Base", "12", "f19", ["x86_64"],
                                dict(GOOD, repos="http://10.0.0.1/repo/"))
    assert "repos: must be of type array, not str" in str(exc.value)
    assert "repos[" not in str(exc.value)


def test_cloud_image_info_names_a_missing_task_or_build(
        hub: Any, cli_conf: Path) -> None:
    session = client_session(hub)
    with pytest.raises(koji.GenericError, match=r"task 424242: no such task"):
        session.cloudImageInfo(task=424242)
    with pytest.raises(koji.GenericError, match=r"build 'No-Such-1-1': no such build"):
        session.cloudImageInfo(build="No-Such-1-1")
    done = run_cli(cli_conf, "releng", "releng-pw", "cloud-image-info", "424242")
    assert done.returncode == 1 and "task 424242: no such task" in done.stderr
    assert "query returned no rows" not in done.stderr


FAILING_PLUGIN = '''
import koji
import koji.xmlrpcplus
import kojihub
from koji.context import context
from koji.plugin import export
from xmlrpc.client import Fault

from tests.kojistub.core import DB


@export
def stubFailedImageBuild(faults):
    """A cloudImageBuild whose arch tasks failed with these faults (faultCode, text)."""
    context.session.assertLogin()
    parent = kojihub.make_task("cloudImageBuild", ["Img", "1", "f19", list(faults), {}],
                               channel="image")
    DB.tasks[parent]["state"] = koji.TASK_STATES["OPEN"]
    for arch, (code, text) in faults.items():
        child = kojihub.make_task("createCloudImage", ["Img", "1", "1", arch, {}, 1, {}],
                                  parent=parent, label=arch, arch=arch)
        if code is None:
            kojihub.Task(child).cancel()
        else:
            kojihub.Task(child).fail(koji.xmlrpcplus.dumps(Fault(code, text),
                                                           methodresponse=1))
    kojihub.Task(parent).fail(koji.xmlrpcplus.dumps(Fault(1000, "every arch failed"),
                                                    methodresponse=1))
    return parent
'''


def test_a_failed_arch_reads_as_its_task_reported_it(tmp_path: Path) -> None:
    plugins = tmp_path / "hubplugins"
    plugins.mkdir()
    (plugins / "stubfail.py").write_text(FAILING_PLUGIN)
    h = start_hub(tmp_path / "top", SEED, tmp_path, plugin_path=f"{REPO / 'hub'}:{plugins}",
                  plugins=("cloud_image", "stubfail"))
    try:
        session = client_session(h, "releng", "releng-pw")
        traceback = ("Traceback (most recent call last):\n  File \"kojid\", line 1, in x\n"
                     "ValueError: the disk image is damaged")
        task_id = session.stubFailedImageBuild({
            "x86_64": [1005, "SCM checkout failed:\nfatal: repository not found\n"
                             "(git clone exited 128)"],
            "i686": [1, traceback], "ppc64le": [None, None]})
        conf = write_client_config(tmp_path / "koji.conf", h, plugin_paths=(REPO / "cli",))
        done = run_cli(conf, "releng", "releng-pw", "cloud-image-info", str(task_id))
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert "x86_64: FAILED: SCM checkout failed:" in lines
        assert "    fatal: repository not found" in lines
        assert "    (git clone exited 128)" in lines
        child = [t["id"] for t in session.getTaskChildren(task_id) if t["label"] == "i686"]
        assert (f"i686: FAILED: ValueError: the disk image is damaged (the traceback: koji "
                f"taskinfo -v {child[0]})") in lines
        assert "ppc64le: FAILED: CANCELED" in lines
        assert "<Fault" not in done.stdout and "Traceback" not in done.stdout
    finally:
        h.stop()


def test_per_variant_formats_from_the_command_line(hub: Any, cli_conf: Path) -> None:
    done = run_cli(cli_conf, "releng", "releng-pw", "cloud-image-build", "--help")
    assert "output format of every variant" in done.stdout and "--variant-format" \
        in done.stdout
    preseed = REPO / "koji_image_plugin" / "data" / "debian.preseed"
    done = run_cli(cli_conf, "releng", "releng-pw", "cloud-image-build", "Test-Cloud-Base",
                   "12", "f19", "http://10.0.0.1/tree/$arch/", "x86_64", "--distro",
                   "Debian-12", "--kickstart", str(preseed), "--variant", "generic",
                   "--variant", "ec2", "--format", "qcow2", "--variant-format", "ec2=raw-xz",
                   "--nowait")
    assert done.returncode == 0, done.stderr
    [task] = tasks(hub)
    opts = client_session(hub).getTaskInfo(task["id"], request=True)["request"][4]
    assert opts["formats"] == ["qcow2"] and opts["variant_formats"] == {"ec2": ["raw.xz"]}
    done = run_cli(cli_conf, "releng", "releng-pw", "cloud-image-build", "Test-Cloud-Base",
                   "12", "f19", "http://10.0.0.1/tree/$arch/", "x86_64", "--distro",
                   "Debian-12", "--variant-format", "ec2", "--nowait")
    assert done.returncode == 2 and "--variant-format: 'ec2' is not VARIANT=FORMAT" \
        in done.stderr
    json.dumps(opts)  # plain data all the way


def test_format_and_variant_format_next_to_a_config(hub: Any, cli_conf: Path,
                                                    tmp_path: Path) -> None:
    # the preseed beside the config: a spec's files are kept inside its directory
    (tmp_path / "debian.preseed").write_bytes(
        (REPO / "koji_image_plugin" / "data" / "debian.preseed").read_bytes())
    config = tmp_path / "image.yaml"
    config.write_text(json.dumps(dict(
        GOOD, name="Test-Cloud-Base", version="12", target="f19", arches=["x86_64"],
        preseed="debian.preseed", variants=["generic", "ec2"],
        variant_formats={"ec2": ["raw.xz"], "generic": ["qcow2"]})))
    for extra, formats, variant_formats in (
            (["--format", "raw.tar.xz"], ["raw.tar.xz"], None),
            (["--variant-format", "ec2=qcow2"], None, {"ec2": ["qcow2"],
                                                       "generic": ["qcow2"]})):
        done = run_cli(cli_conf, "releng", "releng-pw", "cloud-image-build", "--config",
                       str(config), *extra, "--nowait")
        assert done.returncode == 0, done.stderr
        task = max(tasks(hub), key=lambda t: t["id"])
        opts = client_session(hub).getTaskInfo(task["id"], request=True)["request"][4]
        assert opts.get("formats") == formats
        assert opts.get("variant_formats") == variant_formats


def test_a_builder_whose_config_cannot_be_read_fails_the_arch_in_one_line(
        hub: Any, tmp_path: Path) -> None:
    from tests.koji.test_plugins import wait_task
    from tests.kojistub import start_kojid

    d = start_kojid(hub.url, hub.topurl, "builder", "builder-pw", tmp_path / "kojid",
                    plugin_path=REPO / "builder", plugins=("cloud_image",),
                    env={"KOJI_CLOUD_IMAGE_CONF": str(tmp_path)})
    try:
        session = client_session(hub, "releng", "releng-pw")
        task_id = session.cloudImageBuild("Test-Cloud-Base", "12", "f19", ["x86_64"],
                                          dict(GOOD, scratch=True))
        assert wait_task(session, task_id)["state"] == koji.TASK_STATES["FAILED"]
        info = session.cloudImageInfo(task=task_id)
        assert info["arches"]["x86_64"]["error"] == (
            f"$KOJI_CLOUD_IMAGE_CONF: {tmp_path} is not a regular file; give the host "
            "config file itself")
    finally:
        d.stop()


def test_boot_clouds_from_the_command_line(hub: Any, cli_conf: Path) -> None:
    preseed = REPO / "koji_image_plugin" / "data" / "debian.preseed"
    args = ["cloud-image-build", "Test-Cloud-Base", "12", "f19",
            "http://10.0.0.1/tree/$arch/", "x86_64", "--distro", "Debian-12", "--kickstart",
            str(preseed), "--variant", "generic", "--variant", "ec2"]
    done = run_cli(cli_conf, "releng", "releng-pw", *args, "--boot-cloud", "openstack",
                   "--boot-cloud", "eucalyptus", "--nowait")
    assert done.returncode == 0, done.stderr
    [task] = tasks(hub)
    opts = client_session(hub).getTaskInfo(task["id"], request=True)["request"][4]
    assert opts["boot_test"]["profiles"] == {"generic": ["openstack", "eucalyptus"],
                                             "ec2": ["openstack", "eucalyptus"]}
    done = run_cli(cli_conf, "releng", "releng-pw", *args, "--boot-cloud", "azure",
                   "--nowait")
    assert done.returncode == 2, done.stdout + done.stderr
    assert ("boot_test.profiles.generic[0]: 'azure' is not allowed; use one of: nocloud, "
            "openstack, ec2, eucalyptus, cloudstack") in done.stderr, done.stderr
    assert len(tasks(hub)) == 1
    # the hub refuses it too
    session = client_session(hub, "releng", "releng-pw")
    with pytest.raises(koji.ParameterError) as exc:
        session.cloudImageBuild("Test-Cloud-Base", "12", "f19", ["x86_64"],
                                dict(GOOD, boot_test={"profiles": {"generic": ["azure"]}}))
    assert "boot_test.profiles.generic[0]" in str(exc.value)
