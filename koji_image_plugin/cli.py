"""``koji-image``: the build pipeline on one machine, without a Koji hub (local mode)."""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from . import __version__, boottest, drop, hostconfig, index, publish, uploads, weekly
from . import spec as specmod
from .arches import Arch
from .errors import CancelledError, KojiImageError, Problem, SpecError
from .formats import ImageFormat
from .pipeline import Pipeline, Progress
from .runner import Runner

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CANCELLED = 1, 2, 130

log = logging.getLogger("koji_image_plugin")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="koji-image",
        description="Build, boot-test and checksum cloud images from an image spec, on "
                    "this machine (the same pipeline kojid runs for a hub build).")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    common.add_argument("--config", type=Path, metavar="FILE",
                        help="host config (default $KOJI_IMAGE_CONFIG or "
                             f"{hostconfig.DEFAULT_PATH})")
    common.add_argument("--accel", choices=["auto", "kvm", "tcg"],
                        help="run guests with KVM or TCG (software emulation); default "
                             "from the host config, where auto means KVM only if the CPU "
                             "has vmx/svm")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    b = sub.add_parser("build", parents=[common], help="build the images of a spec",
                       description="Install the OS with Oz in a libvirt guest once per "
                                   "arch, derive every variant, convert to every format, "
                                   "boot-test, and write CHECKSUM and manifest.json.")
    b.add_argument("spec", type=Path, metavar="SPEC",
                   help="image spec (YAML) or a koji image-build --config INI file")
    b.add_argument("--arch", action="append", metavar="ARCH",
                   choices=[a.value for a in Arch],
                   help="build only this arch (repeatable; default: the spec's arches)")
    b.add_argument("--format", action="append", metavar="FORMAT",
                   choices=[f.value for f in ImageFormat],
                   help="write only this format, for every variant (repeatable)")
    b.add_argument("--output", "-o", type=Path, metavar="DIR",
                   help="where the images, CHECKSUM, manifest.json and logs/ go "
                        "(default: ./images/NAME-VERSION-RELEASE)")
    b.add_argument("--workdir", type=Path, metavar="DIR",
                   help="where the work files go (default from the host config: /var/tmp)")
    b.add_argument("--keep-workdir", action="store_true",
                   help="keep the work dir for debugging")
    b.add_argument("--release", metavar="RELEASE",
                   help="override the spec's release (default: the spec's, or the next "
                        "free DATE.N in the output dir)")
    b.add_argument("--no-boot-test", action="store_true", help="skip the boot test")

    v = sub.add_parser("validate", parents=[common],
                       help="check a spec and show what it resolves to")
    v.add_argument("spec", type=Path, metavar="SPEC")

    t = sub.add_parser("boot-test", parents=[common],
                       help="boot an image with a cloud-init seed",
                       description="Boot a qcow2 or raw image (through an overlay; the "
                                   "file is not changed) and wait for cloud-init to run a "
                                   "seed made for this run.")
    t.add_argument("image", type=Path, metavar="IMAGE")
    t.add_argument("--arch", default=Arch.X86_64.value, choices=[a.value for a in Arch])
    t.add_argument("--timeout", type=int, default=600, help="seconds (default 600)")
    t.add_argument("--console", type=Path, metavar="FILE",
                   help="write the serial console here (default IMAGE.boot.log)")
    u = sub.add_parser("upload", parents=[common],
                       help="upload a build's images to EC2 and/or OpenStack Glance",
                       description="Upload the images of a build made here (an output "
                                   "dir with manifest.json): EC2 takes the ec2 variant's "
                                   "raw.xz and registers an AMI in every region; Glance "
                                   "takes the generic variant's qcow2. Where and how come "
                                   "from the host config's [ec2] and [glance] sections; "
                                   "credentials from the AWS chain and clouds.yaml. Safe "
                                   "to rerun: what exists is reused. Records go to "
                                   "OUTPUT_DIR/uploads.json.")
    u.add_argument("output", type=Path, metavar="OUTPUT_DIR",
                   help="a build's output dir (where manifest.json is)")
    u.add_argument("--to", action="append", required=True, choices=["ec2", "glance"],
                   help="where to upload (repeatable)")
    u.add_argument("--region", action="append", metavar="REGION", default=[],
                   help="EC2 region (repeatable; default: [ec2] regions of the host "
                        "config; the first is where the image is uploaded, the others "
                        "get copies)")
    u.add_argument("--cloud", action="append", metavar="CLOUD", default=[],
                   help="Glance: a cloud of clouds.yaml (repeatable)")
    u.add_argument("--public", action="store_true",
                   help="release build: grant public launch permission on EC2")
    _drop_parsers(sub)
    return p


def _drop_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true",
                         help="log every step and command run")
    publishing = argparse.ArgumentParser(add_help=False)
    publishing.add_argument("--base-url", metavar="URL",
                            help="where MIRROR is served (https://.../pub/alt/cloud/); the "
                                 "feed's links use it (default: MIRROR's file:// URL)")
    publishing.add_argument("--gpg-key", metavar="KEYID",
                            help="clear-sign each CHECKSUM with this gpg key")
    publishing.add_argument("--gpg-homedir", type=Path, metavar="DIR",
                            help="gpg home directory holding the key (default gpg's)")

    d = sub.add_parser(
        "drop", parents=[verbose, publishing],
        help="publish an image drop (Alpha, Beta, Final or a weekly) into a mirror tree",
        description="Collect the images of builds (local build directories, or Koji "
                    "builds with --koji), check their checksums, and publish them into "
                    "the mirror tree at once with CHECKSUM, README and images.json; then "
                    "rewrite the tree's index.html and drops.atom. Publishing the same "
                    "drop again changes nothing. Images that did not pass a boot test are "
                    "refused unless --force.")
    d.add_argument("builds", nargs="*", metavar="BUILD",
                   help="a directory koji-image build wrote (with manifest.json), or with "
                        "--koji a Koji build NVR")
    d.add_argument("--release", required=True, metavar="RELEASE",
                   help="the release the drop belongs to: a number (19) or rawhide")
    d.add_argument("--milestone", metavar="MILESTONE",
                   help="Alpha, Beta or Final (or give --weekly)")
    d.add_argument("--weekly", metavar="YYYYMMDD.N", help="a weekly drop with this id")
    d.add_argument("--mirror", required=True, type=Path, metavar="DIR",
                   help="the root of the mirror tree (made if missing)")
    d.add_argument("--koji", metavar="PROFILE",
                   help="take the builds from Koji with this koji client profile")
    d.add_argument("--koji-config", metavar="FILE",
                   help="koji client config file (default: koji's own search)")
    d.add_argument("--tag", metavar="TAG",
                   help="with --koji: the latest cloud image builds of this tag")
    d.add_argument("--force", action="store_true",
                   help="publish images that did not pass a boot test (marked as such)")
    d.add_argument("--bug-url", default="", metavar="URL",
                   help="where to report bugs, for the README")
    d.add_argument("--product", default="Cloud", metavar="NAME",
                   help="product name in images.json's compose id (default Cloud)")

    w = sub.add_parser(
        "weekly", parents=[verbose],
        help="submit the weekly scratch builds and publish what booted",
        description="For each branch of CONFIG: submit a scratch cloud image build with "
                    "release YYYYMMDD.N, wait, publish the images that passed their boot "
                    "test as a weekly drop, prune old weeklies, rewrite the index. Safe to "
                    "run twice a day: a branch already published today is left alone.")
    w.add_argument("config", type=Path, metavar="CONFIG", help="the weekly job's YAML file")
    w.add_argument("--date", metavar="YYYY-MM-DD",
                   help="run for this day instead of today (UTC), e.g. a missed run")


def _print_progress(p: Progress) -> None:
    count = f" {p.done}/{p.total}" if p.total else ""
    print(f"[{p.arch or '-'}] {p.stage}{count}: {p.message}", file=sys.stderr, flush=True)


def _host(args: argparse.Namespace) -> hostconfig.HostConfig:
    host = hostconfig.load(args.config)
    if args.accel:
        host = host.with_domain_type({"auto": "auto", "kvm": "kvm", "tcg": "qemu"}[args.accel])
    return host


def cmd_validate(args: argparse.Namespace) -> int:
    s = specmod.load(args.spec)
    print(f"{args.spec}: valid: {s.nvr} ({s.distro}, {', '.join(a.value for a in s.arches)})")
    for arch in s.arches:
        for variant in s.variants:
            for fmt in s.formats_for(variant):
                print(f"  {s.file_name(arch, variant, fmt)}")
    return 0


def cmd_build(args: argparse.Namespace, cancel: threading.Event) -> int:
    s = specmod.load(args.spec)
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
    host = _host(args)
    pipe = Pipeline(s, host, log=log, progress=_print_progress, cancel=cancel,
                    boot_test=False if args.no_boot_test else None)
    result = pipe.build(out, args.workdir, args.keep_workdir)
    print(f"{s.nvr}: images in {result.output}")
    for a in result.arches:
        for o in a.outputs:
            print(f"  {o.file}  {o.size / 1e6:.0f} MB")
        for b in a.boot_tests:
            print(f"  boot test {b['arch']} {b['variant']}: "
                  f"{'PASS' if b['passed'] else 'FAIL'} ({b['detail']})")
    print(f"  {result.checksum.name}, {result.manifest.name}, logs/")
    if not result.passed:
        failed = [f"{b['arch']} {b['variant']}" for a in result.arches for b in a.boot_tests
                  if not b["passed"]]
        print(f"koji-image: boot test failed for {', '.join(failed)}; see the console logs "
              f"in {result.output / 'logs'}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def cmd_boot_test(args: argparse.Namespace, cancel: threading.Event) -> int:
    image: Path = args.image
    if not image.is_file():
        raise KojiImageError(f"IMAGE: {image} does not exist")
    fmt = {".qcow2": "qcow2", ".raw": "raw", ".img": "raw"}.get(image.suffix)
    if fmt is None:
        raise KojiImageError(f"IMAGE: {image.name} is not a qcow2 or raw disk; "
                             "boot the .qcow2 (or unpack a .raw.xz first)")
    host = _host(args)
    console = args.console or image.with_name(image.name + ".boot.log")
    import tempfile
    with tempfile.TemporaryDirectory(prefix="koji-image-boot-", dir=host.workdir) as tmp:
        runner = Runner(Path(tmp) / "logs", log, cancel)
        result = boottest.boot_test(image, fmt, Arch(args.arch), "-", host, args.timeout,
                                    runner, Path(tmp), console, "boot-test")
    print(f"{image.name}: {'PASS' if result.passed else 'FAIL'}: {result.detail} "
          f"(console: {console})")
    return 0 if result.passed else EXIT_FAILED


def cmd_upload(args: argparse.Namespace, cancel: threading.Event) -> int:
    out: Path = args.output
    manifest_path = out / "manifest.json"
    if not manifest_path.is_file():
        raise SpecError("OUTPUT_DIR", [Problem(str(out), "has no manifest.json; give the "
                                               "output dir of a koji-image build")])
    data: dict[str, Any] = {}
    if "ec2" in args.to:
        data["ec2"] = {"regions": args.region} if args.region else {}
    if "glance" in args.to:
        data["glance"] = {"clouds": args.cloud}
    if args.public:
        data["public"] = True
    problems = specmod.check_upload(data, "upload")
    if args.region and "ec2" not in args.to:
        problems.append(Problem("--region", "is for EC2; add --to ec2"))
    if "glance" in args.to and not args.cloud:
        problems = [p for p in problems if not p.field.startswith("upload.glance")]
        problems.append(Problem("--cloud", "--to glance needs --cloud NAME (a cloud of "
                                "clouds.yaml)"))
    if args.cloud and "glance" not in args.to:
        problems.append(Problem("--cloud", "is for Glance; add --to glance"))
    if problems:
        raise SpecError("koji-image upload", problems)
    manifest = json.loads(manifest_path.read_text())
    runner = Runner(out / "logs", log, cancel)
    outcome = uploads.upload(
        specmod.UploadRequest.from_dict(data), manifest.get("images", []),
        lambda image: out / str(image["file"]), nvr=str(manifest["nvr"]),
        distro=str(manifest["spec"]["distro"]), build_id=None, config=args.config,
        runner=runner)
    records = uploads.merge(uploads.read_local(out), outcome.records)
    path = uploads.write_local(out, records)
    for line in uploads.format_records(outcome.records):
        print(line)
    print(f"records: {path}")
    for err in outcome.errors:
        print(f"koji-image: upload failed: {err}", file=sys.stderr)
    return EXIT_FAILED if outcome.errors else 0


def cmd_drop(args: argparse.Namespace) -> int:
    did = drop.drop_id(args.release, args.milestone, args.weekly)
    if args.tag and not args.koji:
        raise drop.DropInputError("--tag: needs --koji PROFILE (tags are Koji's)")
    if args.tag and args.builds:
        raise drop.DropInputError("BUILD: give either --tag TAG or builds, not both")
    if not args.builds and not args.tag:
        raise drop.DropInputError("BUILD: give at least one build directory (or, with "
                                  "--koji, an NVR or --tag TAG)")
    if args.gpg_homedir and not args.gpg_key:
        raise drop.DropInputError("--gpg-homedir: needs --gpg-key KEYID")
    images: list[drop.DropImage] = []
    if args.koji:
        session, opts = drop.koji_session(args.koji, args.koji_config, login=False)
        if not opts.get("topurl"):
            raise drop.DropInputError(f"--koji: profile {args.koji} has no topurl; set it "
                                      "in the koji config")
        source = drop.KojiSource(session, opts["topurl"])
        nvrs = source.tag_builds(args.tag) if args.tag else list(args.builds)
        for nvr in nvrs:
            images += source.build_images(nvr)
        sources = [f"Koji build {n}" for n in nvrs]
    else:
        for b in args.builds:
            images += drop.from_local(Path(b))
        # the build's name, not this machine's paths: the record goes on public mirrors
        sources = sorted({f"local build {i.nvr}" for i in images})
    made = drop.make_drop(did, images, force=args.force, bug_url=args.bug_url,
                          sources=sources)
    signer = publish.Signer(args.gpg_key, args.gpg_homedir) if args.gpg_key else None
    result = publish.publish(made, args.mirror, signer=signer, product=args.product, log=log)
    page, feed = index.write_index(args.mirror, args.base_url)
    print(f"{did.title}: {'published in' if result.changed else 'already published, unchanged:'}"
          f" {result.path}")
    for img in made.images:
        print(f"  {img.relpath}  {img.size / 1e6:.0f} MB  boot test: {img.verdict.value}")
    print(f"  index: {page}  feed: {feed}")
    return 0


def cmd_weekly(args: argparse.Namespace) -> int:
    today = None
    if args.date:
        try:
            today = datetime.date.fromisoformat(args.date)
        except ValueError:
            raise drop.DropInputError(f"--date: {args.date!r} is not a date; use "
                                      "YYYY-MM-DD") from None
    cfg = weekly.load_config(args.config)
    outcomes = weekly.run_weekly(cfg, today, log)
    for o in outcomes:
        where = f" {o.drop}" if o.drop else ""
        task = f" (task {o.task_id})" if o.task_id else ""
        print(f"{o.release}: {o.status}{task}:{where} {o.detail}")
        for p in o.pruned:
            print(f"  pruned {p}")
    return 0 if all(o.ok for o in outcomes) else EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           datefmt="%H:%M:%S"))
    handler.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:
        # Oz's own chatter goes to logs/oz-ARCH.log; the terminal gets its warnings only.
        handler.addFilter(lambda r: not r.name.startswith("oz") or r.levelno >= logging.WARNING)
    logging.basicConfig(level=logging.DEBUG, handlers=[handler])
    cancel = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        cancel.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        if args.command == "validate":
            return cmd_validate(args)
        if args.command == "build":
            return cmd_build(args, cancel)
        if args.command == "upload":
            return cmd_upload(args, cancel)
        if args.command == "drop":
            return cmd_drop(args)
        if args.command == "weekly":
            return cmd_weekly(args)
        return cmd_boot_test(args, cancel)
    except SpecError as exc:
        for problem in exc.problems:
            print(f"koji-image: {exc.source}: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except drop.DropInputError as exc:
        print(f"koji-image: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, CancelledError):
        cancel.set()
        if args.command == "weekly":
            print("koji-image: cancelled; builds already submitted go on in Koji, and "
                  "the next run waits for them", file=sys.stderr)
        else:
            print("koji-image: cancelled; nothing was left behind", file=sys.stderr)
        return EXIT_CANCELLED
    except KojiImageError as exc:
        print(f"koji-image: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        if exc.errno == 28:
            print(f"koji-image: no space left on device: {exc.filename or ''}; free some "
                  "or choose another --workdir/--output", file=sys.stderr)
            return EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
