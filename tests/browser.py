"""Load a page in Debian's real headless Chromium and report what a user's browser saw.

Chromium runs with ``--headless --no-sandbox --disable-gpu`` and background networking,
component updates, sync and the first-run page off, and is driven over its DevTools
protocol (``--remote-debugging-port``, websocket-client): the page is navigated to, every
console message, uncaught exception, browser log entry and failed request is collected
until the load event, the links are read from the DOM, and a full-page screenshot is
taken.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--remote-allow-origins=*",
]


@dataclass
class PageReport:
    errors: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    title: str = ""
    screenshot: Path | None = None


class Chromium:
    def __init__(self) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="drops-chromium-"))
        self.proc = subprocess.Popen(
            ["chromium", *CHROMIUM_FLAGS, "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                self.close()
                raise RuntimeError(f"chromium did not start its DevTools server: {err}")
            time.sleep(0.1)
        self.port = int(port_file.read_text().splitlines()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list"))
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            self.events.append(msg)

    def wait_event(self, method: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        if any(e.get("method") == method for e in self.events):
            return
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == method:
                return
        raise TimeoutError(method)

    def load(self, url: str, screenshot: Path | None = None) -> PageReport:
        self.events.clear()
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=900,
                  deviceScaleFactor=1, mobile=False)
        nav = self.call("Page.navigate", url=url)
        if nav.get("errorText"):
            return PageReport(errors=[f"navigation: {nav['errorText']}"])
        self.wait_event("Page.loadEventFired")
        time.sleep(0.5)  # console messages of late scripts
        report = PageReport()
        links = self.call("Runtime.evaluate", returnByValue=True, expression=(
            "JSON.stringify(Array.from(document.querySelectorAll("
            "'a[href], link[href], img[src], script[src]')).map("
            "e => e.href || e.src))"))
        report.links = json.loads(links["result"]["value"])
        report.title = self.call("Runtime.evaluate", expression="document.title",
                                 returnByValue=True)["result"]["value"]
        if screenshot is not None:
            shot = self.call("Page.captureScreenshot", format="png",
                             captureBeyondViewport=True)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            report.screenshot = screenshot
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                report.errors.append("console: " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                report.errors.append("exception: " + p["exceptionDetails"].get("text", ""))
            elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
                report.errors.append("log: " + p["entry"].get("text", ""))
            elif method == "Network.loadingFailed":
                report.errors.append("request failed: " + p.get("errorText", ""))
        return report

    def close(self) -> None:
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            shutil.rmtree(self.profile, ignore_errors=True)
