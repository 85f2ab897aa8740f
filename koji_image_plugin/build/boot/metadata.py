"""The metadata servers of the clouds that hand an instance its identity over HTTP:
EC2's instance metadata service (IMDSv2: a session token first; Eucalyptus: IMDSv1) and
CloudStack's virtual router (metadata on port 80, the password server on 8080).

Each is a small threaded HTTP server on loopback, one per boot, serving that boot's
instance only; the guest reaches it through qemu's user network (``relay.py``,
``netns.py``). Each counts what it served, so a boot's record says what the guest asked.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .instance import Instance

#: the EC2 metadata versions served; cloud-init picks the newest it knows
EC2_VERSIONS = ("1.0", "2009-04-04", "2016-09-02", "2018-09-24", "2021-03-23", "latest")
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
#: the address EC2's metadata service answers on, inside every instance's network
IMDS_ADDRESS = "169.254.169.254"
#: what a metadata tree holds: text leaves, listings of sub-trees
Tree = dict[str, Any]


@dataclass
class Served:
    """What the guest asked a server (for the boot's record)."""

    requests: int = 0
    refused: int = 0
    tokens: int = 0
    passwords: int = 0
    acknowledged: int = 0
    paths: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.requests} requests"]
        if self.tokens:
            parts.append(f"{self.tokens} IMDSv2 tokens")
        if self.refused:
            parts.append(f"{self.refused} refused without a token")
        if self.passwords:
            parts.append(f"{self.passwords} password requests")
        return ", ".join(parts)


def ec2_tree(inst: Instance, guest_ip: str) -> Tree:
    """The ``meta-data/`` tree EC2 serves for the instance (the keys cloud-init reads)."""
    mac = {"device-number": "0", "interface-id": "eni-" + inst.instance_id[2:],
           "local-hostname": inst.fqdn, "local-ipv4s": guest_ip, "mac": inst.mac,
           "subnet-id": "subnet-0koji", "vpc-id": "vpc-0koji"}
    return {
        "ami-id": "ami-0" + inst.instance_id[2:],
        "ami-launch-index": "0",
        "hostname": inst.fqdn,
        "instance-id": inst.instance_id,
        "instance-type": "t3.small",
        "local-hostname": inst.fqdn,
        "local-ipv4": guest_ip,
        "mac": inst.mac,
        "network": {"interfaces": {"macs": {inst.mac: mac}}},
        "placement": {"availability-zone": "us-east-1a", "region": "us-east-1"},
        "public-keys": {"0=boot-test": {"openssh-key": inst.public_key}},
        "services": {"domain": "amazonaws.com", "partition": "aws"},
    }


def cloudstack_tree(inst: Instance, guest_ip: str) -> Tree:
    """What a CloudStack virtual router serves under ``latest/meta-data/``."""
    return {
        "availability-zone": "zone1",
        "cloud-identifier": "CloudStack-{koji-image-boot-test}",
        "instance-id": inst.instance_id,
        "local-hostname": inst.hostname,
        "local-ipv4": guest_ip,
        "public-hostname": inst.hostname,
        "public-ipv4": guest_ip,
        "public-keys": inst.public_key,
        "service-offering": "Small Instance",
        "vm-id": inst.instance_id,
    }


def lookup(tree: Tree, path: str) -> str | None:
    """A tree's answer to a path below it: a leaf's text, a listing, or None (404)."""
    node: Any = tree
    for part in [p for p in path.split("/") if p]:
        if not isinstance(node, dict):
            return None
        match = [k for k in node if k == part or k.split("=", 1)[0] == part]
        if not match:
            return None
        node = node[match[0]]
    if isinstance(node, dict):
        return "\n".join(k + ("/" if isinstance(v, dict) and "=" not in k else "")
                         for k, v in node.items())
    return str(node)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # counted instead (Served)

    def _send(self, code: int, body: str = "", ctype: str = "text/plain") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.served.requests += 1
            self.server.served.paths.append(f"GET {self.path}"[:200])
        code, body = self.server.answer(self)
        self._send(code, body)

    def do_PUT(self) -> None:
        with self.server.lock:
            self.server.served.requests += 1
            self.server.served.paths.append(f"PUT {self.path}"[:200])
        code, body = self.server.put(self)
        self._send(code, body)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.lock = threading.Lock()
        self.served = Served()

    def answer(self, req: _Handler) -> tuple[int, str]:
        return 404, ""

    def put(self, req: _Handler) -> tuple[int, str]:
        return 405, ""


class Ec2Server(_Server):
    """EC2's instance metadata service; ``tokens``: IMDSv2 only (a GET without a valid
    session token is refused with 401, as EC2 does with ``HttpTokens=required``), else
    IMDSv1 only (Eucalyptus: no token API)."""

    def __init__(self, sock: socket.socket, tree: Tree, user_data: str,
                 tokens: bool) -> None:
        super().__init__(sock)
        self.tree, self.user_data, self.tokens = tree, user_data, tokens
        self.issued: set[str] = set()

    def put(self, req: _Handler) -> tuple[int, str]:
        if not self.tokens or req.path.rstrip("/") != "/latest/api/token":
            return 404, ""
        ttl = req.headers.get(TOKEN_TTL_HEADER, "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return 400, ""
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.issued.add(token)
            self.served.tokens += 1
        return 200, token

    def answer(self, req: _Handler) -> tuple[int, str]:
        if self.tokens and req.headers.get(TOKEN_HEADER) not in self.issued:
            with self.lock:
                self.served.refused += 1
            return 401, ""
        parts = [p for p in req.path.split("?")[0].split("/") if p]
        if not parts:
            return 200, "\n".join(EC2_VERSIONS)
        if parts[0] not in EC2_VERSIONS:
            return 404, ""
        rest = "/".join(parts[2:])
        if len(parts) == 1:
            return 200, "dynamic\nmeta-data\nuser-data"
        if parts[1] == "user-data" and len(parts) == 2:
            return 200, self.user_data
        if parts[1] == "meta-data":
            found = lookup(self.tree, rest)
            return (200, found) if found is not None else (404, "")
        if parts[1] == "dynamic":
            found = lookup({"instance-identity": {"document": json.dumps(self.identity())}},
                           rest)
            return (200, found) if found is not None else (404, "")
        return 404, ""

    def identity(self) -> dict[str, str]:
        return {"accountId": "123456789012", "architecture": "x86_64",
                "availabilityZone": "us-east-1a", "imageId": self.tree["ami-id"],
                "instanceId": self.tree["instance-id"], "instanceType": "t3.small",
                "privateIp": self.tree["local-ipv4"], "region": "us-east-1"}


class CloudStackServer(_Server):
    """A CloudStack virtual router: ``latest/meta-data/`` and ``latest/user-data`` on one
    port; on the other (``password``), the password server. It has no password to hand
    out (``saved_password``, as for a template that is not password-enabled: cloud-init
    would otherwise turn sshd's password login on, as CloudStack asks it to); a
    ``saved_password`` request acknowledges one."""

    def __init__(self, sock: socket.socket, tree: Tree, user_data: str,
                 password: bool = False) -> None:
        super().__init__(sock)
        self.tree, self.user_data, self.password_server = tree, user_data, password
        self.pending: str | None = None

    def answer(self, req: _Handler) -> tuple[int, str]:
        if self.password_server:
            return self.domu(req.headers.get("DomU_Request", ""))
        parts = [p for p in req.path.split("?")[0].split("/") if p]
        if parts[:2] == ["latest", "user-data"] and len(parts) == 2:
            return 200, self.user_data
        if parts[:2] == ["latest", "meta-data"]:
            found = lookup(self.tree, "/".join(parts[2:]))
            return (200, found) if found is not None else (404, "")
        return 404, ""

    def domu(self, request: str) -> tuple[int, str]:
        with self.lock:
            if request == "send_my_password":
                self.served.passwords += 1
                return 200, self.pending or "saved_password"
            if request == "saved_password":
                self.served.acknowledged += 1
                self.pending = None
                return 200, "saved_password"
        return 200, "bad_request"


def listener(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    return sock


@contextlib.contextmanager
def serving(server: _Server) -> Iterator[_Server]:
    """Serve in a thread for the block; the socket is closed after it."""
    thread = threading.Thread(target=server.serve_forever, daemon=True,
                              name=f"metadata-{server.server_address[1]}")
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
