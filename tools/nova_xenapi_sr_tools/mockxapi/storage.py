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

"""Storage: SRs, PBDs, VDIs and secrets, with xapi's rules.

* ``SR.introduce`` makes a database record only (no PBDs); an existing
  uuid is ``SR_UUID_EXISTS [uuid]``.
* ``PBD.create`` makes an unattached PBD; a second one for the same SR
  and host is ``PBD_EXISTS [sr, host, pbd]``. ``device_config`` values
  whose key ends in ``password`` are moved into a ``secret`` and the key
  is replaced by ``<key>_secret`` holding the secret's uuid, as xapi does;
  reading ``device_config`` back therefore shows ``chappassword_secret``,
  never the password. ``PBD.plug`` reads the secret back to log in.
* ``PBD.plug`` / ``PBD.unplug`` are idempotent. Plug checks iSCSI
  ``device_config`` against the shared array (``SR_BACKEND_FAILURE_<n>``:
  95 no target, 96 no targetIQN, 142 bad port, 141 nothing at the portal,
  68 login refused: IQN not at the portal or CHAP wrong/missing, 107 no
  such LUN for ``lvmoiscsi``). Unplug with VDIs of the SR attached to VMs
  on that host is ``VDI_IN_USE [vdi, ...]``, naming every such VDI (per
  VM resident on the host, per attached VBD), as ``xapi_pbd.ml`` does.
* ``SR.scan`` needs a plugged PBD (``SR_NO_PBDS [sr]``). On a raw
  ``iscsi`` SR it makes one VDI per LUN behind the target (uuid from the
  LUN serial, ``sm_config`` ``LUNid`` and ``SCSIid``, ``managed`` false
  until ``VDI.introduce``) and drops records of vanished LUNs. On
  ``lvmoiscsi`` the VDIs are the logical volumes on the LUN (shared by all
  pools that reach it).
* ``SR.forget`` with a PBD still attached is ``SR_HAS_PBD [sr]``;
  otherwise it removes the SR, its PBDs (and their secrets) and VDIs.
  VBDs of those VDIs are left in place, pointing at the destroyed VDI, as
  ``xapi_sr.ml`` ``forget`` does; ``Pool.inspect()`` lists them under
  ``dangling_VBDs``.
* ``VDI.introduce`` (``xapi_vdi.ml``) needs a plugged PBD; a VDI of the
  SR at the same location with another uuid is ``LOCATION_NOT_UNIQUE
  [sr, location]``; a uuid that is not one is ``UUID_INVALID ["VDI",
  uuid]``; on a raw ``iscsi`` SR, ``sm_config`` ``LUNid`` must name a LUN
  behind the target (else the SM's ``SR_BACKEND_FAILURE_46``, "The VDI is
  not available"); an existing VDI of the SR with the same uuid and
  location is marked managed and its ref returned; the same uuid at
  another location of the SR is ``INVALID_VALUE ["uuid", uuid]``; a uuid
  held by a VDI of another SR of the pool is the database's uniqueness
  failure (``INTERNAL_ERROR``).
* VDI uuids are unique per pool, as in xapi's database. A LUN reached
  through two SRs of one pool (a legacy SR and a uuid5 SR on the same
  target, as mixed-style instances have) can therefore have a VDI record
  in only one of them: ``SR.scan`` does not create a record whose uuid
  already exists elsewhere in the pool, it skips that LUN (one target
  cannot hold the same LUN twice, so the other SR already shows it). Same
  for the logical volumes of ``lvmoiscsi``.
* ``VDI.forget`` destroys the record only (VBDs keep the dead ref);
  ``PBD.destroy`` of a plugged PBD is ``OPERATION_NOT_ALLOWED ["PBD is
  currently attached"]``.
* ``scan``, ``forget``, ``PBD.plug`` and ``PBD.unplug`` are serialised per
  SR; injected latency for them is spent while holding the SR's lock.
"""

import re

from nova_xenapi_sr_tools.mockxapi import api
from nova_xenapi_sr_tools.mockxapi import errors

ISCSI_TYPES = ('iscsi', 'lvmoiscsi')

_MIRROR = {'VDI_CREATE', 'VDI_DELETE', 'VDI_ATTACH', 'VDI_DETACH',
           'VDI_SNAPSHOT', 'VDI_CLONE', 'VDI_MIRROR', 'VDI_MIRROR_IN',
           'SR_SCAN', 'SR_PROBE', 'VDI_INTRODUCE'}

#: SM features per SR type. Raw ``iscsi`` (one LUN per VDI) can neither
#: snapshot nor mirror, so storage motion that needs a copy is refused.
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
    """Check an iSCSI ``device_config``; return ``(target, port, iqn)``."""
    if not config.get('target'):
        raise errors.backend_failure(errors.ISCSI_TARGET_MISSING,
                                     'The request is missing the target '
                                     'parameter')
    if not config.get('targetIQN'):
        raise errors.backend_failure(errors.ISCSI_IQN_MISSING,
                                     'The request is missing or has an '
                                     'incorrect target IQN parameter')
    try:
        port = int(config.get('port', '3260'))
    except (TypeError, ValueError):
        port = 0
    if not 1 <= port <= 65535:
        raise errors.backend_failure(errors.ISCSI_PORT_INVALID,
                                     'Incorrect value for iSCSI port, must '
                                     'be a number between 1 and 65535')
    address, iqn = config['target'], config['targetIQN']
    if not world.array.portal_exists(address, port):
        raise errors.backend_failure(errors.ISCSI_SERVICE_ERROR,
                                     'Unable to connect to ISCSI service '
                                     'on target %s:%d' % (address, port))
    target = world.array.target(address, port, iqn)
    if target is None:
        raise errors.backend_failure(errors.ISCSI_LOGIN_FAILED,
                                     'Unable to login to iSCSI session: '
                                     'no target %s at %s:%d' %
                                     (iqn, address, port))
    if target.chap and (config.get('chapuser'),
                        config.get('chappassword')) != target.chap:
        raise errors.backend_failure(errors.ISCSI_LOGIN_FAILED,
                                     'Unable to login to iSCSI session: '
                                     'CHAP authentication failed')
    return target


def _lun_of(world, target, config):
    wanted = config.get('SCSIid')
    for lun in world.array.luns(target):
        if lun.scsi_id == wanted:
            return lun
    raise errors.backend_failure(107, 'The SCSIid parameter is missing or '
                                 'incorrect')


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

@api.message('SR.introduce', 6, 7)
def sr_introduce(ctx, sr_uuid, name_label, name_description, sr_type,
                 content_type, shared, sm_config=None):
    if ctx.db.find('SR', uuid=sr_uuid):
        raise errors.XapiError(errors.SR_UUID_EXISTS, sr_uuid)
    if sr_type not in SM_FEATURES:
        raise errors.XapiError('SR_UNKNOWN_DRIVER', sr_type)
    return ctx.db.create('SR', uuid=sr_uuid, name_label=name_label,
                         name_description=name_description, type=sr_type,
                         content_type=content_type, shared=bool(shared),
                         sm_config={str(k): str(v) for k, v in
                                    (sm_config or {}).items()})


def _sr_locked(operation):
    """Run an SR operation under the SR's lock, then the world lock."""
    def wrap(func):
        def handler(ctx, ref, *args):
            with ctx.world.sr_operation(ref, operation):
                ctx.sleep_latency()
                with ctx.world.lock:
                    return func(ctx, ref, *args)
        return handler
    return wrap


def scan(world, db, sr_ref):
    """Bring the SR's VDI records in line with its backend."""
    _require_plugged(db, sr_ref)
    sr = db.get('SR', sr_ref)
    target, lun = backend(world, db, sr_ref)
    if sr['type'] == 'iscsi':
        present = {}
        for found in world.array.luns(target):
            present[found.vdi_uuid] = found
        for ref in db.find('VDI', SR=sr_ref):
            rec = db.get('VDI', ref)
            if rec['uuid'] not in present and not db.find('VBD', VDI=ref):
                db.destroy('VDI', ref)
        for found in present.values():
            if db.find('VDI', uuid=found.vdi_uuid):
                continue  # on this SR already, or (uuids being unique
                #           per pool) shown by another SR of the pool
            db.create('VDI', uuid=found.vdi_uuid, SR=sr_ref,
                      name_label='LUN%d' % found.lun_id, managed=False,
                      sharable=False, location=found.scsi_id,
                      virtual_size=str(found.size),
                      physical_utilisation=str(found.size),
                      sm_config={'LUNid': str(found.lun_id),
                                 'SCSIid': found.scsi_id})
    elif sr['type'] == 'lvmoiscsi':
        for lv_uuid, size in list(lun.lvs.items()):
            if not db.find('VDI', uuid=lv_uuid):
                db.create('VDI', uuid=lv_uuid, SR=sr_ref, managed=True,
                          location=lv_uuid, virtual_size=str(size),
                          physical_utilisation=str(size),
                          name_label='LV-%s' % lv_uuid[:8])
        for ref in db.find('VDI', SR=sr_ref):
            if (db.get('VDI', ref)['uuid'] not in lun.lvs and
                    not db.find('VBD', VDI=ref)):
                db.destroy('VDI', ref)


@api.message('SR.scan', 1, locking=api.LOCK_SELF)
@_sr_locked('scan')
def sr_scan(ctx, ref):
    scan(ctx.world, ctx.db, ref)
    return ''


@api.message('SR.forget', 1, locking=api.LOCK_SELF)
@_sr_locked('forget')
def sr_forget(ctx, ref):
    forget(ctx.db, ref)
    return ''


def forget(db, sr_ref):
    db.get('SR', sr_ref)
    if _plugged_pbds(db, sr_ref):
        raise errors.XapiError(errors.SR_HAS_PBD, sr_ref)
    for pbd in db.find('PBD', SR=sr_ref):
        _destroy_pbd(db, pbd)
    for vdi in db.find('VDI', SR=sr_ref):
        # VBDs stay, pointing at the destroyed VDI, as in xapi
        db.destroy('VDI', vdi)
    db.destroy('SR', sr_ref)


# -- PBD ---------------------------------------------------------------------

@api.message('PBD.create', 1)
def pbd_create(ctx, record):
    db = ctx.db
    if not isinstance(record, dict):
        raise errors.XapiError(errors.FIELD_TYPE_ERROR, 'args')
    for key in ('host', 'SR', 'device_config'):
        if key not in record:
            raise errors.XapiError('FIELD_MISSING', key)
    host, sr = record['host'], record['SR']
    db.get('host', host)
    db.get('SR', sr)
    for existing in db.find('PBD', SR=sr, host=host):
        raise errors.XapiError(errors.PBD_EXISTS, sr, host, existing)
    config = {}
    for key, value in record['device_config'].items():
        config[str(key)] = value if isinstance(value, str) else str(value)
    for key in [k for k in config if k.endswith('password')]:
        secret = db.create('secret', value=config.pop(key))
        config[key + '_secret'] = db.get('secret', secret)['uuid']
    return db.create('PBD', host=host, SR=sr, device_config=config,
                     other_config=dict(record.get('other_config') or {}))


def _destroy_pbd(db, ref):
    for key, value in db.get('PBD', ref)['device_config'].items():
        if key.endswith('password_secret'):
            for secret in db.find('secret', uuid=value):
                db.destroy('secret', secret)
    db.destroy('PBD', ref)


@api.message('PBD.destroy', 1)
def pbd_destroy(ctx, ref):
    if ctx.db.get('PBD', ref)['currently_attached']:
        raise errors.XapiError(errors.OPERATION_NOT_ALLOWED,
                               'PBD is currently attached')
    _destroy_pbd(ctx.db, ref)
    return ''


def _pbd_sr(ctx, ref):
    with ctx.world.lock:
        return ctx.db.get('PBD', ref)['SR']


@api.message('PBD.plug', 1, locking=api.LOCK_SELF)
def pbd_plug(ctx, ref):
    sr_ref = _pbd_sr(ctx, ref)
    with ctx.world.sr_operation(sr_ref, 'plug'):
        ctx.sleep_latency()
        with ctx.world.lock:
            pbd = ctx.db.get('PBD', ref)
            if pbd['currently_attached']:
                return ''
            sr = ctx.db.get('SR', pbd['SR'])
            if sr['type'] in ISCSI_TYPES:
                config = resolved_device_config(ctx.db, ref)
                target = iscsi_target(ctx.world, config)
                if sr['type'] == 'lvmoiscsi':
                    _lun_of(ctx.world, target, config)
            pbd['currently_attached'] = True
            return ''


def active_vdis(db, pbd):
    """VDIs of the PBD's SR in use on its host, as xapi lists them.

    Per VM resident on the host, per attached non-empty VBD: its VDI when
    that is on the SR and not a metadata VDI (``get_active_vdis_by_pbd``).
    """
    found = []
    for vm in db.find('VM', resident_on=pbd['host']):
        for vbd in db.find('VBD', VM=vm):
            rec = db.get('VBD', vbd)
            if not rec['currently_attached'] or rec['empty'] or \
                    not db.has('VDI', rec['VDI']):
                continue
            vdi = db.get('VDI', rec['VDI'])
            if vdi['SR'] == pbd['SR'] and vdi['type'] != 'metadata':
                found.append(rec['VDI'])
    return found


@api.message('PBD.unplug', 1, locking=api.LOCK_SELF)
def pbd_unplug(ctx, ref):
    sr_ref = _pbd_sr(ctx, ref)
    with ctx.world.sr_operation(sr_ref, 'unplug'):
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

_UUID = re.compile(r'^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-'
                   r'[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$')


def _introduced_lun(world, db, sr_ref, sm_config):
    """Raw iSCSI: the LUN ``sm_config['LUNid']`` names, else SM's 46."""
    target, _lun = backend(world, db, sr_ref)
    try:
        wanted = int(sm_config.get('LUNid'))
    except (TypeError, ValueError):
        wanted = None
    for lun in world.array.luns(target):
        if lun.lun_id == wanted:
            return lun
    raise errors.backend_failure(errors.VDI_UNAVAILABLE,
                                 'The VDI is not available')


@api.message('VDI.introduce', 9, 11)
def vdi_introduce(ctx, vdi_uuid, name_label, name_description, sr_ref,
                  vdi_type, sharable, read_only, other_config, location,
                  xenstore_data=None, sm_config=None):
    db = ctx.db
    _require_plugged(db, sr_ref)
    for ref in db.find('VDI', SR=sr_ref, location=location):
        if db.get('VDI', ref)['uuid'] != vdi_uuid:
            raise errors.XapiError(errors.LOCATION_NOT_UNIQUE, sr_ref,
                                   location)
    if not isinstance(vdi_uuid, str) or not _UUID.match(vdi_uuid):
        raise errors.XapiError(errors.UUID_INVALID, 'VDI', vdi_uuid)
    if db.get('SR', sr_ref)['type'] == 'iscsi':
        _introduced_lun(ctx.world, db, sr_ref, dict(sm_config or {}))
    for ref in db.find('VDI', uuid=vdi_uuid, SR=sr_ref):
        rec = db.get('VDI', ref)
        if rec['location'] == location:
            rec['managed'] = True
            return ref
        raise errors.XapiError(errors.INVALID_VALUE, 'uuid', vdi_uuid)
    if db.find('VDI', uuid=vdi_uuid):
        raise errors.XapiError(
            errors.INTERNAL_ERROR, 'Db_exn.Uniqueness_constraint_violation'
            '("VDI", "uuid", "%s")' % vdi_uuid)
    return db.create('VDI', uuid=vdi_uuid, name_label=name_label,
                     name_description=name_description, SR=sr_ref,
                     type=vdi_type, sharable=bool(sharable),
                     read_only=bool(read_only),
                     other_config=dict(other_config or {}),
                     location=location,
                     xenstore_data=dict(xenstore_data or {}),
                     sm_config=dict(sm_config or {}), managed=True)


@api.message('VDI.forget', 1)
def vdi_forget(ctx, ref):
    # the record only; VBDs keep pointing at it, as in xapi
    ctx.db.destroy('VDI', ref)
    return ''


def destroy_vdi(world, db, ref):
    """Destroy a VDI and, for LVM-on-iSCSI, its logical volume."""
    rec = db.get('VDI', ref)
    sr = db.get('SR', rec['SR'])
    if db.find('VBD', VDI=ref, currently_attached=True):
        raise errors.XapiError(errors.VDI_IN_USE, ref, 'destroy')
    if sr['type'] == 'iscsi':
        raise errors.XapiError('SR_OPERATION_NOT_SUPPORTED', rec['SR'])
    if sr['type'] == 'lvmoiscsi':
        _target, lun = backend(world, db, rec['SR'])
        lun.lvs.pop(rec['uuid'], None)
    for vbd in db.find('VBD', VDI=ref):
        db.destroy('VBD', vbd)
    db.destroy('VDI', ref)


@api.message('VDI.destroy', 1)
def vdi_destroy(ctx, ref):
    destroy_vdi(ctx.world, ctx.db, ref)
    return ''


# -- secret ------------------------------------------------------------------

@api.message('secret.create', 1)
def secret_create(ctx, record):
    return ctx.db.create('secret', value=str(record.get('value', '')),
                         other_config=dict(record.get('other_config') or {}))


@api.message('secret.destroy', 1)
def secret_destroy(ctx, ref):
    ctx.db.destroy('secret', ref)
    return ''
