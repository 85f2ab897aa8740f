"""A real Glance (Debian's ``glance-api``) on 127.0.0.1 for the upload tests.

No keystone: the paste flavor is left empty, so glance's ``unauthenticated-context``
middleware gives every request a context with no user, no project, no roles and
``is_admin=True``. Glance 25's policy then allows creating, uploading, listing and
deleting images (the deprecated ``rule:default`` still applies, as
``enforce_new_defaults`` is off), but ``publicize_image`` is ``role:admin`` with no
deprecated fallback, so the policy file here sets it to ``""`` (always allowed).

Everything lives in one temporary directory: the config, the sqlite database
(``glance-manage db_sync``), the ``fs`` store, the policy file and the log. ``stop()``
ends the server; ``remove()`` also deletes the directory. ``clouds_yaml()`` writes the
openstacksdk configuration the library reads (``auth_type: none`` plus the endpoint).

``TcpProxy`` sits between the client and glance to make network faults real: it cuts,
holds or corrupts one connection once that connection has carried a given number of
bytes from the client, and forwards every other connection untouched.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.proc import free_port

GLANCE_API = "/usr/bin/glance-api"
GLANCE_MANAGE = "/usr/bin/glance-manage"
PASTE_INI = Path("/etc/glance/glance-api-paste.ini")

POLICY = """\
# Without keystone no request has a role; publicizing an image needs role:admin.
"publicize_image": ""
"""


class GlanceServer:
    """glance-api with a sqlite database and an ``fs`` store under ``root``."""

    def __init__(self, root: Path | None = None, policy: str = POLICY) -> None:
        missing = [p for p in (GLANCE_API, GLANCE_MANAGE, str(PASTE_INI))
                   if not Path(p).exists()]
        if missing:
            raise RuntimeError(f"{', '.join(missing)} not found: install the Debian package "
                               "glance-api (deps/apt.txt; scripts/setup.sh installs it)")
        self.root = root or Path(tempfile.mkdtemp(prefix="koji-image-glance-"))
        self.store = self.root / "images"
        self.log = self.root / "glance-api.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        for sub in ("images", "staging", "tasks", "lock"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "policy.yaml").write_text(policy)
        self.conf = self.root / "glance-api.conf"
        self._write_conf(free_port())
        self._db_sync()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_conf(self, port: int) -> None:
        self.port = port
        r = self.root
        self.conf.write_text(f"""\
[DEFAULT]
bind_host = 127.0.0.1
bind_port = {port}
# one process: no forked workers to leave behind
workers = 0
log_file = {self.log}
use_stderr = false
debug = true
enabled_backends = fs:file
[database]
connection = sqlite:///{r}/glance.sqlite
[paste_deploy]
flavor =
config_file = {PASTE_INI}
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = {r}/images
[os_glance_staging_store]
filesystem_store_datadir = {r}/staging
[os_glance_tasks_store]
filesystem_store_datadir = {r}/tasks
[oslo_policy]
policy_file = {r}/policy.yaml
[oslo_concurrency]
lock_path = {r}/lock
""")

    def _db_sync(self) -> None:
        done = subprocess.run([GLANCE_MANAGE,
                               "--config-file", str(self.conf),
                               "db_sync"],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"glance-manage db_sync exited {done.returncode}:\n"
                               f"{done.stderr[-3000:]}")

    def start(self, timeout: float = 60.0) -> None:
        """Start glance-api (on the same port after a stop) and wait until it answers."""
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([GLANCE_API,
                                          "--config-file", str(self.conf)],
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise RuntimeError(f"glance-api exited with {rc} before answering:\n"
                                   f"{self.log_tail()}")
            if self.answers():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"glance-api did not answer in {timeout} s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.1)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v2/images", timeout=2) as resp:
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL; glance-api runs in its own session (one process)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL: glance dies the way a crashed host does, mid-request."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stored_files(self) -> list[str]:
        """What the fs store holds: image data (one file per image id), including
        partial writes."""
        return sorted(p.name for p in self.store.iterdir())

    def orphans(self, timeout: float = 20.0) -> list[str]:
        """Stored data that belong to no image, once Glance has had ``timeout`` seconds to
        clean up after requests that failed (it removes partial data when the request
        that wrote them ends)."""
        deadline = time.monotonic() + timeout
        while True:
            with urllib.request.urlopen(f"{self.url}/v2/images?visibility=all&limit=1000",
                                        timeout=30) as resp:
                ids = {i["id"] for i in json.load(resp)["images"]}
            left = [f for f in self.stored_files() if f not in ids]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.2)

    def clouds_yaml(self, path: Path, cloud: str, endpoint: str | None = None) -> Path:
        """openstacksdk's configuration for this server (or a proxy in front of it):
        no keystone, so ``auth_type: none`` with the endpoint; version discovery on
        that endpoint finds v2."""
        url = endpoint or self.url
        path.write_text(f"""\
clouds:
  {cloud}:
    auth_type: none
    auth:
      endpoint: {url}
    image_endpoint_override: {url}
    image_api_version: "2"
""")
        return path


class TcpProxy:
    """Forwards 127.0.0.1:port to ``target``; the first connection that carries more than
    ``after`` bytes from the client gets ``fault``: ``cut`` closes both sides, ``hold``
    stops forwarding (the peer sees a stall), ``flip`` inverts the next byte it forwards
    (the server stores data that differ from what the client sent). One fault per proxy."""

    def __init__(self, target_port: int, *, after: int, fault: str) -> None:
        assert fault in ("cut", "hold", "flip")
        self.target_port = target_port
        self.after = after
        self.fault = fault
        self.fired = threading.Event()
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()  # glance is down: the client sees its connection end
                continue
            with self._lock:
                self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False),
                             daemon=True).start()

    def _claim(self) -> bool:
        with self._lock:
            if self.fired.is_set():
                return False
            self.fired.set()
            return True

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        seen = 0
        armed = from_client
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if armed and seen + len(data) > self.after and self._claim():
                    armed = False
                    cut = max(0, self.after - seen)
                    if self.fault == "cut":
                        dst.sendall(data[:cut])
                        break
                    if self.fault == "hold":
                        dst.sendall(data[:cut])
                        self._stop.wait()
                        break
                    data = data[:cut] + bytes([data[cut] ^ 0xFF]) + data[cut + 1:]
                seen += len(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            # shutdown first: close() alone does not wake a thread blocked in recv(), and
            # the peer would then see no FIN and wait for the rest of the body
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
