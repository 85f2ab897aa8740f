"""The host config: every section and key declared once, read, checked and documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from koji_image_plugin.build.oz import compat as ozcompat
from koji_image_plugin.build.oz.template import oz_config
from koji_image_plugin.errors import CloudConfigError, CloudError, ConfigError, HostError
from koji_image_plugin.spec import hostconfig, settings


def test_host_config_file_and_kvm_detection(tmp_path: Path) -> None:
    cpu = tmp_path / "cpuinfo"
    cpu.write_text("flags\t\t: fpu hypervisor sse2\n")
    kvm = tmp_path / "kvm"
    kvm.touch()
    assert not hostconfig.kvm_usable(kvm, cpu)  # paravirtual: no vmx/svm
    cpu.write_text("flags\t\t: fpu vmx sse2\n")
    assert hostconfig.kvm_usable(kvm, cpu)
    assert not hostconfig.kvm_usable(tmp_path / "none", cpu)
    conf = tmp_path / "k.conf"
    conf.write_text("[libvirt]\ntype = qemu\nmemory = 3072\n[timeouts]\ninactivity = 900\n")
    h = hostconfig.load(conf)
    assert (h.resolved_domain_type, h.accel, h.install_memory_mb) == ("qemu", "tcg", 3072)
    assert h.timeouts() == (3600, 900)
    cfg = oz_config(h, tmp_path / "w", tmp_path / "d")
    # Oz counts inactivity in checks, one every 10 s.
    assert cfg["libvirt"]["type"] == "qemu" and cfg["timeouts"]["inactivity"] == "90"
    assert ozcompat.oz_inactivity(25) == 3 and ozcompat.oz_inactivity(5) == 1
    assert cfg["paths"]["screenshot_dir"] == str(tmp_path / "d")
    conf.write_text("[libvirt]\ntype = xen\n")
    with pytest.raises(HostError, match="use one of auto, kvm, qemu"):
        hostconfig.load(conf)
    assert hostconfig.load(tmp_path / "absent.conf") == hostconfig.HostConfig()


REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text,message", [
    ("[libvrt]\nmemory = 4096\n", "[libvrt]: unknown section; the sections are: libvirt, "
     "timeouts, boot, paths, ec2, glance:CLOUD"),
    ("[libvirt]\nmemroy = 4096\n", "[libvirt] memroy: unknown key; the keys of [libvirt] "
     "are: uri, type, memory, cpus"),
    ("[libvirt]\nmemory = -1\n", "[libvirt] memory = '-1': use a whole number from 256 to "
     "1048576"),
    ("[libvirt]\ncpus = 0\n", "[libvirt] cpus = '0': use a whole number from 1 to 256"),
    ("[boot]\ncpus = lots\n", "[boot] cpus = 'lots': use a whole number from 1 to 256"),
    ("[timeouts]\ninstall = 0\n", "[timeouts] install = '0': use a whole number from 60 to "
     "604800"),
    ("[timeouts]\ninactivity = -5\n", "[timeouts] inactivity = '-5': use a whole number "
     "from 30 to 86400"),
    ("[timeouts]\ninstall = 99999999\n", "[timeouts] install = '99999999': use a whole "
     "number from 60 to 604800"),
    ("[paths]\nworkdir = tmp\n", "[paths] workdir = 'tmp': use an absolute path"),
    ("[DEFAULT]\nmemory = 1\n", "[DEFAULT]: unknown section"),
    ("memory = 1\n", "line 1: no [section] header before it"),
    ("[glance:prod]\nvisibility = everyone\n", "[glance:prod] visibility = 'everyone': use "
     "one of private, shared, community, public"),
    ("[glance:prod]\nproperties = size=1\n", "[glance:prod] properties = 'size=1': size: "
     "is set by Glance"),
])
def test_every_host_config_problem_is_one_line_naming_section_and_key(
        tmp_path: Path, text: str, message: str) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(text)
    # every reader refuses the sections it reads (a cloud section: the uploads)
    reader = (lambda: hostconfig.load_glance("prod", conf)) if "glance" in text else \
        (lambda: hostconfig.load(conf))
    for read in (reader, lambda: hostconfig.check(conf)):
        with pytest.raises(ConfigError) as err:
            read()
        assert message in str(err.value)
    assert str(err.value).startswith(f"{conf}: ") and "\n" not in str(err.value)


def test_all_problems_at_once_and_cloud_sections_are_cloud_errors(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("[libvirt]\nmemroy = 1\n[boot]\ncpus = 0\n[ec2]\nregions = us-east-1\n")
    with pytest.raises(ConfigError) as err:
        hostconfig.load(conf)
    assert "memroy" in str(err.value) and "cpus" in str(err.value)
    assert not isinstance(err.value, CloudError)
    conf.write_text("[libvirt]\ntype = qemu\n[ec2]\nregions = us-east-1\nworkers = 0\n"
                    "[glance:prod]\ntimeout = 0\n")
    # a bad cloud section stops the uploads that read it, not builds or other clouds
    assert hostconfig.load(conf).domain_type == "qemu"
    with pytest.raises(CloudConfigError, match=r"\[ec2\] workers = '0'") as ec2:
        hostconfig.load_ec2(conf)
    assert "glance" not in str(ec2.value)
    with pytest.raises(CloudConfigError, match=r"\[glance:prod\] timeout = '0'"):
        hostconfig.load_glance("prod", conf)
    assert hostconfig.load_glance("other", conf).timeout == 3600
    with pytest.raises(CloudConfigError, match=r"workers.*timeout"):
        hostconfig.check(conf)
    # a file that cannot be read as a whole stops everything
    conf.write_text("[libvrt]\n[ec2]\nregions = us-east-1\n")
    for reader in (hostconfig.load, hostconfig.load_ec2):
        with pytest.raises(ConfigError, match=r"\[libvrt\]: unknown section"):
            reader(conf)


def test_an_empty_value_leaves_an_optional_key_unset(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("[timeouts]\ninstall =\n[ec2]\nregions = us-east-1\nprofile =\n"
                    "endpoint_url =\nbucket =\n")
    assert hostconfig.load(conf).install_timeout is None
    cfg = hostconfig.load_ec2(conf)
    assert (cfg.profile, cfg.endpoint_url, cfg.bucket) == (None, None, None)
    conf.write_text("[glance:prod]\nproperties = a=" + "x" * 256 + "\n")
    with pytest.raises(CloudConfigError, match="longer than 255"):
        hostconfig.load_glance("prod", conf)


def test_a_named_config_must_exist_and_be_a_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"--config: .*absent.conf does not exist"):
        hostconfig.resolve(tmp_path / "absent.conf")
    with pytest.raises(ConfigError, match="is not a regular file"):
        hostconfig.resolve(tmp_path)
    monkeypatch.setenv(hostconfig.ENV, str(tmp_path / "gone.conf"))
    with pytest.raises(ConfigError, match=r"\$KOJI_IMAGE_CONFIG: .*gone.conf does not exist"):
        hostconfig.resolve()
    monkeypatch.delenv(hostconfig.ENV)
    assert hostconfig.resolve() == hostconfig.DEFAULT_PATH
    monkeypatch.setenv(hostconfig.KOJID_ENV, str(tmp_path))
    with pytest.raises(ConfigError, match="KOJI_CLOUD_IMAGE_CONF"):
        hostconfig.resolve(kojid=True)
    # the default location is optional: absent, the defaults apply
    assert hostconfig.load(tmp_path / "absent.conf") == hostconfig.HostConfig()


def test_the_command_refuses_a_bad_config_in_one_line(tmp_path: Path) -> None:
    spec = REPO / "examples" / "demo.yaml"
    for conf, message in ((tmp_path / "none.conf", "does not exist"),
                          (tmp_path, "is not a regular file")):
        done = subprocess.run([sys.executable, "-m", "koji_image_plugin.command",
                               "build", str(spec), "--config", str(conf), "--output",
                               str(tmp_path / "out")], capture_output=True, text=True,
                              cwd=tmp_path, timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and message in done.stderr
        assert not (tmp_path / "out").exists()
    bad = tmp_path / "bad.conf"
    bad.write_text("[libvrt]\nmemroy = 4096\n")
    done = subprocess.run([sys.executable, "-m", "koji_image_plugin.command", "config",
                           "--config", str(bad)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "[libvrt]: unknown section" in done.stderr


def test_the_readme_table_and_the_shipped_configs_come_from_the_one_table() -> None:
    readme = (REPO / "README.md").read_text()
    table = settings.markdown_table(hostconfig.SECTIONS)
    assert f"<!-- host-config -->\n{table}<!-- /host-config -->" in readme
    assert (REPO / "builder" / "cloud_image.conf").read_text() == \
        hostconfig.example(kojid=True)
    assert (REPO / "examples" / "koji-image.conf").read_text() == hostconfig.example()
    # every key is in them, and as shipped they change nothing
    for kojid, path in ((True, REPO / "builder" / "cloud_image.conf"),
                        (False, REPO / "examples" / "koji-image.conf")):
        text = path.read_text()
        for section in hostconfig.SECTIONS:
            assert all(f"#{s.key} =" in text for s in section.settings), section.name
        assert hostconfig.load(path) == hostconfig.HostConfig(), kojid


def test_the_example_with_its_values_uncommented_reads_back_as_the_defaults(
        tmp_path: Path) -> None:
    lines = []
    for line in hostconfig.example().splitlines():
        if line.startswith("#[") or (line.startswith("#") and " = " in line
                                     and not line.startswith("# ")):
            line = line[1:]
        lines.append(line)
    text = "\n".join(lines).replace("[glance:CLOUD]", "[glance:prod]")
    text = text.replace("regions = us-east-1 us-west-2 eu-west-1", "regions = us-east-1")
    conf = tmp_path / "all.conf"
    # keys documented as "(none)" or as depending on the accelerator stay unset
    conf.write_text("\n".join(ln for ln in text.splitlines()
                              if not ln.rstrip().endswith("=") and "with KVM" not in ln))
    assert hostconfig.load(conf) == hostconfig.HostConfig()
    assert hostconfig.load_ec2(conf).regions == ("us-east-1",)
    assert hostconfig.load_glance("prod", conf).properties == {"hw_qemu_guest_agent": "no"}


def test_koji_image_config_prints_the_values_and_the_example(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("[libvirt]\ntype = qemu\nmemory = 3072\n")
    done = subprocess.run([sys.executable, "-m", "koji_image_plugin.command", "config",
                           "--config", str(conf)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "type = qemu" in done.stdout and "memory = 3072" in done.stdout
    done = subprocess.run([sys.executable, "-m", "koji_image_plugin.command", "config",
                           "--example", "--kojid"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout == hostconfig.example(kojid=True)
