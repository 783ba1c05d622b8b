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

"""Source side: which SR does each attached volume really use?

Called from ``check_can_live_migrate_source``, the only driver call on the
source before the destination connects the volumes. For every iSCSI volume
of the instance there are two possible SR names (see
:mod:`nova_xenapi_sr.naming`); the source asks its own XAPI which exist.

XAPI calls are constant, whatever the number of volumes:

* one ``SR.get_all_records_where`` over every candidate name; when each
  volume has exactly one candidate SR on the pool, that decides;
* when both names of a volume exist (a legacy SR for this volume and a
  uuid5 SR that a later volume on the same target brought), one
  ``VM.get_all_records_where`` (the instance's VBDs) and one
  ``VDI.get_all_records_where`` (the VDIs of the ambiguous SRs) decide by
  the VM's own VBD -> VDI -> SR links.
"""

from nova import exception as nova_exception
from oslo_log import log as logging
from oslo_utils import versionutils

from nova_xenapi_sr import exception
from nova_xenapi_sr import naming
from nova_xenapi_sr.virt import volumes
from nova_xenapi_sr.virt import where

LOG = logging.getLogger(__name__)


def _refuse(reason):
    return nova_exception.MigrationPreCheckError(reason=reason)


def _volumes(block_device_info):
    try:
        return volumes.iscsi_volumes(block_device_info)
    except exception.InvalidConnectionData as exc:
        raise _refuse('%s Nothing was changed.' % exc)


def _query(session, cls, expression):
    return session.call_xenapi('%s.get_all_records_where' % cls, expression)


def _vdi_matches_volume(vdi_rec, volume):
    """Whether a VDI record is the LUN this volume's connection names."""
    data = volume.connection_data
    if data.get('vdi_uuid'):
        return vdi_rec.get('uuid') == data['vdi_uuid']
    if data.get('target_lun') is not None:
        lun = (vdi_rec.get('sm_config') or {}).get('LUNid')
        return lun == str(data['target_lun'])
    return True


def _decide_by_vm_links(session, instance_name, ambiguous, sr_refs):
    """Resolve volumes whose two candidate SRs both exist (2 XAPI calls)."""
    try:
        vm_query = where.field_in('name__label', [instance_name])
        vdi_query = where.field_in(
            'SR', [sr_refs[name] for vol in ambiguous
                   for name in (vol.uuid5, vol.legacy)])
    except where.UnsafeWhereValue as exc:
        raise _refuse(str(exc))
    vms = _query(session, 'VM', vm_query)
    vms = {ref: rec for ref, rec in vms.items()
           if not rec.get('is_a_template') and not rec.get('is_a_snapshot')}
    if len(vms) != 1:
        raise _refuse('found %d VMs named %s on the source host, expected '
                      'exactly one; cannot tell which SR its volumes use'
                      % (len(vms), instance_name))
    vm_vbds = set(next(iter(vms.values())).get('VBDs') or [])
    vdis = _query(session, 'VDI', vdi_query)

    decided = {}
    for vol in ambiguous:
        holders = []
        for name in (vol.uuid5, vol.legacy):
            for rec in vdis.values():
                if (rec.get('SR') == sr_refs[name] and
                        vm_vbds.intersection(rec.get('VBDs') or []) and
                        _vdi_matches_volume(rec, vol)):
                    holders.append(name)
                    break
        if len(holders) != 1:
            raise _refuse(
                'volume %s: SRs %s and %s both exist on the source host and '
                '%s of them holds a disk of %s; cannot decide which SR the '
                'volume uses. Check the SRs with "xe sr-list uuid=..." and '
                'detach the stale one.'
                % (vol.volume_id, vol.uuid5, vol.legacy,
                   'both' if holders else 'neither', instance_name))
        decided[vol.volume_id] = holders[0]
    return decided


def decide_sr_uuids(session, instance_name, block_device_info):
    """Return ``{volume_id: sr_uuid}`` for the instance's iSCSI volumes.

    :param session: a XenAPI session to the source's pool (anything with
        ``call_xenapi``).
    :param instance_name: the VM's name label (``instance.name``).
    :param block_device_info: nova's block device info of the instance on
        this host; it is read, never modified.
    :raises MigrationPreCheckError: a volume's SR cannot be found or cannot
        be told apart; nothing has been changed.
    """
    attached = _volumes(block_device_info)
    if not attached:
        return {}
    try:
        expression = where.field_in(
            'uuid', [name for vol in attached for name in (vol.uuid5,
                                                           vol.legacy)])
    except where.UnsafeWhereValue as exc:
        raise _refuse(str(exc))
    sr_refs = {rec['uuid']: ref
               for ref, rec in _query(session, 'SR', expression).items()}

    decided = {}
    ambiguous = []
    for vol in attached:
        present = [name for name in (vol.uuid5, vol.legacy)
                   if name in sr_refs]
        if not present:
            raise _refuse(
                'volume %s is attached, but neither SR %s (uuid5) nor SR %s '
                '(legacy) exists on the source host; its connection data no '
                'longer matches the SR it was attached with. Detach and '
                're-attach the volume, then retry.'
                % (vol.volume_id, vol.uuid5, vol.legacy))
        if len(present) == 1:
            decided[vol.volume_id] = present[0]
        else:
            ambiguous.append(vol)
    if ambiguous:
        decided.update(_decide_by_vm_links(session, instance_name,
                                           ambiguous, sr_refs))
    LOG.debug('Source SR uuids of %s: %s', instance_name, decided)
    return decided


def carries_sr_uuid_map(migrate_data):
    """Whether ``migrate_data`` can carry ``volume_sr_uuid_map`` onward.

    True for a 1.5 object. An object the destination sent as 1.4 (stock
    nova there) hydrates as 1.4 and goes back out as 1.4, which would drop
    the field: that destination would ignore the map anyway.
    """
    if 'volume_sr_uuid_map' not in getattr(migrate_data, 'fields', {}):
        return False
    version = versionutils.convert_version_to_tuple(migrate_data.VERSION)
    return version >= (1, 5)


def legacy_volumes(volume_sr_uuid_map):
    """Return the sorted volume ids whose SR is legacy-named."""
    return sorted(volume_id
                  for volume_id, sr_uuid in volume_sr_uuid_map.items()
                  if naming.naming_style(sr_uuid) == naming.LEGACY)


def stock_destination_message(instance_name, volume_sr_uuid_map,
                              dest_check_data):
    """Explain why a destination without the extension cannot take this VM.

    Returns None when every volume is uuid5-named (stock nova handles it).
    """
    legacy = legacy_volumes(volume_sr_uuid_map)
    if not legacy:
        return None
    send_data = {}
    if 'migrate_send_data' in dest_check_data:
        send_data = dest_check_data.migrate_send_data or {}
    destination = send_data.get('master') or 'the destination host'
    return (
        'instance %(inst)s has volume(s) %(vols)s on legacy-named SR(s) '
        '%(srs)s, but the destination (%(dest)s) sent '
        'XenapiLiveMigrateData %(ver)s, so its nova-compute runs without '
        'nova-xenapi-sr and would name the SRs differently: XAPI would fail '
        'with UUID_INVALID (nova bug 1566622). Install nova-xenapi-sr on the '
        'destination compute (compute_driver = '
        'xenapi_sr.driver.XenAPISRDriver), then retry the migration.'
        % {'inst': instance_name, 'vols': ', '.join(legacy),
           'srs': ', '.join(volume_sr_uuid_map[v] for v in legacy),
           'dest': destination, 'ver': dest_check_data.VERSION})


def inside_the_pool(dest_check_data):
    """Whether the destination found this host in its own pool.

    nova's destination pre-check asks for a live migration without block
    migration (``VM.pool_migrate``) only inside one pool.
    """
    return ('block_migration' in dest_check_data and
            dest_check_data.block_migration is False)


def same_pool_message(session, instance_name, volume_sr_uuid_map):
    """Why ``VM.pool_migrate`` cannot move these volumes, or None.

    ``VM.pool_migrate`` needs every SR of the VM plugged on the destination
    host (``VM_REQUIRES_SR``). nova's SRs are unshared, and an unshared SR
    plugged here cannot be plugged on another host (``SR_NOT_SHARABLE``),
    while nova connects nothing on the destination for an SR the pool
    already has. Read-only: one ``SR.get_all_records_where``.
    """
    if not volume_sr_uuid_map:
        return None
    try:
        expression = where.field_in('uuid',
                                    sorted(set(volume_sr_uuid_map.values())))
    except where.UnsafeWhereValue:
        return None     # the destination's checks name it
    unshared = set(rec['uuid'] for rec in
                   _query(session, 'SR', expression).values()
                   if not rec.get('shared'))
    blocked = ['%s (SR %s)' % (volume_id, sr_uuid)
               for volume_id, sr_uuid in sorted(volume_sr_uuid_map.items())
               if sr_uuid in unshared]
    if not blocked:
        return None
    return (
        'instance %s cannot be live-migrated inside its pool: its volume(s) '
        '%s are on unshared SRs plugged on this host. XAPI\'s '
        'VM.pool_migrate needs every SR of the VM plugged on the '
        'destination host (VM_REQUIRES_SR), an unshared SR cannot be '
        'plugged on a second host (SR_NOT_SHARABLE), and nova connects '
        'nothing on the destination for an SR the pool already has. Nothing '
        'was changed. Live-migrate the instance with block migration to a '
        'host of another pool, or migrate it cold (nova migrate).'
        % (instance_name, '; '.join(blocked)))
