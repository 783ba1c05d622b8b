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

"""Cross-pool migration with xapi's storage-motion rule.

``host.migrate_receive`` (destination pool) hands out what the source needs
to reach it. ``VM.assert_can_migrate`` and ``VM.migrate_send`` (source
pool) then apply, in this order:

0. ``dest["host"]`` is a host of some pool (``HANDLE_INVALID``) and
   ``dest["session_id"]`` a live session of that pool (``SESSION_INVALID
   [session]``, which the SDK takes for its own session: it logs in again
   and gives up after three tries), as xapi reaches the destination with
   that session;
1. every non-empty, non-CD VBD's VDI is a key of ``vdi_map``
   (``VDI_NOT_IN_MAP [vdi]``); ``vdi_map`` values are SRs of the
   destination pool; every VIF is in ``vif_map`` when crossing pools
   (``VIF_NOT_IN_MAP [vif]``);
2. per ``(vdi, dest_sr)``, with the source pool's ``relax-xsm-sr-check``
   on: the same SR uuid on both sides means no copy, and the destination
   must hold a VDI of the same uuid on ``dest_sr`` (after one scan), else
   ``INTERNAL_ERROR`` (the uuid is looked up pool-wide, so a VDI of that
   uuid on another SR of the destination fails too); a different uuid
   (or the setting off) needs a mirror: the source SR type must support
   ``VDI_SNAPSHOT`` and ``VDI_MIRROR``, the destination ``VDI_SNAPSHOT``
   and ``VDI_MIRROR_IN``, else ``SR_DOES_NOT_SUPPORT_MIGRATION [sr]``
   before anything moves;
3. ``migrate_send`` only: at most 3 at once per source pool
   (``TOO_MANY_STORAGE_MIGRATES ["3"]``); mirrored VDIs are created on the
   destination SR, recorded in ``World.copies`` and destroyed on the
   source; the VM record (same uuid, new ref) moves with its VBDs (pointed
   at the destination VDIs) and VIFs to the destination pool and is
   removed from the source, so it is on exactly one pool afterwards.

Injected latency of ``VM.migrate_send`` is spent while holding a storage
migration slot, so tests can hold migrations in flight.
"""

import itertools
import uuid

from nova_xenapi_sr_tools.mockxapi import api
from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import model
from nova_xenapi_sr_tools.mockxapi import storage

_DOMIDS = itertools.count(100)


@api.message('host.migrate_receive', 3)
def migrate_receive(ctx, host, network, options):
    ctx.db.get('host', host)
    ctx.db.get('network', network)
    session = ctx.db.create('session', this_host=host,
                            originator='migrate_receive',
                            auth_user_name='root')
    url = ctx.pool.url or ''
    return {
        'SM': '%s/services/SM?session_id=%s' % (url, session),
        'host': host,
        'xenops': '%s/services/xenops?session_id=%s' % (url, session),
        'session_id': session,
        'master': url,
    }


class _Plan(object):
    def __init__(self, src_pool, dest_pool, vm_ref):
        self.src_pool = src_pool
        self.dest_pool = dest_pool
        self.vm_ref = vm_ref
        self.keep = []     # (src vdi ref, dest sr ref)
        self.mirror = []   # (src vdi ref, dest sr ref)


def _plan(ctx, vm, dest, live, vdi_map, vif_map):
    src = ctx.pool
    sdb = src.db
    vm_rec = sdb.get('VM', vm)
    if not isinstance(dest, dict) or 'host' not in dest:
        raise errors.XapiError(errors.INVALID_VALUE, 'dest', str(dest))
    dest_pool = ctx.world.pool_of_host(dest['host'])
    if dest_pool is None:
        raise errors.XapiError(errors.HANDLE_INVALID, 'host', dest['host'])
    # xapi talks to the destination with dest["session_id"] (remote_of_dest)
    dest_session = str(dest.get('session_id', ''))
    if not dest_pool.db.has('session', dest_session):
        raise errors.XapiError(errors.SESSION_INVALID, dest_session)
    if live and vm_rec['power_state'] != 'Running':
        raise errors.XapiError(errors.VM_BAD_POWER_STATE, vm, 'running',
                               vm_rec['power_state'].lower())
    ddb = dest_pool.db
    for vbd in sdb.find('VBD', VM=vm):
        rec = sdb.get('VBD', vbd)
        if rec['empty'] or rec['type'] == 'CD' or \
                rec['VDI'] == model.NULL_REF:
            continue
        if rec['VDI'] not in vdi_map:
            raise errors.XapiError(errors.VDI_NOT_IN_MAP, rec['VDI'])
    cross_pool = dest_pool is not src
    if cross_pool:
        for vif in sdb.find('VIF', VM=vm):
            if vif not in vif_map:
                raise errors.XapiError(errors.VIF_NOT_IN_MAP, vif)
            ddb.get('network', vif_map[vif])
    plan = _Plan(src, dest_pool, vm)
    for vdi, dest_sr in sorted(vdi_map.items()):
        src_sr = sdb.get('SR', sdb.get('VDI', vdi)['SR'])
        dsr = ddb.get('SR', dest_sr)
        if src.relax_xsm_sr_check and src_sr['uuid'] == dsr['uuid']:
            plan.keep.append((vdi, dest_sr))
            continue
        if not storage.supports(src_sr['type'], 'VDI_SNAPSHOT',
                                'VDI_MIRROR'):
            raise errors.XapiError(errors.SR_DOES_NOT_SUPPORT_MIGRATION,
                                   sdb.get('VDI', vdi)['SR'])
        if not storage.supports(dsr['type'], 'VDI_SNAPSHOT',
                                'VDI_MIRROR_IN'):
            raise errors.XapiError(errors.SR_DOES_NOT_SUPPORT_MIGRATION,
                                   dest_sr)
        plan.mirror.append((vdi, dest_sr))
    return plan


def _args(args):
    vm, dest, live, vdi_map, vif_map, options = args[:6]
    return vm, dest, live, dict(vdi_map or {}), dict(vif_map or {})


@api.message('VM.assert_can_migrate', 6, 7)
def assert_can_migrate(ctx, *args):
    _plan(ctx, *_args(args))
    return ''


def _dest_vdi(world, ddb, dest_sr, vdi_uuid, scanned):
    """The destination VDI for a same-SR-uuid mapping, as xapi finds it.

    VDI uuids are unique per pool, so xapi looks the uuid up across the
    whole destination pool (``VDI.get_by_uuid``), scanning ``dest_sr`` once
    if it is not found, and then requires the VDI to be *on* ``dest_sr``:
    a VDI of that uuid on another SR of the destination does not count.
    """
    found = ddb.find('VDI', uuid=vdi_uuid)
    if not found and dest_sr not in scanned:
        scanned.add(dest_sr)
        try:
            storage.scan(world, ddb, dest_sr)
        except errors.XapiError:
            pass
        found = ddb.find('VDI', uuid=vdi_uuid)
    if found and ddb.get('VDI', found[0])['SR'] == dest_sr:
        return found[0]
    raise errors.XapiError(errors.INTERNAL_ERROR,
                           'SR UUID matches on destination but VDI does not '
                           'exist')


@api.message('VM.migrate_send', 6, 8, locking=api.LOCK_SELF)
def migrate_send(ctx, *args):
    vm, dest, live, vdi_map, vif_map = _args(args)
    with ctx.pool.storage_migration_slot():
        ctx.sleep_latency()
        with ctx.world.lock:
            plan = _plan(ctx, vm, dest, live, vdi_map, vif_map)
            return _execute(ctx, plan, dest['host'], vif_map)


def _execute(ctx, plan, dest_host, vif_map):
    world = ctx.world
    sdb, ddb = plan.src_pool.db, plan.dest_pool.db
    scanned = set()
    target_vdi = {}
    for vdi, dest_sr in plan.keep:
        target_vdi[vdi] = _dest_vdi(world, ddb, dest_sr,
                                    sdb.get('VDI', vdi)['uuid'], scanned)
    for vdi, dest_sr in plan.mirror:
        rec = sdb.get('VDI', vdi)
        dsr = ddb.get('SR', dest_sr)
        new_uuid = str(uuid.uuid4())
        if dsr['type'] == 'lvmoiscsi':
            _target, lun = storage.backend(world, ddb, dest_sr)
            lun.lvs[new_uuid] = int(rec['virtual_size'])
        target_vdi[vdi] = ddb.create(
            'VDI', uuid=new_uuid, SR=dest_sr, name_label=rec['name_label'],
            name_description=rec['name_description'], type=rec['type'],
            virtual_size=rec['virtual_size'],
            physical_utilisation=rec['physical_utilisation'],
            other_config=rec['other_config'], location=new_uuid,
            managed=True)
        world.copies.append({
            'source_pool': plan.src_pool.name,
            'destination_pool': plan.dest_pool.name,
            'vdi_uuid': rec['uuid'],
            'source_sr_uuid': sdb.get('SR', rec['SR'])['uuid'],
            'destination_sr_uuid': dsr['uuid'],
            'new_vdi_uuid': new_uuid,
            'vm_uuid': sdb.get('VM', plan.vm_ref)['uuid'],
        })
    if plan.dest_pool is plan.src_pool:
        return _move_within_pool(sdb, plan.vm_ref, dest_host, target_vdi)
    new_vm = _move_vm(sdb, ddb, plan.vm_ref, dest_host, target_vdi, vif_map)
    for vdi, _dest_sr in plan.mirror:
        storage.destroy_vdi(world, sdb, vdi)
    return new_vm


def _move_within_pool(db, vm, host, target_vdi):
    for vbd in db.find('VBD', VM=vm):
        rec = db.get('VBD', vbd)
        if rec['VDI'] in target_vdi:
            rec['VDI'] = target_vdi[rec['VDI']]
    db.get('VM', vm)['resident_on'] = host
    return vm


def _move_vm(sdb, ddb, vm, host, target_vdi, vif_map):
    rec = sdb.get('VM', vm)
    fields = {k: v for k, v in rec.items() if k in model.SCHEMA['VM']}
    fields.update(resident_on=host, power_state='Running',
                  domid=str(next(_DOMIDS)))
    new_vm = ddb.create('VM', **fields)
    for vbd in sdb.find('VBD', VM=vm):
        vrec = dict(sdb.get('VBD', vbd))
        vrec['VM'] = new_vm
        vrec['VDI'] = target_vdi.get(vrec['VDI'], model.NULL_REF)
        ddb.create('VBD', **vrec)
        if vrec['VDI'] != model.NULL_REF:
            ddb.get('VDI', vrec['VDI'])['managed'] = True
        sdb.destroy('VBD', vbd)
    for vif in sdb.find('VIF', VM=vm):
        frec = dict(sdb.get('VIF', vif))
        frec.update(VM=new_vm, network=vif_map[vif])
        ddb.create('VIF', **frec)
        sdb.destroy('VIF', vif)
    sdb.destroy('VM', vm)
    return new_vm


@api.message('VM.pool_migrate', 3)
def pool_migrate(ctx, vm, host, options):
    ctx.db.get('VM', vm)
    ctx.db.get('host', host)
    return _move_within_pool(ctx.db, vm, host, {})
