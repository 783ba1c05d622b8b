#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Live migration: ``migrate_receive``, ``assert_can_migrate``,
``migrate_send`` (storage motion) and ``pool_migrate``.

Follows ``ocaml/xapi/xapi_vm_migrate.ml`` (v1.249.42) and the forwarding
layer in ``message_forwarding.ml``. The source reaches the destination
pool as xapi does, at ``dest["master"]`` with ``dest["session_id"]``
(``remote_of_dest``, which itself makes no call): every call goes through
the destination pool's dispatcher, so it appears in its call log and meets
its injected faults, and a dead session or an unknown destination host is
reported by the first call that uses it (``SESSION_INVALID [session]``,
``HANDLE_INVALID ["host", ref]``), after the checks xapi makes on its own
database. Intra-pool, the "destination" is the pool itself (xapi calls its
own master), so those calls are in its own log. The xapi HTTP handlers xapi
sends to are logged as their paths (``/import_metadata``, ``/messages``).
Not modelled: the SMAPI and xenopsd traffic, the RRD push (xcp-rrdd's),
snapshots, suspend images, vGPUs, HA, CBT, the ``copy`` option.

``VM.assert_can_migrate`` (``assert_can_migrate``, then
``assert_can_migrate_sender``), in xapi's order:

1. ``dest`` has xapi's keys (``INTERNAL_ERROR ["Not_found"]``);
2. every non-empty, non-CD VBD's VDI exists (``get_vdi_mirror``:
   ``HANDLE_INVALID ["VDI", ref]``) and is a key of ``vdi_map``
   (``check_vdi_map``: ``VDI_NOT_IN_MAP [vdi]``), before any call;
3. the destination host's platform version is not lower
   (``host.get_software_version`` cross-pool:
   ``VM_HOST_INCOMPATIBLE_VERSION_MIGRATE [vm, host]``; intra-pool, from
   the database: ``NOT_SUPPORTED_DURING_UPGRADE``);
4. ``assert_sr_support_operations``: ``SM.get_all_records``, with
   ``relax-xsm-sr-check`` on the uuid of every mapped SR (``SR.get_uuid``),
   then every disk that does not stay on its SR needs ``VDI_MIRROR`` and
   ``VDI_SNAPSHOT`` on its SR and on the destination SR's SM
   (``SR.get_type``): ``SR_DOES_NOT_SUPPORT_MIGRATION [sr]``;
5. intra-pool: the destination host is enabled (``HOST_DISABLED``) and a
   ``vif_map`` is ``OPERATION_NOT_ALLOWED``. Cross-pool:
   ``host.get_virtual_hardware_platform_versions``, ``host.get_enabled``
   (``HOST_DISABLED [host]``), ``host.get_cpu_info`` twice for a VM that is
   not halted (CPU compatibility unless ``force``, then the pCPU count:
   ``HOST_NOT_ENOUGH_PCPUS``), every VIF mapped or sharing a mapped VIF's
   MAC (``VIF_NOT_IN_MAP [vif]``), the metadata import dry run (below), and
   ``host.get_PGPUs`` for a VM that is not halted.

The metadata import (``importexport.ml``
``remote_metadata_export_import``): ``task.create``, ``/import_metadata``,
``event.register``, ``task.get_status``, ``event.unregister``,
``task.get_status``, ``task.get_result`` (or ``task.get_error_info``, whose
error is raised), ``task.destroy``.

``VM.migrate_send``: one operation per VM at a time (``with_vm_operation``:
a second waits and fails after the pool's ``sr_busy_timeout`` with
``OTHER_OPERATION_IN_PROGRESS ["VM", vm, op]``; ``VM_BAD_POWER_STATE`` for
a live migration of a VM that is not running), ``VM.assert_can_migrate``
as above, a storage-migration slot of the source host's xapi
(``with_migrate``: ``TOO_MANY_STORAGE_MIGRATES ["3"]``), then
``migrate_send'``:

1. ``pool.get_all``, ``pool.get_default_SR``, ``pool.get_suspend_image_SR``,
   ``host.get_suspend_image_sr``;
2. the disks, smallest ``virtual_size`` first (``compare_fun``), each
   (``vdi_copy_fun``) at a cancellation point: ``SR.get_uuid``; the
   destination SR's PBDs on the destination pool's master and the
   destination host (``pool.get_all``, ``pool.get_master``,
   ``SR.get_PBDs``, ``PBD.get_host`` of each, ``host.get_enabled`` and
   ``PBD.get_currently_attached`` of those, ``PBD.plug`` of an unplugged
   one; errors propagate); then keep or copy. With ``relax-xsm-sr-check``
   on, the same SR uuid on both sides keeps the disk when
   ``VDI.get_by_uuid`` finds it on that SR (``VDI.get_SR``), after one
   ``SR.scan`` if the lookup fails (the scan's error propagates; a VDI of
   that uuid on another SR is no match, without a scan), else
   ``INTERNAL_ERROR ["SR UUID matches on destination but VDI does not
   exist"]``; a different uuid is copied. With it off, a disk is copied
   unless the migration stays in the pool and on the same SR. A kept disk
   is looked up once more (``VDI.get_by_uuid``, ``get_mirror_record``). A
   copy is a new VDI on the destination SR, recorded in ``World.copies``,
   then ``SR.scan`` and ``VDI.get_all_records_where`` by location
   (``with_remote_vdi``: ``VDI_LOCATION_MISSING [sr, location]``). Each
   disk wraps the rest of the migration: if anything later fails, its copy
   is destroyed (``VDI.destroy`` on the destination; a failure, e.g.
   ``VDI_IN_USE`` once the imported VM uses it, leaves it there); when the
   rest succeeds, its source VDI is destroyed (``post_mirror``:
   ``VDI.destroy`` through the source's own API), last disk first;
3. after the disks, a cancellation point; cross-pool the metadata import
   and ``host.allocate_resources_for_vm``; both:
   ``network.attach_for_vm``, ``VM.get_VIFs`` and per VIF
   ``VIF.get_network``, ``VIF.get_device``, ``network.get_bridge``; then
   ``VM.get_VGPUs`` (its failure: ``VM_MIGRATE_FAILED`` intra-pool; xapi
   looks the destination host up in its own database for that message, so
   cross-pool ``HANDLE_INVALID ["host", ref]``). Intra-pool, xenopsd on the
   destination host attaches every disk through its SR there, modelled
   with ``assert_can_see_SRs``' ``VM_REQUIRES_SR``;
4. the last cancellation point, then the task is not cancellable
   (``set_not_cancellable``) and ``VM.pool_migrate_complete`` runs on the
   destination. Intra-pool the VBDs are pointed at the copies; cross-pool
   the source's VBDs are destroyed, the source VDIs of copies too (2.),
   ``/messages`` is sent, and the source VM record goes
   (``force_state_reset``, ``Db.VM.destroy``): its **VIF records stay**,
   pointing at a VM that is gone, until the database GC (:mod:`.gc`);
5. on a failure from 2. on: the copies as in 2.; cross-pool, while the
   source VM exists, ``VM.get_by_uuid`` of its uuid on the destination and
   ``VM.destroy`` of what it finds (errors ignored); then, if the task is
   being cancelled, ``TASK_CANCELLED [task]`` instead of the error.

``task.cancel`` (``xapi_task.ml`` ``cancel``) only marks the task, at any
time: the migration stops at its next cancellation point
(``taskHelper.ml`` ``exn_if_cancelling``); past the last one it completes,
and a call with none (``VM.assert_can_migrate``) completes as well
(``server_helpers.ml`` ``exec_with_context``: ``TaskHelper.complete``).

``VM.pool_migrate`` (``message_forwarding.ml`` ``pool_migrate``,
``xapi_vm_helpers.ml`` ``assert_can_see_SRs``): the destination host needs
a plugged PBD of every SR of the VM's disks, else ``VM_REQUIRES_SR [vm,
sr]``; then the VM is resident there (``VM.pool_migrate_complete``).

Injected latency of ``VM.migrate_send`` is spent while holding the
storage-migration slot, so tests can hold migrations in flight.
"""

import itertools
import uuid

from nova_xenapi_sr_tools.mockxapi import api
from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import model
from nova_xenapi_sr_tools.mockxapi import pool as pool_mod
from nova_xenapi_sr_tools.mockxapi import storage

_DOMIDS = itertools.count(100)

#: ``xapi_vm_migrate.ml`` ``vdi_copy_fun``'s failure for a kept disk.
NO_VDI_ON_DESTINATION = ('SR UUID matches on destination but VDI does not '
                         'exist')
#: ``xapi_vm_migrate.ml`` ``remote_of_dest``: the keys it reads, in order.
DEST_KEYS = ('master', 'xenops', 'session_id', 'host', 'SM')
#: ``xapi_globs.ml`` ``default_platform_version``: a host without one.
DEFAULT_PLATFORM_VERSION = '0.0.0'
#: ``xapi_globs.ml`` ``host_virtual_hardware_platform_versions`` (0, 1 and
#: ``has_vendor_device``); the mock's VMs need version 0.
VIRTUAL_HARDWARE_PLATFORM_VERSIONS = ['0', '1', '2']
#: ``xapi_vm_migrate.ml`` ``migrate_send'``: ``VM_MIGRATE_FAILED``'s reason
#: when the vGPU map cannot be made.
VGPU_MAPPING_FAILED = 'The VM changed its power state during migration'


@api.message('host.migrate_receive', 3)
def migrate_receive(ctx, host, network, options):
    # xapi_host.ml migrate_receive: a new session for the source to use
    # (login_no_password); nothing logs it out, the GC times it out
    ctx.db.get('host', host)
    ctx.db.get('network', network)
    caller = ctx.db.get('session', ctx.session)
    session = ctx.db.create('session', this_host=host,
                            originator=caller['originator'],
                            auth_user_name=caller['auth_user_name'],
                            last_active=caller['last_active'])
    url = ctx.pool.url or ''
    return {
        'SM': '%s/services/SM?session_id=%s' % (url, session),
        'host': host,
        'xenops': '%s/services/xenops?session_id=%s' % (url, session),
        'session_id': session,
        'master': url,
    }


class _Remote(object):
    """The destination as ``xapi_vm_migrate.ml`` ``remote_of_dest`` has it."""

    def __init__(self, pool, session, host):
        self.pool = pool
        self.session = session
        self.host = host

    def call(self, method, *args):
        """Call the destination pool's API (logged there, faults apply)."""
        if self.pool is None:
            # helpers.ml make_remote_rpc to a master no pool serves:
            # exnHelper.ml error_of_exn of the Stunnel_error
            raise errors.XapiError(errors.INTERNAL_ERROR,
                                   'Connection failed: connection refused.')
        outcome = self.pool.handle(method, [self.session] + list(args))
        if outcome.kind == 'success':
            return outcome.value
        if outcome.kind == 'failure':
            raise errors.XapiError(*outcome.value)
        raise errors.XapiError(errors.INTERNAL_ERROR,
                               'Connection failed: %s.' % outcome.kind)

    def log(self, what, *args):
        """An HTTP request to the destination's xapi, by its path."""
        self.pool._log(what, args)


class _Plan(object):
    def __init__(self, vm, remote, intra_pool, vdis, vdi_map, vif_map):
        self.vm = vm
        self.remote = remote
        self.intra_pool = intra_pool
        self.vdis = vdis           # the VM's disks, in VBD order
        self.vdi_map = vdi_map
        self.vif_map = vif_map     # infer_vif_map's, cross-pool


def _remote_of_dest(ctx, dest):
    """``xapi_vm_migrate.ml`` ``remote_of_dest``: no call, only ``dest``.

    A missing key is ``List.assoc``'s ``Not_found``, ``INTERNAL_ERROR
    ["Not_found"]`` (``exnHelper.ml`` ``error_of_exn``). The destination
    is the pool at ``dest["master"]`` (``Helpers.make_remote_rpc``; in a
    mock without servers, the pool of ``dest["host"]``); its session and
    host are checked there, by the calls that use them.
    """
    if not isinstance(dest, dict):
        raise errors.XapiError(errors.INVALID_VALUE, 'dest', str(dest))
    for key in DEST_KEYS:
        if key not in dest:
            raise errors.XapiError(errors.INTERNAL_ERROR, 'Not_found')
    master = str(dest['master'])
    host = str(dest['host'])
    with ctx.world.lock:
        found = [p for p in ctx.world.pools.values() if p.url and
                 p.url == master]
        dest_pool = found[0] if found else ctx.world.pool_of_host(host)
    return _Remote(dest_pool, str(dest['session_id']), host)


def _option(options, key):
    # xapi_vm_migrate.ml: try bool_of_string (List.assoc key options)
    # with _ -> false
    return isinstance(options, dict) and options.get(key) == 'true'


def _check_power(ctx, vm, live):
    # message_forwarding.ml with_vm_operation: migrate_send needs Running
    rec = ctx.db.get('VM', vm)
    if live and rec['power_state'] != 'Running':
        raise errors.XapiError(errors.VM_BAD_POWER_STATE, vm, 'running',
                               rec['power_state'].lower())


def _vm_vdis(db, vm):
    """The VM's disks, in VBD order.

    ``xapi_vm_migrate.ml`` ``vdi_filter`` and ``get_vdi_mirror``.
    """
    found = []
    for vbd in db.find('VBD', VM=vm):
        rec = db.get('VBD', vbd)
        if rec['empty'] or rec['type'] == 'CD':
            continue
        db.get('VDI', rec['VDI'])      # HANDLE_INVALID ["VDI", ref]
        found.append(rec['VDI'])
    return found


def _check_vdi_map(vdis, vdi_map):
    # xapi_vm_migrate.ml check_vdi_map: VDI_NOT_IN_MAP [vdi]
    for vdi in vdis:
        if vdi not in vdi_map:
            raise errors.XapiError(errors.VDI_NOT_IN_MAP, vdi)


def _platform_version(software_version):
    """``helpers.ml`` ``version_of``: ``platform_version`` as ints."""
    text = software_version.get('platform_version',
                                DEFAULT_PLATFORM_VERSION)
    try:
        return [int(part) for part in text.split('.')]
    except ValueError:
        raise errors.XapiError(errors.INTERNAL_ERROR,
                               'Failure("int_of_string")')


def _versions_not_decreasing(source, dest):
    """``helpers.ml`` ``host_versions_not_decreasing``.

    ``compare_int_lists`` maps over both lists: versions of different
    lengths are ``List.map2``'s ``Invalid_argument``.
    """
    if len(source) != len(dest):
        raise errors.XapiError(errors.INTERNAL_ERROR,
                               'Invalid argument: List.map2')
    return source <= dest


def _assert_sr_support_operations(ctx, remote, vdi_map):
    """``xapi_vm_migrate.ml`` ``assert_sr_support_operations``.

    The destination's SM records, then ``is_sr_matching`` for every
    mapped disk (``SR.get_uuid`` with ``relax-xsm-sr-check`` on, else the
    refs), then the checks of every disk that does not match.
    """
    src = ctx.db
    sm_records = remote.call('SM.get_all_records')
    moving = []
    for vdi, dest_sr in vdi_map.items():
        with ctx.world.lock:
            src_sr = src.get('VDI', vdi)['SR']   # HANDLE_INVALID ["VDI"]
            src_sr_uuid = src.get('SR', src_sr)['uuid']
        if ctx.pool.relax_xsm_sr_check:
            matching = remote.call('SR.get_uuid', dest_sr) == src_sr_uuid
        else:
            matching = src_sr == dest_sr
        if not matching:
            moving.append((src_sr, dest_sr))
    for src_sr, dest_sr in moving:
        # op_supported_on_source_sr
        with ctx.world.lock:
            src_type = src.get('SR', src_sr)['type']
        if not storage.supports(src_type, 'VDI_MIRROR', 'VDI_SNAPSHOT'):
            raise errors.XapiError(errors.SR_DOES_NOT_SUPPORT_MIGRATION,
                                   src_sr)
        # op_supported_on_dest_sr: the one SM record of the SR's type
        dest_type = remote.call('SR.get_type', dest_sr)
        plugins = [rec for rec in sm_records.values()
                   if rec['type'] == dest_type]
        capabilities = plugins[0]['capabilities'] if len(plugins) == 1 \
            else []
        if not {'VDI_MIRROR', 'VDI_SNAPSHOT'} <= set(capabilities):
            raise errors.XapiError(errors.SR_DOES_NOT_SUPPORT_MIGRATION,
                                   dest_sr)


def _infer_vif_map(db, vifs, vif_map):
    """``xapi_vm_migrate.ml`` ``infer_vif_map``: every VIF's network.

    A VIF not in ``vif_map`` takes the network of a mapped VIF with the
    same MAC, else ``VIF_NOT_IN_MAP [vif]``.
    """
    mapped_macs = [(db.get('VIF', vif)['MAC'], network)
                   for vif, network in vif_map.items()]
    inferred = {}
    for vif in vifs:
        if vif in vif_map:
            inferred[vif] = vif_map[vif]
            continue
        mac = db.get('VIF', vif)['MAC']
        similar = [network for m, network in mapped_macs if m == mac]
        if not similar:
            raise errors.XapiError(errors.VIF_NOT_IN_MAP, vif)
        inferred[vif] = similar[0]
    return inferred


def _assert_enough_pcpus(rec, host, cpu_info):
    """``xapi_vm_helpers.ml`` ``assert_enough_pcpus``.

    Real hosts always report ``cpu_count``; the mock's scenario hosts
    report no ``cpu_info`` unless a test sets one, and then nothing is
    compared.
    """
    if 'cpu_count' not in cpu_info:
        return
    vcpus, pcpus = int(rec['VCPUs_max']), int(cpu_info['cpu_count'])
    if vcpus > pcpus and \
            rec['platform'].get('vcpu-unrestricted') != 'true':
        raise errors.XapiError('HOST_NOT_ENOUGH_PCPUS', str(vcpus),
                               str(pcpus))


def _assert_can_migrate(ctx, vm, dest, vdi_map, vif_map, options):
    """``xapi_vm_migrate.ml`` ``assert_can_migrate`` and the sender's.

    As ``message_forwarding.ml`` ``VM.assert_can_migrate`` runs them:
    ``Local.VM.assert_can_migrate``, then ``assert_can_migrate_sender``.
    """
    remote = _remote_of_dest(ctx, dest)
    force = _option(options, 'force')
    src = ctx.db
    with ctx.world.lock:
        rec = dict(src.get('VM', vm))
        source_host = rec['resident_on']
        if source_host == model.NULL_REF:
            source_host = ctx.pool.master
        source_version = _platform_version(
            src.get('host', source_host)['software_version'])
        vdis = _vm_vdis(src, vm)
        _check_vdi_map(vdis, vdi_map)
        # migration_type: the destination host is in this database
        intra_pool = src.has('host', remote.host)
        if intra_pool:
            dest_version = _platform_version(
                src.get('host', remote.host)['software_version'])
    if intra_pool:
        # helpers.ml host_versions_not_decreasing, LocalObject
        if not _versions_not_decreasing(source_version, dest_version):
            raise errors.XapiError('NOT_SUPPORTED_DURING_UPGRADE')
        _assert_sr_support_operations(ctx, remote, vdi_map)
        with ctx.world.lock:
            # xapi_vm_helpers.ml assert_can_boot_here ~do_sr_check:false:
            # assert_host_is_enabled (the mock models no other of its
            # checks)
            if not src.get('host', remote.host)['enabled']:
                raise errors.XapiError('HOST_DISABLED', remote.host)
        if vif_map:
            # xapi_vm_migrate.ml assert_can_migrate, `intra_pool
            raise errors.XapiError(
                errors.OPERATION_NOT_ALLOWED, 'VIF mapping is not allowed '
                'for intra-pool migration -all VIFs must be on the same '
                'network')
        return _Plan(vm, remote, True, vdis, vdi_map, vif_map)
    # helpers.ml host_versions_not_decreasing, RemoteObject
    dest_version = _platform_version(
        remote.call('host.get_software_version', remote.host))
    if not _versions_not_decreasing(source_version, dest_version):
        raise errors.XapiError('VM_HOST_INCOMPATIBLE_VERSION_MIGRATE', vm,
                               remote.host)
    _assert_sr_support_operations(ctx, remote, vdi_map)
    # xapi_vm_helpers.ml assert_hardware_platform_support (RemoteObject);
    # the mock's VMs need version 0, which every host offers
    remote.call('host.get_virtual_hardware_platform_versions', remote.host)
    # xapi_vm_migrate.ml assert_can_migrate, `cross_pool: XenAPI.Host.
    # get_enabled of the destination host
    if not remote.call('host.get_enabled', remote.host):
        raise errors.XapiError('HOST_DISABLED', remote.host)
    if not force and rec['power_state'] != 'Halted':
        # cpuid_helpers.ml assert_vm_is_compatible ~remote; the mock's VMs
        # have no last_boot_CPU_flags to compare
        remote.call('host.get_cpu_info', remote.host)
    _assert_enough_pcpus(rec, remote.host,
                         remote.call('host.get_cpu_info', remote.host))
    with ctx.world.lock:
        inferred = _infer_vif_map(src, src.find('VIF', VM=vm), vif_map)
    # xapi_vm_migrate.ml inter_pool_metadata_transfer ~dry_run:true
    _import_metadata(ctx, remote, vm, {}, inferred, dry_run=True)
    if rec['power_state'] != 'Halted':
        # xapi_pgpu_helpers.ml assert_destination_has_pgpu_compatible_with_vm
        # (assert_can_migrate_sender, ~remote): the host's pGPUs
        remote.call('host.get_PGPUs', remote.host)
    return _Plan(vm, remote, False, vdis, vdi_map, inferred)


def _import_metadata(ctx, remote, vm, target_vdi, vif_map, dry_run):
    """``importexport.ml`` ``remote_metadata_export_import``.

    A task on the destination, ``/import_metadata`` (its handler imports
    the VM, or only checks it on a dry run, and completes the task),
    ``Cli_util.wait_for_task_completion`` (``event.register``,
    ``task.get_status``, ``event.unregister``), the task's status and
    result or error, and ``task.destroy`` in any case. Returns the new VM,
    or None on a dry run.
    """
    task = remote.call('task.create', 'VM metadata import', '')
    try:
        remote.log('/import_metadata', 'restore=true', 'live=true',
                   'dry_run=%s' % str(dry_run).lower(),
                   'export_snapshots=true')
        with ctx.world.lock:
            try:
                new_vm = _import_on_destination(ctx, remote, vm, target_vdi,
                                                vif_map, dry_run)
                outcome = {'status': 'success', 'result': pool_mod.
                           task_result([] if dry_run else [new_vm])}
            except errors.XapiError as exc:
                new_vm = None
                outcome = {'status': 'failure',
                           'error_info': exc.description}
            ddb = remote.pool.db
            if ddb.has('task', task):
                ddb.get('task', task).update(outcome, progress='1.0')
        remote.call('event.register', ['task'])
        try:
            remote.call('task.get_status', task)
        finally:
            remote.call('event.unregister', ['task'])
        status = remote.call('task.get_status', task)
        if status in ('cancelling', 'cancelled'):
            raise errors.XapiError(errors.TASK_CANCELLED, task)
        if status == 'pending':
            raise errors.XapiError(errors.INTERNAL_ERROR,
                                   'wait_for_task_completion failed; task '
                                   'is still pending')
        if status == 'failure':
            raise errors.XapiError(*remote.call('task.get_error_info',
                                                task))
        remote.call('task.get_result', task)
    finally:
        remote.call('task.destroy', task)
    return new_vm


def _import_on_destination(ctx, remote, vm, target_vdi, vif_map, dry_run):
    """The destination's ``/import_metadata`` handler (``import.ml``)."""
    sdb, ddb = ctx.db, remote.pool.db
    for network in vif_map.values():
        ddb.get('network', network)
    if dry_run:
        return None
    rec = sdb.get('VM', vm)
    fields = {k: v for k, v in rec.items() if k in model.SCHEMA['VM']}
    fields.update(resident_on=model.NULL_REF, power_state='Halted',
                  domid='-1')
    new_vm = ddb.create('VM', **fields)
    for vbd in sdb.find('VBD', VM=vm):
        # import.ml VBD handler: currently_attached is kept
        vrec = dict(sdb.get('VBD', vbd))
        vrec['VM'] = new_vm
        vrec['VDI'] = target_vdi.get(vrec['VDI'], model.NULL_REF)
        ddb.create('VBD', **vrec)
    for vif in sdb.find('VIF', VM=vm):
        frec = dict(sdb.get('VIF', vif))
        frec.update(VM=new_vm, network=vif_map[vif])
        ddb.create('VIF', **frec)
    return new_vm


def _args(args):
    vm, dest, live, vdi_map, vif_map, options = args[:6]
    return (vm, dest, live, dict(vdi_map or {}), dict(vif_map or {}),
            options)


@api.message('VM.assert_can_migrate', 6, 7, locking=api.LOCK_SELF)
def assert_can_migrate(ctx, *args):
    # message_forwarding.ml VM.assert_can_migrate: no VM operation, no
    # cancellation point
    vm, dest, live, vdi_map, vif_map, options = _args(args)
    with ctx.world.lock:
        ctx.db.get('VM', vm)
    _assert_can_migrate(ctx, vm, dest, vdi_map, vif_map, options)
    return ''


@api.message('VM.migrate_send', 6, 8, locking=api.LOCK_SELF)
def migrate_send(ctx, *args):
    # message_forwarding.ml VM.migrate_send: with_vm_operation, then
    # VM.assert_can_migrate in a subtask, then xapi_vm_migrate.ml
    # migrate_send: with_migrate around migrate_send'
    vm, dest, live, vdi_map, vif_map, options = _args(args)
    with ctx.world.lock:
        ctx.db.get('VM', vm)
    with ctx.world.vm_operation(vm, 'migrate_send',
                                ctx.pool.sr_busy_timeout):
        with ctx.world.lock:
            _check_power(ctx, vm, live)
            host = ctx.db.get('VM', vm)['resident_on']
        plan = _assert_can_migrate(ctx, vm, dest, vdi_map, vif_map,
                                   options)
        with ctx.pool.storage_migration_slot(host):
            ctx.sleep_latency()
            return _execute(ctx, plan)


def _plug_destination_pbds(remote, dest_sr):
    """Plug the SR on the pool master and the destination host.

    ``xapi_vm_migrate.ml`` ``vdi_copy_fun``: every PBD's host first, then
    ``host.get_enabled`` of those on the master or the destination host,
    then their plugging.
    """
    pool_ref = remote.call('pool.get_all')[0]
    master = remote.call('pool.get_master', pool_ref)
    pbd_hosts = [(pbd, remote.call('PBD.get_host', pbd))
                 for pbd in remote.call('SR.get_PBDs', dest_sr)]
    to_plug = [pbd for pbd, host in pbd_hosts
               if host in (master, remote.host) and
               remote.call('host.get_enabled', host)]
    for pbd in to_plug:
        if not remote.call('PBD.get_currently_attached', pbd):
            remote.call('PBD.plug', pbd)


def _dest_vdi_exists_on_sr(remote, vdi_uuid, dest_sr):
    """``xapi_vm_migrate.ml`` ``dest_vdi_exists_on_sr``: one scan."""
    for retry in (True, False):
        try:
            ref = remote.call('VDI.get_by_uuid', vdi_uuid)
            return remote.call('VDI.get_SR', ref) == dest_sr
        except errors.XapiError:
            if not retry:
                return False
            remote.call('SR.scan', dest_sr)     # its error propagates
    return False


def _execute(ctx, plan):
    """``xapi_vm_migrate.ml`` ``migrate_send'`` from its remote calls on."""
    world, sdb, remote = ctx.world, ctx.db, plan.remote
    # the destination's default and suspend-image SRs, for the snapshot
    # and suspend VDIs not in the map (the mock's VMs have neither)
    pool_ref = remote.call('pool.get_all')[0]
    remote.call('pool.get_default_SR', pool_ref)
    remote.call('pool.get_suspend_image_SR', pool_ref)
    remote.call('host.get_suspend_image_sr', remote.host)
    try:
        with world.lock:
            # compare_fun: by virtual size, then snapshot_time (which the
            # mock does not keep); List.sort is stable
            vdis = sorted(plan.vdis, key=lambda vdi: int(
                sdb.get('VDI', vdi)['virtual_size']))
        result = _each_disk(ctx, plan, vdis, {})
        if not plan.intra_pool:
            with world.lock:
                vm_uuid = sdb.get('VM', plan.vm)['uuid']
            # xapi_message.ml send_messages: the VM's messages, by HTTP
            remote.log('/messages', 'cls=VM', 'uuid=%s' % vm_uuid)
            with world.lock:
                # force_state_reset (devices detached), Db.VM.destroy: the
                # VM row only; its VIFs stay until db_gc
                for vif in sdb.find('VIF', VM=plan.vm):
                    sdb.get('VIF', vif)['currently_attached'] = False
                sdb.destroy('VM', plan.vm)
    except Exception:
        _cleanup(ctx, plan)
        raise
    return result


def _each_disk(ctx, plan, vdis, target):
    """``xapi_vm_migrate.ml`` ``with_many vdi_copy_fun``: disk by disk.

    The first disk wraps all the rest.

    ``target`` maps the source VDIs done so far to the destination's.
    Returns the VM on the destination.
    """
    if not vdis:
        return _move_vm(ctx, plan, target)
    world, sdb, remote = ctx.world, ctx.db, plan.remote
    vdi, rest = vdis[0], vdis[1:]
    with world.lock:
        ctx.exn_if_cancelling()
        rec = dict(sdb.get('VDI', vdi))
        src_sr = dict(sdb.get('SR', rec['SR']))
    dest_sr = plan.vdi_map[vdi]
    dest_sr_uuid = remote.call('SR.get_uuid', dest_sr)
    _plug_destination_pbds(remote, dest_sr)
    if ctx.pool.relax_xsm_sr_check:
        mirror = dest_sr_uuid != src_sr['uuid']
        if not mirror and not _dest_vdi_exists_on_sr(remote, rec['uuid'],
                                                     dest_sr):
            raise errors.XapiError(errors.INTERNAL_ERROR,
                                   NO_VDI_ON_DESTINATION)
    else:
        mirror = not plan.intra_pool or dest_sr_uuid != src_sr['uuid']
    if not mirror:
        # get_mirror_record: the destination's VDI of that uuid
        target[vdi] = remote.call('VDI.get_by_uuid', rec['uuid'])
        return _each_disk(ctx, plan, rest, target)
    copy_ref = _copy(ctx, plan, rec, src_sr, dest_sr, dest_sr_uuid)
    try:
        target[vdi] = copy_ref
        result = _each_disk(ctx, plan, rest, target)
        # post_mirror: the source VDI, through the source's own API
        # (Helpers.call_api_functions)
        _Remote(ctx.pool, ctx.session, None).call('VDI.destroy', vdi)
    except Exception:
        _destroy_copy(ctx, remote, copy_ref)
        raise
    return result


def _move_vm(ctx, plan, target):
    """``xapi_vm_migrate.ml`` ``migrate_send'``: ``with_many``'s rest."""
    world, sdb, remote = ctx.world, ctx.db, plan.remote
    with world.lock:
        ctx.exn_if_cancelling()
    if plan.intra_pool:
        new_vm = plan.vm
    else:
        new_vm = _import_metadata(ctx, remote, plan.vm, target,
                                  plan.vif_map, dry_run=False)
        # reserve resources for the new VM on the destination host
        remote.call('host.allocate_resources_for_vm', remote.host, new_vm,
                    True)
    remote.call('network.attach_for_vm', remote.host, new_vm)
    # the vif-map for xenops: each VIF's device and bridge
    for vif in remote.call('VM.get_VIFs', new_vm):
        network = remote.call('VIF.get_network', vif)
        remote.call('VIF.get_device', vif)
        remote.call('network.get_bridge', network)
    _infer_vgpu_map(ctx, plan, new_vm)
    if plan.intra_pool:
        # xenopsd on the destination host attaches every disk through
        # its SR there; modelled with assert_can_see_SRs' error
        with world.lock:
            _assert_can_see_srs(sdb, plan.vm, remote.host,
                                set(target.values()))
    with world.lock:
        ctx.exn_if_cancelling()
        ctx.set_cancellable(False)      # set_not_cancellable
    remote.call('VM.pool_migrate_complete', new_vm, remote.host)
    with world.lock:
        if plan.intra_pool:
            # intra_pool_vdi_remap
            for vbd in sdb.find('VBD', VM=plan.vm):
                vrec = sdb.get('VBD', vbd)
                if vrec['VDI'] in target:
                    vrec['VDI'] = target[vrec['VDI']]
        else:
            for vbd in sdb.find('VBD', VM=plan.vm):
                sdb.destroy('VBD', vbd)
    return new_vm


def _infer_vgpu_map(ctx, plan, new_vm):
    """``xapi_vm_migrate.ml`` ``infer_vgpu_map ~remote`` (no vGPUs here).

    Its failure is ``VM_MIGRATE_FAILED [vm uuid, source host uuid,
    destination host uuid, reason]``; xapi reads the destination host's
    uuid from its own database, so cross-pool that is ``HANDLE_INVALID
    ["host", ref]``.
    """
    remote = plan.remote
    try:
        remote.call('VM.get_VGPUs', new_vm)
    except errors.XapiError:
        with ctx.world.lock:
            if not plan.intra_pool:
                raise errors.XapiError(errors.HANDLE_INVALID, 'host',
                                       remote.host)
            rec = ctx.db.get('VM', plan.vm)
            source = ctx.db.get('host', rec['resident_on'])['uuid']
            dest = ctx.db.get('host', remote.host)['uuid']
            raise errors.XapiError('VM_MIGRATE_FAILED', rec['uuid'],
                                   source, dest, VGPU_MAPPING_FAILED)


def _copy(ctx, plan, rec, src_sr, dest_sr, dest_sr_uuid):
    """Mirror one VDI to the destination SR; return the new VDI's ref.

    ``xapi_vm_migrate.ml`` ``vdi_copy_fun`` ``mirror_to_remote`` (SMAPI,
    modelled as the new VDI), then ``with_remote_vdi``'s scan and lookup
    by location: ``VDI_LOCATION_MISSING [sr, location]``,
    ``LOCATION_NOT_UNIQUE``.
    """
    world, remote = ctx.world, plan.remote
    ddb = remote.pool.db
    new_uuid = str(uuid.uuid4())
    with world.lock:
        dsr = ddb.get('SR', dest_sr)
        if dsr['type'] == 'lvmoiscsi':
            _target, lun = storage.backend(world, ddb, dest_sr)
            lun.lvs[new_uuid] = int(rec['virtual_size'])
        ddb.create(
            'VDI', uuid=new_uuid, SR=dest_sr, name_label=rec['name_label'],
            name_description=rec['name_description'], type=rec['type'],
            virtual_size=rec['virtual_size'],
            physical_utilisation=rec['physical_utilisation'],
            other_config=rec['other_config'], location=new_uuid,
            managed=True)
        world.copies.append({
            'source_pool': ctx.pool.name,
            'destination_pool': remote.pool.name,
            'vdi_uuid': rec['uuid'],
            'source_sr_uuid': src_sr['uuid'],
            'destination_sr_uuid': dest_sr_uuid,
            'new_vdi_uuid': new_uuid,
            'vm_uuid': ctx.db.get('VM', plan.vm)['uuid'],
            'deleted': False,
        })
    remote.call('SR.scan', dest_sr)
    found = remote.call('VDI.get_all_records_where',
                        '(field "location"="%s") and (field "SR"="%s")'
                        % (new_uuid, dest_sr))
    if not found:
        raise errors.XapiError(errors.VDI_LOCATION_MISSING, dest_sr,
                               new_uuid)
    if len(found) > 1:
        raise errors.XapiError(errors.LOCATION_NOT_UNIQUE, dest_sr,
                               new_uuid)
    return list(found)[0]


def _destroy_copy(ctx, remote, copy_ref):
    """``vdi_copy_fun`` ``with_remote_vdi``'s handler, on the destination.

    ``XenAPI.VDI.destroy``; its failure is only logged: the copy stays
    (``VDI_IN_USE`` once the imported VM's attached VBD uses it).
    """
    with ctx.world.lock:
        ddb = remote.pool.db
        new_uuid = ddb.get('VDI', copy_ref)['uuid'] \
            if ddb.has('VDI', copy_ref) else None
    try:
        remote.call('VDI.destroy', copy_ref)
    except errors.XapiError:
        return
    with ctx.world.lock:
        for record in ctx.world.copies:
            if record['new_vdi_uuid'] == new_uuid:
                record['deleted'] = True


def _cleanup(ctx, plan):
    """``xapi_vm_migrate.ml`` ``migrate_send'``'s error handler.

    Cross-pool, while the source VM exists (``Db.is_valid_ref``), the VM of
    its uuid on the destination is destroyed (``VM.get_by_uuid``,
    ``VM.destroy``; errors are only logged); then ``exn_if_cancelling``.
    The copies went in :func:`_each_disk`.
    """
    remote = plan.remote
    with ctx.world.lock:
        vm_uuid = ctx.db.get('VM', plan.vm)['uuid'] \
            if ctx.db.has('VM', plan.vm) else None
    if not plan.intra_pool and vm_uuid is not None:
        try:
            stale = remote.call('VM.get_by_uuid', vm_uuid)
            remote.call('VM.destroy', stale)
        except errors.XapiError:
            pass
    with ctx.world.lock:
        ctx.exn_if_cancelling()


@api.message('VM.pool_migrate_complete', 2)
def pool_migrate_complete(ctx, vm, host):
    # xapi_vm_migrate.ml pool_migrate_complete: resident on the host
    rec = ctx.db.get('VM', vm)
    ctx.db.get('host', host)
    if rec['domid'] == '-1':
        rec['domid'] = str(next(_DOMIDS))
    rec.update(resident_on=host, power_state='Running')
    return ''


@api.message('VM.destroy', 1)
def vm_destroy(ctx, vm):
    # xapi_vm.ml destroy: a halted VM; its VBDs and VIFs go with it
    rec = ctx.db.get('VM', vm)
    if rec['power_state'] != 'Halted':
        raise errors.XapiError(errors.VM_BAD_POWER_STATE, vm, 'halted',
                               rec['power_state'].lower())
    for cls in ('VBD', 'VIF'):
        for ref in ctx.db.find(cls, VM=vm):
            ctx.db.destroy(cls, ref)
    ctx.db.destroy('VM', vm)
    return ''


# -- what the source's xapi asks the destination during a migration --------

@api.message('host.get_virtual_hardware_platform_versions', 1)
def host_get_virtual_hardware_platform_versions(ctx, host):
    # xapi_globs.ml host_virtual_hardware_platform_versions, set on every
    # host at start-up (the mock's model has no such field)
    ctx.db.get('host', host)
    return list(VIRTUAL_HARDWARE_PLATFORM_VERSIONS)


@api.message('host.get_PGPUs', 1)
def host_get_pgpus(ctx, host):
    # the host's PGPU records (a computed field, PGPU.host)
    ctx.db.get('host', host)
    return ctx.db.find('PGPU', host=host)


@api.message('VM.get_VGPUs', 1)
def vm_get_vgpus(ctx, vm):
    # the mock has no VGPU records
    ctx.db.get('VM', vm)
    return []


@api.message('host.allocate_resources_for_vm', 3)
def host_allocate_resources_for_vm(ctx, host, vm, live):
    # message_forwarding.ml Host.allocate_resources_for_vm ->
    # allocate_vm_to_host: the mock models no memory to reserve
    ctx.db.get('host', host)
    ctx.db.get('VM', vm)
    return ''


@api.message('network.attach_for_vm', 2)
def network_attach_for_vm(ctx, host, vm):
    # xapi_network.ml attach_for_vm: each VIF's network on the host
    # (bridges are not modelled)
    ctx.db.get('host', host)
    ctx.db.get('VM', vm)
    return ''


@api.message('event.register', 1)
def event_register(ctx, classes):
    # xapi_event.ml register (Cli_util.track, for the import's task)
    return ''


@api.message('event.unregister', 1)
def event_unregister(ctx, classes):
    # xapi_event.ml unregister
    return ''


def _assert_can_see_srs(db, vm, host, vdis):
    """``xapi_vm_helpers.ml`` ``assert_can_see_SRs``: ``VM_REQUIRES_SR``.

    Every SR of ``vdis`` needs a plugged PBD on ``host``
    (``which_specified_SRs_not_available_on_host``).
    """
    visible = {db.get('PBD', pbd)['SR'] for pbd in db.find('PBD', host=host)
               if db.get('PBD', pbd)['currently_attached']}
    for vdi in vdis:
        sr = db.get('VDI', vdi)['SR']
        if sr not in visible:
            raise errors.XapiError(errors.VM_REQUIRES_SR, vm, sr)


@api.message('VM.pool_migrate', 3)
def pool_migrate(ctx, vm, host, options):
    db = ctx.db
    rec = db.get('VM', vm)
    db.get('host', host)
    if rec['power_state'] != 'Running':
        raise errors.XapiError(errors.VM_BAD_POWER_STATE, vm, 'running',
                               rec['power_state'].lower())
    # message_forwarding.ml pool_migrate -> assert_can_boot_here
    # ~do_sr_check:true -> assert_can_see_SRs (non-empty VBDs)
    vdis = [db.get('VBD', vbd)['VDI'] for vbd in db.find('VBD', VM=vm)
            if not db.get('VBD', vbd)['empty']]
    _assert_can_see_srs(db, vm, host, vdis)
    ctx.pool._log('VM.pool_migrate_complete', (vm, host))
    return pool_migrate_complete(ctx, vm, host)
