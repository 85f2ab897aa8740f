"""The boot test's parts without a guest: each check's verdict (passing facts, then one
fault at a time), the metadata servers over real HTTP, the relay qemu runs per guest
connection, each profile's qemu command line (one table), and the CloudStack network
namespace (root). The guests themselves: tests/build/test_vm*.py."""

from __future__ import annotations

import dataclasses
import http.client
import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from koji_image_plugin.build.boot import (
    checks,
    diagnose,
    firmware,
    machine,
    metadata,
    netns,
    relay,
    run,
)
from koji_image_plugin.build.boot.instance import Instance
from koji_image_plugin.build.boot.schedule import compare
from koji_image_plugin.build.results import BootResult
from koji_image_plugin.errors import BootTestError
from koji_image_plugin.spec.arches import Arch
from koji_image_plugin.spec.bootprofiles import BootProfile
from koji_image_plugin.spec.firmware import BootFirmware
from koji_image_plugin.spec.hostconfig import HostConfig
from koji_image_plugin.units import GiB
from tests.conftest import is_root

INST = Instance(BootProfile.EC2, "i-0123456789abcdef0", "ki-ec2-abc123",
                "02:11:22:33:44:55", Path("/nonexistent/key"), "ssh-ed25519 AAAAC3 test")
EXP = checks.Expected(BootProfile.EC2, INST.instance_id, INST.hostname, 2 * GiB,
                      ("/var/log/*installer*",), "ttyS0")
GOOD = {
    "wait": "0",
    "status": "status: done\nboot_status_code: enabled-by-generator\ndetail:\n"
              "DataSourceEc2Local",
    "result": json.dumps({"v1": {"datasource": "DataSourceEc2Local", "errors": []}}),
    "stages": json.dumps({"v1": {"datasource": "DataSourceEc2Local",
                                 "init": {"errors": []}, "modules-final": {"errors": []},
                                 "stage": None}}),
    "instance_id": INST.instance_id,
    "hostname": INST.hostname,
    "resolves": f"127.0.1.1       {INST.hostname}.boot.koji-image.test {INST.hostname}",
    "root": str(3 * GiB - (2 << 20)),
    "failed": "",
    "first_boot": "yes",
    "machine_id": "ec2c6e5cd729419f9e6b19b474b5cb64",
    "btime": "1796156489",
    "host_keys": "1796156676 256 SHA256:abc root@x (ED25519)\n"
                 "1796156674 3072 SHA256:def root@x (RSA)",
    "sshd": "passwordauthentication no\nkbdinteractiveauthentication no",
    "leftovers": "",
    "time_sync": "systemd-timesyncd active\nchrony inactive",
    "getty": "active",
    "firmware": "bios",
}
#: one fault per check: the facts it changes, and words the FAIL line must say
FAULTS = [
    ("cloud-init", {"status": "status: error"}, "status error"),
    ("cloud-init", {"result": json.dumps({"v1": {"datasource": "DataSourceNone",
                                                 "errors": []}})}, "DataSourceNone"),
    ("cloud-init", {"stages": json.dumps({"v1": {"init": {"errors": ["bootcmd failed"]}}})},
     "bootcmd failed"),
    ("metadata", {"instance_id": "i-other"}, "'i-other'"),
    ("metadata", {"hostname": "localhost"}, "hostname 'localhost'"),
    ("hostname-resolves", {"resolves": ""}, "does not resolve"),
    ("root-grew", {"root": str(2 * GiB - (2 << 20))}, "did not grow"),
    ("units", {"failed": "koji-test-broken.service loaded failed failed x"},
     "koji-test-broken.service"),
    ("new-identity", {"first_boot": "no"}, "machine-id was not made in this boot"),
    ("new-identity", {"host_keys": "1700000000 256 SHA256:abc root@x (ED25519)"},
     "older than this boot"),
    ("password-auth", {"sshd": "passwordauthentication yes\n"
                               "kbdinteractiveauthentication no"},
     "passwordauthentication yes"),
    ("leftovers", {"leftovers": "/var/log/installer"}, "/var/log/installer"),
    ("time-sync", {"time_sync": "systemd-timesyncd inactive"}, "is active"),
    ("serial-getty", {"getty": "inactive"}, "serial-getty@ttyS0 inactive"),
    ("firmware", {"firmware": "uefi 64"}, "the kernel reports UEFI (64-bit) firmware; the "
     "boot was under BIOS"),
]


def probe_output(facts: dict[str, str]) -> str:
    return "".join(f"{checks.SECTION}{k}\n{v}\n" for k, v in facts.items())


def test_good_facts_pass_every_check() -> None:
    found = checks.evaluate(probe_output(GOOD), EXP)
    assert [c.name for c in found] == [
        "cloud-init", "metadata", "hostname-resolves", "root-grew", "units",
        "new-identity", "password-auth", "leftovers", "time-sync", "serial-getty",
        "firmware"]
    assert all(c.passed for c in found), [c.line() for c in found if not c.passed]


def test_a_uefi_boot_wants_the_kernel_to_see_uefi() -> None:
    uefi = dataclasses.replace(EXP, uefi=True)
    found = {c.name: c for c in checks.evaluate(probe_output(
        {**GOOD, "firmware": "uefi 64"}), uefi)}
    assert found["firmware"].line() == "PASS firmware: booted by UEFI (64-bit) firmware"
    found = {c.name: c for c in checks.evaluate(probe_output(GOOD), uefi)}
    assert found["firmware"].line() == ("FAIL firmware: the kernel reports BIOS firmware; "
                                        "the boot was under UEFI")


@pytest.mark.parametrize(("name", "change", "words"), FAULTS,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(FAULTS)])
def test_each_fault_fails_exactly_its_check(name: str, change: dict[str, str],
                                            words: str) -> None:
    found = {c.name: c for c in checks.evaluate(probe_output({**GOOD, **change}), EXP)}
    assert [n for n, c in found.items() if not c.passed] == [name]
    assert words in found[name].line(), found[name].line()
    assert found[name].line().startswith(f"FAIL {name}: ")


def test_a_probe_that_said_nothing_fails_everything_but_the_absent_leftovers() -> None:
    found = checks.evaluate("", EXP)
    assert {c.name for c in found if c.passed} == {"leftovers", "units"}


def test_the_probe_script_is_valid_shell_and_expands_the_leftover_globs(
        tmp_path: Path) -> None:
    script = checks.probe_script(EXP, 5)
    assert subprocess.run(["sh", "-n", "-c", script]).returncode == 0
    assert "for g in /var/log/*installer*; do" in script


def boot(profile: str, mid: str, keys: frozenset[str], fw: str = "seabios") -> BootResult:
    chk = (checks.Check("ssh-login", True, "ok"), checks.Check("new-identity", True, "ok"))
    return BootResult("x.qcow2", "x86_64", "generic", True, 1.0, "tcg", "ok", "c.log",
                      profile=profile, checks=chk, identity=(mid, keys), firmware=fw)


def test_two_boots_of_one_image_with_one_identity_fail_new_identity() -> None:
    out = compare([boot("openstack", "m1", frozenset({"k1"})),
                   boot("nocloud", "m1", frozenset({"k2"})),
                   boot("eucalyptus", "m3", frozenset({"k3"}))])
    assert [b.passed for b in out] == [False, False, True]
    line = next(c for c in out[0].checks if c.name == "new-identity").line()
    assert line.startswith("FAIL new-identity: the same machine-id as the nocloud under "
                           "seabios boot")
    keys = compare([boot("a", "m1", frozenset({"k1"})), boot("b", "m2", frozenset({"k1"}))])
    assert not keys[1].passed and "ssh host keys" in keys[1].detail
    # the same profile under two firmwares: two instances, each must be new
    fws = compare([boot("nocloud", "m1", frozenset({"k1"})),
                   boot("nocloud", "m1", frozenset({"k2"}), "ovmf")])
    assert [b.passed for b in fws] == [False, False]
    assert "the same machine-id as the nocloud under ovmf boot" in fws[0].detail


def test_console_user_is_the_one_cloud_init_gave_the_keys_to() -> None:
    text = ("ci-info: ++++Authorized keys from /home/debian/.ssh/authorized_keys for user "
            "debian+++++\n")
    assert run.console_user(text) == "debian"
    assert run.console_user("nothing here") is None


# -- the metadata servers, over real HTTP ---------------------------------------------

def serve(server: metadata._Server) -> tuple[str, metadata._Server]:
    return f"http://127.0.0.1:{server.server_address[1]}", server


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET"
        ) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_imdsv2_wants_a_token_for_every_read() -> None:
    tree = metadata.ec2_tree(INST, "169.254.169.15")
    server = metadata.Ec2Server(metadata.listener(), tree, "#cloud-config\n{}\n", tokens=True)
    with metadata.serving(server):
        base, _ = serve(server)
        assert get(f"{base}/2021-03-23/meta-data/instance-id")[0] == 401
        assert get(f"{base}/latest/api/token", method="PUT")[0] == 400  # no TTL
        code, token = get(f"{base}/latest/api/token", method="PUT",
                          headers={metadata.TOKEN_TTL_HEADER: "21600"})
        assert code == 200 and token
        auth = {metadata.TOKEN_HEADER: token}
        assert get(f"{base}/2021-03-23/meta-data/instance-id", auth) == (200, INST.instance_id)
        assert get(f"{base}/2021-03-23/meta-data/public-keys/", auth) == (200, "0=boot-test")
        assert get(f"{base}/2021-03-23/meta-data/public-keys/0/openssh-key", auth) == \
            (200, INST.public_key)
        listing = get(f"{base}/2021-03-23/meta-data/", auth)[1].splitlines()
        assert {"instance-id", "local-hostname", "network/", "placement/",
                "public-keys/"} <= set(listing)
        assert get(f"{base}/2021-03-23/meta-data/network/interfaces/macs/", auth) == \
            (200, INST.mac + "/")
        doc = json.loads(get(f"{base}/2021-03-23/dynamic/instance-identity/document",
                             auth)[1])
        assert doc["instanceId"] == INST.instance_id and doc["region"] == "us-east-1"
        assert get(f"{base}/2021-03-23/meta-data/nosuch", auth)[0] == 404
        assert get(f"{base}/1999-01-01/meta-data/", auth)[0] == 404
        assert get(f"{base}/2021-03-23/meta-data/", {metadata.TOKEN_HEADER: "forged"})[0] \
            == 401
    assert server.served.tokens == 1 and server.served.refused == 2


def test_imdsv1_as_eucalyptus_has_no_token_api() -> None:
    server = metadata.Ec2Server(metadata.listener(), metadata.ec2_tree(INST, "x"), "",
                                tokens=False)
    with metadata.serving(server):
        base, _ = serve(server)
        assert get(f"{base}/latest/api/token", method="PUT",
                   headers={metadata.TOKEN_TTL_HEADER: "60"})[0] == 404
        assert get(f"{base}/2009-04-04/meta-data/instance-id") == (200, INST.instance_id)


def test_cloudstack_router_serves_metadata_and_a_password_server_with_no_password() -> None:
    tree = metadata.cloudstack_tree(INST, "10.0.2.15")
    md = metadata.CloudStackServer(metadata.listener(), tree, "ud")
    pw = metadata.CloudStackServer(metadata.listener(), tree, "ud", password=True)
    with metadata.serving(md), metadata.serving(pw):
        base, _ = serve(md)
        assert get(f"{base}/latest/meta-data/availability-zone") == (200, "zone1")
        assert get(f"{base}/latest/meta-data/public-keys") == (200, INST.public_key)
        assert get(f"{base}/latest/user-data") == (200, "ud")
        pbase, _ = serve(pw)
        assert get(pbase, {"DomU_Request": "send_my_password"}) == (200, "saved_password")
        assert get(pbase, {"DomU_Request": "nonsense"}) == (200, "bad_request")
    assert pw.served.passwords == 1


def test_the_relay_carries_http_connections_to_the_server() -> None:
    server = metadata.Ec2Server(metadata.listener(), metadata.ec2_tree(INST, "x"), "",
                                tokens=False)
    with metadata.serving(server):
        port = server.server_address[1]
        for _ in range(3):  # qemu starts one relay per guest connection
            guest, ours = socket.socketpair()
            proc = subprocess.Popen([sys.executable, "-S", "-I", relay.__file__,
                                     "127.0.0.1", str(port)], stdin=ours, stdout=ours)
            ours.close()
            guest.sendall(b"GET /latest/meta-data/instance-id HTTP/1.0\r\n\r\n")
            resp = http.client.HTTPResponse(guest)
            resp.begin()
            assert (resp.status, resp.read().decode()) == (200, INST.instance_id)
            guest.close()
            assert proc.wait(timeout=10) == 0
    assert server.served.requests == 3


# -- each profile's qemu command line (one table) -------------------------------------

ARGV = {
    BootProfile.NOCLOUD: (None, "if=virtio,format=raw,readonly=on", "virtio"),
    BootProfile.OPENSTACK: ("product=OpenStack Nova", "media=cdrom,readonly=on,format=raw,if=ide",
                            "virtio"),
    BootProfile.EC2: ("manufacturer=Amazon EC2", None, "nvme"),
    BootProfile.EUCALYPTUS: (None, None, "virtio"),
    BootProfile.CLOUDSTACK: ("product=CloudStack KVM Hypervisor", None, "virtio"),
}


@pytest.mark.parametrize("profile", list(BootProfile))
def test_qemu_argv_of_each_profile(profile: BootProfile, tmp_path: Path) -> None:
    smbios, drive, bus = ARGV[profile]
    inst = Instance(profile, "iid", "ki-x", "02:00:00:00:00:01", tmp_path / "k", "key")
    uses_drive = profile in (BootProfile.NOCLOUD, BootProfile.OPENSTACK)
    b = machine.Boot(Arch.X86_64, inst, tmp_path / "o.qcow2", tmp_path / "c.log", 2222,
                     tmp_path / "seed.iso" if uses_drive else None,
                     4242 if machine.uses_imds(profile) else None)
    argv = machine.qemu_argv(b, HostConfig())
    text = " ".join(argv)
    assert argv[0] == "qemu-system-x86_64"
    assert ("-smbios" in argv) == (smbios is not None)
    if smbios:
        assert smbios in argv[argv.index("-smbios") + 1]
    if profile is BootProfile.EC2:
        smb = argv[argv.index("-smbios") + 1]
        assert "serial=ec2" in smb and "uuid=ec2" in smb
    assert (drive is not None) == (str(tmp_path / "seed.iso") in text)
    if drive:
        assert drive in text
    assert ("-device nvme,drive=root" in text) == (bus == "nvme")
    nic = argv[argv.index("-nic") + 1]
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in nic and "mac=02:00:00:00:00:01" in nic
    if machine.uses_imds(profile):
        assert "net=169.254.169.0/24" in nic
        assert f"guestfwd=tcp:169.254.169.254:80-cmd:{sys.executable} -S -I " in nic
        assert nic.endswith("relay.py 127.0.0.1 4242")
    else:
        assert "guestfwd" not in nic
    assert "pflash" not in text and "-machine" not in argv  # SeaBIOS, the PC


@pytest.mark.parametrize("arch,fw,code,machine_args", [
    (Arch.X86_64, BootFirmware.OVMF, "/usr/share/OVMF/OVMF_CODE_4M.fd", []),
    (Arch.AARCH64, BootFirmware.AAVMF, "/usr/share/AAVMF/AAVMF_CODE.fd",
     ["-machine", "virt", "-cpu", "max"]),
])
def test_a_uefi_boot_has_the_code_read_only_and_its_own_variables(
        arch: Arch, fw: BootFirmware, code: str, machine_args: list[str],
        tmp_path: Path) -> None:
    inst = Instance(BootProfile.NOCLOUD, "iid", "ki-x", "02:00:00:00:00:01", tmp_path / "k",
                    "key")
    copies = [firmware.variables(fw, tmp_path / d) for d in ("a", "b")
              if (tmp_path / d).mkdir() is None]
    assert copies[0] != copies[1] and all(c is not None and c.is_file() for c in copies)
    assert copies[0] is not None and \
        copies[0].read_bytes() == firmware.FILES[fw].vars.read_bytes()
    b = machine.Boot(arch, inst, tmp_path / "o.qcow2", tmp_path / "c.log", 2222,
                     tmp_path / "seed.iso", None, fw, copies[0])
    argv = machine.qemu_argv(b, HostConfig(domain_type="qemu"))
    assert argv[0] == arch.qemu_system
    assert argv[3:3 + len(machine_args)] == machine_args
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive" and
              "pflash" in argv[i + 1]]
    assert drives == [f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
                      f"if=pflash,format=raw,unit=1,file={copies[0]}"]


def test_an_aarch64_config_drive_is_a_scsi_cd_rom(tmp_path: Path) -> None:
    """arm's virt machine has no IDE: Nova attaches the config drive on virtio-scsi."""
    inst = Instance(BootProfile.OPENSTACK, "iid", "ki-x", "02:00:00:00:00:01",
                    tmp_path / "k", "key")
    b = machine.Boot(Arch.AARCH64, inst, tmp_path / "o.qcow2", tmp_path / "c.log", 2222,
                     tmp_path / "cd.iso", None, BootFirmware.AAVMF, tmp_path / "v.fd")
    text = " ".join(machine.qemu_argv(b, HostConfig(domain_type="qemu")))
    assert "if=ide" not in text
    assert (f"-device virtio-scsi-pci,id=scsi -drive file={tmp_path / 'cd.iso'},"
            "media=cdrom,readonly=on,format=raw,if=none,id=cd -device "
            "scsi-cd,drive=cd,bus=scsi.0") in text


def test_a_missing_uefi_firmware_names_its_package(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    files = firmware.FILES[BootFirmware.OVMF]
    monkeypatch.setitem(firmware.FILES, BootFirmware.OVMF,
                        files._replace(vars=tmp_path / "absent.fd"))
    with pytest.raises(BootTestError, match=r"^ovmf: .*absent.fd is missing; install "
                       r"Debian's ovmf package \(scripts/setup.sh does\)$"):
        firmware.variables(BootFirmware.OVMF, tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert firmware.variables(BootFirmware.SEABIOS, tmp_path) is None


@pytest.mark.skipif(not is_root(), reason="network namespaces need root")
def test_cloudstack_servers_listen_on_80_and_8080_inside_the_guests_namespace() -> None:
    proc = subprocess.Popen([*netns.WRAP, "qemu-system-x86_64", "-M", "none",
                             "-nodefaults", "-display", "none", "-S"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        netns.wait_ready(proc.pid)
        socks = netns.listeners(proc.pid, [80, 8080])
        tree = metadata.cloudstack_tree(INST, "10.0.2.15")
        server = metadata.CloudStackServer(socks[0], tree, "ud")
        with metadata.serving(server):
            inside = subprocess.run(
                [*netns.enter(proc.pid), sys.executable, "-c",
                 "import urllib.request as u; print(u.urlopen("
                 "'http://127.0.0.1/latest/meta-data/instance-id').read().decode())"],
                capture_output=True, text=True, timeout=30)
            assert inside.stdout.strip() == INST.instance_id, inside.stderr
        socks[1].close()
    finally:
        proc.kill()
        proc.wait()


def test_what_the_probe_greps_the_journal_for_is_not_in_its_own_text() -> None:
    # sudo logs the probe's command line to the journal: a pattern matching itself
    # would find "a machine ID made in this boot" in every boot
    script = checks.probe_script(EXP, 5)
    assert "Initializing machine ID" not in script
    assert subprocess.run(["grep", "-q", "Initializing machine[ ]ID"], input=script,
                          text=True).returncode == 1
    assert subprocess.run(["grep", "-q", "Initializing machine[ ]ID"], text=True,
                          input="systemd[1]: Initializing machine ID from VM UUID.\n"
                          ).returncode == 0


OVMF_NO_ESP = ('BdsDxe: failed to load Boot0001 "UEFI Misc Device" from PciRoot(0x0)/'
               'Pci(0x3,0x0): Not Found\niPXE 1.0.0+git -- Open Source Network Boot '
               'Firmware\nNothing to boot: No such file or directory\n')


@pytest.mark.parametrize("console,cause", [
    (OVMF_NO_ESP, "the UEFI firmware found no EFI boot loader on the disk"),
    ('BdsDxe: failed to load Boot0002 "UEFI PXEv4 (MAC:525400123456)": Not Found\n'
     ">>Start PXE over IPv4.", "cloud-init never ran"),
    ("Booting from Hard Disk...\nBoot failed: not a bootable disk\n",
     "the firmware found nothing to boot on the disk (no boot loader)"),
])
def test_a_boot_that_never_started_says_which_firmware_found_nothing(
        console: str, cause: str, tmp_path: Path) -> None:
    why = diagnose.no_login(console, None, 30.0, 30, "debian", tmp_path / "ssh.log")
    assert why.startswith(f"no ssh login as debian within 30 s: {cause}"), why
