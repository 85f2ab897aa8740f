"""The ``long`` marker (tests/conftest.py): deselected unless --long, counted after -m and
-k have chosen, so the summary names only long tests the run would otherwise have had.

Each case runs pytest itself (``--collect-only``, nothing is built) on the aarch64 module,
whose build test is the one marked long.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

MODULE = "tests/build/test_vm_aarch64.py"
LONG_TEST = "test_aarch64_generic_and_ec2_built_and_booted_under_aavmf"


def collect(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider", MODULE, *args],
                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=120)
    assert done.returncode in (0, 5), done.stdout  # 5: nothing collected
    return done.stdout


@pytest.mark.parametrize("args, listed, said", [
    ((), False, True),                      # the default run: left out, and said why
    (("-m", "long"), False, True),          # asked by marker alone: said it needs --long
    (("-m", "not vm"), False, False),       # -m had left it out already: nothing to say
    (("-k", "diagnoses"), False, False),    # so had -k
    (("--long",), True, False),             # --long runs it
    (("--long", "-m", "long"), True, False),
])
def test_long_tests_run_only_with_long_and_the_summary_says_why(
        args: tuple[str, ...], listed: bool, said: bool) -> None:
    out = collect(*args)
    assert (LONG_TEST in out) is listed, out
    assert ("1 test(s) marked long not run: " in out) is said, out
    if said:
        assert "run it with --long" in out
