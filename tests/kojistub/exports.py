"""The XML-RPC API: stands in for kojihub.RootExports, kojihub.HostExports (with Host and
the scheduler's get_tasks_for_host), importImageInternal and the upload handlers.

Only the calls the koji client, the koji CLI, koji.daemon.TaskManager, the koji.tasks
handlers and the project's plugins use are here; each keeps the real signature, return shape
and errors (see the docstrings for the kojihub.py function each one follows).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import stat
import time
import urllib.parse

import koji
import koji.plugin
import koji.util
from koji.context import context

from . import core, rpms
from .core import DB, Task, convert_value, get_build, get_tag, get_user


def get_verify_class(verify):
    """kojihub.get_verify_class."""
    if verify == "md5":
        return hashlib.md5
    if verify == "adler32":
        return koji.util.adler32_constructor
    if verify == "sha256":
        return hashlib.sha256
    if verify:
        raise koji.GenericError(f"Unsupported verify type: {verify}")
    return None


def _record_upload(how, fn, offset, size):
    DB.insert("uploads", {"how": how, "path": os.path.relpath(fn, koji.pathinfo.work()),
                          "offset": offset, "size": size, "user_id": context.session.user_id})


def handle_upload(environ, body: bytes):
    """kojihub.handle_upload: the rawUpload POST (query string: filename, filepath,
    fileverify, offset, overwrite, volume; the body is the chunk)."""
    if not context.session.logged_in:
        raise koji.ActionNotAllowed("you must be logged-in to upload a file")
    args = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), strict_parsing=True)
    name = args["filename"][0]
    path = args.get("filepath", ("",))[0]
    verify = args.get("fileverify", ("",))[0]
    overwrite = args.get("overwrite", ("",))[0]
    offset = int(args.get("offset", ("0",))[0])
    volume = args.get("volume", ("DEFAULT",))[0]
    fn = core.get_upload_path(path, name, create=True, volume=volume)
    try:
        st = os.lstat(fn)
    except FileNotFoundError:
        st = None
    if st:
        if stat.S_ISLNK(st.st_mode):
            raise koji.GenericError(f"destination is a symlink: {fn}")
        if not stat.S_ISREG(st.st_mode):
            raise koji.GenericError(f"destination not a file: {fn}")
        if offset == 0 and not overwrite:
            raise koji.GenericError(f"upload path exists: {fn}")
    fd = os.open(fn, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            raise koji.LockError(e) from None
        if offset == -1:
            offset = os.lseek(fd, 0, 2)
        elif overwrite:
            os.ftruncate(fd, offset)
            os.lseek(fd, offset, 0)
        else:
            os.lseek(fd, offset, 0)
        os.write(fd, body)
        if not overwrite:
            flen = os.lseek(fd, 0, 2)
            if flen != offset + len(body):
                raise koji.GenericError(f"Incorrect upload length for {fn} - "
                                        f"Expected {offset + len(body)}, actual {flen}")
    finally:
        os.close(fd)
    _record_upload("rawUpload", fn, offset, len(body))
    ret = {"size": len(body), "fileverify": verify, "offset": offset}
    if verify:
        ret["hexdigest"] = get_verify_class(verify)(body).hexdigest()
    return ret


def _check_policy(name, data, default="deny", strict=False, force=False):
    """kojihub.check_policy over the seed's policies (each one rule, ``"all :: ACTION"``:
    README.md); the call is logged in DB.policy_calls for tests to read. A policy the
    seed does not set is allowed, as with the hub's default ``MissingPolicyOk = True``."""
    DB.insert("policy_calls", {"name": name, "data": data, "default": default,
                               "strict": strict, "force": force})
    action = context.policy.get(name)
    if action is None:
        result = "allow" if context.opts.get("MissingPolicyOk", True) else "deny"
        reason = "missing policy"
    else:
        result, _, reason = action.removeprefix("all ::").strip().partition(" ")
        result = result.lower()
    if result == "allow":
        return True, reason
    if result != "deny":
        reason = "error in policy"
        core.logger.error("Invalid action in policy %s: %s", name, action)
    if force and "admin" in (get_user(data.get("user_id")) or {}).get("perms", ()):
        return True, "overriden by force"
    if not strict:
        return False, reason
    err_str = f"policy violation ({name})"
    if reason:
        err_str += f": {reason}"
    raise koji.ActionNotAllowed(err_str)


class RootExports:
    """kojihub.RootExports: the user-facing calls."""

    # -- about the hub and the session --------------------------------------------------

    def hello(self, *args):
        """Simple testing call returning a string"""
        return "Hello World"

    def echo(self, *args):
        return args

    def getKojiVersion(self):
        return koji.__version__

    def getAPIVersion(self):
        return koji.API_VERSION

    def getSessionInfo(self, details=False, user_id=None):
        """Return session info for the current session (user_id listing is not kept)."""
        if not context.session.logged_in:
            return None
        row = context.session.session_data
        result = {k: row[k] for k in ("user_id", "expired", "master", "authtype", "callnum",
                                      "start_ts", "update_ts", "renew_ts", "exclusive")}
        for k in ("start", "update", "renew"):
            result[k + "_time"] = core.ts_str(row[k + "_ts"])
        if details:
            result.update(id=row["id"], hostip="127.0.0.1")
        return result

    def getLoggedInUser(self):
        if not context.session.logged_in:
            return None
        me = get_user(context.session.user_id)
        me["authtype"] = context.session.authtype
        me["krb_principal"] = None
        return me

    getUser = staticmethod(get_user)

    def getPerms(self):
        return context.session.getPerms()

    def hasPerm(self, perm, strict=False):
        if strict and perm not in ("admin", "appliance", "dist-repo", "host", "image",
                                   "image-import", "livecd", "maven-import", "repo", "sign",
                                   "tag", "target", "win-admin", "win-import",
                                   "draft-promoter"):
            raise koji.GenericError(f"No such permission {perm} defined")
        return context.session.hasPerm(perm)

    # -- uploads and task output --------------------------------------------------------

    def uploadFile(self, path, name, size, md5sum, offset, data, volume=None, checksum=None):
        """kojihub RootExports.uploadFile: base64 chunks, offset -1 finalizes and verifies
        the whole file; returns False on a size/checksum mismatch."""
        context.session.assertLogin()
        contents = base64.b64decode(data)
        offset = koji.decode_int(offset)
        size = koji.decode_int(size)
        if checksum is None and md5sum is not None:
            checksum = md5sum
        if isinstance(checksum, str):
            verify, digest = "md5", checksum
        elif checksum is None:
            verify = digest = None
        else:
            verify, digest = checksum
        sum_cls = get_verify_class(verify)
        if offset != -1:
            if size is not None and size != len(contents):
                return False
            if verify is not None and digest != sum_cls(contents).hexdigest():
                return False
        fn = core.get_upload_path(path, name, create=True, volume=volume)
        try:
            st = os.lstat(fn)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISREG(st.st_mode):
                raise koji.GenericError(f"destination not a file: {fn}")
            if offset == 0 and not fn.endswith(".log"):
                raise koji.GenericError(f"file already exists: {fn}")
        with open(fn, "r+b" if os.path.exists(fn) else "w+b") as f:
            if offset == 0 or (offset == -1 and size == len(contents)):
                f.truncate(0)
            if offset == -1:
                f.seek(0, 2)
            else:
                f.seek(offset)
            f.write(contents)
            if offset == -1:
                if size is not None:
                    f.truncate(size)
                if verify is not None:
                    f.seek(0)
                    if digest != sum_cls(f.read()).hexdigest():
                        return False
        _record_upload("uploadFile", fn, offset, len(contents))
        return True

    def checkUpload(self, path, name, verify=None, tail=None, volume=None):
        """Return basic information about an uploaded file"""
        fn = core.get_upload_path(path, name, volume=volume)
        try:
            st = os.stat(fn)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            raise koji.GenericError(f"Not a regular file: {fn}")
        data = {"size": st.st_size, "mtime": st.st_mtime}
        if verify:
            with open(fn, "rb") as f:
                if tail is not None:
                    if tail < 0:
                        raise koji.GenericError(f"Invalid tail value: {tail!r}")
                    f.seek(max(st.st_size - tail, 0))
                contents = f.read()
            data["sumlength"] = len(contents)
            data["hexdigest"] = get_verify_class(verify)(contents).hexdigest()
        return data

    def downloadTaskOutput(self, taskID, fileName, offset=0, size=-1, volume=None):
        """Download the file with the given name, generated by the task with the given ID."""
        size = convert_value(size, cast=int)
        if volume and volume != "DEFAULT":
            raise koji.GenericError(f"No such entry in table volume: {volume}")
        if ".." in fileName:
            raise koji.GenericError(f"Invalid file name: {fileName}")
        file_path = os.path.normpath(os.path.join(koji.pathinfo.task(taskID), fileName))
        if not os.path.isfile(file_path):
            raise koji.GenericError(f'no file "{fileName}" output by task {taskID}')
        with open(file_path, "rb") as f:
            offset = int(offset) if isinstance(offset, str) else offset
            if offset is not None and offset > 0:
                f.seek(offset, 0)
            elif offset is not None and offset < 0:
                f.seek(offset, 2)
            contents = f.read(size)
        return koji.util.base64encode(contents)

    listTaskOutput = staticmethod(core.list_task_output)

    # -- tasks ----------------------------------------------------------------------------

    def getTaskInfo(self, task_id, request=False, strict=False):
        """Get information about a task (or a list of tasks)"""
        if isinstance(task_id, (list, tuple)):
            return [Task(i).getInfo(strict, request) for i in task_id]
        return Task(task_id).getInfo(strict, request)

    def getTaskRequest(self, taskId):
        return Task(taskId).getRequest()

    def getTaskResult(self, taskId, raise_fault=True):
        return Task(taskId).getResult(raise_fault=raise_fault)

    def getTaskChildren(self, task_id, request=False, strict=False):
        task = Task(task_id)
        if strict:
            task.getInfo(strict=True)
        return task.getChildren(request=request)

    def getTaskDescendents(self, task_id, request=False):
        """Map of str(task id) -> list of child task infos, for the whole tree."""
        result, todo = {}, [Task(task_id)]
        for task in todo:
            children = task.getChildren(request=request)
            result[str(task.id)] = children
            todo.extend(Task(c["id"]) for c in children)
        return result

    def listTasks(self, opts=None, queryOpts=None):
        """kojihub RootExports.listTasks: the filters of the real call except the time
        ranges, plus owner_name/owner_type; 'decode' decodes request and result."""
        opts = dict(opts or {})
        queryOpts = queryOpts or {}
        rows = list(DB.tasks.values())
        for f in ("arch", "state"):
            if f in opts:
                rows = [r for r in rows if r[f] in opts[f]]
            if "not_" + f in opts:
                rows = [r for r in rows if r[f] not in opts["not_" + f]]
        for f in ("owner", "host_id", "channel_id", "parent"):
            for neg in (False, True):
                key = "not_" + f if neg else f
                if key not in opts:
                    continue
                want = opts[key]
                want = want if isinstance(want, list) else [want]
                rows = [r for r in rows if (r[f] in want) != neg]
        if "method" in opts:
            rows = [r for r in rows if r["method"] == opts["method"]]
        tasks = []
        for row in rows:
            info = core._task_info(row)
            info.update(request=row["request"], result=row["result"],
                        owner_name=DB.users[row["owner"]]["name"],
                        owner_type=DB.users[row["owner"]]["usertype"])
            if opts.get("decode"):
                for f in ("request", "result"):
                    if info[f]:
                        try:
                            info[f] = koji.xmlrpcplus.loads(info[f])[0]
                        except koji.xmlrpcplus.Fault as fault:
                            info[f] = fault
            tasks.append(info)
        for key in reversed((queryOpts.get("order") or "").split(",")):
            if key:  # QueryProcessor order: comma-separated fields, '-' for descending
                field = key.lstrip("-")
                tasks.sort(key=lambda t, f=field: (t[f] is not None, t[f]),
                           reverse=key.startswith("-"))
        if queryOpts.get("countOnly"):
            return len(tasks)
        return tasks[queryOpts.get("offset", 0):][:queryOpts.get("limit")]

    def cancelTask(self, task_id, recurse=True):
        """Cancel a task"""
        task = Task(task_id)
        if not task.verifyOwner() and not task.verifyHost():
            if not context.session.hasPerm("admin"):
                raise koji.ActionNotAllowed("Cannot cancel task, not owner")
        task.cancel(recurse=recurse)

    def cancelTaskFull(self, task_id, strict=True):
        """Cancel a task and all tasks in its group"""
        context.session.assertPerm("admin")
        Task(task_id).cancelFull(strict=strict)

    def cancelTaskChildren(self, task_id):
        """Cancel a task's children, but not the task itself"""
        context.session.assertLogin()
        task = Task(task_id)
        if not task.verifyOwner() and not task.verifyHost():
            if not context.session.hasPerm("admin"):
                raise koji.ActionNotAllowed("Cannot cancel task, not owner")
        task.cancelChildren()

    def freeTask(self, task_id):
        """Free a task"""
        context.session.assertPerm("admin")
        Task(task_id).free()

    # -- hosts and channels ---------------------------------------------------------------

    getChannel = staticmethod(core.get_channel)
    listChannels = staticmethod(core.list_channels)
    getHost = staticmethod(core.get_host)

    def listHosts(self, arches=None, channelID=None, ready=None, enabled=None, userID=None,
                  queryOpts=None):
        """List builder hosts."""
        if arches is not None and not arches:
            raise koji.GenericError("arches option cannot be empty")
        if isinstance(arches, str):
            arches = [arches]
        if channelID is not None:
            channelID = core.get_channel(channelID, strict=True)["id"]
        if userID is not None:
            userID = get_user(userID, strict=True)["id"]
        hosts = []
        for row in DB.hosts.values():
            if (arches is not None and not set(arches) & set(row["arches"].split())) \
                    or (channelID is not None and channelID not in row["channels"]) \
                    or (ready is not None and row["ready"] != bool(ready)) \
                    or (enabled is not None and row["enabled"] != bool(enabled)) \
                    or (userID is not None and row["user_id"] != userID):
                continue
            hosts.append(core.get_host(row["id"]))
        return hosts

    # -- builds, tags, targets ------------------------------------------------------------

    getBuild = staticmethod(get_build)
    getNextRelease = staticmethod(core.get_next_release)
    getTag = staticmethod(get_tag)
    getBuildTarget = staticmethod(core.get_build_target)
    getBuildTargets = staticmethod(core.get_build_targets)

    def getBuildConfig(self, tag, event=None):
        """Return build configuration associated with a tag"""
        return core.get_build_config(tag, event=event)

    def getPackageConfig(self, tag, pkg, event=None):
        """Get config for package in tag"""
        tag_info = get_tag(tag)
        pkg_info = core.lookup_name("packages", pkg) if isinstance(pkg, (int, str)) else None
        if pkg_info is None or tag_info is None:
            return None
        return core.readPackageList(tag_info["id"], pkgID=pkg_info["id"],
                                    inherit=True).get(pkg_info["id"])

    def listBuilds(self, packageID=None, userID=None, taskID=None, prefix=None, state=None,
                   volumeID=None, source=None, createdBefore=None, createdAfter=None,
                   completeBefore=None, completeAfter=None, type=None, typeInfo=None,
                   queryOpts=None, pattern=None, cgID=None, draft=None):
        """List builds (the package, user, task, prefix, state and type filters)."""
        builds = []
        for row in DB.builds.values():
            info = get_build(row["id"])
            if (packageID is not None and packageID not in (info["package_id"], info["name"]))\
                    or (userID is not None and userID not in (info["owner_id"],
                                                              info["owner_name"])) \
                    or (taskID is not None and info["task_id"] != taskID) \
                    or (prefix and not info["name"].lower().startswith(prefix.lower())) \
                    or (state is not None and info["state"] != state) \
                    or (type is not None and type not in row["btypes"]):
                continue
            builds.append(info)
        return builds

    def getArchiveType(self, filename=None, type_name=None, type_id=None, strict=False):
        """RootExports.getArchiveType = kojihub.get_archive_type."""
        return core.get_archive_type(filename=filename, type_name=type_name,
                                     type_id=type_id, strict=strict)

    def addArchiveType(self, name, description, extensions, compression_type=None):
        """RootExports.addArchiveType = kojihub.add_archive_type (admin)."""
        context.session.assertPerm("admin")
        core.add_archive_type(name, description, extensions, compression_type)

    def listArchives(self, buildID=None, buildrootID=None, componentBuildrootID=None,
                     hostID=None, type=None, filename=None, size=None, checksum=None,
                     checksum_type=None, typeInfo=None, queryOpts=None, imageID=None,
                     archiveID=None, strict=False):
        """kojihub.list_archives (buildID, type, filename and archiveID filters)."""
        return core.list_archives(buildID=buildID, type=type, filename=filename,
                                  archiveID=archiveID, strict=strict)

    # -- RPMs, external repos, tag repos (rpms.py) ----------------------------------------

    def getRPM(self, rpminfo, strict=False, multi=False):
        return rpms.get_rpm(rpminfo, strict=strict, multi=multi)

    def listRPMs(self, buildID=None, buildrootID=None, imageID=None, componentBuildrootID=None,
                 hostID=None, arches=None, queryOpts=None, draft=None):
        """kojihub.list_rpms (buildID, imageID and arches)."""
        return rpms.list_rpms(buildID=buildID, imageID=imageID, arches=arches)

    def importRPM(self, path, basename):
        """Import an RPM into the database (admin); the file was uploaded to work/PATH."""
        context.session.assertPerm("admin")
        uploadpath = koji.pathinfo.work()
        fn = os.path.join(uploadpath, path, basename)
        if not os.path.exists(fn):
            raise koji.GenericError(f"No such file: {fn}")
        return rpms.import_rpm(fn)

    def addExternalRPM(self, rpminfo, external_repo, strict=True):
        context.session.assertPerm("admin")
        rpms.add_external_rpm(rpminfo, external_repo, strict=strict)

    def buildReferences(self, build, limit=None, lazy=False):
        return rpms.build_references(core.find_build_id(build, strict=True), limit, lazy)

    def createExternalRepo(self, name, url):
        return rpms.create_external_repo(name, url)

    def addExternalRepoToTag(self, tag_info, repo_info, priority, merge_mode="koji",
                             arches=None):
        rpms.add_external_repo_to_tag(tag_info, repo_info, priority, merge_mode, arches)

    def getExternalRepoList(self, tag_info, event=None):
        return rpms.get_external_repo_list(tag_info, event=event)

    def getRepo(self, tag, state=None, event=None, dist=False, min_event=None):
        return rpms.old_get_repo(tag, state=state, event=event, dist=dist,
                                 min_event=min_event)

    def repoInfo(self, repo_id, strict=False):
        return rpms.repo_info(repo_id, strict=strict)

    def tagLastChangeEvent(self, tag):
        return rpms.tag_last_change_event(tag)

    def listTagged(self, tag, event=None, inherit=False, prefix=None, latest=False,
                   package=None, owner=None, type=None, strict=True, extra=False, draft=None):
        """List builds tagged with tag."""
        tag = get_tag(tag, strict=strict, event=event)
        if not tag:
            return []
        results = core.read_tagged_builds(tag["id"], inherit=inherit, latest=latest,
                                          package=package, owner=owner, type=type,
                                          extra=extra)
        if prefix:
            results = [b for b in results
                       if b["package_name"].lower().startswith(prefix.lower())]
        return results

    def getLatestBuilds(self, tag, event=None, package=None, type=None, draft=None):
        """List latest builds for tag (inheritance enabled)"""
        tag_id = get_tag(tag, strict=True)["id"]
        return core.read_tagged_builds(tag_id, inherit=True, latest=True, package=package,
                                       type=type)

    def tagBuild(self, tag, build, force=False, fromtag=None):
        """Request that a build be tagged: checks, then a 'tagBuild' task (the task id)."""
        context.session.assertLogin()
        build = get_build(build, strict=True)
        tag = get_tag(tag, strict=True)
        fromtag_id = get_tag(fromtag, strict=True)["id"] if fromtag else None
        if build["state"] != koji.BUILD_STATES["COMPLETE"]:
            state = koji.BUILD_STATES[build["state"]]
            raise koji.TagError(f"build {build['nvr']} not complete: state {state}")
        _assert_package_listed(tag, build, force)
        policy_data = {"tag": tag["id"], "build": build["id"], "fromtag": fromtag_id,
                       "operation": "tag" if fromtag is None else "move"}
        _check_policy("tag", policy_data, strict=True, force=force)
        return core.make_task("tagBuild", [tag["id"], build["id"], force, fromtag_id],
                              priority=koji.PRIO_DEFAULT - 5)


def _assert_package_listed(tag, build, force):
    """The package-list check of tagBuild (TagError unless listed and not blocked)."""
    pkgs = core.readPackageList(tag["id"], pkgID=build["package_id"], inherit=True)
    pkg_error = None
    if build["package_id"] not in pkgs:
        pkg_error = f"Package {build['name']} not in list for {tag['name']}"
    elif pkgs[build["package_id"]]["blocked"]:
        pkg_error = f"Package {build['name']} blocked in {tag['name']}"
    if pkg_error and not (force and context.session.hasPerm("admin")):
        raise koji.TagError(pkg_error)


class Host:
    """kojihub.Host: the host of the session (AuthError unless the user is a host)."""

    def __init__(self, id=None):
        remote_id = context.session.getHostId()
        if id is None:
            id = remote_id
        if id is None:
            if context.session.logged_in:
                raise koji.AuthError(f"User {context.session.user_id} is not a host")
            raise koji.AuthError("Not logged-in")
        self.id = id
        self.same_host = id == remote_id

    def verify(self):
        if not self.same_host:
            raise koji.AuthError("Host mismatch")
        if not context.session.exclusive:
            raise koji.AuthError("This method requires an exclusive session")
        return True

    def taskUnwait(self, parent):
        DB.tasks[parent]["waiting"] = False
        for row in DB.tasks.values():
            if row["parent"] == parent:
                row["awaited"] = False

    def taskSetWait(self, parent, tasks):
        convert_value(tasks, cast=list, none_allowed=True, check_only=True)
        DB.tasks[parent]["waiting"] = True
        for row in DB.tasks.values():
            if row["parent"] != parent:
                continue
            if tasks is None or row["id"] in tasks:
                row["awaited"] = True
            elif row["awaited"]:
                row["awaited"] = False

    def taskWaitCheck(self, parent):
        finished, unfinished = [], []
        for row in DB.tasks.values():
            if row["parent"] == parent and row["awaited"]:
                (finished if row["state"] in core.FINISHED else unfinished).append(row["id"])
        return finished, unfinished

    def taskWait(self, parent):
        finished, unfinished = self.taskWaitCheck(parent)
        for task_id in sorted(finished):
            DB.tasks[task_id]["awaited"] = False
        return [finished, unfinished]

    def taskWaitResults(self, parent, tasks, canfail=None):
        canfail = canfail or []
        self.taskUnwait(parent)
        if tasks is None:
            tasks = [r["id"] for r in DB.tasks.values()
                     if r["parent"] == parent and r["state"] in core.FINISHED]
        results = []
        for task_id in tasks:
            task = Task(task_id)
            raise_fault = task_id not in canfail
            try:
                results.append([task_id, task.getResult(raise_fault=raise_fault)])
            except koji.GenericError as e:
                if not raise_fault and task.isCanceled():
                    results.append([task_id, {"faultCode": e.faultCode,
                                              "faultString": str(e)}])
                    continue
                raise
        return results

    def getHostTasks(self):
        tasks = []
        for row in DB.tasks.values():
            if row["host_id"] == self.id and row["state"] == koji.TASK_STATES["OPEN"]:
                task = {"id": row["id"], "waiting": row["waiting"], "weight": row["weight"]}
                if row["waiting"] and self.taskWaitCheck(row["id"])[0]:
                    task["alert"] = True
                tasks.append(task)
        return tasks


def get_tasks_for_host(host_id, retry=True):
    """kojihub scheduler.get_tasks_for_host: the host's ASSIGNED tasks, running the
    scheduler first when there are none."""
    def assigned():
        rows = sorted((r for r in DB.tasks.values() if r["host_id"] == host_id
                       and r["state"] == koji.TASK_STATES["ASSIGNED"]),
                      key=lambda r: (r["priority"], r["create_ts"]))
        return [{"id": r["id"], "state": r["state"], "channel_id": r["channel_id"],
                 "host_id": r["host_id"], "arch": r["arch"], "method": r["method"],
                 "priority": r["priority"], "create_ts": r["create_ts"]} for r in rows]
    tasks = assigned()
    if not tasks and retry:
        schedule()
        tasks = assigned()
    return tasks


def schedule(capacity_overcommit=5, default_maxjobs=15):
    """kojihub scheduler.TaskScheduler.do_schedule, simplified: FREE tasks in priority order
    go to the least loaded ready, enabled host whose channels and arches (+ noarch) match
    the task's channel and arch exactly, that did not refuse it and has room."""
    hosts = [h for h in DB.hosts.values() if h["enabled"] and h["ready"]]
    load = {h["id"]: [0.0, 0] for h in hosts}
    for row in DB.tasks.values():
        if row["host_id"] in load and row["state"] in (koji.TASK_STATES["OPEN"],
                                                       koji.TASK_STATES["ASSIGNED"]):
            load[row["host_id"]][0] += 0.0 if row["waiting"] else row["weight"]
            load[row["host_id"]][1] += 1
    refused = {(r["task_id"], r["host_id"]) for r in DB.refusals.values()}
    free = sorted((r for r in DB.tasks.values() if r["state"] == koji.TASK_STATES["FREE"]),
                  key=lambda r: (r["priority"], r["create_ts"]))
    for task in free:
        min_avail = max(0, task["weight"] - capacity_overcommit)
        options = [h for h in hosts
                   if task["channel_id"] in h["channels"]
                   and task["arch"] in [*h["arches"].split(), "noarch"]
                   and (task["id"], h["id"]) not in refused
                   and load[h["id"]][1] < ((h["data"] or {}).get("maxjobs") or default_maxjobs)
                   and h["capacity"] - load[h["id"]][0] > min_avail]
        if not options:
            continue
        host = min(options, key=lambda h: sum(load[h["id"]]))
        if Task(task["id"]).assign(host["id"]):
            load[host["id"]][0] += task["weight"]
            load[host["id"]][1] += 1


class HostExports:
    """kojihub.HostExports: the host.* calls (Host().verify() and Task.assertHost checks)."""

    def getID(self):
        host = Host()
        host.verify()
        return host.id

    def updateHost(self, task_load, ready, data=None):
        host = Host()
        host.verify()
        row = DB.hosts[host.id]
        row.update(task_load=float(task_load), ready=ready, update_ts=time.time())
        if data is not None:
            row["data"] = data

    def getLoadData(self):
        host = Host()
        host.verify()
        info = core.get_host(host.id)
        info["channels"] = list(DB.hosts[host.id]["channels"])
        return [[info], get_tasks_for_host(host.id, retry=True)]

    def getHost(self):
        """Return information about this host"""
        host = Host()
        host.verify()
        return core.get_host(host.id)

    def openTask(self, task_id):
        host = Host()
        host.verify()
        return Task(task_id).open(host.id)

    def closeTask(self, task_id, response):
        host = Host()
        host.verify()
        task = Task(task_id)
        task.assertHost(host.id)
        return task.close(response)

    def failTask(self, task_id, response):
        host = Host()
        host.verify()
        task = Task(task_id)
        task.assertHost(host.id)
        return task.fail(response)

    def freeTasks(self, tasks):
        host = Host()
        host.verify()
        for task_id in tasks:
            task = Task(task_id)
            if task.verifyHost(host.id):
                task.free()

    def setTaskWeight(self, task_id, weight):
        host = Host()
        host.verify()
        task = Task(task_id)
        task.assertHost(host.id)
        return task.setWeight(weight)

    def setHostData(self, hostdata):
        host = Host()
        host.verify()
        DB.hosts[host.id]["data"] = hostdata

    def getTasks(self):
        host = Host()
        host.verify()
        return get_tasks_for_host(host.id, retry=True)

    def refuseTask(self, task_id, soft=True, msg=""):
        soft = convert_value(soft, cast=bool)
        msg = convert_value(msg, cast=str)
        host = Host()
        host.verify()
        task = Task(task_id)
        tinfo = task.getInfo(strict=True)
        if tinfo["host_id"] != host.id:
            return
        DB.insert("refusals", {"task_id": task.id, "host_id": host.id, "soft": soft,
                               "by_host": True, "msg": msg, "ts": time.time()})
        task.free()

    def getHostTasks(self):
        host = Host()
        host.verify()
        return host.getHostTasks()

    def taskSetWait(self, parent, tasks):
        host = Host()
        host.verify()
        return host.taskSetWait(parent, tasks)

    def taskWait(self, parent):
        host = Host()
        host.verify()
        return host.taskWait(parent)

    def taskWaitResults(self, parent, tasks, canfail=None):
        host = Host()
        host.verify()
        return host.taskWaitResults(parent, tasks, canfail)

    def subtask(self, method, arglist, parent, **opts):
        host = Host()
        host.verify()
        Task(parent).assertHost(host.id)
        opts["parent"] = parent
        if "owner" in opts:
            raise koji.ActionNotAllowed("The owner option is not allowed here")
        if "label" in opts:
            for row in DB.tasks.values():
                if row["parent"] == parent and row["label"] == opts["label"]:
                    return row["id"]
        if "kwargs" in opts:
            arglist = koji.encode_args(*arglist, **opts.pop("kwargs"))
        return core.make_task(method, arglist, **opts)

    def subtask2(self, __parent, __taskopts, __method, *args, **opts):
        args = koji.encode_args(*args, **opts)
        return self.subtask(__method, args, __parent, **__taskopts)

    def initImageBuild(self, task_id, build_info):
        """create a new in-progress image build (release from get_next_release if None)"""
        host = Host()
        host.verify()
        task = Task(task_id)
        task.assertHost(host.id)
        data = dict(build_info)
        data.update(task_id=task_id, owner=task.getOwner(),
                    state=koji.BUILD_STATES["BUILDING"], completion_time=None)
        data["id"] = core.get_next_build(data)
        DB.builds[data["id"]]["btypes"].append("image")
        return data

    def completeImageBuild(self, task_id, build_id, results):
        """Set an image build to the COMPLETE state"""
        host = Host()
        host.verify()
        Task(task_id).assertHost(host.id)
        build_info = get_build(build_id, strict=True)
        self.importImage(task_id, build_info, results)
        st_old = build_info["state"]
        st_complete = koji.BUILD_STATES["COMPLETE"]
        koji.plugin.run_callbacks("preBuildStateChange", attribute="state", old=st_old,
                                  new=st_complete, info=build_info)
        DB.builds[build_id].update(state=st_complete, completion_ts=time.time())
        koji.plugin.run_callbacks("postBuildStateChange", attribute="state", old=st_old,
                                  new=st_complete, info=get_build(build_id, strict=True))

    def importImage(self, task_id, build_info, results):
        """Import the images of every arch that has a 'task_id' (others failed).

        All files of all arches are checked before anything is moved: a deviation from
        kojihub, see README.md."""
        convert_value(results, cast=dict, check_only=True)
        subs = [sub for sub in results.values() if "task_id" in sub]
        if any("rpmresults" in sub for sub in subs):
            raise koji.GenericError("kojistub: importing rpmresults is not supported")
        for sub in subs:
            _check_image_files(sub)
        for sub in subs:
            import_image_internal(task_id, build_info, sub)

    def moveImageBuildToScratch(self, task_id, results):
        """move a completed image scratch build into place"""
        convert_value(results, cast=dict, check_only=True)
        host = Host()
        host.verify()
        task = Task(task_id)
        task.assertHost(host.id)
        username = get_user(task.getOwner())["name"]
        for sub in results.values():
            if "task_id" not in sub:
                continue
            workdir = koji.pathinfo.task(sub["task_id"])
            destdir = os.path.join(koji.pathinfo.scratch(), username,
                                   f"task_{sub['task_id']}")
            for img in sub["files"] + sub["logs"]:
                koji.util.move_and_symlink(koji.util.joinpath(workdir, img),
                                           koji.util.joinpath(destdir, img), create_dir=True)

    def failBuild(self, task_id, build_id):
        """Mark the build as failed (GenericError unless it is BUILDING, not completed)."""
        host = Host()
        host.verify()
        Task(task_id).assertHost(host.id)
        st_failed = koji.BUILD_STATES["FAILED"]
        buildinfo = get_build(build_id, strict=True)
        st_old = buildinfo["state"]
        koji.plugin.run_callbacks("preBuildStateChange", attribute="state", old=st_old,
                                  new=st_failed, info=buildinfo)
        row = DB.builds[build_id]
        if row["state"] != koji.BUILD_STATES["BUILDING"]:
            raise koji.GenericError(f"cannot update build {build_id}, "
                                    f"state: {koji.BUILD_STATES[row['state']]}")
        if row["completion_ts"] is not None:
            raise koji.GenericError(f"cannot update build {build_id}, completed at "
                                    f"{core.ts_str(row['completion_ts'])}")
        row.update(state=st_failed, completion_ts=time.time())
        koji.plugin.run_callbacks("postBuildStateChange", attribute="state", old=st_old,
                                  new=st_failed, info=get_build(build_id, strict=True))

    def tagBuild(self, task_id, tag, build, force=False, fromtag=None):
        """Tag a build (host version), as the user who owns the task."""
        host = Host()
        host.verify()
        task = Task(task_id)
        task.assertHost(host.id)
        build = get_build(build, strict=True)
        tag_info = get_tag(tag, strict=True)
        user_id = task.getOwner()
        if fromtag and not isinstance(fromtag, str):
            fromtag = get_tag(fromtag, strict=True)["name"]
        policy_data = {"tag": tag, "build": build, "fromtag": fromtag, "user_id": user_id,
                       "operation": "tag" if fromtag is None else "move"}
        _check_policy("tag", policy_data, strict=True, force=force)
        _assert_package_listed(tag_info, build, force)
        if fromtag:
            core.untag_build(fromtag, build, user_id=user_id, force=force, strict=True)
        core.tag_build(tag, build, user_id=user_id, force=force)

    def tagNotification(self, is_successful, tag_id, from_id, build_id, user_id,
                        ignore_success=False, failure_msg=""):
        """Notifications are not sent by the stand-in; only the host check is made."""
        host = Host()
        host.verify()

    def repoInit(self, tag, task_id=None, event=None, opts=None):
        host = Host()
        host.verify()
        return rpms.repo_init(tag, task_id=task_id, event=event, opts=opts)

    def repoDone(self, repo_id, data, expire=False, repo_json_updates=None):
        host = Host()
        host.verify()
        rpms.repo_done(repo_id, data, expire=expire)

    def checkPolicy(self, name, data, default="deny", strict=False):
        host = Host()
        host.verify()
        return _check_policy(name, data, default=default, strict=strict)

    def assertPolicy(self, name, data, default="deny"):
        host = Host()
        host.verify()
        _check_policy(name, data, default=default, strict=True)


def _check_image_files(imgdata):
    """The checks of importImageInternal and import_archive_internal that can fail, made
    before any file moves (README.md): files exist, have an archive type; rpmlist
    entries resolve."""
    workpath = koji.pathinfo.task(imgdata["task_id"])
    for imgfile in imgdata["files"]:
        if not core.get_archive_type(imgfile):
            raise koji.BuildError(f"Unsupported file type: {imgfile}")
        fullpath = koji.util.joinpath(workpath, imgfile)
        if not os.path.exists(fullpath):
            raise koji.GenericError(f"No such file: {fullpath}")
        if os.path.islink(fullpath) or not os.path.isfile(fullpath):
            raise koji.GenericError("Error importing archive file, "
                                    f"{fullpath} is not a regular file")
    for an_rpm in imgdata["rpmlist"]:
        if an_rpm.get("location"):
            rpms.check_external_fields(an_rpm)
            rpms.get_external_repo_id(an_rpm["location"], strict=True)
        else:
            rpms.get_rpm(an_rpm, strict=True)


def import_image_internal(task_id, build_info, imgdata):
    """kojihub.importImageInternal: the images go to packages/N/V/R/images/ (one archive
    each, see import_archive_internal), the task's .log files to data/logs/image/[ARCH/]."""
    host = Host()
    host.verify()
    task = Task(task_id)
    task.assertHost(host.id)
    tinfo = task.getInfo()
    koji.plugin.run_callbacks("preImport", type="image", image=imgdata)
    workpath = koji.pathinfo.task(imgdata["task_id"])
    imgdata["relpath"] = koji.pathinfo.taskrelpath(imgdata["task_id"])
    fullpath = None
    archives = []
    for imgfile in imgdata["files"]:
        fullpath = koji.util.joinpath(workpath, imgfile)
        archives.append(_import_archive(fullpath, build_info, imgdata))
    rpms.add_rpm_components(archives, imgdata["rpmlist"])
    logdir = os.path.join(koji.pathinfo.build(build_info), "data/logs/image")
    for logfile in sorted(f for f in os.listdir(workpath) if f.endswith(".log")):
        logsrc = os.path.join(workpath, logfile)
        final_path = os.path.join(logdir, logfile)
        add_arch = tinfo["method"] not in ("appliance", "image", "indirectionimage", "livecd")
        if add_arch or os.path.exists(final_path):
            final_path = os.path.join(logdir, imgdata["arch"], logfile)
        if os.path.exists(final_path):
            raise koji.GenericError(f"Error importing build log. {final_path} already exists.")
        if os.path.islink(logsrc) or not os.path.isfile(logsrc):
            raise koji.GenericError(f"Error importing build log. {logsrc} is not a regular "
                                    "file.")
        koji.util.move_and_symlink(logsrc, final_path, create_dir=True)
    koji.plugin.run_callbacks("postImport", type="image", image=imgdata, build=build_info,
                              fullpath=fullpath)


def _import_archive(filepath, buildinfo, imgdata):
    """kojihub.import_archive_internal for type 'image': archive row, file moved (and a
    symlink left in its place), pre/postImport(type='archive') callbacks."""
    filename = os.path.basename(filepath)
    with open(filepath, "rb") as f:
        checksum = hashlib.file_digest(f, "sha256").hexdigest()
    archivetype = core.get_archive_type(filename, strict=True)
    if "image" not in DB.builds[buildinfo["id"]]["btypes"]:
        raise koji.ImportError("Build does not have type image")
    archiveinfo = {"buildroot_id": None, "build_id": buildinfo["id"], "filename": filename,
                   "size": os.path.getsize(filepath), "checksum": checksum,
                   "checksum_type": koji.CHECKSUM_TYPES["sha256"],
                   "type_id": archivetype["id"], "btype_id": core.BTYPES.index("image") + 1}
    koji.plugin.run_callbacks("preImport", type="archive", archive=archiveinfo,
                              build=buildinfo, build_type="image", filepath=filepath,
                              fileinfo={})
    row = DB.insert("archives", dict(archiveinfo, btype="image", metadata_only=False,
                                     extra=None, arch=imgdata["arch"]))
    final_path = os.path.join(koji.pathinfo.imagebuild(buildinfo), filename)
    if os.path.exists(final_path):
        raise koji.GenericError(f"Error importing archive file, {final_path} already exists")
    koji.util.move_and_symlink(filepath, final_path, create_dir=True)
    archiveinfo = core.list_archives(archiveID=row["id"], strict=True)[0]
    koji.plugin.run_callbacks("postImport", type="archive", archive=archiveinfo,
                              build=buildinfo, build_type="image", filepath=filepath,
                              fileinfo={})
    return archiveinfo
