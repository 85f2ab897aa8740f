"""``koji-image validate``, ``build`` and ``boot-test``: the pipeline on this machine."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import threading
from pathlib import Path

from ..build import installfile, local
from ..build.boot import run
from ..build.boot.schedule import compare
from ..build.pipeline import Pipeline
from ..build.results import Progress
from ..errors import InputError
from ..runner import Runner
from ..spec import hostconfig
from ..spec.arches import Arch
from ..spec.bootprofiles import BootProfile
from ..spec.distro import Family
from ..spec.firmware import Firmware
from ..spec.formats import disk_format
from ..spec.image import BootTest
from ..spec.kickstart import override_repos
from ..spec.load import load
from ..spec.variants import Variant

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
            print(f"  boot test {b.arch} {b.variant} as {b.profile} under {b.firmware}: "
                  f"{'PASS' if b.passed else 'FAIL'} ({b.detail})")
            print("\n".join(f"    {c.line()}" for c in b.failed_checks()) or "", end="")
    print(f"  {result.checksum.name}, {result.manifest.name}, logs/")
    if not result.passed:
        failed = [f"{b.arch} {b.variant} as {b.profile} under {b.firmware}"
                  for a in result.arches
                  for b in a.failed_boots()]
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
    arch = Arch(args.arch)
    fw = Firmware(args.firmware) if args.firmware else arch.default_firmware
    if fw not in arch.firmwares:
        raise InputError(f"--firmware: {arch.value} images boot "
                         f"{' or '.join(f.value for f in arch.firmwares)}, not {fw.value}")
    cfg = host(args)
    variant = Variant.EC2 if f"-{Variant.EC2.name_tag}-" in image.name else Variant.GENERIC
    profiles = [BootProfile(p) for p in args.cloud] if args.cloud else variant.profiles
    logs: Path = args.logs or image.with_name(image.name + ".boot-logs")
    logs.mkdir(parents=True, exist_ok=True)
    bt = BootTest()
    failed, results = 0, []
    with tempfile.TemporaryDirectory(prefix="koji-image-boot-", dir=cfg.workdir) as tmp:
        runner = Runner(logs, log, cancel)
        for boot_fw in arch.boot_firmwares(fw):
            for profile in profiles:
                req = run.Request(image=image, image_format=fmt, arch=arch,
                                  variant=variant.value, profile=profile,
                                  timeout=args.timeout, leftovers=bt.leftovers,
                                  user=args.user, default_user=Family.DEBIAN.cloud_user,
                                  firmware=boot_fw)
                results.append(run.boot(req, cfg, runner, Path(tmp), logs,
                                        f"boot-{profile}-{boot_fw}"))
    for result in compare(results):
        print(f"{image.name} as {result.profile} under {result.firmware}: "
              f"{'PASS' if result.passed else 'FAIL'} in {result.seconds:.0f} s")
        for check in result.checks:
            print(f"  {check.line()}")
        failed += not result.passed
    print(f"logs: {logs}")
    return EXIT_FAILED if failed else 0


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
