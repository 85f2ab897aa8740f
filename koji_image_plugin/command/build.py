"""``koji-image validate``, ``build`` and ``boot-test``: the pipeline on this machine."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
from pathlib import Path

from ..build import boottest, installfile, local
from ..build.pipeline import Pipeline
from ..build.results import Progress
from ..errors import InputError
from ..runner import Runner
from ..spec import hostconfig
from ..spec.arches import Arch
from ..spec.formats import disk_format
from ..spec.kickstart import override_repos
from ..spec.load import load

EXIT_FAILED = 1
ACCELS = {"auto": "auto", "kvm": "kvm", "tcg": "qemu"}

log = logging.getLogger("koji_image_plugin")


def host(args: argparse.Namespace) -> hostconfig.HostConfig:
    """The host config: --config (it must exist), else $KOJI_IMAGE_CONFIG, else the
    default file; --accel over its [libvirt] type."""
    cfg = hostconfig.load(hostconfig.resolve(args.config))
    if getattr(args, "accel", None):
        cfg = cfg.with_domain_type(ACCELS[args.accel])
    return cfg


def _print_progress(p: Progress) -> None:
    count = f" {p.done}/{p.total}" if p.total else ""
    print(f"[{p.arch or '-'}] {p.stage}{count}: {p.message}", file=sys.stderr, flush=True)


def cmd_validate(args: argparse.Namespace) -> int:
    host(args)  # the host config a build would read is checked too
    s = load(args.spec, allow_outside=args.allow_outside_files)
    print(f"{args.spec}: valid: {s.nvr} ({s.distro}, {', '.join(a.value for a in s.arches)})")
    for arch in s.arches:
        for variant, fmt in s.outputs():
            print(f"  {s.file_name(arch, variant, fmt)}")
    if args.show_kickstart:
        for arch in s.arches:
            text = installfile.prepared_text(s, arch, override_repos(s.repos))
            print(f"# {installfile.file_name(s, arch)}: what the {arch.value} installer "
                  "reads" + ("" if text is not None else ": Oz's default, none given"))
            print(text or "", end="" if (text or "").endswith("\n") else "\n")
    return 0


def cmd_build(args: argparse.Namespace, cancel: threading.Event) -> int:
    s = load(args.spec, allow_outside=args.allow_outside_files)
    if args.arch:
        s = s.replace(arches=args.arch)
    if args.format:
        s = s.replace(formats=args.format)
    if args.release:
        s = s.replace(release=args.release)
    if args.output:
        out = args.output.resolve()
        s = s.next_free_release(lambda c: any((out / n).exists() for n in c.output_names()))
    else:
        s = s.next_free_release(lambda c: (Path("images") / c.nvr).exists())
        out = (Path("images") / s.nvr).resolve()
    pipe = Pipeline(s, host(args), log=log, progress=_print_progress, cancel=cancel,
                    boot_test=False if args.no_boot_test else None)
    result = local.build(pipe, out, args.workdir, args.keep_workdir)
    print(f"{s.nvr}: images in {result.output}")
    for a in result.arches:
        for o in a.outputs:
            print(f"  {o.file}  {o.size / 1e6:.0f} MB")
        for b in a.boot_tests:
            print(f"  boot test {b.arch} {b.variant}: {'PASS' if b.passed else 'FAIL'} "
                  f"({b.detail})")
    print(f"  {result.checksum.name}, {result.manifest.name}, logs/")
    if not result.passed:
        failed = [f"{b.arch} {b.variant}" for a in result.arches for b in a.failed_boots()]
        print(f"koji-image: boot test failed for {', '.join(failed)}; see the console logs "
              f"in {result.output / 'logs'}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def cmd_boot_test(args: argparse.Namespace, cancel: threading.Event) -> int:
    image: Path = args.image
    if not image.is_file():
        raise InputError(f"IMAGE: {image} is not a file; give an image a build wrote")
    fmt = disk_format(image.name)
    if fmt is None:
        raise InputError(f"IMAGE: {image.name} is not a qcow2 or raw disk; "
                             "boot the .qcow2 (or unpack a .raw.xz first)")
    cfg = host(args)
    console = args.console or image.with_name(image.name + ".boot.log")
    with tempfile.TemporaryDirectory(prefix="koji-image-boot-", dir=cfg.workdir) as tmp:
        runner = Runner(Path(tmp) / "logs", log, cancel)
        result = boottest.boot_test(image, fmt, Arch(args.arch), "-", cfg, args.timeout,
                                    runner, Path(tmp), console, "boot-test")
    print(f"{image.name}: {'PASS' if result.passed else 'FAIL'}: {result.detail} "
          f"(console: {console})")
    return 0 if result.passed else EXIT_FAILED


def cmd_config(args: argparse.Namespace) -> int:
    if args.example:
        print(hostconfig.example(kojid=args.kojid), end="")
        return 0
    path = hostconfig.resolve(args.config, kojid=args.kojid)
    hostconfig.check(path)
    cfg = hostconfig.load(path)
    where = path if path.is_file() else f"{path} (absent: the defaults)"
    print(f"# {where}")
    for section in hostconfig.BUILD_SECTIONS:
        print(f"[{section.name}]")
        for s in section.settings:
            value = getattr(cfg, s.attr)
            print(f"{s.key} = {s.doc_default() if value is None else value}")
    return 0
