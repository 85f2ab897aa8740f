"""The layout's rules, checked on the code: imports run one way down the stages, modules
and functions stay small, the hub loads no cloud or virtualization library, and the fast
tests that need no Koji import without it. Each checker is first shown a tree that
breaks its rule, so a checker that cannot fail cannot pass."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PACKAGE = "koji_image_plugin"
#: the stages, bottom up; a module may import from its own stage and the ones below
LAYERS = ("", "spec", "build", "clouds", "koji", "release", "command")
GROUND = {"__init__", "errors", "runner", "checksums", "files", "units"}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 70
#: argparse and optparse tables: long, flat, one option per statement
TABLES = {"command/parser.py:parser", "command/parser.py:_drop_parsers",
          "cli/cloud_image.py:_parser"}


def layer(package_root: Path, path: Path) -> int:
    rel = path.relative_to(package_root)
    top = rel.parts[0] if len(rel.parts) > 1 else ""
    return LAYERS.index(top)


def _imported(path: Path, package_root: Path) -> list[tuple[int, str]]:
    """(line, module path relative to the package) of every import of the package."""
    tree = ast.parse(path.read_text())
    here = path.relative_to(package_root).parent.parts
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[:len(here) - node.level + 1])
                target = [*base, *(node.module or "").split(".")] if node.module else base
            elif (node.module or "").split(".")[0] == PACKAGE:
                target = node.module.split(".")[1:] if node.module else []
            else:
                continue
            names = [a.name for a in node.names]
            for name in names if node.module is None or not target else [""]:
                out.append((node.lineno, "/".join(p for p in [*target, name] if p)))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == PACKAGE:
                    out.append((node.lineno, "/".join(a.name.split(".")[1:])))
    return out


def upward_imports(package_root: Path) -> list[str]:
    """Every import that climbs: into a later stage, or out of the ground floor."""
    bad = []
    for path in sorted(package_root.rglob("*.py")):
        mine = layer(package_root, path)
        ground = len(path.relative_to(package_root).parts) == 1
        for line, target in _imported(path, package_root):
            first = target.split("/")[0] if target else ""
            theirs = LAYERS.index(first) if first in LAYERS else 0
            if theirs > mine or (ground and first not in GROUND and first != ""):
                bad.append(f"{path.relative_to(package_root)}:{line} imports {target}")
    return bad


def too_long(roots: list[Path], base: Path) -> list[str]:
    out = []
    for root in roots:
        for path in sorted(root.rglob("*.py")) if root.is_dir() else [root]:
            text = path.read_text()
            rel = path.relative_to(base).as_posix()
            if len(text.splitlines()) > MAX_MODULE_LINES:
                out.append(f"{rel}: {len(text.splitlines())} lines")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                    key = f"{rel.removeprefix(PACKAGE + '/')}:{node.name}"
                    if n > MAX_FUNCTION_LINES and key not in TABLES:
                        out.append(f"{rel}:{node.lineno} {node.name}: {n} lines")
    return out


def test_imports_run_one_way_down_the_stages() -> None:
    assert upward_imports(REPO / PACKAGE) == []


def test_the_import_checker_sees_a_climb_and_a_ground_floor_that_looks_up(
        tmp_path: Path) -> None:
    pkg = tmp_path / PACKAGE
    for d in ("spec", "build"):
        (pkg / d).mkdir(parents=True)
    (pkg / "errors.py").write_text("from .spec import schema\n")
    (pkg / "spec" / "schema.py").write_text("from ..build import pipeline\n"
                                            "from ..errors import Problem\n")
    (pkg / "build" / "pipeline.py").write_text(f"from {PACKAGE}.spec import schema\n")
    assert upward_imports(pkg) == ["errors.py:1 imports spec",
                                   "spec/schema.py:1 imports build"]


def test_modules_and_functions_are_small() -> None:
    roots = [REPO / PACKAGE, REPO / "hub", REPO / "builder", REPO / "cli"]
    assert too_long(roots, REPO) == []


def test_the_size_checker_sees_a_long_module_and_a_long_function(tmp_path: Path) -> None:
    body = "".join(f"    x = {i}\n" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "a.py").write_text("def long():\n" + body)
    (tmp_path / "b.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    assert too_long([tmp_path], tmp_path) == ["a.py:1 long: 71 lines", "b.py: 401 lines"]


#: what a hub must never be made to load: cloud SDKs, libvirt, Oz
HEAVY = ("boto3", "botocore", "openstack", "keystoneauth1", "libvirt", "oz", "guestfs")


def loaded_by(imports: list[str]) -> list[str]:
    """The HEAVY modules that the ``imports`` statements load, in a fresh interpreter."""
    code = ("import sys\n" + "".join(f"{line}\n" for line in imports)
            + f"print(' '.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def hub_imports() -> list[str]:
    """The hub plugin's imports of the library, as statements."""
    tree = ast.parse((REPO / "hub" / "cloud_image.py").read_text())
    return [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
            and (n.module or "").startswith(PACKAGE)]


def test_the_hub_plugin_loads_no_cloud_or_virtualization_library() -> None:
    imports = hub_imports()
    assert f"from {PACKAGE}.koji import record, repos, request" in imports, imports
    assert loaded_by(imports) == []
    # the check sees one: the uploader's modules do load them
    assert "openstack" in loaded_by([f"import {PACKAGE}.clouds.glance"])


BLOCK_KOJI = """
import importlib.abc, sys
class NoKoji(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('koji', 'koji_cli'):
            raise ImportError(f'{name} is hidden: this test runs without Koji')
sys.meta_path.insert(0, NoKoji())
import importlib
for m in sys.argv[1:]:
    importlib.import_module(m)
"""


def import_without_koji(modules: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK_KOJI, *modules], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


#: test modules outside tests/koji/ that drive the stand-in hub (the weekly job's tests)
NEED_KOJI = {"tests.release.test_drops"}


def test_fast_tests_that_need_no_koji_import_without_it() -> None:
    folders = ("spec", "build", "clouds", "release", "command")
    modules = ["tests.test_runner", "tests.test_layout", *(
        f"tests.{p.parent.name}.{p.stem}" for f in folders
        for p in sorted((REPO / "tests" / f).glob("test_*.py")))]
    modules = [m for m in modules if m not in NEED_KOJI]
    done = import_without_koji(modules)
    assert done.returncode == 0, done.stderr[-2000:]
    # and the blocker works: a test of the Koji plugins does need koji
    done = import_without_koji(["tests.koji.test_request"])
    assert done.returncode == 1 and "koji is hidden" in done.stderr


def test_every_test_folder_is_collected() -> None:
    """pytest leaves out folders named like build outputs (``build``) unless told."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                           "-p", "no:cacheprovider"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    collected = {line.split("/")[1] for line in done.stdout.splitlines()
                 if line.startswith("tests/") and line.count("/") >= 2}
    folders = {p.parent.name for p in (REPO / "tests").glob("*/test_*.py")}
    assert folders <= collected, sorted(folders - collected)
