"""Hostile hub API calls, through the real koji library to the stand-in hub (one for the
module): each is refused with one short line naming the field, and no task is queued.
The request any Koji user can read never holds a password, and a refusal never echoes
the whole of what it was given."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import koji
import pytest

from tests.conftest import REPO
from tests.koji.test_plugins import GOOD, SEED, tasks
from tests.kojistub import client_session, start_hub

#: a refusal quotes a short excerpt, whatever it was given
MAX_MESSAGE = 2000
BIG = "A" * 100_000


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("hub")
    h = start_hub(tmp / "top", SEED, tmp, plugin_path=REPO / "hub", plugins=("cloud_image",))
    yield h
    h.stop()


def call(name: str = "Test-Cloud-Base", version: Any = "12", target: Any = "f19",
         arches: Any = ("x86_64",), **opts: Any) -> tuple[Any, ...]:
    options = {k: v for k, v in {**GOOD, **opts}.items() if v is not None}
    return (name, version, target, list(arches) if isinstance(arches, tuple) else arches,
            options)


#: (id, cloudImageBuild's arguments, what the refusal names)
BUILDS: list[tuple[str, tuple[Any, ...], str]] = [
    ("name-newline", call(name="Test\n"), "name"),
    ("name-100k", call(name=BIG), "name"),
    ("name-slash", call(name="../x"), "name"),
    ("name-list", call(name=["a"]), "name"),
    ("name-unicode", call(name="Tëst"), "name"),
    ("version-newline", call(version="12\n"), "version"),
    ("version-dash", call(version="1-2"), "version"),
    ("version-list", call(version=[12]), "version"),
    ("version-negative", call(version=-12), "version"),
    ("target-missing", call(target="nosuch"), "target"),
    ("target-100k", call(target=BIG), "target"),
    ("target-dict", call(target={"name": "f19"}), "target"),
    ("arches-empty", call(arches=[]), "arches"),
    ("arches-dict", call(arches={"x86_64": 1}), "arches"),
    ("arches-newline", call(arches=["x86_64\n"]), "arches"),
    ("arches-thousand", call(arches=["x86_64"] * 1000), "arches"),
    ("arches-100k", call(arches=[BIG]), "arches"),
    ("opts-release-newline", call(release="1\n"), "release"),
    ("opts-tree-no-host", call(install_tree="http://"), "install_tree"),
    ("opts-tree-password", call(install_tree="http://u:secret@mirror.example.org/t/"),
     "install_tree"),
    ("opts-tree-100k", call(install_tree="http://mirror.example.org/" + BIG),
     "install_tree"),
    ("opts-ksurl-password", call(ksurl="git+https://u:secret@scm.example.org/ks.git#main",
                                 preseed="cloud.preseed"), "ksurl"),
    ("opts-preseed-dotdot", call(preseed="../../../../etc/shadow"), "preseed"),
    ("opts-preseed-absolute", call(preseed="/etc/shadow"), "preseed"),
    ("opts-kickstart-newline", call(distro="Fedora-19", kickstart="a\nb.ks"), "kickstart"),
    ("opts-formats-string", call(formats="qcow2"), "formats"),
    ("opts-formats-100k", call(formats=[BIG]), "formats"),
    ("opts-disk-absurd", call(disk_size=10 ** 9), "disk_size"),
    ("opts-disk-string", call(disk_size="2"), "disk_size"),
    ("opts-repos-many", call(repos=[f"http://mirror.example.org/{i}/" for i in range(500)]),
     "repos"),
    ("opts-description-delete", call(description="a\x7fb"), "description"),
    ("opts-unknown-many", call(**{f"k{i}": i for i in range(10_000)}), "unknown field"),
    ("opts-unknown-100k", call(**{BIG: 1}), "unknown field"),
    ("opts-region", call(upload={"ec2": {"regions": ["us-east-1\n"]}}), "upload"),
    ("opts-cloud", call(upload={"glance": {"clouds": ["../x"]}}), "upload"),
    ("opts-scratch-string", call(scratch="yes"), "scratch"),
    ("opts-can-fail", call(can_fail=["sparc"]), "can_fail"),
]


def _refused(hub: Any, method: str, args: tuple[Any, ...], names: str,
             **kwargs: Any) -> str:
    session = client_session(hub, "releng", "releng-pw")
    with pytest.raises(koji.GenericError) as exc:
        getattr(session, method)(*args, **kwargs)
    message = str(exc.value)
    assert "\n" not in message, message[:2000]
    assert len(message) <= MAX_MESSAGE, (len(message), message[:300])
    assert names in message, message[:2000]
    assert "secret" not in message
    assert tasks(hub) == []
    return message


@pytest.mark.parametrize("args,names", [(a, n) for _, a, n in BUILDS],
                         ids=[i for i, _, _ in BUILDS])
def test_a_hostile_build_call_is_refused_in_one_short_line(hub: Any, args: tuple[Any, ...],
                                                           names: str) -> None:
    _refused(hub, "cloudImageBuild", args, names)


@pytest.mark.parametrize("priority", ["abc", [1], 10 ** 6 * -1], ids=["words", "list",
                                                                      "negative"])
def test_a_hostile_priority_is_refused(hub: Any, priority: Any) -> None:
    _refused(hub, "cloudImageBuild", call(), "priority", priority=priority)


#: (id, cloudImageUpload's arguments, what the refusal names)
UPLOADS: list[tuple[str, tuple[Any, ...], str]] = [
    ("no-such-build", ("Nosuch-1-1", {"ec2": {}}), "Nosuch-1-1"),
    ("build-dict", ({"name": "x"}, {"ec2": {}}), "build"),
    ("opts-string", ("Nosuch-1-1", "ec2"), "opts"),
    ("region-path", ("Nosuch-1-1", {"ec2": {"regions": ["../x"]}}), "regions"),
    ("region-newline", ("Nosuch-1-1", {"ec2": {"regions": ["us-east-1\n"]}}), "regions"),
    ("cloud-path", ("Nosuch-1-1", {"glance": {"clouds": ["../x"]}}), "clouds"),
    ("public-string", ("Nosuch-1-1", {"ec2": {}, "public": "yes"}), "public"),
    ("unknown-cloud", ("Nosuch-1-1", {"azure": {}}), "azure"),
    ("regions-many", ("Nosuch-1-1", {"ec2": {"regions": ["us-east-1"] * 1000}}), "regions"),
]


@pytest.mark.parametrize("args,names", [(a, n) for _, a, n in UPLOADS],
                         ids=[i for i, _, _ in UPLOADS])
def test_a_hostile_upload_call_is_refused_in_one_short_line(
        hub: Any, args: tuple[Any, ...], names: str) -> None:
    _refused(hub, "cloudImageUpload", args, names)


def test_the_module_hub_takes_a_good_call_so_each_refusal_is_its_fault(
        hub: Any, tmp_path: Path) -> None:
    """The control, last: the same hub queues the good call (the refusals above each
    checked that nothing was queued before it)."""
    session = client_session(hub, "releng", "releng-pw")
    task_id = session.cloudImageBuild(*call())
    assert [t["id"] for t in tasks(hub)] == [task_id]
