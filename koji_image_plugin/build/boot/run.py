"""One profile boot: boot an image the way one cloud boots an instance, log in over ssh
with the key that cloud's metadata handed it, and check the instance.

The image is booted through a qcow2 overlay enlarged by ``GROW`` (the shipped file is
never written), with qemu (accelerator from the host config), the profile's firmware
DMI, disk bus and metadata source, and the instance's ssh port forwarded to loopback.
A pass is a login plus every check of ``checks.py``; a boot that never lets us in gets
a diagnosis from its console. Host tools: qemu-img, qemu-system-*, ssh, ssh-keygen,
cloud-localds, genisoimage (unshare and nsenter for CloudStack).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...errors import BootTestError
from ...runner import Runner
from ...spec.arches import Arch
from ...spec.bootprofiles import BootProfile
from ...spec.firmware import BootFirmware
from ...spec.hostconfig import HostConfig
from ...units import GiB
from ..console import clean_console
from ..results import BootResult
from . import checks, diagnose, firmware, instance, machine, metadata, netns, seeds, ssh
from .seeds import USER_DATA

#: how much bigger than the image the instance's disk is (the root must grow into it)
GROW = GiB
#: seconds between two login attempts
LOGIN_EVERY = 5
#: seconds the guest has to power off once asked
POWEROFF_WAIT = 60
#: the CloudStack guest's ports: its own namespace, so fixed
CLOUDSTACK_SSH_PORT, CLOUDSTACK_PORTS = 2222, (80, 8080)


@dataclass(frozen=True)
class Request:
    """What to boot, as which cloud, and what the image must show."""

    image: Path
    image_format: str
    arch: Arch
    variant: str
    profile: BootProfile
    timeout: int
    leftovers: tuple[str, ...]
    #: the cloud user to log in as; None: the one cloud-init names, else ``default_user``
    user: str | None
    default_user: str
    firmware: BootFirmware = BootFirmware.SEABIOS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def virtual_size(image: Path, runner: Runner, log_name: str) -> int:
    info = runner.run(["qemu-img", "info", "--output=json", str(image)],
                      log_name=log_name, capture=True)
    return int(json.loads(info)["virtual-size"])


def console_user(text: str) -> str | None:
    """The user cloud-init says it gave the instance's keys to."""
    found = re.findall(r"Authorized keys from \S+ for user (\S+?)\+*\s*$", text, re.M)
    return found[-1] if found else None


class _Guest:
    """A running guest and what it needs, torn down together (``boot`` is the one user)."""

    def __init__(self, req: Request, host: HostConfig, runner: Runner, tmp: Path,
                 log_name: str) -> None:
        self.req, self.host, self.runner, self.tmp = req, host, runner, tmp
        self.log_name = log_name
        self.inst = instance.make(req.profile, tmp, runner, log_name)
        self.console = tmp / "console.log"
        self.console.touch()
        self.wrap: list[str] = []
        self.servers: list[metadata.Served] = []

    @contextlib.contextmanager
    def running(self, overlay: Path) -> Iterator[subprocess.Popen[bytes]]:
        req, inst, tmp = self.req, self.inst, self.tmp
        ip = machine.guest_ip(req.profile)
        with contextlib.ExitStack() as stack:
            drive, imds_port, ssh_port = None, None, free_port()
            if req.profile is BootProfile.NOCLOUD:
                drive = seeds.nocloud(inst, tmp, self.runner, self.log_name)
            elif req.profile is BootProfile.OPENSTACK:
                drive = seeds.config_drive(inst, tmp, self.runner, self.log_name)
            elif machine.uses_imds(req.profile):
                server = metadata.Ec2Server(metadata.listener(),
                                            metadata.ec2_tree(inst, ip), USER_DATA,
                                            tokens=req.profile is BootProfile.EC2)
                stack.enter_context(metadata.serving(server))
                self.servers.append(server.served)
                imds_port = server.server_address[1]
            else:
                netns.require_root()
                ssh_port = CLOUDSTACK_SSH_PORT
            self.ssh_port = ssh_port
            boot = machine.Boot(req.arch, inst, overlay, self.console, ssh_port, drive,
                                imds_port, req.firmware,
                                firmware.variables(req.firmware, tmp))
            argv = machine.qemu_argv(boot, self.host)
            if req.profile is BootProfile.CLOUDSTACK:
                argv = [*netns.WRAP, *argv]
            proc = self.runner.spawn(argv, log_name=self.log_name)
            stack.callback(self.runner.reap, proc, 0)
            if req.profile is BootProfile.CLOUDSTACK:
                self._virtual_router(proc.pid, stack, ip)
            yield proc

    def _virtual_router(self, pid: int, stack: contextlib.ExitStack, ip: str) -> None:
        netns.wait_ready(pid)
        self.wrap = netns.enter(pid)
        tree = metadata.cloudstack_tree(self.inst, ip)
        for sock, password in zip(netns.listeners(pid, CLOUDSTACK_PORTS), (False, True),
                                  strict=True):
            server = metadata.CloudStackServer(sock, tree, USER_DATA, password)
            stack.enter_context(metadata.serving(server))
            self.servers.append(server.served)

    def user(self) -> str:
        text = self.console.read_bytes().decode("utf-8", "replace")
        return self.req.user or console_user(text) or self.req.default_user

    def login(self, proc: subprocess.Popen[bytes], deadline: float) -> str | None:
        """Wait for a login; the user it worked for, or None (timeout or the guest
        stopped)."""
        while time.monotonic() < deadline:
            self.runner.check_cancelled()
            if proc.poll() is not None:
                return None
            user = self.user()
            if ssh.try_login(self.runner, self.inst.key, self.ssh_port, user,
                             self.log_name, self.wrap):
                return user
            time.sleep(LOGIN_EVERY)
        return None

    def probe(self, exp: checks.Expected, user: str, deadline: float) -> str:
        """The probe's output. A login can come while cloud-init still sets the
        instance up and restarts sshd: a connection refused then is tried again."""
        while True:
            wait = max(30, int(deadline - time.monotonic()))
            output = ssh.run_as_root(self.runner, self.inst.key, self.ssh_port, user,
                                     checks.probe_script(exp, wait), self.log_name,
                                     wait + 60, self.wrap)
            if f"{checks.SECTION}wait" in output or time.monotonic() > deadline:
                return output
            self.runner.check_cancelled()
            time.sleep(LOGIN_EVERY)

    def power_off(self, proc: subprocess.Popen[bytes], user: str) -> bool:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.runner.run(ssh.argv(self.inst.key, self.ssh_port, user,
                                     "sudo -n systemctl poweroff", self.wrap),
                            log_name=self.log_name, timeout=30, ok_codes=range(256))
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=POWEROFF_WAIT)
        return proc.poll() is not None


def boot(req: Request, host: HostConfig, runner: Runner, workdir: Path, logdir: Path,
         log_name: str) -> BootResult:
    """Boot ``req.image`` as ``req.profile``; the console and the probe's output go to
    ``logdir`` (``boot-console-<log_name>.log``, ``boot-checks-<log_name>.log``)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"boot-{req.profile}-", dir=workdir))
    console_log = logdir / f"{log_name}-console.log"
    probe_log = logdir / f"{log_name}-checks.log"
    try:
        size = virtual_size(req.image, runner, log_name)
        overlay = tmp / "overlay.qcow2"
        runner.run(["qemu-img", "create",
                    "-f", "qcow2",
                    "-F", req.image_format,
                    "-b", str(req.image.resolve()),
                    str(overlay),
                    str(size + GROW)], log_name=log_name)
        guest = _Guest(req, host, runner, tmp, log_name)
        start = time.monotonic()
        deadline = start + req.timeout
        found: list[checks.Check] = []
        output, user, halted = "", None, False
        with guest.running(overlay) as proc:
            user = guest.login(proc, deadline)
            login_at = time.monotonic() - start
            if user is not None:
                exp = checks.Expected(req.profile, guest.inst.instance_id,
                                      guest.inst.hostname, size, req.leftovers,
                                      req.arch.serial_tty, req.firmware.uefi)
                output = guest.probe(exp, user, deadline)
                found = [checks.Check("ssh-login", True, f"logged in as {user} after "
                                      f"{login_at:.0f} s"), *checks.evaluate(output, exp)]
                halted = guest.power_off(proc, user)
            code = proc.poll()
        elapsed = time.monotonic() - start
        text = clean_console(guest.console.read_bytes())
        console_log.write_text(text)
        served = "; ".join(s.summary() for s in guest.servers)
        if user is None:
            why = diagnose.no_login(text, code, elapsed, req.timeout, guest.user(),
                                    runner.log_path(log_name))
            if code is not None and code != 0 and elapsed < req.timeout:
                raise BootTestError(f"{req.arch.qemu_system} exited with status {code} "
                                    f"before the guest booted; see "
                                    f"{runner.log_path(log_name)}")
            found = [checks.Check("ssh-login", False, why)]
        probe_log.write_text("\n".join(c.line() for c in found) + "\n\n" + output)
        passed = all(c.passed for c in found)
        failed = [c.name for c in found if not c.passed]
        detail = (f"{req.profile.label} under {req.firmware.label}: "
                  + (f"{len(found)} checks passed" if passed else
                     f"FAILED {', '.join(failed)}")
                  + (f"; metadata server: {served}" if served else "")
                  + ("" if user is None else "; powered off" if halted else
                     f"; did not power off in {POWEROFF_WAIT} s"))
        return BootResult(image=req.image.name, arch=req.arch.value, variant=req.variant,
                          passed=passed, seconds=round(elapsed, 1), accel=host.accel,
                          detail=detail, console_log=console_log.name,
                          profile=req.profile.value, checks=tuple(found),
                          checks_log=probe_log.name, identity=checks.identity(output),
                          firmware=req.firmware.value)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
