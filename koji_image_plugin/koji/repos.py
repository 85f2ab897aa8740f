"""The build tag's Koji repo a hub build installs from, as kojid's tasks choose it.

The parent task takes the tag's current repo (``BaseTaskHandler.getRepo``: a ``waitrepo``
subtask when none is ready), or the one ``opts.repo_id`` pins, which must be the build
tag's and READY or EXPIRED (kojid's build task's rule). Each arch task installs from
``<topurl>/repos/<tag>/<repo_id>/<arch>``, named ``koji-<tag>-<repo_id>`` as Koji names
the repo in the kickstarts its LiveCD and appliance tasks prepare (its Oz task calls it
``koji-override-0``, a name that says nothing), unless the request has ``repos``, which
replace it (Koji's ``--repo``). Plain data: the Koji calls are the builder's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..spec.image import ImageSpec
from ..spec.kickstart import Repo, override_repos

#: koji.REPO_STATES, by value (a test checks they agree)
STATES = ("INIT", "READY", "EXPIRED", "DELETED", "PROBLEM")
USABLE = ("READY", "EXPIRED")


def pinned_problem(repo_id: int, info: Mapping[str, Any] | None, build_tag: int,
                   build_tag_name: str) -> str | None:
    """Why the repo ``opts.repo_id`` pins cannot be built from, or None."""
    if not info:
        return f"no repo {repo_id} on this hub; leave repo_id out to use the current " \
               f"repo of {build_tag_name}"
    state = STATES[info["state"]] if 0 <= info["state"] < len(STATES) else str(info["state"])
    if info["tag_id"] != build_tag:
        return (f"repo {repo_id} is a repo of tag {info['tag_name']}, not of "
                f"the target's build tag {build_tag_name}")
    if state not in USABLE:
        return (f"repo {repo_id} of {build_tag_name} is {state}; pin a READY "
                "or EXPIRED one (koji list-repos), or leave repo_id out")
    return None


def koji_repo(repo_dir_url: str, info: Mapping[str, Any]) -> Repo:
    """The Koji repo as the installer sees it; ``repo_dir_url`` is
    ``koji.PathInfo(topdir=topurl).repo(id, tag)``."""
    return Repo(f"koji-{info['tag_name']}-{info['id']}", repo_dir_url.rstrip("/") + "/$arch")


def install_repos(spec: ImageSpec, repo: Repo | None) -> tuple[Repo, ...]:
    """What the installer installs from: the request's ``repos``, else the Koji repo
    (for families that install from one)."""
    if spec.repos:
        return override_repos(spec.repos)
    if repo is not None and spec.distro.family.koji_repo:
        return (repo,)
    return ()


def record(info: Mapping[str, Any] | None,
           overrides: Sequence[str] = ()) -> dict[str, Any] | None:
    """What the build's extra keeps of where its packages came from: the request's
    ``repos`` when it has some (they replaced the tag's repo), else the Koji repo."""
    if overrides:
        return {"repos": list(overrides)}
    if not info:
        return None
    return {"tag": info["tag_name"], "tag_id": info["tag_id"], "id": info["id"],
            "event": info["create_event"]}


def describe(rec: Mapping[str, Any] | None) -> str:
    """That record for people (``koji cloud-image-info``, the drop README)."""
    if not rec:
        return "its install tree, not a Koji repo (an install that uses none, e.g. Debian)"
    if rec.get("repos"):
        return "the request's repos, not a Koji repo: " + ", ".join(map(str, rec["repos"]))
    return f"Koji repo {rec.get('id')} of build tag {rec.get('tag')} (event {rec.get('event')})"
