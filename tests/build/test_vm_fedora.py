"""A local Fedora-style build for real: ``koji-image build`` of examples/fedora-fixture.yaml
(its kickstart installed by Oz's Fedora code from the Fedora-shaped fixture tree), its
``repos`` a createrepo_c repo of the fixture RPMs served to the guest, where the fixture
installer installs the kickstart's %packages with real dnf. Slow: marker ``vm``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, host_state, is_root
from tests.proc import serve_http
from tests.rpmfixtures import build_fixture_rpms

pytestmark = [pytest.mark.vm,
              pytest.mark.skipif(not is_root(), reason="libvirt guests and mounts need root")]
KICKSTART = REPO / "examples" / "fedora-fixture.ks"


def test_a_local_fedora_style_build_installs_the_specs_repos(tmp_path: Path,
                                                             fedora_tree: Path) -> None:
    before = host_state()
    rpms = build_fixture_rpms(tmp_path / "rpmbuild")
    repo = tmp_path / "repo" / "x86_64"
    repo.mkdir(parents=True)
    for path in rpms:
        if not path.name.endswith(".src.rpm"):
            shutil.copy(path, repo)
    subprocess.run(["createrepo_c", "--quiet", str(repo)], check=True)
    spec = yaml.safe_load((REPO / "examples" / "fedora-fixture.yaml").read_text())
    shutil.copy(KICKSTART, tmp_path / KICKSTART.name)
    with serve_http(tmp_path / "repo") as base:
        spec.update(repos=[f"{base}/$arch/"], release="1",
                    boot_test={"profiles": {"generic": ["nocloud"]}})
        (tmp_path / "fedora.yaml").write_text(yaml.safe_dump(spec))
        t0 = time.monotonic()
        host = tmp_path / "host.conf"
        host.write_text("[timeouts]\ninactivity = 300\ninstall = 2400\n")
        done = subprocess.run([str(REPO / ".venv/bin/koji-image"), "build",
                               str(tmp_path / "fedora.yaml"), "--output", str(tmp_path / "out")],
                              cwd=tmp_path, capture_output=True, text=True, timeout=3000,
                              env={**os.environ, "KOJI_IMAGE_CONFIG": str(host)})
    print(f"Fedora-style local build: {time.monotonic() - t0:.0f} s\n{done.stdout}")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    # the example kickstart lays out a hybrid disk: it boots under SeaBIOS and OVMF
    assert "boot test x86_64 generic as nocloud under seabios: PASS" in done.stdout
    assert "boot test x86_64 generic as nocloud under ovmf: PASS" in done.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    got = {p["name"]: p for p in manifest["arches"]["x86_64"]["packages"]}
    assert got["koji-fixture-hello"]["repo"] == "koji-override-0"
    assert got["koji-fixture-motd"]["epoch"] == 1
    prepared = (tmp_path / "out" / "logs" / "Fedora-Cloud-Base-39-1.x86_64.ks").read_text()
    assert re.search(r'repo --name="koji-override-0" --baseurl=http://192\.168\.122\.1:\d+/'
                     r"x86_64/", prepared), prepared
    assert host_state() == before
