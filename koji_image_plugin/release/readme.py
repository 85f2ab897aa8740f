"""A drop's README: what the images are, how to verify them, how to boot them on each
cloud (with the AMI ids per region where they were uploaded), where to report bugs."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from ..spec.arches import Arch
from ..spec.bootprofiles import titles
from ..spec.firmware import under
from ..spec.formats import ImageFormat
from ..spec.upload import Cloud
from ..spec.variants import Variant
from .drop import Drop, DropImage, Verdict

VERDICTS = {Verdict.PASSED: "booted in its boot test",
            Verdict.FAILED: "FAILED its boot test",
            Verdict.NOT_RUN: "NOT boot-tested"}
#: what each image type is for, as the README says it
TYPES = {
    Variant.GENERIC: ["generic/: for OpenStack, CloudStack, Eucalyptus and plain KVM/libvirt "
                      "(cloud-init",
                      "with the NoCloud, ConfigDrive, OpenStack, CloudStack and EC2 "
                      "datasources)."],
    Variant.EC2: ["EC2/: the Amazon EC2 variant (EC2 datasource, serial console on ttyS0, "
                  "as on Graviton)."],
}
VERIFY = [
    "",
    "Verify",
    "------",
    "",
    "  sha256sum -c CHECKSUM          (in this directory; every line must say OK)",
    "  gpg --verify CHECKSUM          (if CHECKSUM is signed: check the key is the",
    "                                  project's before trusting the sums)",
]
BOOT = [
    "",
    "Boot",
    "----",
    "",
    "OpenStack:",
    "  openstack image create --disk-format qcow2 --container-format bare \\",
    "      --file x86_64/generic/FILE.qcow2 NAME",
    "  openstack server create --image NAME --flavor m1.small --key-name KEY VM",
    "CloudStack:",
    "  register the qcow2 as a template (KVM hypervisor, format QCOW2): cloudmonkey",
    "  register template url=https://MIRROR/PATH/FILE.qcow2 format=QCOW2 \\",
    "      hypervisor=KVM ostypeid=... name=NAME displaytext=NAME zoneid=...",
    "Eucalyptus:",
    "  unpack the raw image (xz -d, or tar -xJf for .raw.tar.xz), then",
    "  euca-install-image -i disk.raw -b BUCKET -r x86_64 --virtualization-type hvm",
    "  and euca-run-instances with the EMI it prints.",
    "Local (KVM):",
    "  cloud-localds seed.iso user-data meta-data",
    "  qemu-system-x86_64 -m 1024 -drive file=overlay.qcow2,if=virtio \\",
    "      -drive file=seed.iso,if=virtio,format=raw -nographic",
    "  (boot a qcow2 overlay: qemu-img create -f qcow2 -F qcow2 -b FILE.qcow2 "
    "overlay.qcow2)",
]
#: how to boot an aarch64 image on a local KVM host, when a drop has one (UEFI only)
BOOT_AARCH64 = [
    "Local (KVM on an aarch64 host; aarch64 images boot with UEFI only):",
    "  cp /usr/share/AAVMF/AAVMF_VARS.fd my_VARS.fd   (a variable store of its own)",
    "  qemu-system-aarch64 -M virt -cpu host -enable-kvm -m 1024 \\",
    "      -drive if=pflash,format=raw,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd \\",
    "      -drive if=pflash,format=raw,file=my_VARS.fd -drive file=overlay.qcow2,if=virtio \\",
    "      -drive file=seed.iso,if=virtio,format=raw -nographic",
]
#: how to use each format that is more than a disk a hypervisor boots, when a drop has it
FORMAT_BOOT = {
    ImageFormat.VMDK: [
        "VMware (FILE.vmdk, streamOptimized):",
        "  import it as the disk of a new VM (vSphere: upload it to a datastore).",
    ],
    ImageFormat.VHD: [
        "Azure (FILE.vhdfixed.xz, a fixed VHD of a whole number of MiB):",
        "  xz -d FILE.vhdfixed.xz; az storage blob upload --type page --file FILE.vhdfixed \\",
        "      ...; az image create --source BLOB-URL --os-type Linux ...",
    ],
    ImageFormat.GCE: [
        "Google Compute Engine (FILE.tar.gz, disk.raw inside):",
        "  gsutil cp FILE.tar.gz gs://BUCKET/; gcloud compute images create NAME \\",
        "      --source-uri gs://BUCKET/FILE.tar.gz",
    ],
    ImageFormat.VAGRANT_LIBVIRT: [
        "Vagrant with libvirt (FILE.vagrant.libvirt.box):",
        "  vagrant box add --name NAME FILE.vagrant.libvirt.box; vagrant init NAME;",
        "  vagrant up --provider=libvirt",
    ],
    ImageFormat.VAGRANT_VIRTUALBOX: [
        "Vagrant with VirtualBox (FILE.vagrant.virtualbox.box):",
        "  vagrant box add --name NAME FILE.vagrant.virtualbox.box; vagrant init NAME;",
        "  vagrant up --provider=virtualbox",
    ],
}


def readme(drop: Drop, published: datetime.datetime) -> str:
    present = {i.format for i in drop.images}
    formats = [line for fmt, text in FORMAT_BOOT.items() if fmt in present for line in text]
    arm = BOOT_AARCH64 if any(i.arch is Arch.AARCH64 for i in drop.images) else []
    return "\n".join([*_intro(drop, published), *_images(drop), *VERIFY, *BOOT, *arm,
                      *formats, "EC2:", *_clouds(drop.images), *_bugs(drop)])


def _intro(drop: Drop, published: datetime.datetime) -> list[str]:
    did = drop.id
    what = (f"the {did.milestone} milestone of release {did.release}" if did.milestone
            else f"a weekly scratch drop of {did.release} ({did.weekly}), untested beyond "
                 "its boot test and not for production")
    title = f"Cloud images: {did.title}"
    lines = [
        title,
        "=" * len(title),
        "",
        f"These are the cloud images of {what}, published "
        f"{published.strftime('%Y-%m-%d %H:%M UTC')}.",
        "They were built with koji-image-plugin (Oz, then boot-tested) as: "
        + ", ".join(drop.nvrs) + ".",
    ]
    if drop.description:
        lines += ["", drop.description]
    return lines


def _images(drop: Drop) -> list[str]:
    lines = ["", "Images", "------", ""]
    for i in drop.images:
        lines.append(f"  {i.relpath}  ({i.size} bytes, {i.firmware.value} firmware, "
                     f"{VERDICTS[i.verdict]})")
        if i.booted_on:
            lines.append(f"    booted on: {titles(list(i.booted_on))} "
                         f"{under(list(i.booted_under))}".rstrip())
    lines += ["", "The boot verdicts above come from:"]
    lines += [f"  {source}" for source in sorted({i.verdict_from or "(not recorded)"
                                                   for i in drop.images})]
    if not all(i.in_koji for i in drop.images):
        lines += ["  A local build's verdicts are what its manifest.json says; they are not",
                  "  traced in Koji. Trust them as far as you trust whoever built it."]
    lines += ["", "Their packages came from:"]
    lines += [f"  {source}" for source in sorted({i.content_from or "(not recorded)"
                                                   for i in drop.images})]
    lines.append("")
    present = {i.variant for i in drop.images}
    for variant, text in TYPES.items():
        if variant in present:
            lines += text
    if drop.forced:
        lines += ["", "WARNING: this drop was published with --force: some images above did "
                  "not pass a boot test. Do not use them unless you are testing them."]
    return lines


def _ami_lines(images: Sequence[DropImage]) -> list[str]:
    lines: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for i in images:
        for u in i.uploads:
            # an upload belongs to an (arch, variant): every format of it carries it
            if u.cloud == Cloud.EC2 and (u.where, u.image_id, i.arch) not in seen:
                seen.add((u.where, u.image_id, i.arch))
                lines.append(f"    {u.where:<16} {u.image_id:<22} {i.arch} {i.type_dir}"
                             f"{'' if u.public is not False else '  (private)'}")
    return lines


def _clouds(images: Sequence[DropImage]) -> list[str]:
    amis = _ami_lines(images)
    if amis:
        lines = ["  launch one of these AMIs (region, AMI id, arch, type):", *amis]
    else:
        lines = ["  not uploaded to EC2 for this drop: import the EC2/ raw.xz image",
                 "  (aws ec2 import-snapshot, then register-image with --ena-support)."]
    glance = list({(u.where, u.image_id): (i, u) for i in images for u in i.uploads
                   if u.cloud == Cloud.GLANCE}.values())
    if glance:
        lines += ["", "Glance images already uploaded:"]
        lines += [f"  {u.where}: {u.image_id} ({u.name}) {i.arch} {i.type_dir}"
                  for i, u in glance]
    return lines


def _bugs(drop: Drop) -> list[str]:
    return [
        "",
        "Report bugs",
        "-----------",
        "",
        f"  {drop.bug_url or 'to the release engineering tracker of this distribution'}",
        "  Give the file name, its SHA-256 from CHECKSUM and the cloud you booted it on.",
        "",
    ]
