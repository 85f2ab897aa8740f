"""The RPM packaging (koji-image-plugin.spec), checked with Debian's rpm.

The source tarball is made from the git tree the way a release makes it (``git archive``);
``rpmbuild -bs`` must make the source RPM from it, and ``rpmbuild -bb --nodeps`` the binary
RPMs, whose real file lists (``rpm -qlp``) are checked: every plugin and config in its
subpackage, every file of ``koji_image_plugin/`` in the core one. Debian's rpm has none of
Fedora's Python macros (``%python3_sitelib``, ``%pyproject_*``, ``%py_byte_compile``), so
this module defines small stand-ins for them on the rpmbuild command line (``FALLBACKS``);
the spec itself uses Fedora's. The same checks also run on the parsed spec
(``rpmspec -P``), which needs no build.

What goes into the tarball: ``git stash create`` makes a commit of the working tree's
tracked files (staged or not) without touching any ref; on a clean tree (CI's fresh clone)
it prints nothing and HEAD is used. So a developer's uncommitted edits are tested, but a
file that git does not track is not in the tarball, exactly as it would not be in a
release: ``git add`` it.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "koji-image-plugin.spec"
PY = f"{sys.version_info.major}.{sys.version_info.minor}"
SITELIB = f"/usr/lib/python{PY}/site-packages"

CORE = "python3-koji-image-plugin"
HUB = "koji-image-plugin-hub"
BUILDER = "koji-image-plugin-builder"
CLI = "koji-image-plugin-cli"

#: file in the tree -> (subpackage, where it is installed)
PLUGINS = {
    "hub/cloud_image.py": (HUB, "/usr/lib/koji-hub-plugins/cloud_image.py"),
    "builder/cloud_image.py": (BUILDER, "/usr/lib/koji-builder-plugins/cloud_image.py"),
    "builder/cloud_image.conf": (BUILDER, "/etc/kojid/plugins/cloud_image.conf"),
    "cli/cloud_image.py": (CLI, f"{SITELIB}/koji_cli_plugins/cloud_image.py"),
}
PLUGIN_DIRS = ("hub/", "builder/", "cli/")
CONFIGS = {"/etc/kojid/plugins/cloud_image.conf"}

REQUIRES = {
    HUB: {"koji-hub", f"{CORE} = VR"},
    BUILDER: {"koji-builder", f"{CORE} = VR", "python3-boto3",
              "python3-openstacksdk", "oz", "libvirt-daemon-kvm",
              "qemu-img", "xz", "tar", "util-linux", "e2fsprogs", "cloud-utils", "genisoimage"},
    CLI: {"python3-koji", f"{CORE} = VR"},
}

# %pyproject_save_files for the stand-in macros: what Fedora's does for a pure-Python
# wheel, from the installed RECORD: each top-level module or package matching an argument,
# and the dist-info directory.
SAVE_FILES = '''\
import fnmatch, pathlib, sys
buildroot, sitelib, out, *globs = sys.argv[1:]
globs = [g for g in globs if not g.startswith("-")]
site = pathlib.Path(buildroot + sitelib)
lines = set()
for record in site.glob("*.dist-info/RECORD"):
    lines.add(f"{sitelib}/{record.parent.name}/")
    for row in record.read_text().splitlines():
        top = row.split(",")[0].split("/")[0]
        name = top[:-3] if top.endswith(".py") else top
        if not top.startswith("..") and any(fnmatch.fnmatch(name, g) for g in globs):
            lines.add(f"{sitelib}/{top}" + ("/" if (site / top).is_dir() else ""))
if not any("dist-info" not in line for line in lines):
    sys.exit(f"pyproject_save_files: nothing matches {globs}")
pathlib.Path(out).write_text("".join(sorted(line + "\\n" for line in lines)))
'''


def fallbacks(helper: Path) -> dict[str, str]:
    """Stand-ins for Fedora's Python macros, for this test only (never in the spec)."""
    return {
        "python3": sys.executable,
        "__python3": sys.executable,
        "python3_sitelib": SITELIB,
        "pyproject_buildrequires(rRxtNwe:C:g:p)": "%{nil}",
        "_pyproject_wheeldir": "%{_builddir}/pyproject-wheeldir",
        "pyproject_files": "%{_builddir}/pyproject-files",
        "pyproject_wheel": "%{python3} -m pip wheel --no-deps --no-build-isolation --no-index"
                           " --disable-pip-version-check --wheel-dir %{_pyproject_wheeldir} .",
        "pyproject_install": "%{python3} -m pip install --root %{buildroot} --prefix %{_prefix}"
                             " --no-deps --no-index --no-compile --ignore-installed"
                             " --no-warn-script-location --disable-pip-version-check"
                             " %{_pyproject_wheeldir}/*.whl",
        "pyproject_save_files(lL)": f"%{{python3}} {helper} %{{buildroot}} %{{python3_sitelib}}"
                                    " %{pyproject_files} %*",
        "py_byte_compile()": "%1 -m compileall -q -o 0 -o 1 -s %{buildroot} -p / %2",
        # Debian's python dist-deps generator needs python3-packaging; Fedora's is its own.
        "__pythondist_provides": "%{nil}",
        "__pythondist_requires": "%{nil}",
    }


def run(cmd: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        pytest.fail(f"{shlex.join(cmd)} exited {proc.returncode}:\n{tail}")
    return proc.stdout


@dataclass
class Build:
    topdir: Path
    defines: list[str]
    name: str
    version: str
    release: str
    tree: set[str]                  # files in the tarball, relative to the top
    srpm: Path | None = None
    rpms: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> path -> fflags

    def rpmbuild(self, *args: str) -> str:
        return run(["rpmbuild", *args, *self.defines, str(SPEC)], cwd=REPO)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    tmp = tmp_path_factory.mktemp("rpm")
    helper = tmp / "pyproject_save_files.py"
    helper.write_text(SAVE_FILES)
    defines = ["--define", f"_topdir {tmp / 'top'}"]
    for name, body in fallbacks(helper).items():
        defines += ["--define", f"{name} {body}"]
    nvr = run(["rpmspec", "-q", "--srpm", "--qf", "%{NAME} %{VERSION} %{RELEASE}",
               *defines, str(SPEC)]).split()
    name, version, release = nvr
    git = ["git", "-C", str(REPO), "-c", "user.name=test", "-c", "user.email=test@localhost"]
    commit = run([*git, "stash", "create"]).strip() or "HEAD"
    tree = set(run([*git, "ls-tree", "-r", "--name-only", commit]).splitlines())
    sources = tmp / "top" / "SOURCES"
    sources.mkdir(parents=True)
    run([*git, "archive", "--format=tar.gz", f"--prefix={name}-{version}/",
         "-o", str(sources / f"{name}-{version}.tar.gz"), commit])
    yield Build(tmp / "top", defines, name, version, release, tree)


@pytest.fixture(scope="module")
def srpm(build: Build) -> Path:
    out = build.rpmbuild("-bs")
    written = re.findall(r"^Wrote: (.+\.src\.rpm)$", out, re.M)
    assert len(written) == 1, out
    return Path(written[0])


@pytest.fixture(scope="module")
def rpms(build: Build) -> dict[str, dict[str, str]]:
    """rpmbuild -bb --nodeps; name -> {installed path: rpm file flags (c, n, d, ...)}."""
    missing = [f for f in PLUGINS if f not in build.tree]
    if missing:
        pytest.fail(f"not in the git tree yet, the spec installs them: {', '.join(missing)}")
    out = build.rpmbuild("-bb", "--nodeps")
    result: dict[str, dict[str, str]] = {}
    for rpm in re.findall(r"^Wrote: (.+\.rpm)$", out, re.M):
        name = run(["rpm", "-qp", "--qf", "%{NAME}", rpm])
        listing = run(["rpm", "-qp", "--qf", r"[%{FILEFLAGS:fflags}\t%{FILENAMES}\n]", rpm])
        result[name] = {path: flags for flags, path in
                        (line.split("\t") for line in listing.splitlines())}
    return result


@dataclass
class ParsedSpec:
    files: dict[str, list[tuple[str, str]]]   # package -> [(directives, path)]
    installs: list[tuple[str, str]]           # (source in the tree, destination)


def files_package(header: str, name: str) -> str:
    args = shlex.split(header)[1:]
    if "-f" in args:
        i = args.index("-f")
        del args[i:i + 2]
    if args[:1] == ["-n"]:
        return args[1]
    return f"{name}-{args[0]}" if args else name


@pytest.fixture(scope="module")
def parsed(build: Build) -> ParsedSpec:
    text = run(["rpmspec", "-P", *build.defines, str(SPEC)])
    text = text.replace("\\\n", " ")
    files: dict[str, list[tuple[str, str]]] = {}
    installs: list[tuple[str, str]] = []
    section = ""
    for line in text.splitlines():
        if re.match(r"%[a-z_]+\b", line) and line.split()[0] in (
                "%package", "%description", "%prep", "%build", "%install", "%check", "%files",
                "%changelog", "%generate_buildrequires", "%pre", "%post", "%preun", "%postun"):
            section = line.split()[0]
            if section == "%files":
                current = files.setdefault(files_package(line, build.name), [])
            continue
        if section == "%files" and line.strip() and not line.startswith("#"):
            *directives, path = line.split()
            current.append((" ".join(directives), path))
        elif section == "%install" and line.split()[:1] == ["install"]:
            args = [a for a in shlex.split(line)[1:] if not a.startswith("-") and a != "0644"]
            src, dest = args[0], args[-1]
            installs.append((src, re.sub(r"^.*/BUILDROOT/[^/]+", "", dest)))
    return ParsedSpec(files, installs)


def test_spec_version_is_setup_py_version(build: Build) -> None:
    setup = (REPO / "setup.py").read_text()
    assert re.search(r'version="([^"]+)"', setup)[1] == build.version  # type: ignore[index]


def test_source_rpm_builds(build: Build, srpm: Path) -> None:
    assert srpm.name == f"{build.name}-{build.version}-{build.release}.src.rpm"
    contents = run(["rpm", "-qpl", str(srpm)]).split()
    assert sorted(contents) == sorted([f"{build.name}-{build.version}.tar.gz", SPEC.name])


def test_spec_installs_only_files_of_the_tree(build: Build, parsed: ParsedSpec) -> None:
    assert parsed.installs, "no install commands found in %install"
    missing = [src for src, _ in parsed.installs if src not in build.tree]
    assert not missing, (f"the spec installs {missing}, which git does not track "
                         "(a file not yet written, or not yet `git add`ed)")


def test_every_plugin_file_of_the_tree_is_installed(build: Build, parsed: ParsedSpec) -> None:
    shipped = {f for f in build.tree if f.startswith(PLUGIN_DIRS) and f.endswith((".py", ".conf"))}
    installed = {src for src, _ in parsed.installs}
    assert not shipped - installed, f"in the tree but not in the spec: {shipped - installed}"


def test_spec_puts_each_plugin_in_its_subpackage(parsed: ParsedSpec) -> None:
    installs = dict(parsed.installs)
    for src, (package, dest) in PLUGINS.items():
        assert installs.get(src) == dest, f"{src} installed to {installs.get(src)}, not {dest}"
        owners = [p for p, entries in parsed.files.items() if dest in (e[1] for e in entries)]
        assert owners == [package], f"{dest} is in {owners}, not in {package}"
        directives = dict((path, d) for d, path in parsed.files[package])[dest]
        if dest in CONFIGS:
            assert directives == "%config(noreplace)", f"{dest}: {directives!r}"
        else:
            pyc = str(Path(dest).parent / "__pycache__" / (Path(dest).stem + ".*"))
            assert pyc in (e[1] for e in parsed.files[package]), f"{package}: no {pyc}"


def test_spec_core_package(parsed: ParsedSpec) -> None:
    assert ("", "/usr/bin/koji-image") in parsed.files[CORE]
    raw = SPEC.read_text()
    assert re.search(r"^%pyproject_save_files\b.*\bkoji_image_plugin\b", raw, re.M)
    assert "%files -n python3-%{name} -f %{pyproject_files}" in raw.splitlines()


def test_spec_requires(build: Build) -> None:
    out = run(["rpmspec", "-q", "--qf", r"%{NAME}[\t%{REQUIRENEVRS}]\n",
               *build.defines, str(SPEC)])
    requires = {line.split("\t")[0]: set(line.split("\t")[1:]) for line in out.splitlines()}
    vr = f"{build.version}-{build.release}"
    for package, want in REQUIRES.items():
        want = {r.replace("VR", vr) for r in want}
        assert want <= requires[package], f"{package} lacks {want - requires[package]}"
    # the library, the hub and the koji CLI plugin never need a guest: no hard dependency
    # on libvirt, qemu or Oz there (the core only suggests them, for local builds)
    for package in (CORE, HUB, CLI):
        assert not {"oz", "libvirt-daemon-kvm", "qemu-img"} & requires[package], package


def test_binary_rpms_are_the_four_subpackages(rpms: dict[str, dict[str, str]]) -> None:
    assert sorted(rpms) == sorted([CORE, HUB, BUILDER, CLI])


def test_binary_rpms_put_each_plugin_in_its_subpackage(
        rpms: dict[str, dict[str, str]]) -> None:
    for package, dest in PLUGINS.values():
        assert dest in rpms[package], f"{dest} not in {package}: {sorted(rpms[package])}"
        others = [p for p, paths in rpms.items() if p != package and dest in paths]
        assert not others, f"{dest} also in {others}"
        if dest in CONFIGS:
            assert set(rpms[package][dest]) >= {"c", "n"}, f"{dest} is not %config(noreplace)"
        else:
            cache = Path(dest).parent / "__pycache__"
            tag = f"cpython-{PY.replace('.', '')}"
            for pyc in (f"{Path(dest).stem}.{tag}.pyc", f"{Path(dest).stem}.{tag}.opt-1.pyc"):
                assert str(cache / pyc) in rpms[package], f"{package}: no {cache / pyc}"


def test_binary_core_rpm_has_the_whole_library(
        build: Build, rpms: dict[str, dict[str, str]]) -> None:
    core = rpms[CORE]
    library = {f for f in build.tree if f.startswith("koji_image_plugin/")}
    assert "koji_image_plugin/py.typed" in library
    assert any(f.startswith("koji_image_plugin/data/") for f in library)
    missing = sorted(f for f in library if f"{SITELIB}/{f}" not in core)
    assert not missing, f"not in {CORE}: {missing}"
    assert "/usr/bin/koji-image" in core
    assert f"{SITELIB}/koji_image_plugin-{build.version}.dist-info/METADATA" in core
    # and nothing else (the plugins, the tests) gets into the Python path
    ours = (f"{SITELIB}/koji_image_plugin",
            f"{SITELIB}/koji_image_plugin-{build.version}.dist-info")
    stray = [p for p in core if p.startswith(SITELIB) and not p.startswith(ours)]
    assert not stray, f"unexpected in {CORE}: {stray}"


def test_binary_rpms_own_no_file_twice(rpms: dict[str, dict[str, str]]) -> None:
    seen: dict[str, str] = {}
    for package, paths in rpms.items():
        for path in paths:
            if path in seen:
                pytest.fail(f"{path} is in {seen[path]} and {package}")
            seen[path] = package


def test_the_weekly_drop_job_files_are_documentation_of_the_core_package(
        rpms: dict[str, dict[str, str]]) -> None:
    docs = {p: f for p, f in rpms[CORE].items() if "/doc/" in p}
    for name in ("contrib/systemd/koji-image-weekly.service",
                 "contrib/systemd/koji-image-weekly.timer",
                 "contrib/cron/koji-image-weekly", "weekly.yaml"):
        found = [p for p in docs if p.endswith("/" + name)]
        assert found and "d" in docs[found[0]], f"{name} not a %doc of {CORE}: {sorted(docs)}"
