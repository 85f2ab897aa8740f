"""kojihub's RPMs, external repos, tag repos and the RPM components of images.

Each function stands in for the kojihub function of the same name (Koji 1.35/1.36,
``kojihub/kojihub.py`` and ``kojihub/repos.py``); what differs is in README.md.
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

import koji
from koji.context import context

from . import core
from .core import DB

RPM_FIELDS = ("id", "build_id", "buildroot_id", "name", "version", "release", "epoch",
              "arch", "draft", "external_repo_id", "external_repo_name", "payloadhash",
              "size", "buildtime", "metadata_only", "extra")
REPO_FIELDS = ("id", "tag_id", "tag_name", "state", "create_event", "create_ts",
               "creation_time", "creation_ts", "state_time", "state_ts", "begin_event",
               "begin_ts", "end_event", "end_ts", "dist", "opts", "custom_opts", "task_id",
               "task_state")


# -- RPMs -----------------------------------------------------------------------------------

def _rpm_info(row: dict[str, Any]) -> dict[str, Any]:
    info = {k: row.get(k) for k in RPM_FIELDS}
    info["external_repo_name"] = DB.external_repos[row["external_repo_id"]]["name"]
    return info


def get_rpm(rpminfo, strict=False, multi=False):
    """kojihub.get_rpm: an id, ``N-V-R.A[@location]`` or a dict; internal before external."""
    if isinstance(rpminfo, int):
        data = {"id": rpminfo}
    elif isinstance(rpminfo, str):
        data = koji.parse_NVRA(rpminfo)
    elif isinstance(rpminfo, dict):
        data = dict(rpminfo)
    else:
        raise koji.GenericError(f"Invalid argument: {rpminfo!r}")
    if "id" in data:
        rows = [DB.rpms[data["id"]]] if data["id"] in DB.rpms else []
    else:
        keys = ("name", "version", "release", "arch")
        rows = [r for r in DB.rpms.values() if all(r[k] == data.get(k) for k in keys)]
        if data.get("location"):
            repo_id = get_external_repo_id(data["location"], strict=True)
            rows = [r for r in rows if r["external_repo_id"] == repo_id]
    if not rows:
        if strict:
            raise koji.GenericError(f"No such rpm: {data!r}")
        return [] if multi else None
    if multi:
        return [_rpm_info(r) for r in rows]
    internal = [r for r in rows if r["external_repo_id"] == 0]
    best = max(internal or rows, key=lambda r: r["id"])
    return _rpm_info(best)


def list_rpms(buildID=None, imageID=None, arches=None):
    """kojihub.list_rpms (the buildID, imageID and arches filters); adds ``nvr``."""
    rows = list(DB.rpms.values())
    if buildID is not None:
        rows = [r for r in rows if r["build_id"] == buildID]
    if imageID is not None:
        ids = {c["rpm_id"] for c in DB.archive_rpm_components.values()
               if c["archive_id"] == imageID}
        rows = [r for r in rows if r["id"] in ids]
    if arches is not None:
        wanted = [arches] if isinstance(arches, str) else list(arches)
        rows = [r for r in rows if r["arch"] in wanted]
    out = []
    for row in sorted(rows, key=lambda r: r["id"]):
        info = _rpm_info(row)
        info["nvr"] = f"{row['name']}-{row['version']}-{row['release']}"
        out.append(info)
    return out


def import_rpm(fn):
    """kojihub.import_rpm + import_rpm_file: a source RPM makes its build, a binary RPM
    needs its source RPM's build; the file goes to packages/N/V/R/ARCH/."""
    if not os.path.exists(fn):
        raise koji.GenericError(f"No such file: {fn}")
    hdr = koji.get_rpm_header(fn)
    info = koji.get_header_fields(hdr, ["name", "version", "release", "epoch", "arch",
                                        "sigmd5", "sourcepackage", "sourcerpm", "buildtime"])
    if info["sourcepackage"] == 1:
        info["arch"] = "src"
    basename = os.path.basename(fn)
    expected = "{name}-{version}-{release}.{arch}.rpm".format(**info)
    if basename != expected:
        raise koji.GenericError(f"bad filename: {basename} (expected {expected})")
    if info["arch"] == "src":
        build = core.get_build(dict(info))
        if build is None:
            build_id = core.new_build({k: info[k] for k in ("name", "version", "release",
                                                            "epoch")})
            build = core.get_build(build_id, strict=True)
    else:
        srpm = koji.parse_NVRA(info["sourcerpm"])
        build = core.get_build(srpm)
        if build is None:
            raise koji.GenericError("No such build")
    if build["state"] != koji.BUILD_STATES["COMPLETE"]:
        raise koji.GenericError(f"Build is {koji.BUILD_STATES[build['state']]}: "
                                f"{build['nvr']}")
    if get_rpm({k: info[k] for k in ("name", "version", "release", "arch")}):
        raise koji.GenericError(f"Duplicate rpm: {expected}")
    row = DB.insert("rpms", {
        "build_id": build["id"], "buildroot_id": None, "name": info["name"],
        "version": info["version"], "release": info["release"], "epoch": info["epoch"],
        "arch": info["arch"], "draft": False, "external_repo_id": 0,
        "payloadhash": koji.hex_string(info["sigmd5"]), "size": os.path.getsize(fn),
        "buildtime": info["buildtime"], "metadata_only": False, "extra": None})
    if "rpm" not in DB.builds[build["id"]]["btypes"]:
        DB.builds[build["id"]]["btypes"].append("rpm")
    final = os.path.join(koji.pathinfo.build(build), koji.pathinfo.rpm(row))
    os.makedirs(os.path.dirname(final), exist_ok=True)
    shutil.copyfile(fn, final)
    return _rpm_info(row)


EXTERNAL_FIELDS = (("name", str), ("version", str), ("release", str),
                   ("epoch", (int, type(None))), ("arch", str), ("payloadhash", str),
                   ("size", int), ("buildtime", int))


def check_external_fields(rpminfo):
    """add_external_rpm's field checks (also made before an image import moves files)."""
    for field, allowed in EXTERNAL_FIELDS:
        if field not in rpminfo:
            raise koji.GenericError(f"{field} field missing: {rpminfo!r}")
        if not isinstance(rpminfo[field], allowed):
            raise koji.GenericError(f"Invalid value for {field}: {rpminfo[field]!r}")


def add_external_rpm(rpminfo, external_repo, strict=True):
    """kojihub.add_external_rpm: the eight fields checked, duplicates found by location."""
    check_external_fields(rpminfo)
    data = {k: rpminfo[k] for k, _ in EXTERNAL_FIELDS}
    previous = get_rpm(dict(data, location=external_repo), strict=False)
    if previous:
        if strict:
            raise koji.GenericError(f"external rpm already exists: {previous!r}")
        if data["payloadhash"] != previous["payloadhash"]:
            raise koji.GenericError(f"hash changed for external rpm: {previous!r} "
                                    f"({previous['payloadhash']} -> {data['payloadhash']})")
        return previous
    row = DB.insert("rpms", dict(data, build_id=None, buildroot_id=None, draft=False,
                                 external_repo_id=get_external_repo_id(external_repo,
                                                                       strict=True),
                                 metadata_only=False, extra=None))
    return _rpm_info(row)


def add_rpm_components(archives, rpmlist):
    """importImageInternal's rpmlist step: every entry resolved (internal by N-V-R.A,
    external through add_external_rpm), then one archive_rpm_components row per rpm for
    every archive whose name does not end in ``xml``."""
    rpm_ids = []
    for an_rpm in rpmlist:
        location = an_rpm.get("location")
        if location:
            data = add_external_rpm(an_rpm, location, strict=False)
        else:
            data = get_rpm(an_rpm, strict=True)
        rpm_ids.append(data["id"])
    for archive in archives:
        if archive["filename"].endswith("xml"):
            continue
        for rpm_id in sorted(rpm_ids):
            if not any((c["archive_id"], c["rpm_id"]) == (archive["id"], rpm_id)
                       for c in DB.archive_rpm_components.values()):
                DB.insert("archive_rpm_components",
                          {"archive_id": archive["id"], "rpm_id": rpm_id})


def build_references(build_id, limit=None, lazy=False):
    """kojihub.build_references: tags, rpms, and the archives that hold the build's rpms
    (``component_of``, with ``images`` its copy for older callers)."""
    build_id = core.find_build_id(build_id, strict=True)
    tags = sorted({t["tag_id"] for t in DB.tag_listing.values()
                   if t["build_id"] == build_id and t["active"]})
    rpm_ids = [r["id"] for r in DB.rpms.values() if r["build_id"] == build_id]
    complete = koji.BUILD_STATES["COMPLETE"]
    component_of = sorted({
        c["archive_id"] for c in DB.archive_rpm_components.values()
        if c["rpm_id"] in rpm_ids
        and DB.builds[DB.archives[c["archive_id"]]["build_id"]]["state"] == complete})
    return {"tags": [{"tag_id": t, "name": DB.tags[t]["name"]} for t in tags],
            "rpms": [{"id": i} for i in rpm_ids], "component_of": component_of,
            "archives": [], "last_used": None, "images": component_of}


# -- external repos -------------------------------------------------------------------------

def get_external_repo_id(info, strict=False):
    """kojihub.get_external_repo_id: by name or id (id 0 is the internal "repo")."""
    for row in DB.external_repos.values():
        if info in (row["id"], row["name"]):
            return row["id"]
    if strict:
        raise koji.GenericError(f"No such entry in table external_repo: {info}")
    return None


def create_external_repo(name, url):
    context.session.assertPerm("admin")
    if get_external_repo_id(name) is not None:
        raise koji.GenericError(f"An external repo named '{name}' already exists")
    if not url.endswith("/"):
        url += "/"
    return dict(DB.insert("external_repos", {"name": name, "url": url}))


def add_external_repo_to_tag(tag_info, repo_info, priority, merge_mode="koji", arches=None):
    context.session.assertPerm("admin")
    tag = core.get_tag(tag_info, strict=True)
    repo_id = get_external_repo_id(repo_info, strict=True)
    DB.insert("tag_external_repos", {"tag_id": tag["id"], "external_repo_id": repo_id,
                                     "priority": priority, "merge_mode": merge_mode,
                                     "arches": arches, "create_event": DB.nextval("events")})


def get_external_repo_list(tag_info, event=None):
    """kojihub.get_external_repo_list (no inheritance), by priority."""
    tag = core.get_tag(tag_info, strict=True)
    rows = [r for r in DB.tag_external_repos.values() if r["tag_id"] == tag["id"]
            and (event is None or r["create_event"] <= event)]
    return [{"tag_id": tag["id"], "tag_name": tag["name"],
             "external_repo_id": r["external_repo_id"],
             "external_repo_name": DB.external_repos[r["external_repo_id"]]["name"],
             "url": DB.external_repos[r["external_repo_id"]]["url"],
             "merge_mode": r["merge_mode"], "priority": r["priority"], "arches": r["arches"]}
            for r in sorted(rows, key=lambda r: r["priority"])]


# -- tag repos ------------------------------------------------------------------------------

def tag_last_change_event(tag):
    """kojihub.tag_last_change_event: the newest tagging event of the tag (or its
    creation, event 0 here)."""
    tag_id = core.get_tag(tag, strict=True)["id"]
    events = [max(t["create_event"], t.get("revoke_event") or 0)
              for t in DB.tag_listing.values() if t["tag_id"] == tag_id]
    return max(events, default=0)


def repo_info(repo_id, strict=False):
    row = DB.repos.get(repo_id) if isinstance(repo_id, int) else None
    if row is None:
        if strict:
            raise koji.GenericError(f"No such repo: {repo_id}")
        return None
    info = {k: row.get(k) for k in REPO_FIELDS}
    info["tag_name"] = DB.tags[row["tag_id"]]["name"]
    info["creation_time"] = core.ts_str(row["creation_ts"])
    info["state_time"] = core.ts_str(row["state_ts"])
    return info


def old_get_repo(tag, state=None, event=None, dist=False, min_event=None):
    """kojihub.repos.old_get_repo (RootExports.getRepo): READY unless an event is given."""
    tag_id = core.get_tag(tag, strict=True)["id"]
    rows = [r for r in DB.repos.values() if r["tag_id"] == tag_id and r["dist"] == dist]
    if event:
        rows = [r for r in rows if r["create_event"] <= event]
    else:
        wanted = koji.REPO_READY if state is None else state
        rows = [r for r in rows if r["state"] == wanted]
    if min_event is not None:
        rows = [r for r in rows if r["create_event"] >= min_event]
    if not rows:
        return None
    return repo_info(max(rows, key=lambda r: (r["creation_ts"], r["id"]))["id"])


def repo_init(tag, task_id=None, event=None, opts=None):
    """kojihub.repo_init: an INIT repo of the tag's latest builds at ``event``, with one
    dir per tag arch holding ``pkglist`` (paths under ``toplink``) and ``toplink``."""
    tag = core.get_tag(tag, strict=True)
    event = event if event is not None else DB.nextval("events")
    now = time.time()
    row = DB.insert("repos", {"tag_id": tag["id"], "state": koji.REPO_INIT,
                              "create_event": event, "create_ts": now, "creation_ts": now,
                              "state_ts": now, "begin_event": None, "begin_ts": None,
                              "end_event": None, "end_ts": None, "dist": False,
                              "opts": opts or {}, "custom_opts": {}, "task_id": task_id,
                              "task_state": None})
    repodir = koji.pathinfo.repo(row["id"], tag["name"])
    builds = core.read_tagged_builds(tag["id"], inherit=True, latest=True)
    for arch in (tag["arches"] or "").split():
        archdir = os.path.join(repodir, arch)
        os.makedirs(archdir)
        os.symlink(os.path.relpath(koji.pathinfo.topdir, archdir),
                   os.path.join(archdir, "toplink"))
        with open(os.path.join(archdir, "pkglist"), "w") as f:
            for build in builds:
                binfo = core.get_build(build["build_id"], strict=True)
                for r in list_rpms(buildID=build["build_id"], arches=[arch, "noarch"]):
                    rel = os.path.relpath(os.path.join(koji.pathinfo.build(binfo),
                                                       koji.pathinfo.rpm(r)),
                                          koji.pathinfo.topdir)
                    f.write(f"toplink/{rel}\n")
    return row["id"], event


def repo_done(repo_id, data, expire=False):
    """kojihub.repo_done: each arch's uploaded repodata moved into ``ARCH/repodata``;
    the repo READY and the tag's older READY repos EXPIRED."""
    info = repo_info(repo_id, strict=True)
    if info["state"] != koji.REPO_INIT:
        raise koji.GenericError(f"Repo {repo_id} not in INIT state")
    repodir = koji.pathinfo.repo(repo_id, info["tag_name"])
    for arch, (uploadpath, files) in data.items():
        dest = os.path.join(repodir, arch, "repodata")
        os.makedirs(dest, exist_ok=True)
        for fn in files:
            src = os.path.join(koji.pathinfo.work(), uploadpath, fn)
            shutil.move(src, os.path.join(dest, fn))
    row = DB.repos[repo_id]
    row.update(state=koji.REPO_EXPIRED if expire else koji.REPO_READY,
               state_ts=time.time())
    for other in DB.repos.values():
        if other["tag_id"] == row["tag_id"] and other["id"] != repo_id and \
                other["state"] == koji.REPO_READY and \
                other["create_event"] < row["create_event"]:
            other.update(state=koji.REPO_EXPIRED, state_ts=time.time())


class RepoExports:
    """kojihub.repos.RepoExports, registered as ``repo.*``: a request is answered by a
    READY repo at least as new as ``min_event``, or kept (the stand-in has no kojira to
    make one; a test makes it with repo_init/repo_done, as kojid's newRepo task does)."""

    def request(self, tag, min_event=None, at_event=None, opts=None, priority=None,
                force=False):
        context.session.assertLogin()
        taginfo = core.get_tag(tag, strict=True)
        repo = self.get(taginfo["id"], min_event=min_event)
        if repo:
            return {"repo": repo, "request": None, "duplicate": False}
        for req in DB.repo_queue.values():
            if req["active"] and req["tag_id"] == taginfo["id"] and \
                    req["min_event"] == min_event:
                return {"repo": None, "request": dict(req), "duplicate": True}
        req = DB.insert("repo_queue", {
            "tag_id": taginfo["id"], "min_event": min_event, "at_event": at_event,
            "opts": opts or {}, "active": True, "task_id": None, "task_state": None,
            "repo_id": None, "tries": 0, "priority": priority or 0,
            "owner": context.session.user_id, "create_ts": time.time()})
        return {"repo": None, "request": dict(req), "duplicate": False}

    def get(self, tag, min_event=None, at_event=None, opts=None):
        return old_get_repo(tag, min_event=min_event)

    def checkRequest(self, req_id):
        req = DB.repo_queue.get(req_id)
        if req is None:
            raise koji.GenericError(f"No such repo request: {req_id}")
        repo = self.get(req["tag_id"], min_event=req["min_event"])
        if repo:
            req.update(active=False, repo_id=repo["id"])
        return {"repo": repo, "request": dict(req)}


class QueryProcessor:
    """kojihub.QueryProcessor for one table and ``COLUMN = %(KEY)s`` clauses joined with
    AND (what the hub plugin queries); rows keyed by ``aliases`` or ``columns``."""

    TABLES = {"archive_rpm_components": "archive_rpm_components"}

    def __init__(self, columns=None, aliases=None, tables=None, joins=None, clauses=None,
                 values=None, transform=None, opts=None, enable_group=False, order_map=None):
        if not tables or len(tables) != 1 or tables[0] not in self.TABLES or joins:
            raise koji.GenericError(f"kojistub QueryProcessor: unsupported tables {tables}")
        self.table = tables[0]
        self.columns = list(columns or [])
        self.aliases = list(aliases or self.columns)
        self.values = dict(values or {})
        self.tests = []
        for clause in clauses or []:
            column, op, key = clause.split(None, 2)
            if op != "=" or not key.startswith("%(") or key[-2:] not in (")s", ")i"):
                raise koji.GenericError(f"kojistub QueryProcessor: unsupported {clause!r}")
            self.tests.append((column, key[2:-2]))

    def execute(self):
        rows = [r for r in getattr(DB, self.TABLES[self.table]).values()
                if all(r[c] == self.values[k] for c, k in self.tests)]
        return [dict(zip(self.aliases, [r[c] for c in self.columns], strict=True))
                for r in rows]
