"""The subprocess helper: lookup, logging, exit status, tails, cancellation."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from pathlib import Path

import pytest

from koji_image_plugin.errors import CancelledError, ToolError, ToolMissingError
from koji_image_plugin.runner import Runner, which


def test_missing_tool_names_the_package() -> None:
    with pytest.raises(ToolMissingError) as info:
        which("no-such-tool-koji-image")
    assert str(info.value) == "no-such-tool-koji-image: not found on this host: install it"
    assert which("sh").endswith("/sh")


def test_missing_known_tool_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    import koji_image_plugin.runner as r
    monkeypatch.setattr(r.shutil, "which", lambda tool, path=None: None)
    with pytest.raises(ToolMissingError, match="install the Debian package qemu-utils"):
        which("qemu-img")


def test_log_has_command_output_and_status(runner: Runner, tmp_path: Path) -> None:
    out = runner.run(["sh", "-c", "echo to-stdout; echo to-stderr >&2"], log_name="step",
                     capture=True)
    assert out == "to-stdout\n"
    log = (tmp_path / "logs" / "step.log").read_text()
    assert "$ /" in log and "sh -c" in log and "to-stderr" in log
    assert "### exit status: 0" in log


def test_failure_is_typed_with_the_stderr_tail(runner: Runner) -> None:
    with pytest.raises(ToolError) as info:
        runner.run(["sh", "-c", "for i in $(seq 30); do echo line$i >&2; done; exit 3"],
                   log_name="bad")
    err = info.value
    assert err.returncode == 3 and err.tool == "sh"
    assert err.tail.splitlines()[-1] == "line30" and "line10" not in err.tail
    assert str(err).startswith("sh failed with exit status 3: line30 (log: ")


def test_ok_codes(runner: Runner) -> None:
    runner.run(["sh", "-c", "exit 1"], log_name="x", ok_codes=(0, 1))


def test_pipeline_checks_every_stage(runner: Runner) -> None:
    got: list[bytes] = []
    runner.pipeline([["printf", "abc"], ["tr", "a-z", "A-Z"]], log_name="p", sink=got.append)
    assert b"".join(got) == b"ABC"
    with pytest.raises(ToolError) as info:
        runner.pipeline([["sh", "-c", "echo x; exit 4"], ["cat"]], log_name="p",
                        sink=got.append)
    assert info.value.returncode == 4


def test_stdin_is_closed(runner: Runner) -> None:
    assert runner.run(["cat"], log_name="stdin", capture=True, timeout=10) == ""


def test_cancel_kills_running_tools(runner: Runner) -> None:
    threading.Timer(0.5, runner.cancel).start()
    t0 = time.monotonic()
    with pytest.raises(CancelledError):
        runner.run(["sleep", "30"], log_name="long")
    assert time.monotonic() - t0 < 10
    with pytest.raises(CancelledError):
        runner.run(["true"], log_name="after")


def test_a_cancel_from_another_thread_kills_the_running_tool(tmp_path: Path) -> None:
    """The kojid task sets the build's cancel event; tools the pipeline runs stop at once
    (a run, and a pipeline feeding a sink), not when they finish."""
    for start in ("run", "pipeline"):
        cancel = threading.Event()
        runner = Runner(tmp_path / start, logging.getLogger("t"), cancel)
        threading.Timer(0.3, cancel.set).start()
        t0 = time.monotonic()
        with pytest.raises(CancelledError):
            if start == "run":
                runner.run(["sleep", "31.4159"], log_name="s")
            else:
                runner.pipeline([["sh", "-c", "while :; do echo x; sleep 0.1; done"]],
                                log_name="p", sink=lambda chunk: None)
        assert time.monotonic() - t0 < 3, start
        assert subprocess.run(["pgrep", "-f", "sleep 31.4159"],
                              capture_output=True).stdout == b""


def test_a_tear_down_step_runs_after_a_cancel_and_others_do_not(tmp_path: Path) -> None:
    cancel = threading.Event()
    runner = Runner(tmp_path / "logs", logging.getLogger("t"), cancel)
    runner.cancel()
    with pytest.raises(CancelledError):
        runner.run(["true"], log_name="refused")
    assert runner.run(["sh", "-c", "echo torn down"], log_name="down", capture=True,
                      cleanup=True) == "torn down\n"
    assert "### exit status: 0" in (tmp_path / "logs" / "down.log").read_text()
    assert not (tmp_path / "logs" / "refused.log").exists()
