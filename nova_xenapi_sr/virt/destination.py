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

"""Destination side: honour the source's SR names, but only trusted ones.

The source sends ``{volume_id: sr_uuid}`` (``volume_sr_uuid_map``). The
destination accepts a value only if it is the legacy name of exactly that
volume, or the uuid5 name derived from the destination's *own* connection
data for it. A legacy name that already exists on the destination must be
an iSCSI SR whose PBDs point at the same target and IQN;
otherwise a wrong uuid could make nova attach a VDI from the wrong SR
(possibly another tenant's LUN). Every check runs before any XAPI write.

A uuid5 value equal to the destination's own derivation is exactly the name
stock nova would use, so it needs neither a check nor an injection: for
uuid5-only instances the destination makes the same XAPI calls as stock
nova. Legacy volumes get a connection-data copy that names the SR
(``sr_uuid``) and carries the iSCSI parameters under their XAPI names,
listed in ``introduce_sr_keys`` (``parse_sr_info`` copies only those keys
into the SR's ``device_config`` when ``sr_uuid`` is given).
"""

import copy

from nova import exception as nova_exception
from oslo_log import log as logging

from nova_xenapi_sr import exception
from nova_xenapi_sr import naming
from nova_xenapi_sr.virt import forget
from nova_xenapi_sr.virt import locate
from nova_xenapi_sr.virt import volumes
from nova_xenapi_sr.virt import where
from nova_xenapi_sr.virt import xapi_retry

LOG = logging.getLogger(__name__)

_REMEDY = ('The migration was stopped before anything was changed on this '
           'host. If the source runs a modified or misconfigured nova, fix '
           'it; otherwise report a bug against nova-xenapi-sr with this '
           'message.')


class DestinationRefusal(nova_exception.MigrationError):
    """The destination refuses the migration before any XAPI write."""


class UntrustedSRUuid(DestinationRefusal):
    """The source's SR uuid map fails the destination's trust checks."""

    msg_fmt = 'Refusing the SR uuid map sent by the source: %(reason)s'


class UnsafeStockSource(DestinationRefusal):
    """A source without the extension could not finish this migration."""

    msg_fmt = 'Refusing a live migration from this source: %(reason)s'


class SamePoolRefusal(DestinationRefusal):
    """XAPI cannot live-migrate these volumes inside the pool."""

    msg_fmt = 'Refusing a live migration inside this pool: %(reason)s'


def source_map(migrate_data):
    """Return the source's ``{volume_id: sr_uuid}``, or None.

    None means the source runs stock nova (or sent a 1.4 object): the
    destination then behaves exactly like stock nova.
    """
    if migrate_data is None:
        return None
    if 'volume_sr_uuid_map' not in getattr(migrate_data, 'fields', {}):
        return None
    if not migrate_data.obj_attr_is_set('volume_sr_uuid_map'):
        return None
    return dict(migrate_data.volume_sr_uuid_map)


def stock_source_shared_sr_message(block_device_info):
    """Explain why a stock source cannot finish this migration, or None.

    A source without nova-xenapi-sr (no map) forgets, after the move, each
    SR of the VM once per volume: with two volumes behind one iSCSI target
    (one uuid5 SR) the second ``SR.forget`` fails, and nova rolls back an
    instance that already runs on this host, detaching its volumes here.
    Derived from this host's connection data, without any XAPI call.
    """
    try:
        attached = volumes.iscsi_volumes(block_device_info)
    except exception.InvalidConnectionData:
        return None     # nova's own code reports it, as it always did
    by_sr = {}
    for vol in attached:
        by_sr.setdefault(vol.uuid5, []).append(vol.volume_id)
    shared = sorted(ids for ids in by_sr.values() if len(ids) > 1)
    if not shared:
        return None
    return (
        'volumes %s share one iSCSI target, and the source runs nova '
        'without nova-xenapi-sr: after moving the instance it would forget '
        'their shared SR once per volume, fail, and roll back an instance '
        'that already runs here. Nothing was changed on this host. Install '
        'nova-xenapi-sr on the source compute, then retry.'
        % '; '.join(', '.join(ids) for ids in shared))


def _attached(block_device_info):
    try:
        return {vol.volume_id: vol
                for vol in volumes.iscsi_volumes(block_device_info)}
    except exception.InvalidConnectionData as exc:
        raise UntrustedSRUuid(reason='%s %s' % (exc, _REMEDY))


def _check_names(attached, volume_sr_uuid_map):
    """Check every map entry against this host's own connection data."""
    unknown = sorted(set(volume_sr_uuid_map) - set(attached))
    if unknown:
        raise UntrustedSRUuid(reason=(
            'it names volume(s) %s, which are not iSCSI volumes of this '
            'instance on this host. %s' % (', '.join(unknown), _REMEDY)))
    for volume_id, sr_uuid in sorted(volume_sr_uuid_map.items()):
        vol = attached[volume_id]
        if sr_uuid not in (vol.uuid5, vol.legacy):
            host, port, iqn = naming.iscsi_target(vol.connection_data)
            if naming.naming_style(sr_uuid) == naming.UUID5:
                # Most likely not tampering: Cinder exports the volume to
                # this host through another target than to the source.
                raise UntrustedSRUuid(reason=(
                    'volume %s is on SR %s on the source, but this host '
                    'reaches it through target %s, port %s, IQN %s, whose '
                    'SR would be %s. XAPI keeps a disk in place only when '
                    'both SRs have the same uuid, and naming this host\'s '
                    'SR after another target is not allowed. Nothing was '
                    'changed on this host. Migrate the instance cold '
                    '(nova migrate), or have Cinder export the volume '
                    'through the same target to both hosts.'
                    % (volume_id, sr_uuid, host, port, iqn, vol.uuid5)))
            raise UntrustedSRUuid(reason=(
                'SR uuid %s for volume %s is neither the volume\'s legacy '
                'name %s nor the uuid5 name %s of this host\'s connection '
                '(target %s, port %s, IQN %s). %s'
                % (sr_uuid, volume_id, vol.legacy, vol.uuid5, host, port,
                   iqn, _REMEDY)))


def _check_existing(session, attached, legacy):
    """Check the SRs already on this host that a legacy volume would meet.

    An existing legacy SR must point at the volume's target and IQN. The
    volume's uuid5 SR must not exist here: XAPI keeps a LUN in one SR per
    pool, and a uuid5 SR on the same target already holds this LUN, so
    the legacy SR could never show it. One query covers both names.
    """
    names = {sr_uuid: volume_id for volume_id, sr_uuid in legacy.items()}
    other_style = {attached[volume_id].uuid5: volume_id
                   for volume_id in legacy}
    try:
        expression = where.field_in('uuid',
                                    sorted(names) + sorted(other_style))
    except where.UnsafeWhereValue as exc:
        raise UntrustedSRUuid(reason='%s. %s' % (exc, _REMEDY))
    srs = session.call_xenapi('SR.get_all_records_where', expression)
    for sr_rec in srs.values():
        volume_id = other_style.get(sr_rec['uuid'])
        if volume_id is not None:
            host, port, iqn = _target_key(naming.device_config(
                attached[volume_id].connection_data))
            raise UntrustedSRUuid(reason=(
                'volume %s is on legacy SR %s on the source, but this host '
                'already has the uuid5 SR %s of the same iSCSI target %s, '
                'port %s, IQN %s, which holds the volume\'s LUN: XAPI keeps '
                'a LUN in one SR per pool, so the disk cannot arrive in '
                'place here, nor on any other host of this pool. Nothing '
                'was changed on this host. Migrate the instance to a host '
                'of another pool, or cold (nova migrate); or, once nothing '
                'in this pool uses SR %s, forget it (xe sr-forget uuid=%s) '
                'and retry.'
                % (volume_id, legacy[volume_id], sr_rec['uuid'], host, port,
                   iqn, sr_rec['uuid'], sr_rec['uuid'])))
    srs = {ref: rec for ref, rec in srs.items() if rec['uuid'] in names}
    if not srs:
        return
    pbds = session.call_xenapi('PBD.get_all_records_where',
                               where.field_in('SR', sorted(srs)))
    for sr_ref, sr_rec in sorted(srs.items()):
        volume_id = names[sr_rec['uuid']]
        expected = naming.device_config(attached[volume_id].connection_data)
        mine = [rec for rec in pbds.values() if rec.get('SR') == sr_ref]
        problem = None
        if sr_rec.get('type') != 'iscsi':
            problem = 'is of type %r, not iscsi' % sr_rec.get('type')
        elif not mine:
            problem = 'has no PBD, so its target is unknown'
        else:
            for rec in mine:
                config = rec.get('device_config') or {}
                if (config.get('target') != expected['target'] or
                        config.get('targetIQN') != expected['targetIQN']):
                    problem = ('points at target %s IQN %s, not at the '
                               'volume\'s target %s IQN %s'
                               % (config.get('target'),
                                  config.get('targetIQN'),
                                  expected['target'], expected['targetIQN']))
                    break
        if problem:
            raise UntrustedSRUuid(reason=(
                'an SR named %s already exists on this host and %s; using it '
                'for volume %s could attach the wrong disk. Forget the stale '
                'SR (xe sr-forget uuid=%s) if it is unused, then retry. %s'
                % (sr_rec['uuid'], problem, volume_id, sr_rec['uuid'],
                   _REMEDY)))


def _target_key(config):
    return (config.get('target'), str(config.get('port') or '3260'),
            config.get('targetIQN'))


def _check_target_holders(session, attached, chosen):
    """Refuse a volume whose target another SR of this pool already holds.

    A raw iSCSI SR shows every LUN of its target, and XAPI keeps a VDI
    uuid once per pool: when an iSCSI SR other than the one a volume needs
    already reaches the volume's target here, that SR holds the LUN, and
    the scan nova runs after introducing the needed SR fails
    (``SR_BACKEND_FAILURE_40``) with the new SR left plugged. Both
    directions: a legacy volume whose target a uuid5 SR or another legacy
    SR holds, and a uuid5 volume whose target a legacy SR holds. One
    ``PBD.get_all_records``, and one ``SR.get_record`` per SR that reaches
    one of the targets.

    :param chosen: ``{volume_id: the SR uuid it needs here}``.
    """
    by_target = {}
    pbds_of = {}
    for rec in session.call_xenapi('PBD.get_all_records').values():
        by_target.setdefault(_target_key(rec.get('device_config') or {}),
                             set()).add(rec.get('SR'))
        pbds_of.setdefault(rec.get('SR'), []).append(rec)
    records = {}
    for volume_id, needed in sorted(chosen.items()):
        vol = attached[volume_id]
        key = _target_key(naming.device_config(vol.connection_data))
        holders = {}
        for sr_ref in sorted(by_target.get(key, ())):
            if sr_ref not in records:
                records[sr_ref] = session.call_xenapi('SR.get_record', sr_ref)
            if records[sr_ref].get('type') == 'iscsi':
                holders[records[sr_ref]['uuid']] = sr_ref
        if not holders:
            continue
        if needed in holders:
            _check_plugged_here(session, volume_id, needed, records[
                holders[needed]], pbds_of.get(holders[needed], []))
            continue
        holders = sorted(holders)
        host, port, iqn = key
        raise UntrustedSRUuid(reason=(
            'volume %s needs SR %s on this host, but SR %s of this pool '
            'already reaches its iSCSI target %s, port %s, IQN %s and so '
            'holds its LUN: XAPI keeps a LUN\'s disk in one SR per pool, so '
            'the scan of SR %s would fail (SR_BACKEND_FAILURE_40). Nothing '
            'was changed on this host. Migrate the instance to a host of '
            'another pool, or cold (nova migrate); or, once nothing in this '
            'pool uses SR %s, forget it (xe sr-forget uuid=%s) and retry.'
            % (volume_id, needed, ', '.join(sorted(holders)), host, port,
               iqn, needed, holders[0], holders[0])))


def _check_plugged_here(session, volume_id, sr_uuid, sr_rec, pbds):
    """Refuse an SR of this pool that this host could not use.

    nova finds the SR already in the pool and connects nothing here. An
    unshared SR plugged on another host cannot be plugged on this one
    (``SR_NOT_SHARABLE``), so the VM could not use the disk here
    (``VM_REQUIRES_SR``): a live migration inside the pool, or to a host
    of a pool where another host uses the SR.
    """
    here = session.host_ref
    if sr_rec.get('shared') or any(p.get('host') == here for p in pbds):
        return
    elsewhere = sorted(p.get('host') for p in pbds
                       if p.get('currently_attached'))
    if not elsewhere:
        return
    raise UntrustedSRUuid(reason=(
        'volume %s needs SR %s, which this pool already has, plugged on '
        'another host (%s) and not shared: nova connects nothing here for '
        'an SR the pool has, and an unshared SR plugged on another host '
        'cannot be plugged on this one (SR_NOT_SHARABLE), so XAPI could '
        'not give the instance its disk here (VM_REQUIRES_SR). Nothing was '
        'changed on this host. Migrate the instance to a host of another '
        'pool, or to the host that has the SR plugged, or cold (nova '
        'migrate).' % (volume_id, sr_uuid, ', '.join(elsewhere))))


def validate(session, block_device_info, volume_sr_uuid_map):
    """Check the source's map; return the legacy entries to honour.

    Read-only: for legacy volumes one ``SR.get_all_records_where`` (and a
    ``PBD.get_all_records_where`` when their SRs exist here), then for
    every volume :func:`_check_target_holders`.

    :returns: ``{volume_id: legacy_sr_uuid}``, empty when every volume is
        uuid5-named.
    :raises UntrustedSRUuid: the map fails a check. No XAPI write happened.
    """
    attached = _attached(block_device_info)
    _check_names(attached, volume_sr_uuid_map)
    legacy = {volume_id: sr_uuid
              for volume_id, sr_uuid in volume_sr_uuid_map.items()
              if sr_uuid == attached[volume_id].legacy}
    if legacy:
        _check_existing(session, attached, legacy)
    chosen = {volume_id: legacy.get(volume_id, vol.uuid5)
              for volume_id, vol in attached.items()}
    if chosen:
        _check_target_holders(session, attached, chosen)
    return legacy


def stock_source_target_held_message(session, block_device_info):
    """Why a stock source's volumes cannot arrive here, or None.

    A stock source means stock nova's names here: the uuid5 name of every
    volume. When another SR of this pool already holds a volume's target,
    the scan of that uuid5 SR would fail (see :func:`_check_target_holders`).
    One ``PBD.get_all_records`` (and ``SR.get_record`` per SR on a target).
    """
    try:
        attached = _attached(block_device_info)
    except UntrustedSRUuid:
        return None     # nova's own code reports it, as it always did
    if not attached:
        return None
    try:
        _check_target_holders(session, attached, {
            volume_id: vol.uuid5 for volume_id, vol in attached.items()})
    except UntrustedSRUuid as exc:
        return exc.kwargs['reason']
    return None


def same_pool_message(session, block_device_info, volume_sr_uuid_map):
    """Why a live migration inside this pool cannot work, or None.

    nova live-migrates inside a pool (no block migration) with
    ``VM.pool_migrate``, which needs every SR of the VM plugged on this
    host (``VM_REQUIRES_SR``). nova finds the volumes' SRs already in the
    pool and connects nothing here, and it introduces them unshared, so
    this host could not plug an SR the source host has plugged
    (``SR_NOT_SHARABLE``). Read-only: one ``SR.get_all_records_where`` and
    one ``PBD.get_all_records_where``.
    """
    try:
        attached = volumes.iscsi_volumes(block_device_info)
    except exception.InvalidConnectionData:
        return None     # nova's own code reports it, as it always did
    if not attached:
        return None
    names = {}
    for vol in attached:
        name = (volume_sr_uuid_map or {}).get(vol.volume_id)
        if name not in (vol.uuid5, vol.legacy):
            name = vol.uuid5
        names.setdefault(name, []).append(vol.volume_id)
    srs = session.call_xenapi('SR.get_all_records_where',
                              where.field_in('uuid', sorted(names)))
    if not srs:
        return None
    pbds = session.call_xenapi('PBD.get_all_records_where',
                               where.field_in('SR', sorted(srs)))
    here = session.host_ref
    blocked = []
    for sr_ref, rec in sorted(srs.items(), key=lambda i: i[1]['uuid']):
        mine = [p for p in pbds.values()
                if p.get('SR') == sr_ref and p.get('host') == here and
                p.get('currently_attached')]
        if not mine:
            blocked.append('%s (SR %s)' % (', '.join(names[rec['uuid']]),
                                           rec['uuid']))
    if not blocked:
        return None
    return (
        'volume(s) %s are on SRs of this pool that are not plugged on this '
        'host: XAPI\'s VM.pool_migrate needs every SR of the VM plugged on '
        'the destination host (VM_REQUIRES_SR), nova connects nothing here '
        'for an SR the pool already has, and nova\'s SRs are unshared, so '
        'one plugged on another host cannot be plugged here '
        '(SR_NOT_SHARABLE). Nothing was changed on this host. Live-migrate '
        'the instance with block migration to a host of another pool, or '
        'migrate it cold (nova migrate).' % '; '.join(blocked))


def sr_connection_data(connection_data, sr_uuid):
    """Return a copy of connection data that makes nova use ``sr_uuid``.

    The copy carries ``sr_uuid``, the XAPI ``device_config`` parameters
    (``target``, ``port``, ``targetIQN`` and, with CHAP, ``chapuser`` and
    ``chappassword``) and ``introduce_sr_keys`` listing them, so nova's own
    ``parse_sr_info``/``introduce_sr`` build a complete ``device_config``.
    A legacy SR keeps the label nova gave it before Mitaka.
    """
    config = naming.device_config(connection_data)
    data = dict(connection_data)
    data.update(config)
    data['sr_uuid'] = sr_uuid
    data['introduce_sr_keys'] = [key for key in naming.DEVICE_CONFIG_KEYS
                                 if key in config]
    if naming.naming_style(sr_uuid) == naming.LEGACY:
        data.setdefault('name_label',
                        'tempSR-%s' % connection_data['volume_id'])
    return data


def inject(block_device_info, to_inject, make_connection_data):
    """Return a new block device info in which ``to_inject`` is honoured.

    The caller's structure is not modified: the mapping list, each mapping
    and each ``connection_info`` are new objects (nova persists
    ``connection_info``, and ``parse_sr_info`` pops keys from the data it is
    given).

    :param to_inject: ``{volume_id: sr_uuid}``.
    :param make_connection_data: ``f(connection_data, sr_uuid) -> dict``.
    """
    result = dict(block_device_info or {})
    mappings = []
    for bdm in result.get('block_device_mapping') or []:
        entry = dict(bdm)
        connection_info = copy.deepcopy(bdm.get('connection_info'))
        if connection_info:
            data = connection_info.get('data') or {}
            volume_id = data.get('volume_id')
            if (connection_info.get('driver_volume_type') == 'iscsi' and
                    volume_id is not None and str(volume_id) in to_inject):
                connection_info['data'] = make_connection_data(
                    data, to_inject[str(volume_id)])
        entry['connection_info'] = connection_info
        mappings.append(entry)
    result['block_device_mapping'] = mappings
    return result


def rollback_srs(block_device_info, volume_sr_uuid_map, sr_uuid_map):
    """Return the SRs a failed migration may have introduced here.

    A list of ``(sr_uuid, device_config)``, ``device_config`` being what
    the SR must point at to be this volume's. Only trusted names: for
    every iSCSI volume of the instance, the name the source asked for when
    it passes the trust rule, else its uuid5 name (what stock nova
    re-derives). Names in the maps that fail that rule are logged and
    ignored, so a tampered map cannot make rollback forget a foreign SR.
    """
    result = []
    mappings = (block_device_info or {}).get('block_device_mapping') or []
    for bdm in mappings:
        try:
            attached = volumes.iscsi_volumes({'block_device_mapping': [bdm]})
            for vol in attached:
                chosen = volume_sr_uuid_map.get(vol.volume_id)
                if chosen not in (vol.uuid5, vol.legacy):
                    chosen = vol.uuid5
                config = naming.device_config(vol.connection_data)
                if chosen not in [name for name, _ in result]:
                    result.append((chosen, config))
        except exception.InvalidConnectionData as exc:
            LOG.error('Cannot derive the SR of a volume to clean up: %s '
                      'Check this host for SRs of the instance\'s volumes '
                      '("xe sr-list") and forget unused ones by hand.', exc)
    trusted = [name for name, _ in result]
    claimed = list(volume_sr_uuid_map.values()) + list(sr_uuid_map or {})
    for name in claimed:
        if name not in trusted:
            LOG.warning('Rollback ignores SR %s: it is not an SR name of '
                        'any volume of this instance.', name)
    return result


def own_vdi_test(session, block_device_info, policy=None):
    """Return ``f(sr_uuid, vdi_ref)``: is that VDI one of these volumes'?

    A VDI is a volume's when the volume's connection data names its uuid
    (``vdi_uuid``) or its LUN (``target_lun``, the VDI's ``sm_config``
    ``LUNid``) and the SR is one of the volume's two possible SRs. A VDI
    that cannot be read counts as someone else's (the SR is then kept).
    """
    policy = policy or xapi_retry.Policy()
    mine = {}
    try:
        attached = volumes.iscsi_volumes(block_device_info)
    except exception.InvalidConnectionData:
        attached = []
    for vol in attached:
        marks = set()
        if vol.connection_data.get('vdi_uuid'):
            marks.add(('uuid', str(vol.connection_data['vdi_uuid'])))
        if vol.connection_data.get('target_lun') is not None:
            marks.add(('lun', str(vol.connection_data['target_lun'])))
        for name in (vol.uuid5, vol.legacy):
            mine.setdefault(name, set()).update(marks)

    def test(sr_uuid, vdi_ref):
        marks = mine.get(sr_uuid)
        if not marks:
            return False
        try:
            rec = xapi_retry.call(session, policy, 'VDI.get_record', vdi_ref)
        except Exception:
            return False
        lun = (rec.get('sm_config') or {}).get('LUNid')
        return (('uuid', rec.get('uuid')) in marks or
                (lun is not None and ('lun', str(lun)) in marks))
    return test


def destroy_stale_import(session, policy, instance_name):
    """Destroy a halted copy of the VM that a failed migration left here.

    Before it moves a VM to another pool, xapi imports the VM's record
    into the destination pool, with VBDs on the destination's SRs; when
    the migration fails it destroys that record again
    (``xapi_vm_migrate.ml`` ``migrate_send'``, its error path:
    ``VM.get_by_uuid`` and ``VM.destroy`` on the destination), unless
    that call fails as well (the remote session gone, the connection
    dropped). The record's VBDs would then keep the migration's SRs here
    for good. While the destination rolls back, the VM runs on the
    source: a halted VM of the instance's name here is that leftover.
    One ``VM.get_all_records_where``, one ``VM.destroy`` per leftover
    (``xapi_vm.ml`` ``destroy``: its VBDs go with it, the VDIs stay).

    :returns: the uuids of the VM records destroyed.
    """
    destroyed = []
    for ref, rec in sorted(locate.vms_named(session, policy,
                                            instance_name).items()):
        if rec.get('is_control_domain') or rec.get('power_state') != 'Halted':
            continue
        session.call_xenapi('VM.destroy', ref)
        destroyed.append(rec.get('uuid'))
    return destroyed


def forget_unused_sr(session, sr_uuid, device_config, known_ref=None,
                     policy=None, own_vdis=None):
    """Forget the SR ``sr_uuid`` if it is this volume's and nothing uses it.

    The SR is this volume's when its ref is ``known_ref`` (the ref this
    destination itself reported in ``sr_uuid_map`` for the migration), or
    when every PBD points at the target and IQN of ``device_config``; an SR
    without PBD (an introduce that failed half-way) counts as the volume's.
    It is kept when a VBD still uses one of its VDIs (uuid5 SRs are shared
    by every volume behind one target).

    :param own_vdis: when given (a rollback that lost its claims, see
        :mod:`nova_xenapi_sr.virt.claims`), a predicate ``f(vdi_ref)``
        telling this migration's own VDIs: an SR that also holds another
        VDI without a VBD may be about to be used by another migration,
        so it is kept, and only this migration's VDIs are forgotten.
    :returns: a :class:`nova_xenapi_sr.virt.forget.Outcome`; XAPI faults
        are reported in it (state LEFT), never raised. Reads are retried by
        the session's policy, the forget itself by ``policy``.
    """
    policy = policy or xapi_retry.Policy()

    def read(method, *args):
        return xapi_retry.call(session, policy, method, *args)

    try:
        try:
            sr_ref = read('SR.get_by_uuid', sr_uuid)
        except Exception as exc:
            if xapi_retry.xapi_code(exc) == 'UUID_INVALID':
                return forget.Outcome(forget.GONE)
            raise
        if sr_ref != known_ref:
            for pbd_ref in read('SR.get_PBDs', sr_ref):
                config = read('PBD.get_device_config', pbd_ref)
                if (config.get('target') != device_config['target'] or
                        config.get('targetIQN') !=
                        device_config['targetIQN']):
                    return forget.Outcome(forget.KEPT, (
                        'it points at target %s IQN %s, not at the '
                        'volume\'s' % (config.get('target'),
                                       config.get('targetIQN'))))
        unused = []
        for vdi_ref in read('SR.get_VDIs', sr_ref):
            if read('VDI.get_VBDs', vdi_ref):
                return forget.Outcome(forget.KEPT, (
                    'a VBD still uses its VDI %s' % vdi_ref))
            unused.append(vdi_ref)
        if own_vdis is not None:
            others = [ref for ref in unused if not own_vdis(ref)]
            if others:
                for vdi_ref in unused:
                    if vdi_ref not in others:
                        policy.run(lambda: session.call_xenapi(
                            'VDI.forget', vdi_ref), 'VDI.forget',
                            xapi_retry.host_of(session), retry=False)
                return forget.Outcome(forget.KEPT, (
                    'it also holds VDI(s) %s of no VBD, which another '
                    'migration may be about to use (this compute restarted '
                    'and lost its claims); this migration\'s own VDIs were '
                    'forgotten' % ', '.join(others)))
    except Exception as exc:
        return forget.Outcome(forget.LEFT, 'checking it failed: %s' % (
            exc if isinstance(exc, xapi_retry.XapiCallError)
            else xapi_retry.describe(exc)))
    return forget.forget_sr(session, policy, sr_ref)
