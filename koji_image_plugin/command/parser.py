"""The ``koji-image`` command line: every subcommand and option, with its help."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from .. import __version__
from ..errors import printable, quote
from ..release.drop import BASE_URL_RE, BUG_URL_RE, PRODUCT_RE
from ..spec import hostconfig
from ..spec.arches import Arch
from ..spec.bootprofiles import BootProfile
from ..spec.firmware import Firmware
from ..spec.formats import ImageFormat
from ..spec.schema import USER_RE
from ..spec.upload import CLOUD_RE, REGION_RE, Cloud

#: a boot test's wait, in seconds: long enough for TCG, short enough to notice a hang
TIMEOUT_RANGE = (30, 7200)
#: an argparse message may quote what was given; the line stays short whatever it was
MAX_ERROR = 300


class Parser(argparse.ArgumentParser):
    """argparse with its errors as every other bad input: one line naming the option
    and what to do, exit status 2."""

    def error(self, message: str) -> NoReturn:
        line = printable(" ".join(message.split()))
        if len(line) > MAX_ERROR:
            line = line[:MAX_ERROR - 3] + "..."
        self.exit(2, f"{self.prog}: {line}; see {self.prog} --help\n")


def directory(text: str) -> Path:
    """A directory to write into (made when missing): not an existing file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{quote(text)} is not a directory; give a "
                                         "directory (it is made when missing)")
    return path


def out_file(text: str) -> Path:
    """A file to write: not an existing directory."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{quote(text)} is a directory; give a file name")
    return path


def out_dir(text: str) -> Path:
    """A directory to write into: not an existing file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{quote(text)} is not a directory; give a "
                                         "directory (it is made if missing)")
    return path


def timeout(text: str) -> int:
    low, high = TIMEOUT_RANGE
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{quote(text)} is not a number of seconds from "
                                         f"{low} to {high}")
    return value


def matching(pattern: str | re.Pattern[str], what: str) -> Callable[[str], str]:
    """An argument type: the text when ``pattern`` matches all of it, else the one-line
    refusal "'TEXT' is not WHAT"."""
    compiled = re.compile(pattern)

    def check(text: str) -> str:
        if not compiled.match(text):
            raise argparse.ArgumentTypeError(f"{quote(text)} is not {what}")
        return text
    return check


base_url = matching(BASE_URL_RE, "a web or file URL; give https://HOST/PATH/ (or "
                                 "file:///PATH/)")
bug_url = matching(BUG_URL_RE, "a web URL; give https://HOST/PATH")
region = matching(REGION_RE, "an EC2 region name; e.g. us-east-1")
cloud = matching(CLOUD_RE, "a cloud name of clouds.yaml; use letters, digits, '.', '_', "
                           "'-'")
product = matching(PRODUCT_RE, "a product name; use letters, digits and _, starting with a "
                               "letter")


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="koji-image",
        description="Build, boot-test and checksum cloud images from an image spec, on "
                    "this machine (the same pipeline kojid runs for a hub build).")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    common = Parser(add_help=False)
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
    b.add_argument("--allow-outside-files", action="store_true",
                   help="let the spec name a kickstart/preseed outside its own directory")
    b.add_argument("--arch", action="append", metavar="ARCH",
                   choices=[a.value for a in Arch],
                   help="build only this arch (repeatable; default: the spec's arches)")
    b.add_argument("--format", action="append", metavar="FORMAT",
                   choices=[f.value for f in ImageFormat],
                   help="write only this format, for every variant (repeatable)")
    b.add_argument("--output", "-o", type=directory, metavar="DIR",
                   help="where the images, CHECKSUM, manifest.json and logs/ go "
                        "(default: ./images/NAME-VERSION-RELEASE)")
    b.add_argument("--workdir", type=directory, metavar="DIR",
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
    v.add_argument("--allow-outside-files", action="store_true",
                   help="let the spec name a kickstart/preseed outside its own directory")
    v.add_argument("--show-kickstart", action="store_true",
                   help="print the kickstart (or preseed) each arch's installer will read: "
                        "includes flattened, repo lines replaced by the spec's repos, url "
                        "set to the install tree")

    t = sub.add_parser("boot-test", parents=[common],
                       help="boot an image as each cloud boots an instance, log in, check",
                       description="Boot a qcow2 or raw image (through an overlay, "
                                   "enlarged; the file is not changed) the way each "
                                   "cloud boots an instance (its DMI, disk bus and "
                                   "metadata: " + ", ".join(
                                       f"{p.value} = {p.label}" for p in BootProfile)
                                   + "), log in over ssh with the key its metadata "
                                   "handed in, and check the instance (cloud-init, "
                                   "hostname, root growth, failed units, new identity, "
                                   "password auth, leftovers, time sync, serial getty).")
    t.add_argument("image", type=Path, metavar="IMAGE")
    t.add_argument("--arch", default=Arch.X86_64.value, choices=[a.value for a in Arch])
    t.add_argument("--firmware", choices=[f.value for f in Firmware],
                   help="what the image boots with; it is booted under each firmware that "
                        "boots it (hybrid: SeaBIOS and OVMF). Default: the arch's ("
                        + ", ".join(f"{a.value} {a.default_firmware.value}" for a in Arch)
                        + ")")
    t.add_argument("--cloud", action="append", choices=[p.value for p in BootProfile],
                   metavar="PROFILE", help="boot as this cloud (repeatable; one of "
                   f"{', '.join(p.value for p in BootProfile)}; default: the clouds of "
                   "the variant the file name says, e.g. -EC2- for ec2)")
    t.add_argument("--user", type=matching(USER_RE, "a login name"),
                   help="the image's cloud user (default: the one cloud-init reports)")
    t.add_argument("--timeout", type=timeout, default=600,
                   help=f"seconds per boot, {TIMEOUT_RANGE[0]} to {TIMEOUT_RANGE[1]} "
                        "(default 600)")
    t.add_argument("--logs", type=out_dir, metavar="DIR",
                   help="write each boot's console and checks here (default "
                        "IMAGE.boot-logs)")
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
    u.add_argument("--region", action="append", type=region, metavar="REGION", default=[],
                   help="EC2 region (repeatable; default: [ec2] regions of the host "
                        "config; the first is where the image is uploaded, the others "
                        "get copies)")
    u.add_argument("--cloud", action="append", type=cloud, metavar="CLOUD", default=[],
                   help="Glance: a cloud of clouds.yaml (repeatable)")
    u.add_argument("--public", action="store_true",
                   help="release build: grant public launch permission on EC2")
    _drop_parsers(sub)
    _config_parser(sub)
    return p


def _drop_parsers(sub: argparse._SubParsersAction[Parser]) -> None:
    verbose = Parser(add_help=False)
    verbose.add_argument("-v", "--verbose", action="store_true",
                         help="log every step and command run")
    publishing = Parser(add_help=False)
    publishing.add_argument("--base-url", type=base_url, metavar="URL",
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
    d.add_argument("--mirror", required=True, type=directory, metavar="DIR",
                   help="the root of the mirror tree (made if missing)")
    d.add_argument("--koji", metavar="PROFILE",
                   help="take the builds from Koji with this koji client profile")
    d.add_argument("--koji-config", metavar="FILE",
                   help="koji client config file (default: koji's own search)")
    d.add_argument("--tag", metavar="TAG",
                   help="with --koji: the latest cloud image builds of this tag")
    d.add_argument("--force", action="store_true",
                   help="publish images that did not pass a boot test (marked as such)")
    d.add_argument("--local-builds", action="store_true",
                   help="let a milestone drop take local build directories, whose boot "
                        "verdicts are their manifest's word, not Koji's (weekly drops "
                        "take them without it; the page and README say where each "
                        "verdict comes from)")
    d.add_argument("--bug-url", type=bug_url, metavar="URL",
                   help="where to report bugs, for the README")
    d.add_argument("--product", default="Cloud", type=product, metavar="NAME",
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




def _config_parser(sub: argparse._SubParsersAction[Parser]) -> None:
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
