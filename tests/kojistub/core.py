"""The hub's "database" and the kojihub module-level functions that work on it.

Each function here stands in for the kojihub.py function of the same name (Koji 1.35/1.36):
same arguments, defaults, return shapes and error types/messages, but rows live in memory
(``DB``) instead of PostgreSQL. Callers hold ``LOCK``; the request dispatcher takes a
snapshot of ``DB`` before each call and puts it back if the call raises, which is what the
real hub's transaction rollback does.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import os
import threading
import time
from typing import Any

import koji
import koji.plugin
import koji.xmlrpcplus
from koji.context import context

from koji_image_plugin.koji.archivetypes import ARCHIVE_TYPES

logger = logging.getLogger("koji.hub")

LOCK = threading.RLock()

# the channels, permissions and build types that schemas/schema.sql creates
DEFAULT_CHANNELS = ("default", "createrepo", "maven", "livecd", "appliance", "vm", "image",
                    "livemedia")
BTYPES = ("rpm", "maven", "win", "image")


class Database:
    """All hub state: one dict per table (rows keyed by id) and the id sequences."""

    TABLES = ("users", "sessions", "hosts", "channels", "tags", "targets", "packages",
              "tag_packages", "tasks", "builds", "archives", "tag_listing", "refusals",
              "policy_calls", "uploads", "rpms", "external_repos", "tag_external_repos",
              "repos", "repo_queue", "archive_rpm_components", "archivetypes")

    def __init__(self) -> None:
        self.tables: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in self.TABLES}
        self.seq: dict[str, int] = {}

    def __getattr__(self, name: str) -> dict[int, dict[str, Any]]:
        try:
            return self.__dict__["tables"][name]
        except KeyError:
            raise AttributeError(name) from None

    def nextval(self, name: str) -> int:
        """Like the SERIAL sequences: 1, 2, 3... per table."""
        self.seq[name] = self.seq.get(name, 0) + 1
        return self.seq[name]

    def insert(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        row.setdefault("id", self.nextval(table))
        self.tables[table][row["id"]] = row
        return row

    def snapshot(self) -> tuple[dict, dict]:
        return copy.deepcopy((self.tables, self.seq))

    def restore(self, snap: tuple[dict, dict]) -> None:
        self.tables, self.seq = snap

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every table as a list of rows (XML-RPC structs need string keys)."""
        return {t: list(rows.values()) for t, rows in self.tables.items()}


DB = Database()


def ts_str(ts: float | None) -> str | None:
    """A timestamp as the hub sends a TIMESTAMPTZ column (datetime.isoformat(' '))."""
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(" ")


def convert_value(value, cast=None, message=None, exc_type=koji.ParameterError,
                  none_allowed=False, check_only=False):
    """Stands in for kojihub.convert_value (identical semantics)."""
    if value is None:
        if not none_allowed:
            raise exc_type(message or f"Invalid type, expected type {cast}")
        return value
    if check_only:
        if not isinstance(value, cast):
            raise exc_type(message or f"Invalid type for value '{value}': {type(value)}, "
                           f"expected type {cast}")
    else:
        try:
            value = cast(value)
        except (ValueError, TypeError):
            raise exc_type(message or f"Invalid type for value '{value}': {type(value)}, "
                           f"expected type {cast}") from None
    return value


def _name_or_id(table: str, info) -> tuple[str, Any]:
    """kojihub.name_or_id_clause: ('id', N) or ('name', S), ParameterError otherwise."""
    if isinstance(info, dict):
        if "id" in info:
            info = convert_value(info["id"], cast=int,
                                 message=fr"Invalid name or id value: {info}")
        elif "name" in info:
            info = info["name"]
        else:
            raise koji.ParameterError(fr"Invalid name or id value: {info}")
    if isinstance(info, int):
        return "id", info
    if isinstance(info, str):
        return "name", info
    raise koji.ParameterError(fr"Invalid name or id value: {info}")


def _find(table: str, info) -> dict[str, Any] | None:
    key, value = _name_or_id(table, info)
    for row in DB.tables[table].values():
        if row[key] == value:
            return row
    return None


def lookup_name(table: str, info, strict=False, create=False):
    """kojihub.lookup_name for the tables kept here (packages, channels, tags...)."""
    row = _find(table, info)
    if row is not None:
        return {"id": row["id"], "name": row["name"]}
    if strict:
        raise koji.GenericError(f"No such entry in table {table}: {info}")
    if create:
        if not isinstance(info, str):
            raise koji.GenericError("Name must be a string")
        row = DB.insert(table, {"name": info})
        return {"id": row["id"], "name": info}
    return None


# -- users, hosts, channels ---------------------------------------------------------------

def get_user(userInfo=None, strict=False, krb_princs=True, groups=False):
    """kojihub.get_user (no Kerberos principals or groups are kept: both are empty)."""
    if userInfo is None:
        userInfo = context.session.user_id
        if userInfo is None:
            raise koji.GenericError("No user provided")
    if isinstance(userInfo, dict):
        match = {k: userInfo[k] for k in ("id", "name") if userInfo.get(k) is not None}
    elif isinstance(userInfo, int):
        match = {"id": userInfo}
    elif isinstance(userInfo, str):
        match = {"name": userInfo}
    else:
        raise koji.GenericError(f"Invalid type for userInfo: {type(userInfo)}")
    for row in DB.users.values():
        if all(row[k] == v for k, v in match.items()):
            user = {k: row[k] for k in ("id", "name", "status", "usertype")}
            if krb_princs:
                user["krb_principals"] = []
            if groups:
                user["groups"] = []
            return user
    if strict:
        raise koji.GenericError(f"No such user: {userInfo!r}")
    return None


def get_host(hostInfo, strict=False, event=None):
    """kojihub.get_host."""
    row = _find("hosts", hostInfo)
    if row is None:
        if strict:
            raise koji.GenericError(f"Invalid hostInfo: {hostInfo}")
        return None
    return {k: row[k] for k in ("id", "user_id", "name", "update_ts", "ready", "task_load",
                                "arches", "capacity", "description", "comment", "enabled")}


def get_channel(channelInfo, strict=False):
    """kojihub.get_channel."""
    row = _find("channels", channelInfo)
    if row is None:
        if strict:
            raise koji.GenericError("query returned no rows")
        return None
    return dict(row)


def list_channels(hostID=None, event=None, enabled=None):
    """kojihub.list_channels."""
    if hostID:
        if isinstance(hostID, str):
            hostID = get_host(hostID, strict=True)["id"]
        host = DB.hosts.get(hostID)
        ids = host["channels"] if host else []
    elif event:
        raise koji.GenericError("list_channels with event and not host is not allowed.")
    else:
        ids = list(DB.channels)
    return [dict(DB.channels[c]) for c in ids
            if enabled is None or DB.channels[c]["enabled"] == bool(enabled)]


# -- tags, targets, packages ----------------------------------------------------------------

def get_tag(tagInfo, strict=False, event=None, blocked=False):
    """kojihub.get_tag (no history: event is accepted and echoed as query_event)."""
    row = _find("tags", tagInfo)
    if row is None:
        if strict:
            raise koji.GenericError(f"No such tagInfo: {tagInfo!r}")
        return None
    result = {k: row[k] for k in ("id", "name", "perm_id", "arches", "locked",
                                  "maven_support", "maven_include_all")}
    result["perm"] = None
    extra = copy.deepcopy(row["extra"])
    result["extra"] = {k: (False, v) for k, v in extra.items()} if blocked else extra
    if event is not None:
        result["query_event"] = event
    return result


def readFullInheritance(tag_id, event=None, reverse=False):
    """kojihub.readFullInheritance for the single-parent chains a seed can declare."""
    order = []
    seen = {tag_id}
    child, depth = DB.tags[tag_id], 1
    while child["parent"] is not None and child["parent"] not in seen:
        parent = DB.tags[child["parent"]]
        order.append({"parent_id": parent["id"], "child_id": child["id"],
                      "name": parent["name"], "priority": 0, "maxdepth": None,
                      "intransitive": False, "noconfig": False, "pkg_filter": "",
                      "filter": [], "currdepth": depth, "nextdepth": None})
        seen.add(parent["id"])
        child, depth = parent, depth + 1
    return order


def get_build_config(tag, event=None):
    """RootExports.getBuildConfig: arches and extra follow inheritance."""
    taginfo = get_tag(tag, strict=True, event=event, blocked=True)
    taginfo["config_inheritance"] = {"extra": {}, "arches": None}
    for link in readFullInheritance(taginfo["id"], event=event):
        if link["noconfig"]:
            continue
        ancestor = get_tag(link["parent_id"], strict=True, event=event, blocked=True)
        if taginfo["arches"] is None and ancestor["arches"] is not None:
            taginfo["arches"] = ancestor["arches"]
            taginfo["config_inheritance"]["arches"] = {"id": ancestor["id"],
                                                       "name": ancestor["name"]}
        for key in ancestor["extra"]:
            if key not in taginfo["extra"]:
                taginfo["extra"][key] = ancestor["extra"][key]
                taginfo["config_inheritance"]["extra"][key] = {"id": ancestor["id"],
                                                               "name": ancestor["name"]}
    for key, (is_blocked, value) in list(taginfo["extra"].items()):
        if is_blocked:
            del taginfo["extra"][key]
        else:
            taginfo["extra"][key] = value
    return taginfo


def get_build_targets(info=None, event=None, buildTagID=None, destTagID=None, queryOpts=None):
    """kojihub.get_build_targets."""
    rows = list(DB.targets.values())
    if info:
        key, value = _name_or_id("build_target", info)
        rows = [r for r in rows if r[key] == value]
    if buildTagID is not None:
        if isinstance(buildTagID, (str, dict)):
            buildTagID = get_tag(buildTagID, strict=True)["id"]
        rows = [r for r in rows if r["build_tag"] == buildTagID]
    if destTagID is not None:
        if isinstance(destTagID, (str, dict)):
            destTagID = get_tag(destTagID, strict=True)["id"]
        rows = [r for r in rows if r["dest_tag"] == destTagID]
    return [{"id": r["id"], "build_tag": r["build_tag"], "dest_tag": r["dest_tag"],
             "name": r["name"], "build_tag_name": DB.tags[r["build_tag"]]["name"],
             "dest_tag_name": DB.tags[r["dest_tag"]]["name"]} for r in rows]


def get_build_target(info, event=None, strict=False):
    """kojihub.get_build_target."""
    targets = get_build_targets(info=info, event=event)
    if len(targets) == 1:
        return targets[0]
    if strict:
        raise koji.GenericError(f"No such build target: {info}")
    return None


def readPackageList(tagID, pkgID=None, inherit=False):
    """kojihub.readPackageList for one tag: {package_id: entry}, nearest tag wins."""
    tag_ids = [tagID]
    if inherit:
        tag_ids += [link["parent_id"] for link in readFullInheritance(tagID)]
    packages: dict[int, dict[str, Any]] = {}
    for tid in tag_ids:
        for row in DB.tag_packages.values():
            if row["tag_id"] != tid or row["package_id"] in packages:
                continue
            if pkgID is not None and pkgID not in (row["package_id"],
                                                   DB.packages[row["package_id"]]["name"]):
                continue
            owner = DB.users[row["owner_id"]]
            packages[row["package_id"]] = {
                "package_id": row["package_id"],
                "package_name": DB.packages[row["package_id"]]["name"],
                "tag_id": tid, "tag_name": DB.tags[tid]["name"],
                "extra_arches": row["extra_arches"], "blocked": row["blocked"],
                "owner_id": owner["id"], "owner_name": owner["name"]}
    return packages


# -- builds and archives ------------------------------------------------------------------

def find_build_id(X, strict=False):
    """kojihub.find_build_id."""
    if isinstance(X, int):
        return X
    if isinstance(X, str):
        data = koji.parse_NVR(X)
    elif isinstance(X, dict):
        data = X
    else:
        raise koji.GenericError(f"Invalid type for argument: {type(X)!r}")
    if not ("name" in data and "version" in data and "release" in data):
        raise koji.GenericError("did not provide name, version, and release")
    for row in DB.builds.values():
        if (DB.packages[row["pkg_id"]]["name"], row["version"], row["release"]) == \
                (data["name"], data["version"], data["release"]):
            return row["id"]
    if strict:
        raise koji.GenericError(f"No such build: {X!r}")
    return None


def _build_info(row: dict[str, Any]) -> dict[str, Any]:
    name = DB.packages[row["pkg_id"]]["name"]
    owner = DB.users[row["owner"]]
    return {
        "id": row["id"], "build_id": row["id"], "version": row["version"],
        "release": row["release"], "epoch": row["epoch"], "draft": row["draft"],
        "state": row["state"], "task_id": row["task_id"],
        "completion_time": ts_str(row["completion_ts"]), "completion_ts": row["completion_ts"],
        "start_time": ts_str(row["start_ts"]), "start_ts": row["start_ts"],
        "promotion_time": None, "promotion_ts": None,
        "creation_event_id": row["create_event"], "creation_time": ts_str(row["create_ts"]),
        "creation_ts": row["create_ts"],
        "package_id": row["pkg_id"], "package_name": name, "name": name,
        "volume_id": 0, "volume_name": "DEFAULT",
        "nvr": f"{name}-{row['version']}-{row['release']}",
        "owner_id": owner["id"], "owner_name": owner["name"],
        "promoter_id": None, "promoter_name": None,
        "cg_id": None, "cg_name": None, "source": row["source"],
        "extra": copy.deepcopy(row["extra"]),
    }


def get_build(buildInfo, strict=False):
    """kojihub.get_build ('extra' is the parsed JSON dict or None)."""
    build_id = find_build_id(buildInfo, strict=strict)
    if build_id is None:
        return None
    row = DB.builds.get(build_id)
    if row is None:
        if strict:
            raise koji.GenericError(f"No such build: {buildInfo}")
        return None
    return _build_info(row)


def new_build(data, strict=False):
    """kojihub.new_build (no draft builds); returns the build id."""
    data = dict(data)
    name = data.get("name")
    if not name:
        raise koji.GenericError("No name or package id provided for build")
    data["pkg_id"] = lookup_name("packages", name, create=True)["id"]
    if data.get("owner"):
        data["owner"] = get_user(data["owner"], strict=True)["id"]
    for f in ("version", "release", "epoch"):
        if f not in data:
            raise koji.GenericError(f"No {f} value for build")
    now = time.time()
    data.setdefault("state", koji.BUILD_STATES["COMPLETE"])
    data.setdefault("source", None)
    data.setdefault("owner", context.session.user_id)
    data.setdefault("task_id", None)
    data.setdefault("extra", None)
    old = get_build(data)
    if old:
        if strict:
            raise koji.GenericError(f"Existing build found: {old['nvr']} (id={old['id']})")
        _recycle_build(old, data)
        return old["id"]
    koji.plugin.run_callbacks("preBuildStateChange", attribute="state", old=None,
                              new=data["state"], info=data)
    row = DB.insert("builds", {
        "pkg_id": data["pkg_id"], "version": data["version"], "release": data["release"],
        "epoch": data["epoch"], "draft": False, "state": data["state"],
        "task_id": data["task_id"], "owner": data["owner"], "source": data["source"],
        "extra": data["extra"], "create_event": DB.nextval("events"), "create_ts": now,
        "start_ts": now, "completion_ts": _completion_ts(data, now), "btypes": []})
    koji.plugin.run_callbacks("postBuildStateChange", attribute="state", old=None,
                              new=data["state"], info=get_build(row["id"], strict=True))
    return row["id"]


def _recycle_build(old, data):
    """kojihub.recycle_build: reuse a FAILED/CANCELED build entry for the same NVR."""
    st_desc = koji.BUILD_STATES[old["state"]]
    if st_desc == "BUILDING":
        if data["state"] == old["state"] and data.get("task_id", "") == old["task_id"]:
            return
        raise koji.GenericError(f"Build already in progress (task {old['task_id']})")
    if st_desc not in ("FAILED", "CANCELED"):
        raise koji.GenericError(
            f"Build already exists (id={old['id']}, state={st_desc}): {data!r}")
    if any(t["build_id"] == old["id"] for t in DB.tag_listing.values()):
        raise koji.GenericError("Build already exists. Unable to recycle, has tag history")
    for aid in [a["id"] for a in DB.archives.values() if a["build_id"] == old["id"]]:
        del DB.archives[aid]
    row = DB.builds[old["id"]]
    now = time.time()
    row.update(state=data["state"], task_id=data["task_id"], owner=data["owner"],
               source=data["source"], extra=data["extra"], btypes=[], start_ts=now,
               create_ts=now, completion_ts=_completion_ts(data, now),
               create_event=DB.nextval("events"))


def _completion_ts(data, now):
    """new_build's completion_time: NOW unless the caller gives None (builds in progress)."""
    return None if ("completion_time" in data and data["completion_time"] is None) else now


def get_next_release(build_info, incr=1):
    """kojihub.get_next_release."""
    incr = convert_value(incr, cast=int, message="incr parameter must be an integer")
    states = (koji.BUILD_STATES["COMPLETE"], koji.BUILD_STATES["DELETED"],
              koji.BUILD_STATES["BUILDING"])
    candidates = [b for b in DB.builds.values()
                  if DB.packages[b["pkg_id"]]["name"] == build_info["name"]
                  and b["version"] == build_info["version"] and b["state"] in states]
    release = max(candidates, key=lambda b: b["id"])["release"] if candidates else None
    if not release:
        return str(incr)
    if release.isdigit():
        return str(int(release) + incr)
    parts = release.split(".")
    if len(parts) == 2 and parts[0].isdigit():
        parts[0] = str(int(parts[0]) + incr)
        return ".".join(parts)
    if len(parts) == 3 and parts[2].isdigit():
        parts[2] = str(int(parts[2]) + incr)
        return ".".join(parts)
    raise koji.BuildError(f"Unable to increment release value: {release}")


def get_next_build(build_info):
    """kojihub.get_next_build: new_build with the release chosen by get_next_release."""
    if build_info.get("release") is not None:
        return new_build(build_info)
    build_info["release"] = get_next_release(build_info)
    return new_build(build_info)


def archive_types():
    """The archivetypes table: schema.sql's rows, then those addArchiveType added."""
    types = [{"id": i + 1, "name": n, "description": d, "extensions": e,
              "compression_type": c} for i, (n, d, e, c) in enumerate(ARCHIVE_TYPES)]
    return types + [dict(row) for _, row in sorted(DB.archivetypes.items())]


def get_archive_type(filename=None, type_name=None, type_id=None, strict=False):
    """kojihub.get_archive_type: the longest matching extension wins (.tar.gz before .gz)."""
    types = archive_types()
    if type_id:
        found = [t for t in types if t["id"] == type_id]
    elif type_name:
        found = [t for t in types if t["name"] == type_name]
    elif filename:
        convert_value(filename, cast=str, check_only=True)
        parts = filename.lower().split(".")
        for start in range(len(parts)):
            ext = ".".join(parts[start:])
            found = [t for t in types if ext in t["extensions"].lower().split()]
            if found:
                return found[0]
        found = []
    else:
        raise koji.GenericError("one of filename, type_name, or type_id must be specified")
    if found:
        return found[0]
    if strict:
        if filename:
            raise koji.GenericError(f"unsupported file extension: {filename}")
        raise koji.GenericError("query returned no rows")
    return None


def add_archive_type(name, description, extensions, compression_type=None):
    """kojihub.add_archive_type (the caller checks the admin permission)."""
    convert_value(name, cast=str, check_only=True)
    convert_value(description, cast=str, check_only=True)
    convert_value(extensions, cast=str, check_only=True)
    if compression_type not in ['zip', 'tar', None]:
        raise koji.GenericError(f"Unsupported compression type {compression_type}")
    if get_archive_type(type_name=name):
        raise koji.GenericError(f"archivetype {name} already exists")
    for ext in extensions.split(' '):
        if not ext.replace('.', '').isalnum():
            raise koji.GenericError(f'No such {ext} file extension')
        if any(ext in t["extensions"].split() for t in archive_types()):
            raise koji.GenericError(f'file extension {ext} already exists')
    type_id = len(ARCHIVE_TYPES) + DB.nextval("archivetypes")
    DB.archivetypes[type_id] = {"id": type_id, "name": name, "description": description,
                                "extensions": extensions,
                                "compression_type": compression_type}


def list_archives(buildID=None, type=None, filename=None, archiveID=None, strict=False):
    """kojihub.list_archives for image archives (the 'image' type adds 'arch')."""
    if type not in (None, "image") and type not in BTYPES:
        raise koji.GenericError(f"unsupported archive type: {type}")
    ret = []
    for row in DB.archives.values():
        if buildID is not None and row["build_id"] != buildID:
            continue
        if filename is not None and row["filename"] != filename:
            continue
        if archiveID is not None and row["id"] != archiveID:
            continue
        if type is not None and row["btype"] != type:
            continue
        atype = get_archive_type(type_id=row["type_id"], strict=True)
        info = {k: row[k] for k in ("id", "type_id", "btype_id", "btype", "build_id",
                                    "buildroot_id", "filename", "size", "checksum",
                                    "checksum_type", "metadata_only", "extra")}
        info.update(type_name=atype["name"], type_description=atype["description"],
                    type_extensions=atype["extensions"],
                    compression_type=atype["compression_type"])
        if type == "image":
            info["arch"] = row["arch"]
        ret.append(info)
    if strict and not ret:
        raise koji.GenericError("No archives found.")
    return ret


# -- tagging ------------------------------------------------------------------------------

def tag_build(tag, build, user_id=None, force=False):
    """kojihub._tag_build / _direct_tag_build (no tag locks or tag permissions here)."""
    tag = get_tag(tag, strict=True)
    build = get_build(build, strict=True)
    user = get_user(user_id or context.session.user_id, strict=True)
    koji.plugin.run_callbacks("preTag", tag=tag, build=build, user=user, force=force)
    nvr = f"{build['name']}-{build['version']}-{build['release']}"
    if build["state"] != koji.BUILD_STATES["COMPLETE"]:
        state = koji.BUILD_STATES[build["state"]]
        raise koji.TagError(f"build {nvr} not complete: state {state}")
    for row in DB.tag_listing.values():
        if row["active"] and (row["tag_id"], row["build_id"]) == (tag["id"], build["id"]):
            if not force:
                raise koji.TagError(f"build {nvr} already tagged ({tag['name']})")
            row["active"] = False
    DB.insert("tag_listing", {"tag_id": tag["id"], "build_id": build["id"],
                              "create_event": DB.nextval("events"), "create_ts": time.time(),
                              "creator_id": user["id"], "active": True})
    koji.plugin.run_callbacks("postTag", tag=tag, build=build, user=user, force=force)


def untag_build(tag, build, user_id=None, strict=True, force=False):
    """kojihub._untag_build."""
    tag = get_tag(tag, strict=True)
    build = get_build(build, strict=True)
    user = get_user(user_id or context.session.user_id, strict=True)
    koji.plugin.run_callbacks("preUntag", tag=tag, build=build, user=user, force=force,
                              strict=strict)
    rows = [r for r in DB.tag_listing.values() if r["active"]
            and (r["tag_id"], r["build_id"]) == (tag["id"], build["id"])]
    if strict and not rows:
        raise koji.TagError(f"build {build['nvr']} not in tag {tag['name']}")
    for row in rows:
        row["active"] = False
        row["revoke_event"] = DB.nextval("events")
    koji.plugin.run_callbacks("postUntag", tag=tag, build=build, user=user, force=force,
                              strict=strict)


def read_tagged_builds(tag_id, inherit=False, latest=False, package=None, owner=None,
                       type=None, extra=False):
    """kojihub.readTaggedBuilds: most recently tagged first, package list applies."""
    tag_ids = [tag_id]
    if inherit:
        tag_ids += [link["parent_id"] for link in readFullInheritance(tag_id)]
    packages = readPackageList(tag_id, pkgID=package, inherit=True)
    builds, seen = [], {}
    for tid in tag_ids:
        listing = sorted((r for r in DB.tag_listing.values()
                          if r["active"] and r["tag_id"] == tid),
                         key=lambda r: (r["create_event"], r["build_id"]), reverse=True)
        for entry in listing:
            info = _build_info(DB.builds[entry["build_id"]])
            pinfo = packages.get(info["package_id"])
            if info["state"] != koji.BUILD_STATES["COMPLETE"] or pinfo is None \
                    or pinfo["blocked"]:
                continue
            if owner and info["owner_name"] != owner:
                continue
            if type and type not in DB.builds[entry["build_id"]]["btypes"]:
                continue
            if latest:
                count = seen.get(info["package_id"], 0)
                if (latest is True and count) or count >= latest:
                    continue
                seen[info["package_id"]] = count + 1
            if not extra:
                del info["extra"]
            info.update(tag_id=tid, tag_name=DB.tags[tid]["name"],
                        create_event=entry["create_event"])
            builds.append(info)
    return builds


# -- tasks --------------------------------------------------------------------------------

TASK_FIELDS = ("id", "state", "create_time", "create_ts", "start_time", "start_ts",
               "completion_time", "completion_ts", "channel_id", "host_id", "parent", "label",
               "waiting", "awaited", "owner", "method", "arch", "priority", "weight")
FINISHED = tuple(koji.TASK_STATES[s] for s in ("CLOSED", "CANCELED", "FAILED"))


def _task_info(row: dict[str, Any]) -> dict[str, Any]:
    info = {k: row[k] for k in TASK_FIELDS if not k.endswith("_time")}
    for k in ("create", "start", "completion"):
        info[k + "_time"] = ts_str(row[k + "_ts"])
    return info


class Task:
    """kojihub.Task: the same methods, state checks and callbacks, on DB.tasks."""

    def __init__(self, id):
        self.id = convert_value(id, cast=int)

    def _row(self, missing=None):
        """The task's row; a missing task raises GenericError(missing or 'No such task: N')."""
        row = DB.tasks.get(self.id)
        if row is None:
            raise koji.GenericError(missing or f"No such task: {self.id}")
        return row

    def verifyHost(self, host_id=None):
        if host_id is None:
            host_id = context.session.host_id
        if host_id is None:
            return False
        row = self._row()
        return row["state"] == koji.TASK_STATES["OPEN"] and row["host_id"] == host_id

    def assertHost(self, host_id):
        if not self.verifyHost(host_id):
            raise koji.ActionNotAllowed(f"host {host_id} does not own task {self.id}")

    def getOwner(self):
        return self._row("query returned no rows")["owner"]

    def verifyOwner(self, user_id=None):
        if user_id is None:
            user_id = context.session.user_id
        if user_id is None:
            return False
        return self._row()["owner"] == user_id

    def assertOwner(self, user_id=None):
        if not self.verifyOwner(user_id):
            raise koji.ActionNotAllowed(f"user {user_id} does not own task {self.id}")

    def _set(self, attr, value):
        """Change one column with the pre/postTaskStateChange callbacks around it."""
        info = self.getInfo(request=True)
        self.runCallbacks("preTaskStateChange", info, attr, value)
        DB.tasks[self.id][attr] = value
        return info

    def lock(self, host_id, newstate="OPEN", force=False):
        row = self._row()
        if not force:
            state, otherhost = row["state"], row["host_id"]
            if state == koji.TASK_STATES["FREE"]:
                if otherhost is not None:
                    return False
            elif state == koji.TASK_STATES["ASSIGNED"]:
                if otherhost is None or otherhost != host_id:
                    return False
                if newstate == "ASSIGNED":
                    return True
            else:
                return False
        info = self.getInfo(request=True)
        self.runCallbacks("preTaskStateChange", info, "state", koji.TASK_STATES[newstate])
        self.runCallbacks("preTaskStateChange", info, "host_id", host_id)
        row.update(state=koji.TASK_STATES[newstate], host_id=host_id)
        if newstate == "OPEN":
            row["start_ts"] = time.time()
        self.runCallbacks("postTaskStateChange", info, "state", koji.TASK_STATES[newstate])
        self.runCallbacks("postTaskStateChange", info, "host_id", host_id)
        return True

    def assign(self, host_id, force=False):
        return self.lock(host_id, "ASSIGNED", force)

    def open(self, host_id):
        if self.lock(host_id, "OPEN"):
            ret = _task_info(DB.tasks[self.id])
            ret["request"] = DB.tasks[self.id]["request"]
            return ret
        return None

    def free(self):
        row = self._row()
        if koji.TASK_STATES[row["state"]] in ("CLOSED", "CANCELED", "FAILED"):
            raise koji.GenericError(f"Cannot free task {self.id}, "
                                    f"state is {koji.TASK_STATES[row['state']]}")
        info = self.getInfo(request=True)
        self.runCallbacks("preTaskStateChange", info, "state", koji.TASK_STATES["FREE"])
        self.runCallbacks("preTaskStateChange", info, "host_id", None)
        row.update(state=koji.TASK_STATES["FREE"], host_id=None)
        self.runCallbacks("postTaskStateChange", info, "state", koji.TASK_STATES["FREE"])
        self.runCallbacks("postTaskStateChange", info, "host_id", None)
        return True

    def setWeight(self, weight):
        weight = convert_value(weight, cast=float)
        info = self._set("weight", weight)
        self.runCallbacks("postTaskStateChange", info, "weight", weight)

    def _close(self, result, state):
        now = time.time()
        info = self.getInfo(request=True)
        info["result"] = result
        self.runCallbacks("preTaskStateChange", info, "state", state)
        self.runCallbacks("preTaskStateChange", info, "completion_ts", now)
        DB.tasks[self.id].update(result=info["result"], state=state, completion_ts=now)
        self.runCallbacks("postTaskStateChange", info, "state", state)
        self.runCallbacks("postTaskStateChange", info, "completion_ts", now)

    def close(self, result):
        self._close(result, koji.TASK_STATES["CLOSED"])

    def fail(self, result):
        self._close(result, koji.TASK_STATES["FAILED"])

    def getState(self):
        return self._row("query returned no rows")["state"]

    def isFinished(self):
        return self.getState() in FINISHED

    def isCanceled(self):
        return self.getState() == koji.TASK_STATES["CANCELED"]

    def isFailed(self):
        return self.getState() == koji.TASK_STATES["FAILED"]

    def cancel(self, recurse=True):
        """Cancel the task (and, with recurse, its children); BUILDING builds get CANCELED."""
        now = time.time()
        info = self.getInfo(request=True)
        self.runCallbacks("preTaskStateChange", info, "state", koji.TASK_STATES["CANCELED"])
        self.runCallbacks("preTaskStateChange", info, "completion_ts", now)
        row = self._row("query returned no rows")
        if row["state"] == koji.TASK_STATES["CANCELED"]:
            return True
        if row["state"] in (koji.TASK_STATES["CLOSED"], koji.TASK_STATES["FAILED"]):
            return False
        row.update(state=koji.TASK_STATES["CANCELED"], completion_ts=now)
        self.runCallbacks("postTaskStateChange", info, "state", koji.TASK_STATES["CANCELED"])
        self.runCallbacks("postTaskStateChange", info, "completion_ts", now)
        for build in list(DB.builds.values()):
            if build["task_id"] == self.id and build["state"] == koji.BUILD_STATES["BUILDING"]:
                cancel_build(build["id"])
        if recurse:
            self.cancelChildren()
        return True

    def cancelChildren(self):
        for child in [t["id"] for t in DB.tasks.values() if t["parent"] == self.id]:
            Task(child).cancel(recurse=True)

    def cancelFull(self, strict=True):
        parent = self._row()["parent"]
        if parent is not None:
            if strict:
                raise koji.GenericError(f"Task {self.id} is not top-level (parent={parent})")
            top = self.id
            while DB.tasks[top]["parent"] is not None:
                top = DB.tasks[top]["parent"]
            return Task(top).cancelFull(strict=True)
        tasklist = [self.id]
        for task_id in tasklist:
            Task(task_id).cancel(recurse=False)
            tasklist.extend(t["id"] for t in DB.tasks.values() if t["parent"] == task_id)

    def getRequest(self):
        params, _method = koji.xmlrpcplus.loads(self._row("query returned no rows")["request"])
        return params

    def getResult(self, raise_fault=True):
        row = DB.tasks.get(self.id)
        if not row:
            raise koji.GenericError("No such task")
        state = koji.TASK_STATES[row["state"]]
        if state == "CANCELED":
            raise koji.GenericError(f"Task {self.id} is canceled")
        if state not in ("CLOSED", "FAILED"):
            raise koji.GenericError(f"Task {self.id} is not finished")
        try:
            result, _method = koji.xmlrpcplus.loads(row["result"])
        except koji.xmlrpcplus.Fault as fault:
            if raise_fault:
                raise
            return {"faultCode": fault.faultCode, "faultString": fault.faultString}
        return result[0]

    def getInfo(self, strict=True, request=False):
        row = DB.tasks.get(self.id)
        if row is None:
            if strict:
                raise koji.GenericError("query returned no rows")
            return None
        info = _task_info(row)
        if request:
            info["request"] = self.getRequest()
        return info

    def getChildren(self, request=False):
        children = []
        for row in DB.tasks.values():
            if row["parent"] == self.id:
                info = _task_info(row)
                if request:
                    info["request"] = koji.xmlrpcplus.loads(row["request"])[0]
                children.append(info)
        return children

    def runCallbacks(self, cbtype, old_info, attr, new_val):
        if cbtype.startswith("pre"):
            info = old_info
        else:
            info = self.getInfo(request=True)
            if info["state"] == koji.TASK_STATES["CLOSED"]:
                info["result"] = self.getResult()
            new_val = info[attr]
        old_val = old_info[attr]
        if attr == "state":
            old_val = koji.TASK_STATES[old_val]
            new_val = koji.TASK_STATES[new_val]
        koji.plugin.run_callbacks(cbtype, attribute=attr, old=old_val, new=new_val, info=info)


def make_task(method, arglist, **opts):
    """kojihub.make_task with the default channel and priority policies
    ('has req_channel :: req', 'is_child_task :: parent', 'all :: use default'; 'stay')."""
    convert_value(method, cast=str, check_only=True)
    if "parent" in opts:
        opts["parent"] = convert_value(opts["parent"], cast=int)
    if "label" in opts:
        convert_value(opts["label"], cast=str, check_only=True)
    if "owner" in opts and not isinstance(opts["owner"], int):
        opts["owner"] = get_user(opts["owner"], strict=True)["id"]
    if "arch" in opts:
        opts["arch"] = koji.parse_arches(opts["arch"], strict=True, allow_none=True)
    if "priority" in opts:
        opts["priority"] = convert_value(opts["priority"], cast=int)
    if "assign" in opts and not isinstance(opts["assign"], int):
        opts["assign"] = get_host(opts["assign"], strict=True)["id"]
    pdata = None
    if "parent" in opts:
        pdata = DB.tasks.get(opts["parent"])
        if not pdata:
            raise koji.GenericError(f"Invalid parent task: {opts['parent']}")
        if pdata["state"] != koji.TASK_STATES["OPEN"]:
            raise koji.GenericError(f"Parent task (id {opts['parent']}) is not open")
        opts.setdefault("priority", pdata["priority"] - 1)
        for f in ("owner", "arch"):
            opts.setdefault(f, pdata[f])
        opts.setdefault("label", None)
    else:
        opts.setdefault("priority", koji.PRIO_DEFAULT)
        opts.setdefault("arch", "noarch")
        if "owner" not in opts:
            if not context.session.logged_in:
                raise koji.GenericError("task must have an owner")
            opts["owner"] = context.session.user_id
        opts["label"] = None
        opts["parent"] = None
    if "channel" in opts:
        channel_info = get_channel(opts["channel"])
        if not channel_info:
            raise koji.GenericError(f"No such channel: {opts['channel']}")
        if not channel_info["enabled"]:
            raise koji.GenericError(f"Channel {opts['channel']} is disabled.")
        opts["channel_id"] = channel_info["id"]
    elif pdata is not None:
        opts["channel_id"] = pdata["channel_id"]
    else:
        channel_info = get_channel("default", strict=True)
        if not channel_info["enabled"]:
            raise koji.GenericError("Channel default is disabled.")
        opts["channel_id"] = channel_info["id"]
    opts["request"] = koji.xmlrpcplus.dumps(tuple(arglist), methodname=method)
    opts["state"] = koji.TASK_STATES["FREE"]
    opts["method"] = method
    koji.plugin.run_callbacks("preTaskStateChange", attribute="state", old=None, new="FREE",
                              info=opts)
    row = {k: opts[k] for k in ("state", "owner", "method", "request", "priority", "parent",
                                "label", "channel_id", "arch")}
    if opts.get("assign"):
        row.update(state=koji.TASK_STATES["ASSIGNED"], host_id=opts["assign"])
    if opts["label"] is not None and any(
            (t["parent"], t["label"]) == (opts["parent"], opts["label"])
            for t in DB.tasks.values()):
        raise koji.GenericError("duplicate key value violates unique constraint "
                                '"task_parent_label_key"')
    row.setdefault("host_id", None)
    row.update(create_ts=time.time(), start_ts=None, completion_ts=None, waiting=None,
               awaited=None, weight=1.0, result=None)
    opts["id"] = DB.insert("tasks", row)["id"]
    koji.plugin.run_callbacks("postTaskStateChange", attribute="state", old=None, new="FREE",
                              info=opts)
    return opts["id"]


def cancel_build(build_id, cancel_task=True):
    """kojihub.cancel_build: a BUILDING build becomes CANCELED (and its task, optionally)."""
    row = DB.builds.get(build_id)
    if row is None or row["state"] != koji.BUILD_STATES["BUILDING"]:
        return False
    st_old = row["state"]
    st_canceled = koji.BUILD_STATES["CANCELED"]
    info = get_build(build_id, strict=True)
    koji.plugin.run_callbacks("preBuildStateChange", attribute="state", old=st_old,
                              new=st_canceled, info=info)
    row.update(state=st_canceled, completion_ts=time.time())
    if cancel_task and row["task_id"]:
        Task(row["task_id"]).cancelFull(strict=False)
    koji.plugin.run_callbacks("postBuildStateChange", attribute="state", old=st_old,
                              new=st_canceled, info=get_build(build_id, strict=True))
    return True


class UpdateProcessor:
    """kojihub.UpdateProcessor for what hub plugins do with it: update 'build' rows chosen
    by an 'id = %(key)i' clause. 'extra' is given as a JSON string, as in the real table."""

    def __init__(self, table, data=None, rawdata=None, clauses=None, values=None):
        if table != "build":
            raise koji.GenericError(f"kojistub UpdateProcessor: unsupported table {table}")
        self.table = table
        self.data = dict(data or {})
        self.rawdata = dict(rawdata or {})
        self.clauses = list(clauses or [])
        self.values = dict(values or {})

    def set(self, **kwargs):
        self.data.update(kwargs)

    def rawset(self, **kwargs):
        self.rawdata.update(kwargs)

    def _build_ids(self) -> list[int]:
        ids = set(DB.builds)
        for clause in self.clauses:
            col, sep, ref = clause.replace(" ", "").partition("=")
            if col not in ("id", "build.id") or not sep or not ref.startswith("%("):
                raise koji.GenericError(f"kojistub UpdateProcessor: unsupported clause {clause}")
            ids &= {int(self.values[ref[2:ref.index(")")]])}
        return sorted(ids)

    def execute(self):
        ids = self._build_ids()
        for build_id in ids:
            row = DB.builds[build_id]
            for col, value in self.data.items():
                if col == "extra":
                    value = None if value is None else json.loads(value)
                elif col not in row or col in ("pkg_id", "btypes"):
                    raise koji.GenericError(f"kojistub UpdateProcessor: no column {col}")
                row[col] = value
            for col, value in self.rawdata.items():
                if col.endswith("_time") and value.upper() == "NOW()":
                    row[col[:-len("_time")] + "_ts"] = time.time()
                else:
                    raise koji.GenericError(f"kojistub UpdateProcessor: rawset {col}={value}")
        return len(ids)


# -- uploads and task output --------------------------------------------------------------

def get_upload_path(reldir, name, create=False, volume=None):
    """kojihub.get_upload_path: only the task's host may write under tasks/, others own
    their directory through a '.user' file."""
    orig_reldir, orig_name = reldir, name
    d, name = os.path.split(name)
    if d or name.startswith("."):
        raise koji.GenericError(f"Invalid upload filename: {orig_name}")
    reldir = os.path.normpath(reldir)
    if not reldir or reldir.startswith(".."):
        raise koji.GenericError(f"Invalid upload directory: {orig_reldir}")
    if volume is not None and volume != "DEFAULT":
        raise koji.GenericError(f"No such entry in table volume: {volume}")
    parts = reldir.split("/")
    check_user = True
    if create and parts[0] == "tasks":
        if len(parts) < 3:
            raise koji.GenericError(f"Invalid task upload directory: {orig_reldir}")
        try:
            task_id = int(parts[2])
        except ValueError:
            raise koji.GenericError(f"Invalid task upload directory: {orig_reldir}") from None
        host_id = context.session.host_id
        if host_id is None:
            raise koji.AuthError(f"User {context.session.user_id} is not a host")
        Task(task_id).assertHost(host_id)
        check_user = False
    udir = koji.util.joinpath(koji.pathinfo.work(), reldir)
    if create:
        koji.ensuredir(udir)
        if check_user:
            u_fn = os.path.join(udir, ".user")
            if os.path.exists(u_fn):
                with open(u_fn) as f:
                    if context.session.user_id != int(f.read()):
                        raise koji.GenericError(
                            f"Invalid upload directory, not owner: {orig_reldir}")
            else:
                with open(u_fn, "w") as f:
                    f.write(str(context.session.user_id))
    return koji.util.joinpath(udir, name)


def list_task_output(taskID, stat=False, all_volumes=False, strict=False):
    """kojihub.list_task_output (only the DEFAULT volume exists)."""
    if strict and DB.tasks.get(taskID) is None:
        raise koji.GenericError("Task doesn't exist")
    result: dict | list = {} if (stat or all_volumes) else []
    task_dir = koji.pathinfo.task(taskID)
    for path, _dirs, files in os.walk(task_dir):
        for filename in files:
            relfilename = os.path.join(path[len(task_dir) + 1:], filename)
            if stat:
                st = os.stat(os.path.join(path, filename))
                stat_map = {"st_size": str(st.st_size), "st_atime": st.st_atime,
                            "st_mtime": st.st_mtime, "st_ctime": st.st_ctime}
                if all_volumes:
                    result[relfilename] = {"DEFAULT": stat_map}
                else:
                    result[relfilename] = stat_map
            elif all_volumes:
                result[relfilename] = ["DEFAULT"]
            else:
                result.append(relfilename)
    return result
