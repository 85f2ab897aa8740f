"""Koji hub plugin: the cloud-image build API. Enable with ``Plugins = cloud_image``.

``cloudImageBuild`` checks the request with the same schema as the YAML spec (every
problem at once, each naming its field), the caller's ``image`` permission, the target and
its arches, and queues a ``cloudImageBuild`` task in the ``image`` channel for the kojid
plugin. ``cloudImageUpload`` queues an ``uploadCloudImage`` task that puts a build's
images into EC2 and Glance; the builder reports where they went with
``host.cloudImageUploaded``. ``cloudImageInfo`` returns what a build or task made. The
``postImport`` callback keeps each arch's record (images, checksums, boot verdicts) in the
build's extra, beside the upload records.

A hub plugin that fails to import takes the whole hub offline, so nothing here may raise
at import time: if the core library is missing, the API says so when called.
"""

import json
import logging
import os
import xmlrpc.client

import koji
import koji.tasks
import kojihub
from koji.context import context
from koji.plugin import callback, export, export_in

logger = logging.getLogger('koji.plugin.cloud_image')

try:
    from koji_image_plugin.clouds import records as upload_records
    from koji_image_plugin.errors import KojiImageError, Problem, listed, quote
    from koji_image_plugin.koji import record, repos, request
    from koji_image_plugin.spec.distro import AUTO_KEYS
    from koji_image_plugin.spec.upload import Cloud, check_upload
    CORE_ERROR = None
except Exception as exc:  # noqa: BLE001 - see the module docstring
    CORE_ERROR = f'{type(exc).__name__}: {exc}'
    logger.error('cloud_image: the koji_image_plugin library does not import: %s',
                 CORE_ERROR)

koji.tasks.LEGACY_SIGNATURES['cloudImageBuild'] = [
    [['name', 'version', 'target', 'arches', 'opts'], None, None, (None,)]]
koji.tasks.LEGACY_SIGNATURES['uploadCloudImage'] = [[['build', 'opts'], None, None, (None,)]]
koji.tasks.LEGACY_SIGNATURES['createCloudImage'] = [
    [['name', 'version', 'release', 'arch', 'target_info', 'build_tag', 'repo_info', 'opts'],
     None, None, (None,)]]


def _core():
    if CORE_ERROR:
        raise koji.GenericError('cloud_image plugin: the koji_image_plugin library is not '
                                f'usable on this hub ({CORE_ERROR}); install '
                                'python3-koji-image-plugin')


@export
def cloudImageBuild(name, version, target, arches, opts=None, priority=None):
    """Queue a cloud image build; returns the parent task id."""
    _core()
    context.session.assertLogin()
    context.session.assertPerm('image')
    data, problems = request.build_request(name, version, target, arches, opts)
    if not {p.field.split('[')[0] for p in problems} & {'target', 'arches'}:
        problems += _check_target(data)
    problems += _check_upload(data)
    if problems:
        raise koji.ParameterError('invalid cloud image request: '
                                  + '; '.join(listed(problems)))
    task_opts = _task_opts(priority)
    args = {k: data.pop(k) for k in ('name', 'version', 'target', 'arches')}
    return kojihub.make_task('cloudImageBuild',
                             [args['name'], args['version'], args['target'],
                              args['arches'], data], **task_opts)


@export
def cloudImageUpload(build, opts=None, priority=None):
    """Queue the upload of a cloud image build's images (EC2 AMIs in every region, Glance
    images) on a builder that has the credentials; returns the task id. ``opts``:
    ``{'ec2': {'regions': [...]}, 'glance': {'clouds': [...]}, 'public': bool}``, the
    same as a spec's ``upload``."""
    _core()
    context.session.assertLogin()
    context.session.assertPerm('image')
    opts = opts or {}
    problems = check_upload(opts, 'opts')
    if problems:
        raise koji.ParameterError('invalid cloud image upload: '
                                  + '; '.join(listed(problems)))
    if not isinstance(build, (str, int)) or isinstance(build, bool):
        raise koji.ParameterError('build: give a build NVR or id, not '
                                  f'{type(build).__name__}')
    binfo = kojihub.get_build(build, strict=True)
    if record.RECORD_KEY not in (binfo.get('extra') or {}):
        raise koji.ParameterError(f"build: {binfo['nvr']} is not a cloud image build")
    if binfo['state'] != koji.BUILD_STATES['COMPLETE']:
        raise koji.ParameterError(f"build: {binfo['nvr']} is "
                                  f"{koji.BUILD_STATES[binfo['state']]}; only complete "
                                  "builds are uploaded")
    try:
        images = record.images(binfo['extra'][record.RECORD_KEY])
    except ValueError as exc:
        raise koji.ParameterError(f"build: {binfo['nvr']}: {exc}") from exc
    for kind in Cloud:
        if kind.value in opts:
            try:
                upload_records.inputs(kind, images)
            except KojiImageError as exc:
                raise koji.ParameterError(f"opts.{kind}: {binfo['nvr']}: {exc}") from exc
    running = [t['id'] for t in kojihub.RootExports().listTasks(opts={
        'method': 'uploadCloudImage', 'decode': True,
        'state': [koji.TASK_STATES[s] for s in ('FREE', 'OPEN', 'ASSIGNED')]})
        if t['request'] and t['request'][0] == binfo['id']]
    if running:
        # two uploads of one image would each take the other's work for a leftover
        raise koji.ParameterError(f"build: {binfo['nvr']} is being uploaded by task "
                                  f"{running[0]}; wait for it (koji watch-task "
                                  f"{running[0]}), then run again if needed")
    return kojihub.make_task('uploadCloudImage', [binfo['id'], opts],
                             **_task_opts(priority))


def _task_opts(priority):
    task_opts = {'channel': 'image'}
    if priority is not None:
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise koji.ParameterError('priority: must be a whole number (0 or more; '
                                      f'negative for admins), not {type(priority).__name__}')
        if priority < 0 and not context.session.hasPerm('admin'):
            raise koji.ActionNotAllowed('priority: only admins may create high-priority '
                                        'tasks; use 0 or more')
        task_opts['priority'] = koji.PRIO_DEFAULT + priority
    return task_opts


@export_in('host')
def cloudImageUploaded(task_id, build_id, uploads):
    """The builder's report of where an ``uploadCloudImage`` task put a build's images:
    kept in the build's extra, replacing earlier records of the same image and place."""
    _core()
    host = kojihub.Host()
    host.verify()
    task = kojihub.Task(task_id)
    task.assertHost(host.id)
    info = task.getInfo(request=True)
    binfo = kojihub.get_build(build_id, strict=True)
    if info['method'] not in ('uploadCloudImage',) or \
            kojihub.get_build(info['request'][0], strict=True)['id'] != binfo['id']:
        raise koji.ActionNotAllowed(f"task {task_id} does not upload build {binfo['nvr']}")
    extra = record.merge_uploads(binfo.get('extra'), uploads)
    update = kojihub.UpdateProcessor('build', clauses=['id=%(id)i'],
                                     values={'id': binfo['id']})
    update.set(extra=json.dumps(extra))
    update.execute()


def _check_upload(data):
    """An uploaded kickstart must be there now, not fail the arch tasks later."""
    for key in AUTO_KEYS:
        value = data.get(key)
        if isinstance(value, str) and not data.get('ksurl') and \
                request.UPLOAD_RE.match(value) and \
                not os.path.isfile(os.path.join(koji.pathinfo.work(), value)):
            return [Problem(key, f"no uploaded file work/{value}; upload it first "
                            "(koji cloud-image-build --kickstart FILE does)")]
    return []


def _check_target(data):
    target = kojihub.get_build_target(data['target'])
    if not target:
        return [Problem('target', f"no build target {quote(data['target'])}; see "
                                "koji list-targets")]
    config = kojihub.RootExports().getBuildConfig(target['build_tag'])
    tag_arches = {koji.canonArch(a) for a in (config.get('arches') or '').split()}
    missing = [a for a in data['arches'] if koji.canonArch(a) not in tag_arches]
    if missing:
        return [Problem('arches', f"{', '.join(missing)} not among the arches of "
                                f"build tag {target['build_tag_name']} "
                                f"({' '.join(sorted(tag_arches)) or 'none'})")]
    if data.get('repo_id') is not None:  # refused now, not after the build is reserved
        why = repos.pinned_problem(data['repo_id'], kojihub.repo_info(data['repo_id']),
                                   target['build_tag'], target['build_tag_name'])
        return [Problem('repo_id', why)] if why else []
    return []


@export
def cloudImageInfo(build=None, task=None):
    """What a cloud image build (NVR or id) or task (its parent or an arch task) made:
    {'build', 'task_id', 'scratch', 'arches': {arch: record}}; read-only."""
    _core()
    if (build is None) == (task is None):
        raise koji.ParameterError('give exactly one of build and task')
    if build is not None:
        binfo = kojihub.get_build(build)
        if not binfo:
            raise koji.GenericError(f"build {build!r}: no such build; give an NVR or a "
                                    "build id (koji list-builds --type image)")
        return _build_info(binfo)
    return _task_info(kojihub.convert_value(task, cast=int))


def _build_info(binfo):
    extra = binfo.get('extra') or {}
    build_record = extra.get(record.RECORD_KEY)
    if build_record is None:
        raise koji.GenericError(f"{binfo['nvr']} is not a cloud image build")
    arches = build_record.get('arches', {})
    return {
        'build': {'id': binfo['id'], 'nvr': binfo['nvr'],
                  'state': koji.BUILD_STATES[binfo['state']],
                  'path': koji.pathinfo.imagebuild(binfo)},
        'nvr': binfo['nvr'],
        'task_id': binfo.get('task_id'),
        'scratch': False,
        'arches': arches,
        'failed_arches': sorted(set(build_record.get('arches_requested') or []) - set(arches)),
        'uploads': build_record.get('uploads') or {},
        'repo': build_record.get('repo'),
    }


def _task_info(task_id):
    root = kojihub.RootExports()
    info = root.getTaskInfo(task_id)
    if not info:
        raise koji.GenericError(f"task {task_id}: no such task; give the task id "
                                "cloud-image-build printed, or a build's NVR")
    if info['method'] == 'createCloudImage' and info.get('parent'):
        info = root.getTaskInfo(info['parent'], strict=True)
    if info['method'] != 'cloudImageBuild':
        raise koji.GenericError(f"task {task_id} is a {info['method']} task, not a cloud "
                                "image build")
    out = {'build': None, 'task_id': info['id'], 'scratch': None, 'arches': {},
           'state': koji.TASK_STATES[info['state']]}
    owner = root.getUser(info['owner'])['name']
    if info['state'] == koji.TASK_STATES['CLOSED']:
        result = root.getTaskResult(info['id'])
        out['scratch'] = result['scratch']
        out['nvr'] = result['nvr']
        out['failed_arches'] = result['failed_arches']
        if result.get('build_id'):
            return dict(_build_info(kojihub.get_build(result['build_id'], strict=True)),
                        task_id=info['id'])
    for child in root.getTaskChildren(info['id']):
        if child['method'] != 'createCloudImage':
            continue
        request = root.getTaskRequest(child['id'])
        if len(request) == 8:  # [..., build_tag, repo_info, opts]: the repo it installs from
            out['repo'] = repos.record(request[6], (request[7] or {}).get('repos') or ())
        arch = child['label']
        if child['state'] == koji.TASK_STATES['CLOSED']:
            res = root.getTaskResult(child['id'])
            out['arches'][arch] = dict(res.get(record.RECORD_KEY) or {}, task_id=child['id'])
            if out['scratch']:
                out['arches'][arch]['path'] = (f"{koji.pathinfo.scratch()}/{owner}/"
                                               f"task_{child['id']}")
        elif child['state'] in (koji.TASK_STATES['FAILED'], koji.TASK_STATES['CANCELED']):
            out['arches'][arch] = {'task_id': child['id'],
                                   'error': _task_error(root, child)}
        else:
            out['arches'][arch] = {'task_id': child['id'],
                                   'state': koji.TASK_STATES[child['state']]}
    return out


def _task_error(root, child):
    """A failed arch's error as its task reported it: the whole message, not a Fault's
    repr; for a traceback (an error kojid did not expect) its last line."""
    if child['state'] == koji.TASK_STATES['CANCELED']:
        return 'CANCELED'
    try:
        root.getTaskResult(child['id'])
    except xmlrpc.client.Fault as fault:
        text = fault.faultString
    except Exception as exc:  # noqa: BLE001 - the task's own failure, shown as is
        text = str(exc)
    else:
        return koji.TASK_STATES[child['state']]
    text = text.strip()
    if text.startswith('Traceback (most recent call last)'):
        last = text.splitlines()[-1]
        return f"{last} (the traceback: koji taskinfo -v {child['id']})"
    return text


@export
def cloudImageFind(rpm=None, build=None, tag=None):
    """The image builds whose images contain an RPM (N-V-R.A or id) or any RPM of a build
    (NVR or id), optionally only those tagged in ``tag``; each with the image files that
    hold it and where its images were uploaded. Read-only."""
    _core()
    if (rpm is None) == (build is None):
        raise koji.ParameterError('give exactly one of rpm and build')
    for name, value in (('rpm', rpm), ('build', build), ('tag', tag)):
        if value is not None and (not isinstance(value, (str, int)) or
                                  isinstance(value, bool)):
            raise koji.ParameterError(f'{name}: give a name or an id, not '
                                      f'{type(value).__name__}')
    if rpm is not None:
        found = [r for r in [kojihub.get_rpm(rpm)] if r]
        if not found:
            raise koji.GenericError(f"rpm {rpm!r}: no such rpm; give N-V-R.A, e.g. "
                                    "bash-5.2.26-3.fc40.x86_64")
    else:
        binfo = kojihub.get_build(build)
        if not binfo:
            raise koji.GenericError(f"build {build!r}: no such build; give an NVR or id")
        found = kojihub.list_rpms(buildID=binfo['id'])
    names = {r['id']: f"{r['name']}-{r['version']}-{r['release']}.{r['arch']}" for r in found}
    holders = {}
    for rpm_id in sorted(names):
        query = kojihub.QueryProcessor(tables=['archive_rpm_components'],
                                       columns=['archive_id'], clauses=['rpm_id = %(rpm_id)i'],
                                       values={'rpm_id': rpm_id})
        for row in query.execute():
            holders.setdefault(row['archive_id'], set()).add(names[rpm_id])
    tagged = None
    if tag is not None:
        tag_id = kojihub.get_tag(tag, strict=True)['id']
        tagged = {b['build_id'] for b in kojihub.readTaggedBuilds(tag_id, inherit=True)}
    out = {}
    for archive_id, rpms_in in sorted(holders.items()):
        archive = kojihub.list_archives(archiveID=archive_id)[0]
        binfo = kojihub.get_build(archive['build_id'], strict=True)
        if binfo['state'] != koji.BUILD_STATES['COMPLETE'] or \
                (tagged is not None and binfo['id'] not in tagged):
            continue
        entry = out.setdefault(binfo['id'], {
            'build_id': binfo['id'], 'nvr': binfo['nvr'], 'files': [], 'rpms': set(),
            'uploads': ((binfo.get('extra') or {}).get(record.RECORD_KEY) or {}).get(
                'uploads') or {}})
        entry['files'].append(archive['filename'])
        entry['rpms'] |= rpms_in
    return [dict(e, rpms=sorted(e['rpms'])) for _, e in sorted(out.items())]


@callback('postImport')
def record_arch(cbtype, *args, **kws):
    """Keep an arch's cloud-image record in the build's extra as it is imported."""
    image = kws.get('image')
    if CORE_ERROR or kws.get('type') != 'image' or not isinstance(image, dict):
        return
    arch_record = image.get(record.RECORD_KEY)
    if arch_record is None:
        return
    binfo = kojihub.get_build(kws['build']['id'], strict=True)
    extra = record.merge_record(binfo.get('extra'), image['arch'], arch_record)
    update = kojihub.UpdateProcessor('build', clauses=['id=%(id)i'],
                                     values={'id': binfo['id']})
    update.set(extra=json.dumps(extra))
    update.execute()

