"""The ``koji-image`` command line: every subcommand and option, with its help."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import __version__
from ..spec import hostconfig
from ..spec.arches import Arch
from ..spec.formats import ImageFormat
from ..spec.upload import Cloud


def parser() -> argparse.ArgumentParser:
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
    u.add_argument("--to", action="append", required=True, choices=[c.value for c in Cloud],
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
    _config_parser(sub)
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




def _config_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser(
        "config", help="check the host config and show it, or an example of it",
        description="Read the host config (every section and key checked, as every "
                    "command does) and print the values in effect, or with --example "
                    "print a config file with every key, its help and its default.")
    c.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)
    c.add_argument("--config", type=Path, metavar="FILE",
                   help="host config (default $KOJI_IMAGE_CONFIG or "
                        f"{hostconfig.DEFAULT_PATH})")
    c.add_argument("--example", action="store_true",
                   help="print the documented example config instead")
    c.add_argument("--kojid", action="store_true",
                   help="kojid's plugin config instead (/etc/kojid/plugins/"
                        "cloud_image.conf, $KOJI_CLOUD_IMAGE_CONF)")
