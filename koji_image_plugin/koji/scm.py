"""An SCM kickstart (or preseed) on the builder, checked out as kojid's image tasks check
theirs out (``fetchKickstart``): the builder's allowed SCMs and the SCM policy, the pre/post
checkout callbacks, and a file that must lie inside the checkout. Used by the builder
plugin; like ``tasklogs.py`` it imports koji."""

from __future__ import annotations

import os
from typing import Any

import koji
import koji.daemon


def checkout_file(task: Any, opts: dict[str, Any], key: str,
                  build_tag: Any) -> tuple[str, str]:
    """(path, source) of ``opts[key]`` in a checkout of ``opts['ksurl']``, made in the
    kojid ``task``'s work dir."""
    if task.taskinfo is None:
        task.taskinfo = task.session.getTaskInfo(task.id)
    scm = koji.daemon.SCM(opts['ksurl'], allow_password=getattr(
        task.options, 'allow_password_in_scm_url', False))
    scm.assert_allowed(
        allowed=getattr(task.options, 'allowed_scms', ''),
        session=task.session,
        by_config=getattr(task.options, 'allowed_scms_use_config', True),
        by_policy=getattr(task.options, 'allowed_scms_use_policy', False),
        policy_data={
            'user_id': task.taskinfo['owner'],
            'channel': task.session.getChannel(task.taskinfo['channel_id'],
                                               strict=True)['name'],
            'scratch': bool(opts.get('scratch')),
        })
    scmdir = os.path.join(task.workdir, 'scm')
    koji.ensuredir(scmdir)
    task.run_callbacks('preSCMCheckout', scminfo=scm.get_info(), build_tag=build_tag,
                       scratch=bool(opts.get('scratch')))
    srcdir = scm.checkout(scmdir, task.session, task.getUploadDir(),
                          os.path.join(task.workdir, 'checkout.log'))
    task.run_callbacks('postSCMCheckout', scminfo=scm.get_info(), build_tag=build_tag,
                       scratch=bool(opts.get('scratch')), srcdir=srcdir)
    path = os.path.realpath(os.path.join(srcdir, opts[key]))
    if not path.startswith(os.path.realpath(srcdir) + os.sep) or not os.path.isfile(path):
        raise koji.BuildError(f"{key}: {opts[key]} is not a file in {opts['ksurl']}")
    return path, scm.get_source()
