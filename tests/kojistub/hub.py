"""A stand-in Koji hub: ``python -m tests.kojistub.hub --topdir DIR --port PORT --seed SEED.json
[--plugin-path DIR --plugins NAME[,NAME]] [--log FILE]``.

It serves XML-RPC at http://127.0.0.1:PORT/kojihub (the ``server`` URL; rawUpload POSTs too)
and the files of DIR at http://127.0.0.1:PORT/kojifiles/ (the ``topurl``), laid out as
koji.PathInfo(topdir=DIR) says. Requests are handled like kojihub/kojixmlrpc.py does it:
koji.decode_args for keyword arguments, koji.util.call_with_argcheck for the call, a Fault
with the exception class's faultCode, and all state changes of a call undone if it raises.

Hub plugins are loaded like kojixmlrpc.load_plugins: koji.plugin.PluginTracker, then every
function marked ``exported`` becomes an XML-RPC method (under its ``export_alias``) and every
function with ``callbacks`` is registered with koji.plugin. Before loading them, the module
``kojihub`` (the functions of the real one that plugins use, working on this hub's state) is
put in sys.modules. A plugin that fails to import makes the hub exit with the traceback.

Seed file (JSON)::

    {"users": [{"name": "admin", "password": "pw", "perms": ["admin"]},
               {"name": "builder", "password": "pw", "host": true}],
     "channels": [{"name": "image-builders"}],                 # besides schema.sql's
     "hosts": [{"name": "builder", "arches": "x86_64", "channels": ["default"],
                "capacity": 2.0}],                              # name = a host user
     "tags": [{"name": "f40-build", "arches": "x86_64", "parent": null, "extra": {}}],
     "targets": [{"name": "f40", "build_tag": "f40-build", "dest_tag": "f40"}],
     "packages": [{"tag": "f40", "package": "img", "owner": "admin", "blocked": false}],
     "policies": {"build_rpm": "all :: deny only admins build images"},  # one rule each
     "hub_options": {"SomePluginOption": "value"}}           # extra context.opts
"""

from __future__ import annotations

import argparse
import datetime
import functools
import http.server
import json
import logging
import signal
import sys
import traceback
import types
import xmlrpc.client
from pathlib import Path
from typing import Any

import koji
import koji.plugin
import koji.util
from koji.context import context
from koji.xmlrpcplus import ExtendedMarshaller, Fault, dumps

from tests.proc import Daemon, free_port

from . import auth, core, exports, rpms
from .core import DB, LOCK

logger = logging.getLogger("koji.hub")

GLOBAL_HEADERS = [("Koji-Version", koji.__version__)]


class Marshaller(ExtendedMarshaller):
    """kojixmlrpc.Marshaller: datetimes go out as strings, big ints as i8."""

    dispatch = ExtendedMarshaller.dispatch.copy()

    def dump_datetime(self, value, write):
        self.dump_unicode(value.isoformat(" "), write)

    dispatch[datetime.datetime] = dump_datetime


class HandlerRegistry:
    """kojixmlrpc.HandlerRegistry: XML-RPC method name -> function."""

    def __init__(self) -> None:
        self.funcs: dict[str, Any] = {}
        self.register_function(self.system_listMethods, name="system.listMethods")

    def register_function(self, function, name=None):
        self.funcs[name or function.__name__] = function

    def register_module(self, instance, prefix=None):
        for name in dir(instance):
            function = getattr(instance, name)
            if name.startswith("_") or not callable(function):
                continue
            self.register_function(function, f"{prefix}.{name}" if prefix else name)

    def register_plugin(self, plugin):
        """Exported functions and callbacks of a plugin module (classes are skipped)."""
        for v in vars(plugin).values():
            if isinstance(v, type) or not callable(v):
                continue
            if getattr(v, "exported", False):
                self.register_function(v, name=getattr(v, "export_alias", v.__name__))
            for cbtype in getattr(v, "callbacks", None) or ():
                koji.plugin.register_callback(cbtype, v)

    def system_listMethods(self):
        return list(self.funcs)

    def get(self, name):
        func = self.funcs.get(name)
        if func is None:
            raise koji.GenericError(f"Invalid method: {name}")
        return func


class HandlerAccess:
    """kojixmlrpc.HandlerAccess (context.handlers): call another hub method by name."""

    def __init__(self, registry: HandlerRegistry) -> None:
        self.__reg = registry

    def call(self, __name, *args, **kwargs):
        return self.__reg.get(__name)(*args, **kwargs)

    def get(self, name):
        return self.__reg.get(name)


def stub_state():
    """_stub.state: every table of the stand-in's state, for test assertions."""
    return DB.dump()


def kojihub_module() -> types.ModuleType:
    """The ``kojihub`` that hub plugins import: exactly what the project's plugin uses."""
    mod = types.ModuleType("kojihub", "kojistub's stand-in for the kojihub module")
    mod.make_task = core.make_task
    mod.get_build_target = core.get_build_target
    mod.get_build = core.get_build
    mod.get_tag = core.get_tag
    mod.convert_value = core.convert_value
    mod.RootExports = exports.RootExports
    mod.UpdateProcessor = core.UpdateProcessor
    mod.Host = exports.Host
    mod.Task = core.Task
    mod.get_rpm = rpms.get_rpm
    mod.repo_info = rpms.repo_info
    mod.list_rpms = rpms.list_rpms
    mod.build_references = rpms.build_references
    mod.list_archives = core.list_archives
    mod.readTaggedBuilds = core.read_tagged_builds
    mod.QueryProcessor = rpms.QueryProcessor
    return mod


def load_seed(seed: dict[str, Any]) -> None:
    """Fill DB from a seed (see the module docstring) plus schema.sql's channels."""
    for name in core.DEFAULT_CHANNELS + tuple(c["name"] for c in seed.get("channels", ())):
        if core.lookup_name("channels", name) is None:
            DB.insert("channels", {"name": name, "description": None, "enabled": True,
                                   "comment": None})
    if 0 not in DB.external_repos:  # schema.sql's external_repo 0, the internal "repo"
        DB.insert("external_repos", {"id": 0, "name": "INTERNAL", "url": ""})
    for user in seed.get("users", ()):
        DB.insert("users", {"name": user["name"], "password": user["password"],
                            "status": koji.USER_STATUS["NORMAL"],
                            "usertype": koji.USERTYPES["HOST" if user.get("host") else
                                                       "NORMAL"],
                            "perms": list(user.get("perms", ()))})
    for host in seed.get("hosts", ()):
        user = core.get_user(host["name"], strict=True)
        if user["usertype"] != koji.USERTYPES["HOST"]:
            raise ValueError(f"seed: user {host['name']} of host is not a host user")
        DB.insert("hosts", {
            "name": host["name"], "user_id": user["id"], "arches": host["arches"],
            "capacity": float(host.get("capacity", 2.0)), "description": None,
            "comment": None, "enabled": host.get("enabled", True), "ready": False,
            "task_load": 0.0, "update_ts": None, "data": None,
            "channels": [core.get_channel(c, strict=True)["id"]
                         for c in host.get("channels", ["default"])]})
    for tag in seed.get("tags", ()):
        DB.insert("tags", {"name": tag["name"], "arches": tag.get("arches"),
                           "perm_id": None, "locked": False, "maven_support": False,
                           "maven_include_all": False, "extra": tag.get("extra", {}),
                           "parent": None})
    for tag in seed.get("tags", ()):
        if tag.get("parent"):
            DB.tags[core.get_tag(tag["name"])["id"]]["parent"] = \
                core.get_tag(tag["parent"], strict=True)["id"]
    for target in seed.get("targets", ()):
        DB.insert("targets", {"name": target["name"],
                              "build_tag": core.get_tag(target["build_tag"], strict=True)["id"],
                              "dest_tag": core.get_tag(target["dest_tag"], strict=True)["id"]})
    for entry in seed.get("packages", ()):
        DB.insert("tag_packages", {
            "tag_id": core.get_tag(entry["tag"], strict=True)["id"],
            "package_id": core.lookup_name("packages", entry["package"], create=True)["id"],
            "owner_id": core.get_user(entry["owner"], strict=True)["id"],
            "blocked": bool(entry.get("blocked", False)), "extra_arches": None})


class Hub:
    """The hub application: state, handler registry, plugins, request handling."""

    def __init__(self, topdir: str, seed: dict[str, Any], plugin_path: str | None = None,
                 plugins: list[str] | tuple[str, ...] = ()) -> None:
        koji.BASEDIR = topdir
        koji.pathinfo.topdir = topdir
        load_seed(seed)
        self.opts: dict[str, Any] = {
            "KojiDir": topdir, "Plugins": " ".join(plugins), "PluginPath": plugin_path or "",
            "KojiDebug": False, "EnableMaven": False, "EnableWin": False,
            "MissingPolicyOk": True, "DisableURLSessions": False, "LockOut": False,
            "ServerOffline": False, "MaxNameLengthInternal": 256,
            "RegexNameInternal": r"^[A-Za-z0-9/_.+-]+$", **seed.get("hub_options", {})}
        #: policy name -> its one rule's action (README.md: what the stand-in leaves out)
        self.policies: dict[str, str] = dict(seed.get("policies", {}))
        self.registry = HandlerRegistry()
        self.registry.register_module(exports.RootExports())
        self.registry.register_module(exports.HostExports(), "host")
        self.registry.register_module(rpms.RepoExports(), "repo")
        for func in (auth.login, auth.logout, auth.subsession, auth.logoutChild,
                     auth.exclusiveSession, auth.sharedSession):
            self.registry.register_function(func)
        self.registry.register_function(stub_state, "_stub.state")
        if plugins:
            sys.modules["kojihub"] = kojihub_module()
            tracker = koji.plugin.PluginTracker(path=(plugin_path or "").split(":"))
            for name in plugins:
                self.registry.register_plugin(tracker.load(name))

    def handle(self, environ: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        """One POST to /kojihub: (HTTP status, content type, body)."""
        with LOCK:
            context._threadclear()
            context.opts = self.opts
            context.handlers = HandlerAccess(self.registry)
            context.environ = environ
            context.policy = self.policies
            snapshot = DB.snapshot()
            try:
                if environ.get("CONTENT_TYPE") == "application/octet-stream":
                    context.method = None
                    self._check_session()
                    result = exports.handle_upload(environ, body)
                else:
                    try:
                        params, method = xmlrpc.client.loads(body)
                    except Exception as e:  # noqa: BLE001 - any parse error is a bad request
                        return 400, "text/plain", f"Invalid request: {e}\n".encode()
                    result = self._dispatch(method, params)
                response = dumps((result,), methodresponse=1, marshaller=Marshaller)
            except Fault as fault:
                DB.restore(snapshot)
                response = dumps(fault, marshaller=Marshaller)
            except Exception as e:  # noqa: BLE001 - every error goes back as a Fault
                DB.restore(snapshot)
                logger.warning("".join(traceback.format_exc()))
                fault_code = getattr(type(e), "faultCode", 1)
                fault_string = str(e) if isinstance(e, koji.GenericError) else \
                    f"{type(e)}: {e}"
                response = dumps(Fault(fault_code, fault_string), marshaller=Marshaller)
            finally:
                context._threadclear()
        return 200, "text/xml", response.encode()

    def _check_session(self):
        """kojixmlrpc check_session: AuthLockError only matters outside the login calls."""
        if not hasattr(context, "session"):
            context.session = auth.Session(context.environ)
            try:
                context.session.validate()
            except koji.AuthLockError:
                if context.method not in ("exclusiveSession", "login", "logout"):
                    raise

    def _dispatch(self, method, params):
        func = self.multiCall if method in ("multiCall", "system.multicall") else \
            self.registry.get(method)
        context.method = method
        self._check_session()
        args, kwargs = koji.decode_args(*params)
        ret = koji.util.call_with_argcheck(func, args, kwargs)
        if context.session.logged_in and context.session.callnum is not None:
            context.session.session_data["callnum"] = context.session.callnum
        return ret

    def multiCall(self, calls):
        """kojixmlrpc multiCall: each call undone on its own if it fails."""
        results = []
        for call in calls:
            savepoint = DB.snapshot()
            try:
                results.append([self._dispatch(call["methodName"], call["params"])])
            except Fault as fault:
                DB.restore(savepoint)
                results.append({"faultCode": fault.faultCode,
                                "faultString": fault.faultString})
            except Exception as e:  # noqa: BLE001 - reported in the result list
                DB.restore(savepoint)
                results.append({"faultCode": getattr(type(e), "faultCode", 1),
                                "faultString": ", ".join(str(a) for a in e.args),
                                "traceback": traceback.format_exception(e)})
        return results


class RequestHandler(http.server.SimpleHTTPRequestHandler):
    """POST /kojihub: XML-RPC and rawUpload; GET /kojifiles/...: files of the topdir."""

    hub: Hub

    def do_POST(self):
        path, _, query = self.path.partition("?")
        if path.rstrip("/") != "/kojihub":
            self.send_error(404)
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        environ = {"QUERY_STRING": query, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                   "REMOTE_ADDR": self.client_address[0]}
        for header in ("Koji-Session-Id", "Koji-Session-Key", "Koji-Session-Callnum"):
            if header in self.headers:
                environ["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
        status, ctype, data = self.hub.handle(environ, body)
        self.send_response(status)
        for name, value in GLOBAL_HEADERS:
            self.send_header(name, value)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/kojifiles/"):
            super().do_GET()
        elif self.path.rstrip("/") == "/kojihub":
            self.send_error(405, "Method Not Allowed",
                            "This is an XML-RPC server. Only POST requests are accepted.")
        else:
            self.send_error(404)

    def do_HEAD(self):
        if self.path.startswith("/kojifiles/"):
            super().do_HEAD()
        else:
            self.send_error(404)

    def translate_path(self, path):
        return super().translate_path(path[len("/kojifiles"):])

    def log_message(self, format, *args):
        logger.info("%s %s", self.address_string(), format % args)


def serve(hub: Hub, topdir: str, port: int, host: str = "127.0.0.1") -> None:
    """Serve until SIGTERM/SIGINT."""
    handler = functools.partial(type("Handler", (RequestHandler,), {"hub": hub}),
                                directory=topdir)
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True

    def terminate(*_):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.exit(0)

    signal.signal(signal.SIGTERM, terminate)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topdir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", required=True, help="JSON file: users, hosts, tags...")
    parser.add_argument("--plugin-path", help="directory of hub plugins (':'-separated)")
    parser.add_argument("--plugins", default="", help="comma-separated plugin names")
    parser.add_argument("--log", help="log file (default: stderr)")
    parser.add_argument("--bind", default="127.0.0.1",
                        help="address to serve on (default loopback; libvirt's bridge "
                             "address when guests must reach the topurl)")
    args = parser.parse_args(argv)
    logging.basicConfig(filename=args.log, level=logging.INFO,
                        format="%(asctime)s [%(levelname)s] %(name)s: %(message)s")
    Path(args.topdir).mkdir(parents=True, exist_ok=True)
    seed = json.loads(Path(args.seed).read_text())
    plugins = [p for p in args.plugins.split(",") if p]
    try:
        hub = Hub(args.topdir, seed, args.plugin_path, plugins)
    except Exception:  # noqa: BLE001 - a real hub goes offline; the stand-in exits
        sys.stderr.write("kojistub hub: startup failed (a real hub would go offline):\n"
                         + traceback.format_exc())
        sys.exit(1)
    serve(hub, args.topdir, args.port, args.bind)


class HubProcess(Daemon):
    """The stand-in hub in a subprocess; ``url`` is the server, ``topurl`` the files."""

    def __init__(self, topdir: Path, seed: dict[str, Any], workdir: Path,
                 plugin_path: Path | str | None = None, plugins: tuple[str, ...] = (),
                 bind: str = "127.0.0.1") -> None:
        self.topdir = topdir
        self.port = free_port()
        self.url = f"http://{bind}:{self.port}/kojihub"
        self.topurl = f"http://{bind}:{self.port}/kojifiles"
        seed_file = workdir / "hub-seed.json"
        seed_file.write_text(json.dumps(seed))
        args = ["--topdir", str(topdir), "--port", str(self.port), "--seed", str(seed_file),
                "--log", str(workdir / "hub-requests.log"), "--bind", bind]
        if plugins:
            args += ["--plugin-path", str(plugin_path), "--plugins", ",".join(plugins)]
        super().__init__("tests.kojistub.hub", args, workdir / "hub.log")
        self.wait_until(self._answers, "answer to hello()")

    def _answers(self) -> bool:
        try:
            return self.proxy().hello() == "Hello World"
        except OSError:
            return False

    def proxy(self) -> xmlrpc.client.ServerProxy:
        """An anonymous XML-RPC proxy (for _stub.state() and checks)."""
        return xmlrpc.client.ServerProxy(self.url, allow_none=True)

    def state(self) -> dict[str, list[dict[str, Any]]]:
        """The hub's state tables (see stub_state)."""
        return getattr(self.proxy(), "_stub.state")()


def start_hub(topdir: Path, seed: dict[str, Any], workdir: Path,
              plugin_path: Path | str | None = None, plugins: tuple[str, ...] = (),
              bind: str = "127.0.0.1") -> HubProcess:
    """Start the hub and wait until it answers (RuntimeError with its output if it exits).
    ``bind``: where it serves (the guests of a Fedora-style install read its topurl)."""
    return HubProcess(topdir, seed, workdir, plugin_path, plugins, bind)


if __name__ == "__main__":
    main()
