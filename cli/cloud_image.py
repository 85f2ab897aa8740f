"""koji CLI plugin: ``koji cloud-image-build``, ``koji cloud-image-info`` and
``koji cloud-image-upload``.

The request is checked here with the same schema the hub uses before anything is
uploaded, so a bad request fails at once with every problem named. Koji's own
``image-build`` command is left alone: these are new commands.
"""

import json
import sys
from optparse import OptionParser
from pathlib import Path

import koji
from koji.plugin import export_cli
from koji_cli.lib import (
    _progress_callback,
    _running_in_bg,
    activate_session,
    ensure_connection,
    error,
    get_usage_str,
    unique_path,
    watch_tasks,
)

# The koji command loads every plugin at start: an import error here would break all of
# koji's commands, so a broken install only breaks these two.
try:
    from koji_image_plugin.errors import KojiImageError, listed, printable
    from koji_image_plugin.koji import request
    from koji_image_plugin.koji.info import format_found, format_info, format_rpms
    from koji_image_plugin.spec.arches import Arch
    from koji_image_plugin.spec.distro import AUTO_KEYS
    from koji_image_plugin.spec.firmware import Firmware
    from koji_image_plugin.spec.formats import ImageFormat, from_koji_name
    from koji_image_plugin.spec.load import read
    from koji_image_plugin.spec.upload import Cloud, check_upload, from_flags
    CORE_ERROR = None
except Exception as exc:  # noqa: BLE001 - see above
    CORE_ERROR = f"{type(exc).__name__}: {exc}"


def _core():
    if CORE_ERROR:
        error("cloud-image commands: the koji_image_plugin library does not import "
              f"({CORE_ERROR}); install python3-koji-image-plugin")


def _parser():
    usage = get_usage_str(
        "usage: %prog cloud-image-build [options] NAME VERSION TARGET INSTALL_TREE ARCH "
        "[ARCH...]\n       %prog cloud-image-build --config FILE [options]")
    parser = OptionParser(usage=usage, description=(
        "Build cloud images (qcow2, raw.tar.xz, EC2's raw.xz, Azure's VHD, GCE's tar.gz, "
        "VMDK, Vagrant boxes) for BIOS, UEFI or both, with Oz on a Koji builder, "
        "boot-test them and import them as an image build. INSTALL_TREE may contain "
        "$arch. --config reads a koji-image YAML spec or a koji image-build INI file; "
        "options given as well override it."))
    add = parser.add_option
    add("--config", metavar="FILE", help="YAML spec or koji image-build INI file")
    add("--kickstart", metavar="FILE", help="kickstart (Fedora) or preseed (Debian) file "
        "to upload; with --ksurl, its path inside the SCM checkout")
    add("--allow-outside-files", action="store_true", default=False,
        help="let the --config spec name a kickstart/preseed outside its own directory "
        "(through .., an absolute path or a symlink): it is uploaded to the hub")
    add("--ksurl", metavar="SCMURL", help="SCM URL to check the kickstart out of, "
        "e.g. git+https://pagure.io/fedora-kickstarts.git#f19")
    add("--ksversion", metavar="VERSION", help="kickstart syntax version the builder "
        "parses the kickstart at (pykickstart's, e.g. F39; default: the newest)")
    add("--distro", help="Fedora-NN, Fedora-rawhide or Debian-NN")
    add("--firmware", choices=[f.value for f in Firmware], help="what the images boot "
        "with: bios, uefi or hybrid (BIOS and UEFI); default: each arch's ("
        + ", ".join(f"{a.value} {a.default_firmware.value}" for a in Arch) + ")")
    add("--format", action="append", dest="formats", metavar="FORMAT",
        help="output format of every variant, repeatable: "
        + ", ".join(f.value for f in ImageFormat)
        + " (Koji's names too: "
        + ", ".join(f"{f.koji_name} means {f.value}" for f in ImageFormat
                    if f.koji_name != f.value)
        + "); default qcow2 and raw.tar.xz; for one variant "
        "only, use --variant-format")
    add("--variant-format", action="append", dest="variant_formats",
        metavar="VARIANT=FORMAT", help="a format of one variant, repeatable, e.g. "
        "--variant-format ec2=raw.xz --variant-format generic=qcow2; a variant named here "
        "gets only the formats named for it (the spec's variant_formats)")
    add("--variant", action="append", dest="variants", metavar="VARIANT",
        help="image variant, repeatable: generic, ec2; default generic")
    add("--repo", action="append", dest="repos", metavar="URL",
        help="package repository the installer uses instead of the build tag's Koji repo "
        "(as koji image-build --repo), repeatable; $arch becomes the arch built")
    add("--repo-id", type="int", metavar="ID", help="install from this repo of the build "
        "tag (READY or EXPIRED, see koji list-repos) instead of its current one")
    add("--release", help="release; default: the next free one, as Koji picks it")
    add("--disk-size", type="int", metavar="GIB", help="disk size in GiB (default 10)")
    add("--scratch", action="store_true", default=None, help="scratch build")
    add("--can-fail", metavar="ARCHES", help="comma-separated arches that may fail "
        "without failing the build")
    add("--skip-tag", action="store_true", default=None,
        help="do not tag the build into the target's destination tag")
    add("--no-boot-test", action="store_true", default=False,
        help="do not boot-test the images")
    add("--boot-cloud", action="append", metavar="PROFILE", dest="boot_clouds",
        help="boot-test every variant as this cloud (repeatable: nocloud, openstack, "
        "ec2, eucalyptus, cloudstack; default: the clouds each variant is for)")
    add("--priority", type="int", help="task priority relative to the default "
        "(negative: admins only)")
    add("--wait", action="store_true", default=None, help="wait for the build (default "
        "when in the foreground)")
    add("--nowait", action="store_false", dest="wait", help="do not wait")
    add("--noprogress", action="store_true", default=False,
        help="do not show the upload progress")
    add("--quiet", action="store_true", default=None, help="print only errors")
    return parser


def _fail(parser, problems):
    lines = listed(problems)
    parser.error("invalid cloud image request:\n  " + "\n  ".join(lines))


def _spec_data(parser, options, args):
    """The request as a spec mapping, and the directory its files are relative to."""
    if options.config:
        if args:
            parser.error("give either --config FILE or NAME VERSION TARGET INSTALL_TREE "
                         "ARCH..., not both")
        path = Path(options.config)
        try:
            loaded = read(path)
        except KojiImageError as exc:
            parser.error(printable(str(exc)))
        if not isinstance(loaded, dict):
            parser.error(f"{path}: a spec must be a mapping of fields to values")
        return dict(loaded), path.parent
    if len(args) < 5:
        parser.error("NAME, VERSION, TARGET, INSTALL_TREE and at least one ARCH are needed "
                     "(or --config FILE)")
    return dict(name=args[0], version=args[1], target=args[2], install_tree=args[3],
                arches=args[4:]), Path.cwd()


def _variant_formats(parser, items):
    """--variant-format VARIANT=FORMAT, repeated: the spec's variant_formats."""
    out = {}
    for item in items:
        variant, eq, fmt = item.partition("=")
        if not eq or not variant or not fmt:
            parser.error(f"--variant-format: {item!r} is not VARIANT=FORMAT; give e.g. "
                         "ec2=raw.xz")
        out.setdefault(variant.strip(), []).append(from_koji_name(fmt.strip()))
    return out


def _request(parser, options, args):
    """The request, checked as the hub will check it, or a parser error."""
    data, base = _spec_data(parser, options, args)
    for key, value in (("distro", options.distro), ("release", options.release),
                       ("disk_size", options.disk_size), ("ksurl", options.ksurl),
                       ("ksversion", options.ksversion), ("repo_id", options.repo_id),
                       ("firmware", options.firmware),
                       ("repos", options.repos), ("variants", options.variants),
                       ("scratch", options.scratch), ("skip_tag", options.skip_tag)):
        if value is not None:
            data[key] = value
    if options.formats:  # every variant, as koji-image build --format
        data["formats"] = [from_koji_name(f) for f in options.formats]
        data.pop("variant_formats", None)
    if options.variant_formats:  # the variants named get these; the others keep theirs
        given = data.get("variant_formats")
        data["variant_formats"] = {**(given if isinstance(given, dict) else {}),
                                   **_variant_formats(parser, options.variant_formats)}
    if options.can_fail:
        data["can_fail"] = options.can_fail  # build_request reads Koji's arch spellings
    if options.no_boot_test:
        data["boot_test"] = dict(data.get("boot_test") or {}, enabled=False)
    if options.boot_clouds:  # the schema says which names are clouds
        variants = data.get("variants") or ["generic"]
        data["boot_test"] = dict(data.get("boot_test") or {}, profiles={
            v: options.boot_clouds for v in variants if isinstance(v, str)})
    allow_outside = options.allow_outside_files
    if options.kickstart:  # Koji's name for either file; prepare() moves it for Debian
        for key in AUTO_KEYS:
            data.pop(key, None)
        data["kickstart"] = options.kickstart
        base = Path.cwd()
        allow_outside = True  # named on the command line: the user chose it
    prepared, problems = request.prepare(data, base, allow_outside=allow_outside)
    if problems:
        _fail(parser, problems)
    return prepared


@export_cli
def handle_cloud_image_build(goptions, session, args):
    "[build] Build cloud images with Oz, boot-test them, import them as an image build"
    _core()
    parser = _parser()
    options, args = parser.parse_args(args)
    prepared = _request(parser, options, args)
    quiet = goptions.quiet if options.quiet is None else options.quiet
    activate_session(session, goptions)
    callback = None if (_running_in_bg() or options.noprogress or quiet) \
        else _progress_callback
    task_id = prepared.submit(session, unique_path(request.UPLOAD_PREFIX),
                              priority=options.priority, callback=callback)
    if callback and prepared.local is not None:
        print()

    def show(rv):
        try:
            info = session.cloudImageInfo(task=task_id)
        except koji.GenericError as exc:
            print(f"no results: {exc}", file=sys.stderr)
        else:
            print("\n".join(format_info(info)))

    return _follow(goptions, session, task_id, options.wait, quiet, show)


def _follow(goptions, session, task_id, wait, quiet, show):
    """As Koji's build commands do: name the task, then watch it unless --nowait or in
    the background; ``show(rv)`` prints what it made."""
    if not quiet:
        print(f"Created task: {task_id}")
        print(f"Task info: {goptions.weburl}/taskinfo?taskID={task_id}")
    if wait or (wait is None and not _running_in_bg()):
        session.logout()
        rv = watch_tasks(session, [task_id], quiet=quiet,
                         poll_interval=goptions.poll_interval, topurl=goptions.topurl)
        if not quiet:
            show(rv)
        return rv
    return None


@export_cli
def handle_cloud_image_info(goptions, session, args):
    "[info] Show what a cloud image build or task made and whether it booted"
    _core()
    parser = OptionParser(usage=get_usage_str(
        "usage: %prog cloud-image-info [options] BUILD|TASK_ID"), description=(
        "BUILD is an NVR or build id given as build:ID; a number is a task id (the "
        "build's parent task or one arch task)."))
    parser.add_option("--json", action="store_true", help="print the record as JSON")
    parser.add_option("--rpms", action="store_true", help="list the RPM components Koji "
                      "links to each arch's images")
    options, args = parser.parse_args(args)
    if len(args) != 1:
        parser.error("give one build (NVR) or task id")
    ensure_connection(session, goptions)
    arg = args[0]
    if arg.isdigit():
        info = session.cloudImageInfo(task=int(arg))
    elif arg.startswith("build:") and arg[6:].isdigit():
        info = session.cloudImageInfo(build=int(arg[6:]))
    else:
        info = session.cloudImageInfo(build=arg)
    if options.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print("\n".join(format_info(info)))
        base = (info.get("build") or {}).get("path")
        if base:
            print(f"Files: {base}")
    if options.rpms:
        _print_rpms(session, info)


def _print_rpms(session, info):
    """Each arch's RPM components, from one of its image archives (kojihub links every
    RPM to every image archive of the arch)."""
    if not info.get("build"):
        print("RPM components: none; a scratch build is not imported into Koji")
        return
    archives = session.listArchives(buildID=info["build"]["id"], type="image")
    for arch, rec in sorted((info.get("arches") or {}).items()):
        names = {i["file"] for i in rec.get("images", [])}
        chosen = [a for a in archives if a["filename"] in names]
        if not chosen:
            continue
        rpms = session.listRPMs(imageID=chosen[0]["id"])
        print("\n".join(format_rpms(arch, chosen[0]["filename"], rpms)))


@export_cli
def handle_cloud_image_find(goptions, session, args):
    "[info] List the cloud image builds that contain an RPM or any RPM of a build"
    _core()
    parser = OptionParser(usage=get_usage_str(
        "usage: %prog cloud-image-find [options] RPM|BUILD"), description=(
        "RPM is an N-V-R.A (an RPM Koji knows), BUILD an NVR: every complete image build "
        "whose images contain it (for a build: any of its RPMs), with the image files and "
        "their AMI and Glance ids. Exit status 1 when none does."))
    parser.add_option("--tag", help="only image builds tagged in TAG")
    parser.add_option("--json", action="store_true", help="print the result as JSON")
    options, args = parser.parse_args(args)
    if len(args) != 1:
        parser.error("give one RPM (N-V-R.A) or build (NVR)")
    ensure_connection(session, goptions)
    arg = args[0]
    try:
        is_rpm = bool(session.getRPM(arg))
    except koji.GenericError:  # not an N-V-R.A at all (e.g. NAME-1-1): a build, maybe
        is_rpm = False
    if is_rpm:
        found = session.cloudImageFind(rpm=arg, tag=options.tag)
    elif session.getBuild(arg):
        found = session.cloudImageFind(build=arg, tag=options.tag)
    else:
        error(f"{arg}: no such RPM (N-V-R.A) or build (NVR) on this hub")
    if options.json:
        print(json.dumps(found, indent=2, sort_keys=True))
    elif found:
        print("\n".join(format_found(found)))
    else:
        where = f" tagged in {options.tag}" if options.tag else ""
        print(f"no cloud image build{where} contains {arg}")
    return 0 if found else 1


@export_cli
def handle_cloud_image_upload(goptions, session, args):
    "[build] Upload a cloud image build to EC2 (every region) and/or OpenStack Glance"
    _core()
    parser = OptionParser(usage=get_usage_str(
        "usage: %prog cloud-image-upload [options] BUILD"), description=(
        "Upload the images of a cloud image build (NVR) from a builder that has the "
        "credentials: EC2 takes the ec2 variant's raw.xz and registers an AMI in every "
        "region (--ec2 for the builder's configured regions, or --ec2-region for some), "
        "Glance the generic variant's qcow2. Safe to rerun: what exists is reused. "
        "Where the images went is kept in the build's extra (koji cloud-image-info)."))
    add = parser.add_option
    add("--ec2", action="store_true", help="upload to EC2, the builder's regions")
    add("--ec2-region", action="append", metavar="REGION", default=[],
        help="upload to this EC2 region (repeatable; the first is the home region, the "
             "others get copies); implies --ec2")
    add("--glance", action="append", metavar="CLOUD", default=[],
        help="upload to this OpenStack cloud of the builder's clouds.yaml (repeatable)")
    add("--public", action="store_true",
        help="release build: grant public launch permission on EC2")
    add("--priority", type="int", help="task priority")
    add("--wait", action="store_true", default=None, help="wait for the upload (default "
        "in a terminal)")
    add("--nowait", action="store_false", dest="wait", help="do not wait")
    add("--quiet", action="store_true", default=None, help="print less")
    options, args = parser.parse_args(args)
    if len(args) != 1:
        parser.error("give one build (NVR)")
    opts = from_flags(ec2=options.ec2, regions=options.ec2_region, clouds=options.glance,
                      public=options.public)
    if not {c.value for c in Cloud} & set(opts):
        parser.error("name a cloud: --ec2, --ec2-region REGION or --glance CLOUD")
    problems = check_upload(opts, "opts")
    if problems:
        error("; ".join(listed(problems)))
    quiet = goptions.quiet if options.quiet is None else options.quiet
    activate_session(session, goptions)
    task_id = session.cloudImageUpload(args[0], opts, priority=options.priority)

    def show(rv):
        if not rv:
            print(session.getTaskResult(task_id)["report"])

    return _follow(goptions, session, task_id, options.wait, quiet, show)
