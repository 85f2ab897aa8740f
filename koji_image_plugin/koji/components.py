"""The RPM components of one arch's image, as kojihub's image import links them.

An arch task hands the hub an ``rpmlist``: one entry per RPM in the image, with the fields
``importImageInternal`` reads. As kojid's ``markExternalRPMs`` decides it:

- a build tag without external repos: every RPM is taken for one of Koji's own (no
  ``location``); the hub's import then finds each by N-V-R.A or fails ("No such rpm");
- otherwise an RPM from the tag's Koji repo is Koji's own, and an RPM from one of the
  tag's external repos carries that repo's id as its ``location`` (the hub adds it as an
  external RPM); an RPM from anywhere else cannot be traced in Koji, so a build that would
  import it fails here, naming the RPM and the repo (kojid: "Unknown origin"); a scratch
  build (nothing imported) keeps it with its ``origin``.

Where kojid reads each RPM's origin from the Koji repo's ``pkgorigins``, this reads it from
dnf's history in the image (``build/rpmdb.py``): the repo the installer installed it from.

Debian images have no RPMs: their rpmlist is empty and the package list stays in the
manifest. Plain data in, plain data out: the builder fetches the external repos.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import KojiImageError
from ..spec.kickstart import Repo

FIELDS = ("name", "version", "release", "epoch", "arch", "payloadhash", "size", "buildtime")


class ComponentError(KojiImageError):
    """An RPM in the image came from a repo Koji does not know."""


def _norm(url: str) -> str:
    return url.rstrip("/") + "/"


def rpmlist(packages: Iterable[Mapping[str, Any]], koji_repo: str | None,
            repos: Sequence[Repo], external: Sequence[Mapping[str, Any]], arch: str, *,
            tag: str, scratch: bool) -> list[dict[str, Any]]:
    """The rpmlist of an image's ``packages`` (``build/rpmdb.py``'s entries). ``repos``:
    the repos the installer had (for arch ``arch``); ``external``: the build tag's
    external repos at the repo's event (``getExternalRepoList``)."""
    urls = {r.name: _norm(r.baseurl.replace("$arch", arch)) for r in repos}
    by_url = {_norm(e["url"].replace("$arch", arch)): e for e in external}
    out = []
    for pkg in packages:
        if "payloadhash" not in pkg:  # a dpkg entry: not an RPM
            continue
        entry = {k: pkg[k] for k in FIELDS}
        key = f"{entry['name']}-{entry['version']}-{entry['release']}.{entry['arch']}"
        repo = pkg.get("repo")
        if not external or (repo == koji_repo and koji_repo is not None):
            out.append(entry)  # kojid: no external repos, every RPM is taken for Koji's
            continue
        url = urls.get(repo) if repo else None
        erepo = by_url.get(url) if url else None
        if erepo is not None:
            entry["location"] = erepo["external_repo_id"]
        elif scratch:
            entry["origin"] = url or repo
        else:
            raise ComponentError(_untraced(key, repo, url, tag))
        out.append(entry)
    return out


def _untraced(key: str, repo: str | None, url: str | None, tag: str) -> str:
    if repo is None:
        return (f"{key}: the image does not say which repo it came from (no dnf history), "
                f"and build tag {tag} has external repos, so Koji cannot tell whether it is "
                "its own RPM; install with dnf")
    return (f"{key} was installed from repo {repo} ({url or 'not a repo of the build'}), "
            f"which is neither build tag {tag}'s Koji repo nor one of its external repos, "
            "so Koji could not trace it; build from the tag's repo, add the repo to the tag "
            f"(koji add-external-repo -t {tag} NAME URL), or make a scratch build")
