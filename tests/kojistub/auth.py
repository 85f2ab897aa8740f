"""Password sessions: stands in for kojihub/auth.py (Session and the login/logout calls).

Sessions are rows of DB.sessions. A request names its session with the
Koji-Session-Id/-Key/-Callnum headers (or, the old way, session-id/session-key/callnum in the
query string), exactly as Session.__init__ in kojihub/auth.py reads them.
"""

from __future__ import annotations

import random
import string
import time
import urllib.parse

import koji
from koji.context import context

from .core import DB

# host.* calls the client may retry with the same callnum (kojihub/auth.py RetryWhitelist)
RETRY_WHITELIST = ("host.taskWait", "host.taskUnwait", "host.taskSetWait", "host.updateHost")


class Session:
    """kojihub.auth.Session for password logins."""

    def __init__(self, environ):
        self.logged_in = False
        self.id = None
        self.master = None
        self.key = None
        self.user_id = None
        self.authtype = None
        self.user_data = {}
        self.message = ""
        self.exclusive = False
        self.lockerror = None
        self.callnum = None
        if "HTTP_KOJI_SESSION_ID" in environ:
            self.id = int(environ["HTTP_KOJI_SESSION_ID"])
            self.key = environ["HTTP_KOJI_SESSION_KEY"]
            callnum = environ.get("HTTP_KOJI_SESSION_CALLNUM")
        else:
            query = environ.get("QUERY_STRING", "")
            args = urllib.parse.parse_qs(query, strict_parsing=True) if query else {}
            if "session-id" not in args and "session-key" not in args:
                self.message = "no session header or session args"
                return
            try:
                self.id = int(args["session-id"][0])
                self.key = args["session-key"][0]
            except KeyError as field:
                raise koji.AuthError(f"{field} not specified in session args") from None
            callnum = args.get("callnum", [None])[0]
        row = DB.sessions.get(self.id)
        if not row or row["key"] != self.key or row["closed"]:
            raise koji.AuthError("Invalid session or bad credentials")
        if callnum is not None:
            try:
                callnum = int(callnum)
            except (ValueError, TypeError):
                raise koji.AuthError(f"Invalid callnum: {callnum!r}") from None
            lastcall = row["callnum"]
            if lastcall is not None:
                if lastcall > callnum:
                    raise koji.SequenceError(f"{lastcall} > {callnum} (session {self.id})")
                if lastcall == callnum and context.method not in RETRY_WHITELIST:
                    raise koji.RetryError(f"unable to retry call {callnum} (method "
                                          f"{context.method}) for session {self.id}")
        user = DB.users[row["user_id"]]
        if user["status"] != koji.USER_STATUS["NORMAL"]:
            raise koji.AuthError(f"logins by {user['name']} are not allowed")
        if row["exclusive"]:
            self.exclusive = True
        else:
            excl = [s["id"] for s in DB.sessions.values()
                    if s["user_id"] == row["user_id"] and s["exclusive"] and not s["closed"]]
            if excl:
                if excl[0] == row["master"]:
                    self.exclusive = True
                else:
                    self.lockerror = "User locked by another session"
        row["update_ts"] = time.time()
        self.callnum = callnum
        self.user_id = row["user_id"]
        self.authtype = row["authtype"]
        self.master = row["master"]
        self.session_data = row
        self.user_data = {k: user[k] for k in ("name", "status", "usertype")}
        self.logged_in = True

    @property
    def perms(self):
        return {p: 1 for p in DB.users[self.user_id]["perms"]} if self.logged_in else {}

    @property
    def host_id(self):
        if self.user_id is None:
            return None
        for host in DB.hosts.values():
            if host["user_id"] == self.user_id:
                return host["id"]
        return None

    def getHostId(self):
        return self.host_id

    def validate(self):
        if self.lockerror:
            raise koji.AuthLockError(self.lockerror)
        return True

    def login(self, user, password, opts=None, renew=False, exclusive=False):
        """Session.login: AuthError('invalid username or password') on bad credentials."""
        if not isinstance(password, str) or len(password) == 0:
            raise koji.AuthError("invalid username or password")
        if self.logged_in:
            raise koji.AuthError("Already logged in")
        match = [u for u in DB.users.values()
                 if u["name"] == user and u["password"] == password]
        if not match:
            raise koji.AuthError("invalid username or password")
        if match[0]["status"] != koji.USER_STATUS["NORMAL"]:
            raise koji.AuthError(f"logins by {user} are not allowed")
        sinfo = self.createSession(match[0]["id"], koji.AUTHTYPES["NORMAL"])
        if exclusive and not self.exclusive:
            self.makeExclusive()
        return sinfo

    def createSession(self, user_id, authtype, master=None):
        alnum = string.ascii_letters + string.digits
        key = f"{user_id}-{''.join(random.choice(alnum) for _ in range(19))}"
        now = time.time()
        row = DB.insert("sessions", {"user_id": user_id, "key": key, "authtype": authtype,
                                     "master": master, "exclusive": None, "closed": False,
                                     "expired": False, "callnum": None, "start_ts": now,
                                     "update_ts": now, "renew_ts": None})
        return {"session-id": row["id"], "session-key": key, "header-auth": True}

    def subsession(self):
        if not self.logged_in:
            raise koji.AuthError("Not logged in")
        master = self.master if self.master is not None else self.id
        return self.createSession(self.user_id, self.authtype, master=master)

    def makeExclusive(self, force=False):
        if self.master is not None:
            raise koji.GenericError("subsessions cannot become exclusive")
        if self.exclusive:
            raise koji.GenericError("session is already exclusive")
        for row in DB.sessions.values():
            if row["user_id"] == self.user_id and row["exclusive"] and not row["closed"]:
                if not force:
                    raise koji.AuthLockError("Cannot get exclusive session")
                row.update(expired=True, exclusive=None, closed=True)
        DB.sessions[self.id]["exclusive"] = True
        self.exclusive = True

    def makeShared(self):
        DB.sessions[self.id]["exclusive"] = None

    def logout(self, session_id=None):
        if not self.logged_in:
            raise koji.AuthError("Not logged in")
        if session_id:
            if not self.hasPerm("admin"):
                row = DB.sessions.get(session_id)
                if not row or row["user_id"] != self.user_id:
                    raise koji.ActionNotAllowed("only admins or owner may logout other session")
            ses_id = session_id
        else:
            ses_id = self.id
        for row in DB.sessions.values():
            if ses_id in (row["id"], row["master"]):
                row.update(expired=True, exclusive=None, closed=True)
        if not session_id:
            self.logged_in = False

    def logoutChild(self, session_id):
        if not self.logged_in:
            raise koji.AuthError("Not logged in")
        row = DB.sessions.get(session_id)
        if row and row["master"] == self.id:
            row.update(expired=True, exclusive=None, closed=True)

    def getPerms(self):
        return list(self.perms) if self.logged_in else []

    def hasPerm(self, name):
        return self.logged_in and name in self.perms

    def assertPerm(self, name):
        if not self.hasPerm(name) and not self.hasPerm("admin"):
            msg = f"{name} permission required"
            if self.logged_in:
                msg += f" (logged in as {self.user_data['name']})"
            else:
                msg += " (user not logged in)"
            raise koji.ActionNotAllowed(msg)

    def assertLogin(self):
        if not self.logged_in:
            raise koji.ActionNotAllowed("you must be logged in for this operation")

    def isUser(self, user_id):
        return self.logged_in and self.user_id == user_id

    def assertUser(self, user_id):
        if not self.isUser(user_id) and not self.hasPerm("admin"):
            raise koji.ActionNotAllowed("not owner")


# the XML-RPC calls of kojihub/auth.py


def login(*args, **opts):
    """Create a login session with plain user/password credentials."""
    return context.session.login(*args, **opts)


def logout(session_id=None):
    """expire a login session"""
    return context.session.logout(session_id)


def subsession():
    """Create a subsession"""
    return context.session.subsession()


def logoutChild(session_id):
    """expire a subsession"""
    return context.session.logoutChild(session_id)


def exclusiveSession(*args, **opts):
    """Make this session exclusive"""
    return context.session.makeExclusive(*args, **opts)


def sharedSession():
    """Drop out of exclusive mode"""
    return context.session.makeShared()
