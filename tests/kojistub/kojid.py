"""A stand-in build daemon: ``python -m tests.kojistub.kojid --server URL --user HOST
--password PW --topurl URL --workdir DIR [--plugin-path DIR --plugins NAME[,NAME]]
[--plugin-config-env NAME=VALUE ...] [--log FILE] [--sleeptime S] [--force-lock]``.

This is builder/kojid's ``main()`` loop around the real koji.daemon.TaskManager (from the koji
client library): it logs in with a password, takes an exclusive session, and every
``sleeptime`` seconds calls TaskManager.updateTasks() (wakes waiting tasks with SIGUSR2 when
the hub flags them, reaps finished ones, kills canceled ones) and getNextTask() (host.getTasks
runs the hub's scheduler; the task is opened and forked with its own subsession, the handler
run, the result sent with host.closeTask or host.failTask: TaskManager.forkTask/runTask).
Handlers: koji.tasks' built-ins, the ``tagBuild`` handler below, and every BaseTaskHandler
subclass of the loaded builder plugins (TaskManager.scanPlugin). Only what needs a real
builder is replaced: no mock buildroots (updateBuildroots). SIGTERM frees the running
tasks and exits, as kojid does.

Cancels arrive as on a real builder, by the real TaskManager: at its next poll
(``sleeptime``), updateTasks sees that a task it runs is no longer open and cleanupTask
sends the task's process tree SIGINT (each process, deepest first, 3 s apart), then
SIGTERM twice and SIGKILL, then expires the task's subsession. A child task runs in its
own process, so cancelling the parent signals the child only when kojid reaches the
child's own entry, after the parent's. ``sleeptime`` is 0.5 s here unless a test gives
kojid's default, 15 s. It starts with SIGINT at its default, as systemd starts kojid,
even when the tests run in the background (tests/proc.py's DEFAULT_SIGINT).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
import traceback
import xmlrpc.client
from pathlib import Path

import koji
import koji.daemon
import koji.plugin
import koji.tasks
from koji.tasks import BaseTaskHandler

from tests.proc import Daemon

# builder/kojid get_options() defaults that task handlers may read; topdir is None because
# files come from topurl (koji.pathinfo is not pointed at a shared /mnt/koji)
KOJID_DEFAULTS = {
    "sleeptime": 0.5, "maxjobs": 10, "minspace": 1, "topdir": None, "topurl": None,
    "workdir": "/var/tmp/koji", "chroot_tmpdir": "/chroot_tmpdir",
    "pluginpath": "/usr/lib/koji-builder-plugins", "plugin": [], "mockdir": None,
    "mockuser": "kojibuilder", "packager": "Koji", "vendor": "Koji", "distribution": "Koji",
    "mockhost": "koji-linux-gnu", "literal_task_arches": "", "admin_emails": None,
    "smtphost": "example.com", "from_addr": "Koji Build System <buildsys@example.com>",
    "server": None, "user": None, "password": None, "retry_interval": 1, "max_retries": 3,
    "offline_retry": False, "offline_retry_interval": 1, "timeout": None,
    "no_ssl_verify": False, "use_fast_upload": True, "allowed_scms": "",
    "allowed_scms_use_config": True, "allowed_scms_use_policy": False,
    "allow_password_in_scm_url": False, "scm_credentials_dir": None,
    "support_rpm_source_layout": True, "yum_proxy": None, "oz_install_timeout": 0,
    "xz_options": "-z6T0", "task_avail_delay": 300, "rpmbuild_timeout": 3600 * 24,
    "failed_buildroot_lifetime": 3600 * 4, "buildroot_basic_cleanup_delay": 120,
    "buildroot_final_cleanup_delay": 86400, "cert": None, "serverca": None,
    "force_lock": False, "debug": False,
}


class TagBuildTask(BaseTaskHandler):
    """builder/kojid TagBuildTask: host.tagBuild, then host.tagNotification (also on error)."""

    Methods = ["tagBuild"]

    def handler(self, tag_id, build_id, force=False, fromtag=None, ignore_success=False):
        task = self.session.getTaskInfo(self.id)
        user_id = task["owner"]
        try:
            self.session.getBuild(build_id, strict=True)
            self.session.getTag(tag_id, strict=True)
            self.session.host.tagBuild(self.id, tag_id, build_id, force=force, fromtag=fromtag)
            self.session.host.tagNotification(True, tag_id, fromtag, build_id, user_id,
                                              ignore_success)
        except Exception as e:
            exctype, value = sys.exc_info()[:2]
            self.session.host.tagNotification(False, tag_id, fromtag, build_id, user_id,
                                              ignore_success, f"{exctype}: {value}")
            raise e


class TaskManager(koji.daemon.TaskManager):
    """koji.daemon.TaskManager without mock buildroots; cancels are delivered by its own
    cleanupTask, as on a real builder (see the module docstring)."""

    def updateBuildroots(self, nolocal=False):
        """No mock buildroots on this host: nothing to clean up."""


def run(options, session):
    """builder/kojid main(): the TaskManager loop until SIGTERM."""
    logger = logging.getLogger("koji.build")
    tm = TaskManager(options, session)
    tm.findHandlers(globals())
    tm.findHandlers(vars(koji.tasks))
    if options.plugin:
        tracker = koji.plugin.PluginTracker(path=options.pluginpath.split(":"))
        for name in options.plugin:
            logger.info("Loading plugin: %s", name)
            tm.scanPlugin(tracker.load(name))

    def shutdown(*args):
        raise SystemExit

    signal.signal(signal.SIGTERM, shutdown)
    exit_code = 0
    while True:
        try:
            tm.updateTasks()
            taken = tm.getNextTask()
        except (SystemExit, koji.tasks.ServerExit, KeyboardInterrupt):
            logger.warning("Exiting")
            break
        except koji.AuthError:
            logger.error("Authentication error")
            exit_code = 1
            break
        except Exception:  # noqa: BLE001 - as in kojid: log and go on
            logger.error("".join(traceback.format_exception(*sys.exc_info())))
            taken = False
        try:
            if not taken:
                time.sleep(options.sleeptime)
        except (SystemExit, KeyboardInterrupt):
            logger.warning("Exiting")
            break
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logger.warning("Shutting down, please wait...")
    tm.shutdown()
    session.logout()
    sys.exit(exit_code)


def get_options(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="hub XML-RPC URL")
    parser.add_argument("--user", required=True, help="the host's user name")
    parser.add_argument("--password", required=True)
    parser.add_argument("--topurl", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--topdir", help="only if handlers may read the hub's files directly")
    parser.add_argument("--plugin-path", dest="pluginpath", default=None)
    parser.add_argument("--plugins", default="", help="comma-separated builder plugins")
    parser.add_argument("--plugin-config-env", action="append", default=[],
                        metavar="NAME=VALUE",
                        help="environment variable for the plugins (e.g. a config path)")
    parser.add_argument("--allowed-scms", dest="allowed_scms",
                        help="kojid.conf allowed_scms (host:path patterns)")
    parser.add_argument("--sleeptime", type=float)
    parser.add_argument("--maxjobs", type=int)
    parser.add_argument("--force-lock", action="store_true", default=None)
    parser.add_argument("--log", help="log file (default: stderr)")
    parser.add_argument("--debug", action="store_true", default=None)
    args = parser.parse_args(argv)
    options = argparse.Namespace(**KOJID_DEFAULTS)
    for name, value in vars(args).items():
        if value is not None and name not in ("plugins", "plugin_config_env", "log"):
            setattr(options, name, value)
    options.plugin = [p for p in args.plugins.split(",") if p]
    options.topurls = [options.topurl]
    options.mockdir = options.mockdir or options.workdir
    options.log = args.log
    for entry in args.plugin_config_env:
        name, _, value = entry.partition("=")
        os.environ[name] = value
    return options


#: a waitrepo task looks at its repo request every PAUSE seconds (koji.tasks.WaitrepoTask:
#: 60 s, handed to koji.util.RepoWatcher); the waitrepo tests look more often (README.md)
REPO_WATCH_PAUSE = 1


def main(argv=None):
    options = get_options(argv)
    koji.tasks.WaitrepoTask.PAUSE = REPO_WATCH_PAUSE
    if options.log:
        koji.add_file_logger("koji", options.log)
    else:
        koji.add_stderr_logger("koji")
    logging.getLogger("koji").setLevel(logging.DEBUG if options.debug else logging.INFO)
    if options.topdir:
        koji.BASEDIR = options.topdir
        koji.pathinfo.topdir = options.topdir
    Path(options.workdir).mkdir(parents=True, exist_ok=True)
    session = koji.ClientSession(options.server, koji.grab_session_options(options))
    try:
        session.login()
    except koji.AuthError:
        sys.exit("Error: Unable to log in. Bad credentials?")
    try:
        session.exclusiveSession(force=options.force_lock)
    except koji.AuthLockError:
        sys.exit("Error: Unable to get lock. Trying using --force-lock")
    if session.echo("OK") != ["OK"]:
        sys.exit("Error: incorrect server response")
    run(options, session)


class KojidProcess(Daemon):
    """The stand-in kojid in a subprocess, ready once the hub has heard from it."""

    def __init__(self, hub_url: str, topurl: str, user: str, password: str, workdir: Path,
                 plugin_path: Path | None = None, plugins: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, allowed_scms: str | None = None,
                 sleeptime: float | None = None) -> None:
        self.hub_url = hub_url
        self.user = user
        workdir.mkdir(parents=True, exist_ok=True)
        self.logfile = workdir / "kojid.log"
        args = ["--server", hub_url, "--user", user, "--password", password,
                "--topurl", topurl, "--workdir", str(workdir / "work"),
                "--log", str(self.logfile), "--force-lock"]
        if plugins:
            args += ["--plugin-path", str(plugin_path), "--plugins", ",".join(plugins)]
        for name, value in (env or {}).items():
            args += ["--plugin-config-env", f"{name}={value}"]
        if allowed_scms is not None:
            args += ["--allowed-scms", allowed_scms]
        if sleeptime is not None:
            args += ["--sleeptime", str(sleeptime)]
        super().__init__("tests.kojistub.kojid", args, workdir / "kojid.out")
        self.wait_until(self._checked_in, "host check-in (host.updateHost)")

    def _checked_in(self) -> bool:
        host = xmlrpc.client.ServerProxy(self.hub_url, allow_none=True).getHost(self.user)
        return bool(host and host["update_ts"])

    def output(self) -> str:
        log = self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
        return super().output() + log


def start_kojid(hub_url: str, topurl: str, user: str, password: str, workdir: Path,
                plugin_path: Path | None = None, plugins: tuple[str, ...] = (),
                env: dict[str, str] | None = None, allowed_scms: str | None = None,
                sleeptime: float | None = None) -> KojidProcess:
    """Start the daemon and wait until it has checked in with the hub."""
    return KojidProcess(hub_url, topurl, user, password, workdir, plugin_path, plugins, env,
                        allowed_scms, sleeptime)


if __name__ == "__main__":
    main()
