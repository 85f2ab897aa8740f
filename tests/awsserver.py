"""The EC2, EBS and S3 APIs on loopback for the upload tests, in one place.

- :class:`MotoServer`: ``moto_server`` (moto in server mode, the real AWS API emulator) in
  a subprocess on a free port.
- :class:`FaultProxy`: an HTTP proxy between boto3 and that server which forwards every
  request as is, except where a test asks it to misbehave: answer throttling or 5xx for
  chosen operations or regions, cut the connection of a request (an interrupted upload),
  or hold a request without answering (a stalled transfer).
- moto does not implement ``ImportSnapshot`` (HTTP 500), so the proxy answers
  ``ImportSnapshot``, ``DescribeImportSnapshotTasks`` and ``CancelImportTask`` itself,
  doing what EC2 does with the staged disk: it reads the S3 object from moto and writes
  its non-zero 512 KiB blocks into a new snapshot with moto's EBS direct APIs. This is the
  smallest honest substitute for the one missing server part; the S3 staging, polling,
  tagging and cleanup of :mod:`koji_image_plugin.clouds.s3import` run against moto as they are.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import http.server
import json
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from tests.proc import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIAKOJIIMAGETEST", "AWS_SECRET_ACCESS_KEY":
               "koji-image-test-secret-never-logged", "AWS_DEFAULT_REGION": "us-east-1"}


class MotoServer:
    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        moto = Path(sys.executable).parent / "moto_server"
        if not moto.exists():
            raise RuntimeError(f"{moto} is missing: moto[server] is in requirements-test.txt; "
                               "run ./scripts/setup.sh")
        self.logf = log.open("w")
        self.proc = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/moto-api/")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto_server did not start; see {log}") from None
                time.sleep(0.2)

    def reset(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("POST", "/moto-api/reset")
        conn.getresponse().read()
        conn.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.logf.close()


@dataclass
class Rule:
    """Misbehave for requests matching ``op`` (regex on the operation) and ``region``."""

    op: str = ".*"
    region: str | None = None
    #: "status" (answer ``status`` with ``code``), "cut" (close without answer), "hang"
    action: str = "status"
    status: int = 503
    code: str = "ServiceUnavailable"
    #: how many matching requests to hit (None: all), after letting ``skip`` through
    times: int | None = None
    skip: int = 0
    hits: int = 0
    seen: int = 0


@dataclass
class ImportTask:
    task_id: str
    bucket: str
    key: str
    region: str
    description: str
    status: str = "active"
    progress: str = "0"
    snapshot_id: str | None = None
    message: str = ""
    tags: list[dict[str, str]] = field(default_factory=list)


def _operation(method: str, path: str, body: bytes, headers: Any) -> str:
    target = headers.get("X-Amz-Target")
    if target:
        return str(target).split(".")[-1]
    if body.startswith(b"Action=") or b"&Action=" in body:
        return urllib.parse.parse_qs(body.decode())["Action"][0]
    if path.startswith("/snapshots/completion/"):
        return "CompleteSnapshot"
    if re.match(r"^/snapshots/[^/]+/blocks/\d+", path):
        return "PutSnapshotBlock" if method == "PUT" else "GetSnapshotBlock"
    if path.startswith("/snapshots") and method == "POST":
        return "StartSnapshot"
    return f"{method} {path.split('?')[0]}"


def _region(headers: Any) -> str:
    m = re.search(r"Credential=[^/]+/\d+/([^/]+)/", headers.get("Authorization", ""))
    return m.group(1) if m else "us-east-1"


class FaultProxy:
    def __init__(self, upstream: MotoServer) -> None:
        self.upstream = upstream
        self.rules: list[Rule] = []
        self.log: list[tuple[str, str, int]] = []
        #: the parameters of each query-protocol (EC2) request, as sent: moto keeps only
        #: some of them (RegisterImage's BootMode, for one)
        self.params: list[tuple[str, dict[str, str]]] = []
        self.imports: dict[str, ImportTask] = {}
        self.import_fails = False
        self.release = threading.Event()
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                proxy.handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def add(self, **kw: Any) -> Rule:
        rule = Rule(**kw)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()
        self.release.set()
        self.release = threading.Event()

    def count(self, op: str, region: str | None = None) -> int:
        return sum(1 for o, r, _ in self.log if o == op and region in (None, r))

    def _match(self, op: str, region: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if not re.fullmatch(rule.op, op) or rule.region not in (None, region):
                    continue
                rule.seen += 1
                if rule.seen <= rule.skip or (rule.times is not None and
                                               rule.hits >= rule.times):
                    continue
                rule.hits += 1
                return rule
        return None

    def handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        op = _operation(h.command, h.path, body, h.headers)
        region = _region(h.headers)
        if body.startswith(b"Action=") or b"&Action=" in body:
            with self.lock:
                self.params.append((op, {k: v[0] for k, v in
                                         urllib.parse.parse_qs(body.decode()).items()}))
        rule = self._match(op, region)
        if rule and rule.action == "cut":
            self.log.append((op, region, 0))
            h.close_connection = True
            h.connection.shutdown(2)
            return
        if rule and rule.action == "hang":
            self.log.append((op, region, 0))
            self.release.wait(120)
            h.close_connection = True
            return
        if rule:
            self.log.append((op, region, rule.status))
            self._error(h, op, rule.status, rule.code)
            return
        if op in ("ImportSnapshot", "DescribeImportSnapshotTasks", "CancelImportTask"):
            params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
            self._send(h, 200, self._import_api(op, params, region).encode(), "text/xml")
            self.log.append((op, region, 200))
            return
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream.port, timeout=120)
        headers = {k: v for k, v in h.headers.items() if k.lower() != "connection"}
        conn.request(h.command, h.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        self.log.append((op, region, resp.status))
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length",
                                 "server", "date"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    @staticmethod
    def _send(h: http.server.BaseHTTPRequestHandler, status: int, data: bytes,
              ctype: str, extra: dict[str, str] | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        for k, v in (extra or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _error(self, h: http.server.BaseHTTPRequestHandler, op: str, status: int,
               code: str) -> None:
        if op in ("StartSnapshot", "PutSnapshotBlock", "CompleteSnapshot", "GetSnapshotBlock"):
            self._send(h, status, json.dumps({"message": f"injected {code}"}).encode(),
                       "application/json", {"x-amzn-ErrorType": code})
            return
        xml = (f"<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>{code}"
               f"</Code><Message>injected {code}</Message></Error></Errors>"
               f"<RequestID>{uuid.uuid4()}</RequestID></Response>")
        self._send(h, status, xml.encode(), "text/xml")

    # -- ImportSnapshot, done the way EC2 does it, with moto's S3 and EBS ------------------

    def _client(self, service: str, region: str) -> Any:
        import boto3

        return boto3.client(service, region_name=region, endpoint_url=self.upstream.url,
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def _import_api(self, op: str, p: dict[str, str], region: str) -> str:
        ns = 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"'
        if op == "ImportSnapshot":
            task = ImportTask(f"import-snap-{uuid.uuid4().hex[:17]}",
                              p["DiskContainer.UserBucket.S3Bucket"],
                              p["DiskContainer.UserBucket.S3Key"], region,
                              p.get("Description", ""))
            self.imports[task.task_id] = task
            threading.Thread(target=self._run_import, args=(task,), daemon=True).start()
            return (f"<ImportSnapshotResponse {ns}><requestId>{uuid.uuid4()}</requestId>"
                    f"<importTaskId>{task.task_id}</importTaskId>"
                    f"<description>{escape(task.description)}</description>"
                    f"<snapshotTaskDetail><status>active</status></snapshotTaskDetail>"
                    "</ImportSnapshotResponse>")
        if op == "CancelImportTask":
            task = self.imports[p["ImportTaskId"]]
            task.status = "deleted"
            return (f"<CancelImportTaskResponse {ns}><requestId>{uuid.uuid4()}</requestId>"
                    f"<importTaskId>{task.task_id}</importTaskId><state>deleted</state>"
                    "</CancelImportTaskResponse>")
        task = self.imports[p["ImportTaskId.1"]]
        snap = f"<snapshotId>{task.snapshot_id}</snapshotId>" if task.snapshot_id else ""
        return (f"<DescribeImportSnapshotTasksResponse {ns}><requestId>{uuid.uuid4()}"
                f"</requestId><importSnapshotTaskSet><item><importTaskId>{task.task_id}"
                f"</importTaskId><snapshotTaskDetail><status>{task.status}</status>"
                f"<progress>{task.progress}</progress>{snap}"
                f"<statusMessage>{escape(task.message)}</statusMessage>"
                f"<format>RAW</format></snapshotTaskDetail></item></importSnapshotTaskSet>"
                "</DescribeImportSnapshotTasksResponse>")

    def _run_import(self, task: ImportTask) -> None:
        from koji_image_plugin.clouds.ebs import BLOCK_SIZE, ZERO_BLOCK
        from koji_image_plugin.units import GiB as GIB

        try:
            data = self._client("s3", task.region).get_object(
                Bucket=task.bucket, Key=task.key)["Body"].read()
            task.progress = "30"
            if self.import_fails:
                raise ValueError("ClientError: Disk validation failed [unsupported format]")
            ebs = self._client("ebs", task.region)
            snap = ebs.start_snapshot(VolumeSize=max(1, -(-len(data) // GIB)),
                                      Description=task.description)["SnapshotId"]
            task.snapshot_id = snap
            written = 0
            for off in range(0, len(data), BLOCK_SIZE):
                block = data[off:off + BLOCK_SIZE].ljust(BLOCK_SIZE, b"\0")
                if block != ZERO_BLOCK:
                    digest = base64.b64encode(hashlib.sha256(block).digest()).decode()
                    ebs.put_snapshot_block(SnapshotId=snap, BlockIndex=off // BLOCK_SIZE,
                                           BlockData=block, DataLength=BLOCK_SIZE,
                                           Checksum=digest, ChecksumAlgorithm="SHA256")
                    written += 1
            ebs.complete_snapshot(SnapshotId=snap, ChangedBlocksCount=written)
            task.progress = "100"
            if task.status == "active":
                task.status = "completed"
        except Exception as exc:  # noqa: BLE001 - becomes the task's status, as in EC2
            task.status = "deleted"
            task.message = str(exc)
