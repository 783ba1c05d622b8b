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
pool as xapi does, with ``dest["session_id"]`` through the destination's
own API: those calls go through the destination pool's dispatcher, so they
appear in its call log and meet its injected faults.

``VM.migrate_send``, in xapi's order:

1. the VM may migrate (``with_vm_operation``: one operation per VM at a
   time, a second waits and fails after the pool's ``sr_busy_timeout``
   with ``OTHER_OPERATION_IN_PROGRESS ["VM", vm, op]``;
   ``VM_BAD_POWER_STATE`` for a live migration of a VM that is not
   running);
2. ``VM.assert_can_migrate`` (below), in a subtask;
3. a storage-migration slot of the source host's xapi (``with_migrate``):
   ``TOO_MANY_STORAGE_MIGRATES ["3"]``;
4. per disk (``vdi_copy_fun``), at a cancellation point: the destination
   SR's uuid, then the destination pool's master and the destination host
   get their unplugged PBDs of that SR plugged (``PBD.plug``; its error
   propagates); then keep or copy: with the source pool's
   ``relax-xsm-sr-check`` on, the same SR uuid on both sides keeps the disk
   when ``VDI.get_by_uuid`` finds it on the destination SR, after one
   ``SR.scan`` of that SR if it is not found at all (the scan's error
   propagates; a VDI of that uuid on another SR is no match, without a
   scan), else ``INTERNAL_ERROR ["SR UUID matches on destination but VDI
   does not exist"]``; a different uuid is copied. With the setting off, a
   disk is copied unless the migration stays in the pool and on the same
   SR (``mirror = not is_intra_pool || dest_sr <> vconf.sr``). A copy is a
   new VDI on the destination SR, recorded in ``World.copies``, then an
   ``SR.scan`` of that SR;
5. cross-pool: the VM metadata goes to the destination (``/import_metadata``
   in its call log), the VM there is completed (``VM.pool_migrate_complete``
   after the last cancellation point; the task is not cancellable from
   here on), the source's VBDs are destroyed and its VM record too
   (``force_state_reset``, ``Db.VM.destroy``): the source's **VIF records
   stay**, pointing at a VM that is gone, until the database GC
   (:mod:`.gc`). Intra-pool: the VBDs are pointed at the copies and the VM
   is resident on the destination host. Copied source VDIs are destroyed
   (``post_mirror``) in both cases;
6. on a failure after the destination got something, xapi's cleanup: the
   stale VM on the destination is destroyed (``VM.get_by_uuid``,
   ``VM.destroy`` in its log) and copies made for this migration are
   deleted.

``VM.assert_can_migrate``: the destination session
(``remote_of_dest``: ``SESSION_INVALID [session]``), then every non-empty,
non-CD VBD's VDI exists (``get_vdi_mirror``: ``HANDLE_INVALID ["VDI",
ref]`` for a VBD whose VDI is gone) and is a key of ``vdi_map``
(``check_vdi_map``: ``VDI_NOT_IN_MAP [vdi]``), all before any call to the
destination; then (``assert_sr_support_operations``) every disk that does
not stay on its SR needs ``VDI_MIRROR`` and ``VDI_SNAPSHOT`` on the source
SR and on the destination SR's SM (``SR_DOES_NOT_SUPPORT_MIGRATION
[sr]``); intra-pool a ``vif_map`` is ``OPERATION_NOT_ALLOWED``; cross-pool
the destination host must be enabled (``HOST_DISABLED``), every VIF mapped
(``VIF_NOT_IN_MAP [vif]``) and the metadata import dry run pass.

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
from nova_xenapi_sr_tools.mockxapi import storage

_DOMIDS = itertools.count(100)

#: ``xapi_vm_migrate.ml`` ``vdi_copy_fun``'s failure for a kept disk.
NO_VDI_ON_DESTINATION = ('SR UUID matches on destination but VDI does not '
                         'exist')


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
    """The destination as xapi's ``remote_of_dest`` reaches it."""

    def __init__(self, pool, session, host):
        self.pool = pool
        self.session = session
        self.host = host

    def call(self, method, *args):
        """Call the destination pool's API (logged there, faults apply)."""
        outcome = self.pool.handle(method, [self.session] + list(args))
        if outcome.kind == 'success':
            return outcome.value
        if outcome.kind == 'failure':
            raise errors.XapiError(*outcome.value)
        raise errors.XapiError(errors.INTERNAL_ERROR,
                               'Connection failed: %s.' % outcome.kind)

    def log(self, what, *args):
        self.pool._log(what, args)


class _Plan(object):
    def __init__(self, vm, remote, intra_pool, vdis, vdi_map, vif_map):
        self.vm = vm
        self.remote = remote
        self.intra_pool = intra_pool
        self.vdis = vdis           # the VM's disks, in VBD order
        self.vdi_map = vdi_map
        self.vif_map = vif_map


def _remote_of_dest(ctx, dest):
    if not isinstance(dest, dict) or 'host' not in dest:
        raise errors.XapiError(errors.INVALID_VALUE, 'dest', str(dest))
    dest_pool = ctx.world.pool_of_host(dest['host'])
    if dest_pool is None:
        raise errors.XapiError(errors.HANDLE_INVALID, 'host', dest['host'])
    session = str(dest.get('session_id', ''))
    with ctx.world.lock:
        if not dest_pool.db.has('session', session):
            raise errors.XapiError(errors.SESSION_INVALID, session)
    return _Remote(dest_pool, session, dest['host'])


def _check_power(ctx, vm, live):
    # message_forwarding.ml with_vm_operation: migrate_send needs Running
    rec = ctx.db.get('VM', vm)
    if live and rec['power_state'] != 'Running':
        raise errors.XapiError(errors.VM_BAD_POWER_STATE, vm, 'running',
                               rec['power_state'].lower())


def _vm_vdis(db, vm):
    """``vdi_filter``/``get_vdi_mirror``: the VM's disks, in VBD order."""
    found = []
    for vbd in db.find('VBD', VM=vm):
        rec = db.get('VBD', vbd)
        if rec['empty'] or rec['type'] == 'CD':
            continue
        db.get('VDI', rec['VDI'])      # HANDLE_INVALID ["VDI", ref]
        found.append(rec['VDI'])
    return found


def _assert_can_migrate(ctx, vm, dest, live, vdi_map, vif_map):
    remote = _remote_of_dest(ctx, dest)
    intra_pool = remote.pool is ctx.pool
    src = ctx.db
    with ctx.world.lock:
        vdis = _vm_vdis(src, vm)
        for vdi in vdis:                            # check_vdi_map
            if vdi not in vdi_map:
                raise errors.XapiError(errors.VDI_NOT_IN_MAP, vdi)
        for vdi in vdi_map:
            src.get('VDI', vdi)
        src_srs = {vdi: src.get('VDI', vdi)['SR'] for vdi in vdi_map}
        src_sr_uuid = {vdi: src.get('SR', sr)['uuid']
                       for vdi, sr in src_srs.items()}
        src_sr_type = {vdi: src.get('SR', sr)['type']
                       for vdi, sr in src_srs.items()}
    # assert_sr_support_operations: only disks whose SR does not match
    sm_records = remote.call('SM.get_all_records')
    for vdi, dest_sr in vdi_map.items():
        if ctx.pool.relax_xsm_sr_check:
            matching = remote.call('SR.get_uuid', dest_sr) == \
                src_sr_uuid[vdi]
        else:
            matching = intra_pool and src_srs[vdi] == dest_sr
        if matching:
            continue
        if not storage.supports(src_sr_type[vdi], 'VDI_MIRROR',
                                'VDI_SNAPSHOT'):
            raise errors.XapiError(errors.SR_DOES_NOT_SUPPORT_MIGRATION,
                                   src_srs[vdi])
        dest_type = remote.call('SR.get_type', dest_sr)
        capabilities = [c for rec in sm_records.values()
                        if rec['type'] == dest_type
                        for c in rec['capabilities']]
        if not {'VDI_MIRROR', 'VDI_SNAPSHOT'} <= set(capabilities):
            raise errors.XapiError(errors.SR_DOES_NOT_SUPPORT_MIGRATION,
                                   dest_sr)
    if intra_pool:
        if vif_map:
            raise errors.XapiError(
                errors.OPERATION_NOT_ALLOWED, 'VIF mapping is not allowed '
                'for intra-pool migration -all VIFs must be on the same '
                'network')
    else:
        if not remote.call('host.get_enabled', remote.host):
            raise errors.XapiError('HOST_DISABLED', remote.host)
        with ctx.world.lock:
            vifs = src.find('VIF', VM=vm)
        for vif in vifs:                             # infer_vif_map
            if vif not in vif_map:
                raise errors.XapiError(errors.VIF_NOT_IN_MAP, vif)
        # inter_pool_metadata_transfer ~dry_run:true (HTTP import)
        _import_metadata(ctx, remote, vm, vdi_map, vif_map, dry_run=True)
    return _Plan(vm, remote, intra_pool, vdis, vdi_map, vif_map)


def _import_metadata(ctx, remote, vm, target_vdi, vif_map, dry_run):
    """``/import_metadata`` on the destination; the new VM unless dry."""
    remote.log('/import_metadata', 'dry_run=%s' % str(dry_run).lower())
    sdb, ddb = ctx.db, remote.pool.db
    with ctx.world.lock:
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
    return vm, dest, live, dict(vdi_map or {}), dict(vif_map or {})


@api.message('VM.assert_can_migrate', 6, 7, locking=api.LOCK_SELF)
def assert_can_migrate(ctx, *args):
    vm, dest, live, vdi_map, vif_map = _args(args)
    with ctx.world.lock:
        ctx.db.get('VM', vm)
    _assert_can_migrate(ctx, vm, dest, live, vdi_map, vif_map)
    return ''


@api.message('VM.migrate_send', 6, 8, locking=api.LOCK_SELF)
def migrate_send(ctx, *args):
    vm, dest, live, vdi_map, vif_map = _args(args)
    with ctx.world.lock:
        ctx.db.get('VM', vm)
    with ctx.world.vm_operation(vm, 'migrate_send',
                                ctx.pool.sr_busy_timeout):
        with ctx.world.lock:
            _check_power(ctx, vm, live)
            host = ctx.db.get('VM', vm)['resident_on']
        plan = _assert_can_migrate(ctx, vm, dest, live, vdi_map, vif_map)
        with ctx.pool.storage_migration_slot(host):
            ctx.sleep_latency()
            return _execute(ctx, plan)


def _plug_destination_pbds(remote, dest_sr):
    """``vdi_copy_fun``: plug the SR on the pool master and dest host."""
    pool_ref = remote.call('pool.get_all')[0]
    master = remote.call('pool.get_master', pool_ref)
    for pbd in remote.call('SR.get_PBDs', dest_sr):
        host = remote.call('PBD.get_host', pbd)
        if host not in (master, remote.host) or \
                not remote.call('host.get_enabled', host):
            continue
        if not remote.call('PBD.get_currently_attached', pbd):
            remote.call('PBD.plug', pbd)


def _dest_vdi_on_sr(remote, vdi_uuid, dest_sr):
    """``dest_vdi_exists_on_sr``: the destination VDI, or None."""
    for attempt in (True, False):
        try:
            ref = remote.call('VDI.get_by_uuid', vdi_uuid)
            found_sr = remote.call('VDI.get_SR', ref)
        except errors.XapiError:
            if attempt:
                remote.call('SR.scan', dest_sr)     # its error propagates
                continue
            return None
        return ref if found_sr == dest_sr else None
    return None


def _execute(ctx, plan):
    world, sdb, remote = ctx.world, ctx.db, plan.remote
    target_vdi = {}
    copies = []        # (source VDI, destination VDI) of this migration
    new_vm = None
    try:
        for vdi in plan.vdis:
            with world.lock:
                ctx.exn_if_cancelling()
                rec = dict(sdb.get('VDI', vdi))
                src_sr = sdb.get('SR', rec['SR'])
            dest_sr = plan.vdi_map[vdi]
            dest_sr_uuid = remote.call('SR.get_uuid', dest_sr)
            _plug_destination_pbds(remote, dest_sr)
            if ctx.pool.relax_xsm_sr_check:
                if dest_sr_uuid == src_sr['uuid']:
                    kept = _dest_vdi_on_sr(remote, rec['uuid'], dest_sr)
                    if kept is None:
                        raise errors.XapiError(errors.INTERNAL_ERROR,
                                               NO_VDI_ON_DESTINATION)
                    target_vdi[vdi] = kept
                    continue
            elif plan.intra_pool and rec['SR'] == dest_sr:
                target_vdi[vdi] = vdi
                continue
            target_vdi[vdi] = _copy(ctx, plan, vdi, rec, src_sr, dest_sr,
                                    dest_sr_uuid)
            copies.append((vdi, target_vdi[vdi]))
        if plan.intra_pool:
            # xenopsd on the destination host attaches every disk through
            # its SR there; modelled with assert_can_see_SRs' error
            with world.lock:
                _assert_can_see_srs(sdb, plan.vm, remote.host,
                                    set(target_vdi.values()))
        else:
            new_vm = _import_metadata(ctx, remote, plan.vm, target_vdi,
                                      plan.vif_map, dry_run=False)
        with world.lock:
            ctx.exn_if_cancelling()
            ctx.set_cancellable(False)      # the point of no return
        result = new_vm if new_vm is not None else plan.vm
        remote.call('VM.pool_migrate_complete', result, remote.host)
    except Exception:
        _cleanup(ctx, plan, new_vm, copies)
        raise
    with world.lock:
        if plan.intra_pool:
            for vbd in sdb.find('VBD', VM=plan.vm):
                vrec = sdb.get('VBD', vbd)
                if vrec['VDI'] in target_vdi:
                    vrec['VDI'] = target_vdi[vrec['VDI']]
        else:
            for vbd in sdb.find('VBD', VM=plan.vm):
                sdb.destroy('VBD', vbd)
        for vdi, _copy_ref in copies:
            storage.destroy_vdi(world, sdb, vdi)       # post_mirror
        if not plan.intra_pool:
            # force_state_reset (devices detached), Db.VM.destroy: the VM
            # row only; its VIFs stay until db_gc
            for vif in sdb.find('VIF', VM=plan.vm):
                sdb.get('VIF', vif)['currently_attached'] = False
            sdb.destroy('VM', plan.vm)
    return result


def _copy(ctx, plan, vdi, rec, src_sr, dest_sr, dest_sr_uuid):
    """Mirror one VDI to the destination SR; return the new VDI's ref."""
    world, remote = ctx.world, plan.remote
    ddb = remote.pool.db
    new_uuid = str(uuid.uuid4())
    with world.lock:
        dsr = ddb.get('SR', dest_sr)
        if dsr['type'] == 'lvmoiscsi':
            _target, lun = storage.backend(world, ddb, dest_sr)
            lun.lvs[new_uuid] = int(rec['virtual_size'])
        ref = ddb.create(
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
    # with_remote_vdi: a scan, then the VDI by location
    remote.call('SR.scan', dest_sr)
    found = remote.call('VDI.get_all_records_where',
                        '(field "location"="%s") and (field "SR"="%s")'
                        % (new_uuid, dest_sr))
    if not found:
        raise errors.XapiError(errors.VDI_LOCATION_MISSING, dest_sr,
                               new_uuid)
    return ref


def _cleanup(ctx, plan, new_vm, copies):
    """xapi's tidy-up after a failed ``migrate_send`` (best effort)."""
    remote = plan.remote
    if new_vm is not None:
        try:
            vm_uuid = remote.pool.db.get('VM', new_vm)['uuid']
            stale = remote.call('VM.get_by_uuid', vm_uuid)
            remote.call('VM.destroy', stale)
        except errors.XapiError:
            pass
    for _vdi, copy_ref in copies:
        with ctx.world.lock:
            ddb = remote.pool.db
            if ddb.has('VDI', copy_ref):
                new_uuid = ddb.get('VDI', copy_ref)['uuid']
                try:
                    storage.destroy_vdi(ctx.world, ddb, copy_ref)
                except errors.XapiError:
                    continue
                for record in ctx.world.copies:
                    if record['new_vdi_uuid'] == new_uuid:
                        record['deleted'] = True


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
