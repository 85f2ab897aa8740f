"""kojid plugin: build cloud images. Enable with ``plugins = cloud_image`` in kojid.conf.

``cloudImageBuild`` (the parent, queued by the hub plugin) reserves the build, runs one
``createCloudImage`` child per arch, and imports the results as an image build (or keeps
them as a scratch build) and tags it, then runs ``uploadCloudImage`` if the spec asks
for uploads (the hub's ``cloudImageUpload`` queues that task on its own too). The child
runs koji_image_plugin's pipeline (Oz in a libvirt guest, conversions, boot test) and
uploads images, records and logs; the logs are streamed to the hub while they are
written, so ``koji watch-logs`` follows the install. Configuration:
/etc/kojid/plugins/cloud_image.conf (``$KOJI_CLOUD_IMAGE_CONF``), the same sections as
koji-image.conf.
"""

import logging
import os
import shutil
import threading
from pathlib import Path

import koji
import koji.daemon
from koji.tasks import BaseTaskHandler, ServerExit

from koji_image_plugin.build.pipeline import Pipeline
from koji_image_plugin.clouds import records as upload_records
from koji_image_plugin.clouds import uploads
from koji_image_plugin.errors import KojiImageError
from koji_image_plugin.koji import (
    archbuild,
    archivetypes,
    components,
    repos,
    scm,
    tasklogs,
    taskrun,
    workdir,
)
from koji_image_plugin.koji.record import (
    RECORD_KEY,
    RECORD_VERSION,
    arch_result,
    auto_file_name,
    images,
    import_extensions,
    keep_auto_file_once,
    manifest_name,
)
from koji_image_plugin.koji.tasklogs import run_streaming
from koji_image_plugin.runner import Runner
from koji_image_plugin.spec import hostconfig
from koji_image_plugin.spec.arches import Arch
from koji_image_plugin.spec.distro import Distro, auto_file_key
from koji_image_plugin.spec.image import from_dict
from koji_image_plugin.spec.upload import UploadRequest, check_upload


def builder_config():
    """(path, config) of /etc/kojid/plugins/cloud_image.conf (or $KOJI_CLOUD_IMAGE_CONF);
    a bad one fails the task with its one-line problem, not a traceback."""
    try:
        path = hostconfig.resolve(kojid=True)
        return path, hostconfig.load(path)
    except KojiImageError as exc:
        raise koji.BuildError(str(exc)) from exc


class CloudImageBuildTask(BaseTaskHandler):
    """The parent: one build, one child per arch."""

    Methods = ['cloudImageBuild']
    _taskWeight = 0.2

    def handler(self, name, version, target, arches, opts=None):
        opts = dict(opts or {})
        scratch = bool(opts.get('scratch'))
        target_info = self.check_target(target, arches, opts)
        self.check_archive_types(name, version, arches, opts)
        repo_info = self.install_repo(target_info, opts)
        bld_info, release = self.reserve(name, version, arches, opts, target_info, repo_info)
        try:
            subtasks, by_arch, failed = self.run_arches(name, version, release, arches,
                                                        target_info, repo_info, opts)
            if scratch:
                self.session.host.moveImageBuildToScratch(self.id, by_arch)
            else:
                self.session.host.completeImageBuild(self.id, bld_info['id'], by_arch)
        except (SystemExit, ServerExit, KeyboardInterrupt):
            raise
        except Exception:
            if bld_info:
                self.session.host.failBuild(self.id, bld_info['id'])
            raise
        if not scratch and not opts.get('skip_tag'):
            tag_task = self.subtask('tagBuild', [target_info['dest_tag'], bld_info['id'],
                                                 False, None, True],
                                    label='tag', arch='noarch')
            self.wait(tag_task)
        nvr = f'{name}-{version}-{release}'
        return {
            'nvr': nvr,
            'build_id': bld_info['id'] if bld_info else None,
            'scratch': scratch,
            'tasks': {arch: subtasks[arch] for arch in arches},
            'failed_arches': failed,
            'uploads': self.upload(nvr, bld_info, opts),
            'report': (f'Scratch image build {nvr}: results in the arch tasks' if scratch
                       else f'image build results in: {koji.pathinfo.imagebuild(bld_info)}'),
        }

    def check_target(self, target, arches, opts):
        """The target, its build tag's arches and the ``build_rpm`` policy, as kojid's
        image tasks check them; returns the target's info."""
        target_info = self.session.getBuildTarget(target, strict=True)
        build_tag = target_info['build_tag']
        buildconfig = self.session.getBuildConfig(build_tag)
        tag_arches = [koji.canonArch(a) for a in (buildconfig['arches'] or '').split()]
        if not tag_arches:
            raise koji.BuildError(f"No arches for tag {buildconfig['name']} "
                                  f"[{buildconfig['id']}]")
        for arch in arches:
            if koji.canonArch(arch) not in tag_arches:
                raise koji.BuildError(f"arches: {arch} is not an arch of build tag "
                                      f"{buildconfig['name']} ({' '.join(tag_arches)})")
        self.session.host.assertPolicy('build_rpm', {
            'user_id': self.session.getTaskInfo(self.id)['owner'],
            'source': opts.get('ksurl'),
            'task_id': self.id,
            'build_tag': build_tag,
            'skip_tag': bool(opts.get('skip_tag')),
            'scratch': bool(opts.get('scratch')),
            'from_scm': bool(opts.get('ksurl')),
            'target': target_info['name'],
            'tag': None if opts.get('skip_tag') else target_info['dest_tag'],
        })
        return target_info

    def install_repo(self, target_info, opts):
        """The build tag's repo the arches install from, as kojid's tasks take it: the
        current one (``getRepo``, a waitrepo subtask if none is ready) or the one
        ``opts.repo_id`` pins; None for installs that use no Koji repo (Debian)."""
        if not Distro.parse(opts['distro']).family.koji_repo:
            return None
        if opts.get('repo_id') is None:
            return self.getRepo(target_info['build_tag'])
        info = self.session.repoInfo(opts['repo_id'])
        why = repos.pinned_problem(opts['repo_id'], info, target_info['build_tag'],
                                   target_info['build_tag_name'])
        if why:
            raise koji.BuildError(f"opts.repo_id: {why}")
        return info

    def reserve(self, name, version, arches, opts, target_info, repo_info):
        """The build reserved with initImageBuild (none for scratch), and its release."""
        release = opts.get('release')
        if opts.get('scratch'):
            return None, release or self.session.getNextRelease(
                dict(name=name, version=version))
        self.check_package(name, target_info)
        record = {'version': RECORD_VERSION, 'arches_requested': arches, 'request': opts,
                  'repo': repos.record(repo_info, opts.get('repos') or ())}
        bld_info = self.session.host.initImageBuild(
            self.id, dict(name=name, version=version, release=release, epoch=0,
                          extra={RECORD_KEY: record}))
        return bld_info, bld_info['release']

    def run_arches(self, name, version, release, arches, target_info, repo_info, opts):
        """One createCloudImage per arch; optional arches may fail, not all of them."""
        subtasks = {}
        for arch in arches:
            subtasks[arch] = self.subtask(
                'createCloudImage',
                [name, version, release, arch, target_info, target_info['build_tag'],
                 repo_info, opts],
                label=arch, arch=koji.canonArch(arch))
        canfail = [subtasks[a] for a in arches if a in (opts.get('can_fail') or [])]
        results = self.wait(list(subtasks.values()), all=True, failany=True,
                            canfail=canfail)
        by_arch = {arch: results[subtasks[arch]] for arch in arches}
        failed = sorted(a for a, r in by_arch.items()
                        if isinstance(r, dict) and 'faultCode' in r)
        if len(failed) == len(arches):
            raise koji.BuildError("every arch failed: " + "; ".join(
                f"{a}: {by_arch[a].get('faultString', '')}" for a in failed))
        for arch in failed:
            self.logger.warning("optional arch %s failed: %s", arch,
                                by_arch[arch].get('faultString'))
        keep_auto_file_once(by_arch, failed)
        return subtasks, by_arch, failed

    def upload(self, nvr, bld_info, opts):
        """The spec's uploads, once the build is imported and tagged (not for scratch)."""
        if not opts.get('upload'):
            return None
        if bld_info is None:
            self.logger.info('scratch build %s: not uploaded (only imported builds are)', nvr)
            return None
        # The build is complete whatever happens here; a failed upload fails this
        # task so nobody misses it, and `koji cloud-image-upload` retries it.
        up_task = self.subtask('uploadCloudImage', [bld_info['id'], opts['upload']],
                               label='upload', arch='noarch')
        return self.wait(up_task)[up_task]['uploads']

    def check_archive_types(self, name, version, arches, opts):
        """Every file the arch tasks will import must have an archive type on this hub,
        or the import fails after the whole build has run (older hubs lack some)."""
        spec = from_dict(dict(opts, name=name, version=version, arches=arches,
                              release=opts.get('release') or '0'), source=f'task {self.id}')
        missing = [ext for ext in sorted(import_extensions(spec))
                   if not self.session.getArchiveType(filename=f'{name}.{ext}')]
        if missing:
            # one line naming the exact fix (Koji's CLI has no add-archivetype)
            fixes = sorted({archivetypes.add_command(f'{name}.{ext}') or
                            f'(no known type for .{ext})' for ext in missing})
            raise koji.BuildError(
                f"this hub has no archive type for {', '.join('.' + e for e in missing)} "
                "files, so it could not import the build; an admin adds it with: "
                + '; '.join(fixes))

    def check_package(self, name, target_info):
        pkg_cfg = self.session.getPackageConfig(target_info['dest_tag_name'], name)
        tag = target_info['dest_tag_name']
        if pkg_cfg is None:
            raise koji.BuildError(f"package (image) {name} not in list for tag {tag}; add it "
                                  f"with: koji add-pkg --owner USER {tag} {name}")
        if pkg_cfg['blocked']:
            raise koji.BuildError(f"package (image) {name} is blocked for tag {tag}")


class CreateCloudImageTask(BaseTaskHandler):
    """One arch: install, convert, boot-test, upload."""

    Methods = ['createCloudImage']
    _taskWeight = 2.0

    def handler(self, name, version, release, arch, target_info, build_tag, repo_info,
                opts):
        _conf, host = builder_config()
        data = dict(opts)
        data.update(name=name, version=version, release=release, arches=[arch])
        data.pop('can_fail', None)
        src, source = self.fetch_auto_file(opts, build_tag)
        if src:
            data[auto_file_key(data)] = src
        data.pop('ksurl', None)
        try:
            spec = from_dict(data, source=f'task {self.id}')
        except KojiImageError as exc:
            raise koji.ParameterError(str(exc)) from exc
        # Images are big: they are made under the plugin's workdir, not kojid's.
        koji_repo = repo_info and repos.koji_repo(koji.PathInfo(
            topdir=self.options.topurl).repo(repo_info['id'], repo_info['tag_name']),
            repo_info)
        base = workdir.task_dir(host.workdir, self.id)
        try:
            return self.build(spec, host, arch, base, source, repo_info, koji_repo)
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def build(self, spec, host, arch, base, source, repo_info, koji_repo):
        outdir = base / 'out'
        logdir = base / 'logs'
        logdir.mkdir()
        self.sweep(host.workdir, logdir)
        cancel = threading.Event()
        install = repos.install_repos(spec, koji_repo)
        pipeline = Pipeline(spec, host, log=logging.getLogger('koji.build.cloud_image'),
                            progress=taskrun.progress_log(logdir / 'cloud-image.log'),
                            cancel=cancel, repos=install)
        watch = tasklogs.Watch(self)
        try:
            result = run_streaming(
                self, lambda: archbuild.build(pipeline, Arch(arch), base),
                logdir, cancel, f'cloud-image-{arch}', watch)
        except Exception as exc:
            manifest = outdir / manifest_name(spec.nvr, arch)
            if manifest.exists():
                with watch.quiet_if_cancelled():
                    self.uploadFile(str(manifest))
            if isinstance(exc, KojiImageError):
                raise koji.BuildError(str(exc)) from exc
            raise
        rpmlist = self.rpmlist(result.packages, spec, arch, install, repo_info, koji_repo)
        files = list(result.files)
        record = dict(result.record, source=source, rpms=len(rpmlist))
        if spec.auto_file:
            # the kickstart/preseed is kept with the build (the parent imports it once)
            name = auto_file_name(spec)
            shutil.copyfile(spec.auto_file, outdir / name)
            files.append(name)
            record['auto_file'] = name
        with watch.quiet_if_cancelled():  # minutes of uploads: a cancel may come
            for name in files:
                self.uploadFile(str(outdir / name))
                (outdir / name).unlink()
        # incremental_upload skips empty files, and the hub imports only what is there
        logs = sorted(p.name for p in logdir.iterdir()
                      if p.name.endswith('.log') and p.stat().st_size)
        return arch_result(self.id, arch, files, logs, record, rpmlist)

    def rpmlist(self, packages, spec, arch, install, repo_info, koji_repo):
        """The image's RPMs as Koji components, mapped as kojid's markExternalRPMs maps
        them (the tag's external repos at the repo's event)."""
        if not repo_info:
            return components.rpmlist(packages, None, install, [], arch, tag='(none)',
                                      scratch=spec.scratch)
        external = self.session.getExternalRepoList(repo_info['tag_id'],
                                                    event=repo_info['create_event'])
        try:
            return components.rpmlist(packages, koji_repo.name, install, external, arch,
                                      tag=repo_info['tag_name'], scratch=spec.scratch)
        except KojiImageError as exc:
            raise koji.BuildError(str(exc)) from exc

    def sweep(self, host_workdir, logdir):
        """Remove what killed tasks of this plugin left on this builder."""
        def alive(task_id):
            info = self.session.getTaskInfo(task_id)
            return bool(info) and info['state'] == koji.TASK_STATES['OPEN']

        runner = Runner(logdir, logging.getLogger('koji.build.cloud_image'))
        for d in workdir.sweep_stale(host_workdir, alive, runner):
            self.logger.warning('removed %s, left by a task that was killed', d)

    def fetch_auto_file(self, opts, build_tag):
        """The kickstart/preseed on this builder: from the CLI's upload or from SCM, as
        kojid's image tasks fetch theirs (fetchKickstart). Returns (path, source)."""
        key = auto_file_key(dict(opts))
        if not opts.get(key):
            return None, None
        if not opts.get('ksurl'):
            path = os.path.realpath(self.localPath(f'work/{opts[key]}'))
            if not os.path.isfile(path):
                raise koji.BuildError(f"{key}: no uploaded file work/{opts[key]}")
            return path, None
        return scm.checkout_file(self, opts, key, build_tag)



class UploadCloudImageTask(BaseTaskHandler):
    """A build's images into EC2 (AMIs in every region) and Glance, with this builder's
    credentials; the hub keeps where they went in the build's extra."""

    Methods = ['uploadCloudImage']
    _taskWeight = 0.5

    def handler(self, build, opts):
        problems = check_upload(opts, 'opts')
        if problems:
            raise koji.ParameterError('; '.join(str(p) for p in problems))
        binfo = self.session.getBuild(build, strict=True)
        try:
            build_images = images(self.session.cloudImageInfo(build=binfo['id']))
        except ValueError as exc:
            raise koji.BuildError(f"build {binfo['nvr']}: {exc}") from exc
        distro = Distro.parse(binfo['extra'][RECORD_KEY]['request']['distro'])
        conf, host = builder_config()
        base = workdir.task_dir(host.workdir, self.id)
        logdir = base / 'logs'
        logdir.mkdir()
        cancel = threading.Event()
        reldir = koji.PathInfo(topdir='').imagebuild(binfo).lstrip('/')
        try:
            with taskrun.file_log(logdir / 'upload.log',
                                  f'koji.build.cloud_image.upload.{self.id}') as log:
                def locate(image):
                    log.info('fetching %s', image.file)
                    return Path(self.localPath(f"{reldir}/{image.file}"))

                def work():
                    return uploads.upload(UploadRequest.from_dict(opts), build_images,
                                          locate, nvr=binfo['nvr'], distro=distro,
                                          build_id=binfo['id'], config=conf,
                                          runner=Runner(logdir, log, cancel))

                watch = tasklogs.Watch(self)
                outcome = run_streaming(self, work, logdir, cancel,
                                        f'cloud-upload-{self.id}', watch)
            if any(outcome.records.values()):
                with watch.quiet_if_cancelled():
                    self.session.host.cloudImageUploaded(self.id, binfo['id'],
                                                         outcome.records)
        finally:
            shutil.rmtree(base, ignore_errors=True)
            shutil.rmtree(os.path.join(self.workdir, 'local'), ignore_errors=True)
        if outcome.errors:
            raise koji.GenericError('upload failed: ' + '; '.join(outcome.errors))
        return {'build_id': binfo['id'], 'nvr': binfo['nvr'], 'uploads': outcome.records,
                'report': '\n'.join(upload_records.format_records(outcome.records))}
