"""``koji-image drop`` and ``weekly``: image drops in the mirror tree."""

from __future__ import annotations

import argparse
import datetime
import logging
from pathlib import Path

from ..errors import printable, quote
from ..release import drop, index, publish, weekly, weekly_config
from ..release import sources as drop_sources
from ..release.kojisession import koji_session

EXIT_FAILED = 1
log = logging.getLogger("koji_image_plugin")


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
        session, opts = koji_session(args.koji, args.koji_config, login=False)
        if not opts.get("topurl"):
            raise drop.DropInputError(f"--koji: profile {args.koji} has no topurl; set it "
                                      "in the koji config")
        source = drop_sources.KojiSource(session, opts["topurl"])
        nvrs = source.tag_builds(args.tag) if args.tag else list(args.builds)
        for nvr in nvrs:
            images += source.build_images(nvr)
        sources = [f"Koji build {n}" for n in nvrs]
    else:
        for b in args.builds:
            images += drop_sources.from_local(Path(b))
        # the build's name, not this machine's paths: the record goes on public mirrors
        sources = sorted({f"local build {i.nvr}" for i in images})
    made = drop.make_drop(did, images, force=args.force, local_builds=args.local_builds,
                          bug_url=args.bug_url or "", sources=sources)
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
            raise drop.DropInputError(f"--date: {quote(args.date)} is not a date; use "
                                      "YYYY-MM-DD") from None
    cfg = weekly_config.load_config(args.config)
    outcomes = weekly.run_weekly(cfg, today, log)
    for o in outcomes:
        where = f" {o.drop}" if o.drop else ""
        task = f" (task {o.task_id})" if o.task_id else ""
        print(printable(f"{o.release}: {o.status}{task}:{where} {o.detail}"))
        for p in o.pruned:
            print(f"  pruned {p}")
    return 0 if all(o.ok for o in outcomes) else EXIT_FAILED


