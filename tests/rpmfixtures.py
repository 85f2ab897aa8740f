"""The fixture RPMs of tests/fixtures/rpms, built with the real ``rpmbuild`` (no koji
needed: the fast tests of the rpm database use them too)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import REPO

SPECS = REPO / "tests" / "fixtures" / "rpms"


def build_fixture_rpms(outdir: Path) -> list[Path]:
    """Every fixture RPM, source RPMs first: ``outdir/SRPMS/*.src.rpm``, ``RPMS/noarch``."""
    for spec in sorted(SPECS.glob("*.spec")):
        subprocess.run(["rpmbuild", "-ba", "--define", f"_topdir {outdir}", str(spec)],
                       check=True, capture_output=True, text=True, timeout=120)
    return [*sorted(outdir.glob("SRPMS/*.src.rpm")), *sorted(outdir.glob("RPMS/*/*.rpm"))]
