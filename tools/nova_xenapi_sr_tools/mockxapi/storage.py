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

"""Storage: SRs, PBDs, VDIs and secrets, with xapi's and SM's rules.

Each rule names the xapi (``xen-api`` v1.249.42, ``ocaml/xapi``) or SM
(``sm`` v2.30.8, ``drivers``) source it follows; ``doc/source/mock-xapi.rst``
lists them all.

* ``SR.introduce`` (``xapi_sr.ml`` ``introduce``) makes a database record
  only, of any type; an existing uuid is ``SR_UUID_EXISTS [uuid]``.
* ``PBD.create``: ``*password`` keys become ``*password_secret`` twice
  over: ``message_forwarding.ml`` moves them into a secret
  (``Xapi_secret.move_passwds_to_secrets``) before any check, then
  ``xapi_pbd.ml`` ``create_common`` copies that secret into a second one
  (``duplicate_passwds``) and stores only the copy, so every CHAP
  ``PBD.create`` orphans one secret, as real xapi does, failed ones (an
  unknown SR, ``PBD_EXISTS [sr, host, pbd]`` for a second PBD of one SR
  and host) included. :attr:`Pool.xapi_orphaned_secrets` lists those refs,
  so a leak check can tell xapi's own leak from the client's. The host is
  not looked up (``Db.PBD.create`` checks no reference).
* ``PBD.plug`` first binds the SR's SM plugin, attached or not: a type
  with no plugin is ``SR_UNKNOWN_DRIVER [type]`` (``storage_access.ml``
  ``bind`` -> ``check_queue_exists``). Then plug and ``PBD.unplug`` are
  idempotent. Plug of an SR that is not ``shared`` and already attached
  on another host is ``SR_NOT_SHARABLE [sr, host]`` (``xapi_pbd.ml``
  ``check_sharing_constraint``); then SM's iSCSI
  checks in ``BaseISCSI.py`` ``load``/``attach`` order: no target (95), bad
  port (142), no targetIQN (96), nothing at the portal (141), login refused
  (68: IQN not at the portal or CHAP wrong), and for ``lvmoiscsi`` no such
  LUN (107). Unplug with VDIs of the SR attached to VMs on that host is
  ``VDI_IN_USE [vdi, ...]``, VM by VM in descending ref order
  (``get_active_vdis_by_pbd``); an attached VBD whose VDI is gone is
  ``HANDLE_INVALID ["VDI", ref]`` there, as its ``Db.VDI.get_SR`` fails.
* ``SR.scan`` needs a plugged PBD (``SR_NO_PBDS [sr]``). SM's ``SR.py``
  ``ScanRecord`` compares what the backend shows with the SR's VDI records
  by *location*: new ones are introduced (``synchronise_new`` ->
  ``VDI.db_introduce``), then vanished ones forgotten (``synchronise_gone``),
  whether or not VBDs use them. A raw ``iscsi`` VDI has the uuid SM derives
  from the LUN's SCSI serial, ``location`` equal to that uuid, ``sm_config``
  ``LUNid``, ``SCSIid`` and ``backend-kind``, and is ``managed``
  (``RawISCSISR.py`` ``ISCSIVDI.load``, ``LUNperVDI.py`` ``_query``). VDI
  uuids are unique in xapi's database (``db_cache_types.ml``): a new LUN
  whose uuid another SR of the pool already shows fails the
  ``db_introduce``, and ``SRCommand.py`` ``run`` reports the scan as
  ``SRScan``: ``SR_BACKEND_FAILURE_40``. So in one pool a legacy SR and a
  uuid5 SR cannot both hold LUNs of one target. On ``lvmoiscsi`` the VDIs
  are the logical volumes on the LUN.
* ``SR.forget`` with a PBD attached is ``SR_HAS_PBD [sr]``; otherwise it
  removes the SR, its PBDs (and their secrets) and VDIs (``xapi_sr.ml``
  ``really_forget``). VBDs of those VDIs stay until the database GC
  (:mod:`.gc`).
* ``VDI.introduce`` (``xapi_vdi.ml`` ``introduce``) needs a plugged PBD
  (``SR_NO_PBDS``); a VDI of the SR at the same location with another
  uuid is ``LOCATION_NOT_UNIQUE [sr, location]``. On raw ``iscsi``, SM's
  ``LUNperVDI.py`` ``introduce`` finds the LUN by ``sm_config`` ``LUNid``
  (else ``SR_BACKEND_FAILURE_46``) and uses the LUN's own uuid, whatever
  uuid was passed: an existing record of the SR is marked managed and
  returned; a record of that uuid on another SR of the pool makes xapi's
  ``update_vdi_db`` fail on the uuid (``INTERNAL_ERROR``). Other SR types
  check the uuid as ``introduce_dbonly`` does (``UUID_INVALID ["VDI",
  uuid]``; its ``Scanf`` pattern takes one or two hex digits per byte).
* ``VDI.forget`` destroys the record only, unless a VBD has it attached
  (``xapi_vdi.ml`` ``check_operation_error``: ``VDI_IN_USE [vdi,
  "forget"]``). ``VDI.destroy`` checks the SR's SM features
  (``SR_OPERATION_NOT_SUPPORTED [sr]``: raw ``iscsi`` cannot delete a LUN),
  then attached VBDs (``VDI_IN_USE [vdi, "destroy"]``), a plugged PBD
  (``SR_NO_PBDS``) and ``managed`` (``VDI_NOT_MANAGED``), and takes the
  VDI's VBDs with it.
* ``PBD.destroy`` of a plugged PBD is ``OPERATION_NOT_ALLOWED ["PBD is
  currently attached"]`` (``xapi_pbd.ml`` ``destroy``).
* ``scan``, ``forget``, ``PBD.plug`` and ``PBD.unplug`` mark the SR
  (``message_forwarding.ml`` ``with_sr_marked``); one waits for another
  and gives up after the pool's ``sr_busy_timeout`` (xapi's
  ``Helpers.retry`` standard policy: 2 hours) with
  ``OTHER_OPERATION_IN_PROGRESS ["SR", sr, op]``. Injected latency is
  spent while holding the mark.
"""

import re

from nova_xenapi_sr_tools.mockxapi import api
from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import model

ISCSI_TYPES = ('iscsi', 'lvmoiscsi')

_MIRROR = {'VDI_CREATE', 'VDI_DELETE', 'VDI_ATTACH', 'VDI_DETACH',
           'VDI_SNAPSHOT', 'VDI_CLONE', 'VDI_MIRROR', 'VDI_MIRROR_IN',
           'SR_SCAN', 'SR_PROBE', 'VDI_INTRODUCE'}

#: SM features per SR type (each driver's ``CAPABILITIES``). Raw ``iscsi``
#: (``RawISCSISR.py``, one LUN per VDI) can neither snapshot nor mirror, so
#: storage motion that needs a copy is refused.
SM_FEATURES = {
    'iscsi': {'VDI_ATTACH', 'VDI_DETACH', 'VDI_INTRODUCE', 'SR_SCAN',
              'SR_PROBE'},
    'lvmoiscsi': _MIRROR,
    'lvmohba': _MIRROR,
    'lvm': _MIRROR,
    'ext': _MIRROR,
    'nfs': _MIRROR,
    'iso': {'VDI_ATTACH', 'VDI_DETACH', 'SR_SCAN'},
    'udev': {'VDI_ATTACH', 'VDI_DETACH', 'SR_SCAN'},
}


def supports(sr_type, *features):
    return set(features) <= SM_FEATURES.get(sr_type, set())


def _plugged_pbds(db, sr_ref):
    return [ref for ref in db.find('PBD', SR=sr_ref)
            if db.get('PBD', ref)['currently_attached']]


def _require_plugged(db, sr_ref):
    # sm.ml assert_pbd_is_plugged: SR_NO_PBDS [sr]
    db.get('SR', sr_ref)
    pbds = _plugged_pbds(db, sr_ref)
    if not pbds:
        raise errors.XapiError(errors.SR_NO_PBDS, sr_ref)
    return pbds[0]


def resolved_device_config(db, pbd_ref):
    """``device_config`` with secrets read back (for the SM "backend")."""
    config = dict(db.get('PBD', pbd_ref)['device_config'])
    for key in [k for k in config if k.endswith('password_secret')]:
        secret_uuid = config.pop(key)
        try:
            secret = db.get('secret', db.by_uuid('secret', secret_uuid))
            config[key[:-len('_secret')]] = secret['value']
        except errors.XapiError:
            pass
    return config


def iscsi_target(world, config):
    """Check an iSCSI ``device_config``; return the array's target.

    The order of SM's checks: ``BaseISCSI.py`` ``load`` (target, port,
    targetIQN), then ``attach`` (portal reachable, login).
    """
    if not config.get('target'):
        raise errors.sm_error('ConfigTargetMissing')
    port = config.get('port') or '3260'
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise errors.sm_error('ISCSIPort')
    if not 1 <= port <= 65535:
        raise errors.sm_error('ISCSIPort')
    if not config.get('targetIQN'):
        raise errors.sm_error('ConfigTargetIQNMissing')
    address, iqn = config['target'], config['targetIQN']
    if not world.array.portal_exists(address, port):
        raise errors.sm_error('ISCSITarget')
    target = world.array.target(address, port, iqn)
    if target is None:
        raise errors.sm_error('ISCSILogin', 'no target %s at %s:%d' %
                              (iqn, address, port))
    if target.chap and (config.get('chapuser'),
                        config.get('chappassword')) != target.chap:
        raise errors.sm_error('ISCSILogin', 'CHAP authentication failed')
    return target


def _lun_of(world, target, config):
    # LVHDoISCSISR.py load: the SCSIid must name a LUN of the target
    wanted = config.get('SCSIid')
    for lun in world.array.luns(target):
        if lun.scsi_id == wanted:
            return lun
    raise errors.sm_error('ConfigSCSIid')


def backend(world, db, sr_ref):
    """The SM view of an SR: ``(target, lun)`` for iSCSI types."""
    sr = db.get('SR', sr_ref)
    if sr['type'] not in ISCSI_TYPES:
        return None, None
    pbd = _require_plugged(db, sr_ref)
    config = resolved_device_config(db, pbd)
    target = iscsi_target(world, config)
    lun = _lun_of(world, target, config) if sr['type'] == 'lvmoiscsi' else None
    return target, lun


# -- SR --------------------------------------------------------------------

@api.message('SR.introduce', 6, 7,
             kinds=('string', 'string', 'string', 'string', 'string', 'bool',
                    'smap'))
def sr_introduce(ctx, sr_uuid, name_label, name_description, sr_type,
                 content_type, shared, sm_config=None):
    # xapi_sr.ml introduce: an empty uuid gets a fresh one; the type is
    # lower-cased and not checked (an unknown one fails at PBD.plug); a
    # taken uuid is SR_UUID_EXISTS [uuid]
    sr_type = sr_type.lower()
    if not sr_uuid:
        sr_uuid = model.new_uuid()
    if ctx.db.find('SR', uuid=sr_uuid):
        raise errors.XapiError(errors.SR_UUID_EXISTS, sr_uuid)
    return ctx.db.create('SR', uuid=sr_uuid, name_label=name_label,
                         name_description=name_description, type=sr_type,
                         content_type=content_type, shared=bool(shared),
                         physical_size='-1', physical_utilisation='-1',
                         sm_config={str(k): str(v) for k, v in
                                    (sm_config or {}).items()})


@api.message('SR.set_shared', 2, kinds=('string', 'bool'))
def sr_set_shared(ctx, sr_ref, value):
    # xapi_sr.ml set_shared: true always; false with several PBDs is
    # SR_HAS_MULTIPLE_PBDS [pbd, ...]
    ctx.db.get('SR', sr_ref)
    pbds = ctx.db.find('PBD', SR=sr_ref)
    if not value and len(pbds) > 1:
        raise errors.XapiError('SR_HAS_MULTIPLE_PBDS', *pbds)
    ctx.db.get('SR', sr_ref)['shared'] = bool(value)
    return ''


def _sr_locked(operation):
    """Run an SR operation with the SR marked, then under the world lock."""
    def wrap(func):
        def handler(ctx, ref, *args):
            with ctx.world.sr_operation(ref, operation,
                                        ctx.pool.sr_busy_timeout):
                ctx.sleep_latency()
                with ctx.world.lock:
                    return func(ctx, ref, *args)
        return handler
    return wrap


def _scanned(world, db, sr_ref):
    """What SM's backend shows: ``[(location, uuid, fields)]``."""
    sr = db.get('SR', sr_ref)
    target, lun = backend(world, db, sr_ref)
    found = []
    if sr['type'] == 'iscsi':
        # LUNperVDI.py _query: uuid from the LUN serial, location = uuid
        for one in sorted(world.array.luns(target), key=lambda x: x.lun_id):
            found.append((one.vdi_uuid, one.vdi_uuid, dict(
                name_label='LUN%d' % one.lun_id, managed=True,
                sharable=False, virtual_size=str(one.size),
                physical_utilisation=str(one.size),
                sm_config={'LUNid': str(one.lun_id),
                           'SCSIid': one.scsi_id,
                           'backend-kind': 'vbd'})))
    elif sr['type'] == 'lvmoiscsi':
        for lv_uuid, size in sorted(lun.lvs.items()):
            found.append((lv_uuid, lv_uuid, dict(
                name_label='LV-%s' % lv_uuid[:8], managed=True,
                virtual_size=str(size), physical_utilisation=str(size))))
    return found


def duplicate_message(vdi_uuid):
    """SM's opterr for a ``VDI.db_introduce`` of a uuid already taken."""
    return str([errors.INTERNAL_ERROR,
                'Db_exn.Uniqueness_constraint_violation("VDI", "uuid", '
                '"%s")' % vdi_uuid])


def scan(world, db, sr_ref):
    """Bring the SR's VDI records in line with its backend (SM's scan)."""
    _require_plugged(db, sr_ref)
    sr = db.get('SR', sr_ref)
    if sr['type'] not in ISCSI_TYPES:
        return
    found = _scanned(world, db, sr_ref)
    # SR.py ScanRecord: records of this SR, keyed by location
    known = {db.get('VDI', ref)['location']: ref
             for ref in db.find('VDI', SR=sr_ref)}
    present = set(location for location, _, _ in found)
    # synchronise_new first: VDI.db_introduce, uuid unique per database
    for location, vdi_uuid, fields in found:
        if location in known:
            continue
        if db.find('VDI', uuid=vdi_uuid):
            raise errors.sm_error('SRScan', duplicate_message(vdi_uuid))
        db.create('VDI', uuid=vdi_uuid, SR=sr_ref, location=location,
                  **fields)
    # synchronise_gone: forgotten whether or not VBDs use them
    for location, ref in sorted(known.items()):
        if location not in present:
            db.destroy('VDI', ref)


def scan_conflict(world, db, sr_ref):
    """Why ``SR.scan`` of this SR would fail on a duplicate, or None.

    ``(vdi_uuid, other SR ref)`` for the first LUN that another SR of the
    pool already shows. For builders that must not create what a scan
    could not keep.
    """
    found = _scanned(world, db, sr_ref)
    known = {db.get('VDI', ref)['location']
             for ref in db.find('VDI', SR=sr_ref)}
    for location, vdi_uuid, _ in found:
        if location in known:
            continue
        for ref in db.find('VDI', uuid=vdi_uuid):
            return vdi_uuid, db.get('VDI', ref)['SR']
    return None


@api.message('SR.scan', 1, locking=api.LOCK_SELF, kinds=('string',))
@_sr_locked('scan')
def sr_scan(ctx, ref):
    scan(ctx.world, ctx.db, ref)
    return ''


@api.message('SR.forget', 1, locking=api.LOCK_SELF, kinds=('string',))
@_sr_locked('forget')
def sr_forget(ctx, ref):
    forget(ctx.db, ref)
    return ''


def forget(db, sr_ref):
    # xapi_sr_operations.ml check_any_attached_pbds: SR_HAS_PBD [sr];
    # xapi_sr.ml really_forget: PBDs (Xapi_pbd.destroy), VDIs, the SR
    db.get('SR', sr_ref)
    if _plugged_pbds(db, sr_ref):
        raise errors.XapiError(errors.SR_HAS_PBD, sr_ref)
    for pbd in db.find('PBD', SR=sr_ref):
        _destroy_pbd(db, pbd)
    for vdi in db.find('VDI', SR=sr_ref):
        # VBDs stay, pointing at the destroyed VDI, until db_gc
        db.destroy('VDI', vdi)
    db.destroy('SR', sr_ref)


# -- PBD ---------------------------------------------------------------------

@api.message('PBD.create', 1, kinds=(('record', 'PBD'),))
def pbd_create(ctx, record):
    # the dispatcher unmarshalled the record (host, SR, device_config;
    # other_config has a default): see unmarshal.CTOR_FIELDS
    db = ctx.db
    host, sr = record['host'], record['SR']
    config = dict(record['device_config'])
    # message_forwarding.ml PBD.create: move_passwds_to_secrets before
    # anything else; whatever follows, no record will refer to these
    # secrets (duplicate_passwds stores copies), so they are xapi's leak
    for key in [k for k in config if k.endswith('password')]:
        secret = db.create('secret', value=config.pop(key))
        config[key + '_secret'] = db.get('secret', secret)['uuid']
        ctx.pool.xapi_orphaned_secrets.append(secret)
    # with_sr_marked ~op:`pbd_create -> Xapi_sr_operations.
    # assert_operation_valid reads the SR: HANDLE_INVALID ["SR", ref]
    db.get('SR', sr)
    # xapi_pbd.ml create_common: PBD_EXISTS [sr, host, pbd]
    for existing in db.find('PBD', SR=sr, host=host):
        raise errors.XapiError(errors.PBD_EXISTS, sr, host, existing)
    # xapi_secret.ml duplicate_passwds: a copy per secret is stored
    for key in [k for k in config if k.endswith('password_secret')]:
        first = db.by_uuid('secret', config[key])
        copy = db.create('secret', value=db.get('secret', first)['value'])
        config[key] = db.get('secret', copy)['uuid']
    # create_common stores other_config:[] whatever the caller passed;
    # Db.PBD.create checks no reference, so an unknown host is stored
    # (db_gc.ml's gc_PBDs removes such a PBD)
    return db.create('PBD', host=host, SR=sr, device_config=config)


def _destroy_pbd(db, ref):
    # xapi_pbd.ml destroy: Xapi_secret.clean_out_passwds
    for key, value in db.get('PBD', ref)['device_config'].items():
        if key.endswith('password_secret'):
            for secret in db.find('secret', uuid=value):
                db.destroy('secret', secret)
    db.destroy('PBD', ref)


@api.message('PBD.destroy', 1, kinds=('string',))
def pbd_destroy(ctx, ref):
    # xapi_pbd.ml destroy: OPERATION_NOT_ALLOWED ["PBD is currently
    # attached"]; then the record, then clean_out_passwds
    if ctx.db.get('PBD', ref)['currently_attached']:
        raise errors.XapiError(errors.OPERATION_NOT_ALLOWED,
                               'PBD is currently attached')
    _destroy_pbd(ctx.db, ref)
    return ''


def _pbd_sr(ctx, ref):
    with ctx.world.lock:
        return ctx.db.get('PBD', ref)['SR']


def check_sharing_constraint(db, pbd):
    """``xapi_pbd.ml`` ``check_sharing_constraint``: ``SR_NOT_SHARABLE``."""
    sr = db.get('SR', pbd['SR'])
    if sr['shared']:
        return
    for other in db.find('PBD', SR=pbd['SR']):
        rec = db.get('PBD', other)
        if rec['currently_attached'] and rec['host'] != pbd['host']:
            raise errors.XapiError(errors.SR_NOT_SHARABLE, pbd['SR'],
                                   rec['host'])


def plug(world, db, ref):
    """Attach a PBD (``xapi_pbd.ml`` ``plug``), idempotent."""
    pbd = db.get('PBD', ref)
    sr = db.get('SR', pbd['SR'])
    # xapi_pbd.ml plug calls Storage_access.bind first, attached or not:
    # storage_access.ml external_rpc -> check_queue_exists finds no SM
    # plugin queue for the type: SR_UNKNOWN_DRIVER [type]
    if sr['type'] not in SM_FEATURES:
        raise errors.XapiError('SR_UNKNOWN_DRIVER', sr['type'])
    if pbd['currently_attached']:
        return
    check_sharing_constraint(db, pbd)
    if sr['type'] in ISCSI_TYPES:
        config = resolved_device_config(db, ref)
        target = iscsi_target(world, config)
        if sr['type'] == 'lvmoiscsi':
            _lun_of(world, target, config)
    pbd['currently_attached'] = True


@api.message('PBD.plug', 1, locking=api.LOCK_SELF, kinds=('string',))
def pbd_plug(ctx, ref):
    sr_ref = _pbd_sr(ctx, ref)
    with ctx.world.sr_operation(sr_ref, 'plug', ctx.pool.sr_busy_timeout):
        ctx.sleep_latency()
        with ctx.world.lock:
            plug(ctx.world, ctx.db, ref)
            return ''


def active_vdis(db, pbd):
    """VDIs of the PBD's SR in use on its host, as xapi lists them.

    ``xapi_pbd.ml`` ``get_active_vdis_by_pbd``: per VM resident on the
    host (``Db.VM.get_records_where``: descending ref order), per attached
    non-empty VBD, its VDI when that is on the SR (a VDI that is gone
    fails ``Db.VDI.get_SR``: ``HANDLE_INVALID``); metadata VDIs are left
    out by ``unplug``.
    """
    found = []
    for vm in model.xapi_order(db.find('VM', resident_on=pbd['host'])):
        for vbd in db.find('VBD', VM=vm):
            rec = db.get('VBD', vbd)
            if not rec['currently_attached'] or rec['empty']:
                continue
            vdi = db.get('VDI', rec['VDI'])
            if vdi['SR'] == pbd['SR'] and vdi['type'] != 'metadata':
                found.append(rec['VDI'])
    return found


@api.message('PBD.unplug', 1, locking=api.LOCK_SELF, kinds=('string',))
def pbd_unplug(ctx, ref):
    sr_ref = _pbd_sr(ctx, ref)
    with ctx.world.sr_operation(sr_ref, 'unplug', ctx.pool.sr_busy_timeout):
        ctx.sleep_latency()
        with ctx.world.lock:
            db = ctx.db
            pbd = db.get('PBD', ref)
            if not pbd['currently_attached']:
                return ''
            in_use = active_vdis(db, pbd)
            if in_use:
                raise errors.XapiError(errors.VDI_IN_USE, *in_use)
            pbd['currently_attached'] = False
            return ''


# -- VDI ---------------------------------------------------------------------

#: ``xapi_vdi.ml`` ``introduce_dbonly``: ``Scanf.sscanf uuid
#: "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x"``
#: (each ``%02x`` reads one or two hex digits; trailing text is ignored).
_UUID = re.compile(r'^(?:[0-9a-fA-F]{1,2}){4}-(?:[0-9a-fA-F]{1,2}){2}-'
                   r'(?:[0-9a-fA-F]{1,2}){2}-(?:[0-9a-fA-F]{1,2}){2}-'
                   r'(?:[0-9a-fA-F]{1,2}){6}')


def _introduced_lun(world, db, sr_ref, sm_config):
    """Raw iSCSI: the LUN ``sm_config['LUNid']`` names, else SM's 46.

    ``BaseISCSI.py`` ``_getLUNbySMconfig``: ``VDIUnavailable`` without a
    ``LUNid`` or when no such LUN is behind the target.
    """
    target, _lun = backend(world, db, sr_ref)
    try:
        wanted = int(sm_config.get('LUNid'))
    except (TypeError, ValueError):
        raise errors.sm_error('VDIUnavailable')
    for lun in world.array.luns(target):
        if lun.lun_id == wanted:
            return lun
    raise errors.sm_error('VDIUnavailable')


def _uniqueness(vdi_uuid):
    return errors.XapiError(
        errors.INTERNAL_ERROR, 'Db_exn.Uniqueness_constraint_violation'
        '("VDI", "uuid", "%s")' % vdi_uuid)


@api.message('VDI.introduce', 9, 11,
             kinds=('string', 'string', 'string', 'string', 'string', 'bool',
                    'bool', 'smap', 'string', 'smap', 'smap'))
def vdi_introduce(ctx, vdi_uuid, name_label, name_description, sr_ref,
                  vdi_type, sharable, read_only, other_config, location,
                  xenstore_data=None, sm_config=None):
    db = ctx.db
    _require_plugged(db, sr_ref)
    # xapi_vdi.ml introduce: location unique in the SR (same uuid allowed)
    for ref in db.find('VDI', SR=sr_ref, location=location):
        if db.get('VDI', ref)['uuid'] != vdi_uuid:
            raise errors.XapiError(errors.LOCATION_NOT_UNIQUE, sr_ref,
                                   location)
    sm_config = dict(sm_config or {})
    if db.get('SR', sr_ref)['type'] == 'iscsi':
        # LUNperVDI.py introduce: the LUN's own uuid and location
        lun = _introduced_lun(ctx.world, db, sr_ref, sm_config)
        mine = db.find('VDI', SR=sr_ref, location=lun.vdi_uuid)
        if mine:
            ref = mine[0]
        elif db.find('VDI', uuid=lun.vdi_uuid):
            # update_vdi_db finds no record at the location on this SR and
            # creates one: the uuid is taken
            raise _uniqueness(lun.vdi_uuid)
        else:
            ref = db.create('VDI', uuid=lun.vdi_uuid, SR=sr_ref,
                            location=lun.vdi_uuid,
                            name_label='LUN%d' % lun.lun_id,
                            virtual_size=str(lun.size),
                            physical_utilisation=str(lun.size),
                            sm_config={'LUNid': str(lun.lun_id),
                                       'SCSIid': lun.scsi_id,
                                       'backend-kind': 'vbd'})
        rec = db.get('VDI', ref)
        rec.update(managed=True, other_config=dict(other_config or {}),
                   xenstore_data=dict(xenstore_data or {}),
                   sharable=bool(sharable), type=vdi_type)
        if name_label:
            rec['name_label'] = name_label
        if name_description:
            rec['name_description'] = name_description
        return ref
    if not isinstance(vdi_uuid, str) or not _UUID.match(vdi_uuid):
        raise errors.XapiError(errors.UUID_INVALID, 'VDI', vdi_uuid)
    for ref in db.find('VDI', uuid=vdi_uuid, SR=sr_ref):
        rec = db.get('VDI', ref)
        if rec['location'] == location:
            rec['managed'] = True
            return ref
        raise errors.XapiError(errors.INVALID_VALUE, 'uuid', vdi_uuid)
    if db.find('VDI', uuid=vdi_uuid):
        raise _uniqueness(vdi_uuid)
    return db.create('VDI', uuid=vdi_uuid, name_label=name_label,
                     name_description=name_description, SR=sr_ref,
                     type=vdi_type, sharable=bool(sharable),
                     read_only=bool(read_only),
                     other_config=dict(other_config or {}),
                     location=location,
                     xenstore_data=dict(xenstore_data or {}),
                     sm_config=sm_config, managed=True)


def _attached_vbds(db, vdi_ref):
    return db.find('VBD', VDI=vdi_ref, currently_attached=True)


@api.message('VDI.forget', 1, kinds=('string',))
def vdi_forget(ctx, ref):
    # message_forwarding.ml VDI.forget marks the VDI: xapi_vdi.ml
    # check_operation_error refuses an operation that cannot run live
    # while a VBD has the VDI attached: VDI_IN_USE [vdi, "forget"]; then
    # xapi_vdi.ml forget destroys the record only (VBDs keep pointing at
    # it until db_gc)
    ctx.db.get('VDI', ref)
    if _attached_vbds(ctx.db, ref):
        raise errors.XapiError(errors.VDI_IN_USE, ref, 'forget')
    ctx.db.destroy('VDI', ref)
    return ''


def destroy_vdi(world, db, ref):
    """Destroy a VDI and, for LVM-on-iSCSI, its logical volume.

    ``message_forwarding.ml`` ``VDI.destroy`` marks the SR, then the VDI
    (``with_sr_andor_vdi``), then ``xapi_vdi.ml``
    ``destroy_and_data_destroy_common`` runs; in that order:
    ``Xapi_sr_operations`` ``check_sm_features`` (no ``VDI_DELETE``:
    ``SR_OPERATION_NOT_SUPPORTED [sr]``, a raw iSCSI LUN cannot be deleted
    through its SR), ``check_operation_error`` (an attached VBD:
    ``VDI_IN_USE [vdi, "destroy"]``), ``Sm.assert_pbd_is_plugged``
    (``SR_NO_PBDS [sr]``), ``assert_managed`` (``VDI_NOT_MANAGED
    [vdi]``); then SM deletes the volume and the VDI's VBDs are destroyed
    with it.
    """
    rec = db.get('VDI', ref)
    sr = db.get('SR', rec['SR'])
    if not supports(sr['type'], 'VDI_DELETE'):
        raise errors.XapiError('SR_OPERATION_NOT_SUPPORTED', rec['SR'])
    if _attached_vbds(db, ref):
        raise errors.XapiError(errors.VDI_IN_USE, ref, 'destroy')
    _require_plugged(db, rec['SR'])
    if not rec['managed']:
        raise errors.XapiError('VDI_NOT_MANAGED', ref)
    if sr['type'] == 'lvmoiscsi':
        _target, lun = backend(world, db, rec['SR'])
        lun.lvs.pop(rec['uuid'], None)
    for vbd in db.find('VBD', VDI=ref):
        db.destroy('VBD', vbd)
    db.destroy('VDI', ref)


@api.message('VDI.destroy', 1, kinds=('string',))
def vdi_destroy(ctx, ref):
    destroy_vdi(ctx.world, ctx.db, ref)
    return ''


# -- secret ------------------------------------------------------------------

@api.message('secret.create', 1, kinds=(('record', 'secret'),))
def secret_create(ctx, record):
    # xapi_secret.ml create: value (no default) and other_config
    return ctx.db.create('secret', value=record['value'],
                         other_config=dict(record.get('other_config') or {}))


@api.message('secret.destroy', 1, kinds=('string',))
def secret_destroy(ctx, ref):
    # xapi_secret.ml destroy: Db.Secret.destroy (HANDLE_INVALID for a ref
    # not in the table)
    ctx.db.destroy('secret', ref)
    return ''
