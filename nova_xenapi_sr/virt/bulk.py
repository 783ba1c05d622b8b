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

"""Bulk XAPI reads in place of nova's record-by-record walks.

nova 21 walks XAPI one record at a time where a volume-backed live
migration needs to know how the VM's disks map to SRs, so its calls grow
with the square of the volume count:

* ``VMOps._generate_vdi_map`` (through ``vm_utils.
  get_instance_vdis_for_sr``) calls ``VM.get_VBDs``, then ``VBD.get_VDI``
  and ``VDI.get_SR`` for every VBD, and ``VMOps._call_live_migrate_command``
  repeats that, after an ``SR.get_by_uuid``, once per SR of
  ``sr_uuid_map``;
* ``VMOps._get_iscsi_srs`` calls ``VBD.get_VDI``, ``VDI.get_SR`` and
  ``SR.get_type`` for every VBD;
* ``volume_utils.introduce_vdi`` (``_get_vdi_ref``) finds a LUN by calling
  ``VDI.get_record`` on the SR's VDIs one after the other, then reads the
  found record again;
* ``vm_utils.strip_base_mirror_from_vdis`` calls ``VBD.get_VDI`` for
  every VBD of the migrated VM.

The functions here answer the same questions with a constant number of
``get_all_records_where`` queries (built by :mod:`nova_xenapi_sr.virt.
where`), and give exactly nova's answer: the same ``vdi_map``, the same SR
list in the same order, the same VDI. Where nova's answer depends on
something a query cannot reproduce exactly (an SR uuid the where guard
refuses, several VDIs with one LUN id, a LUN id nova treats as "none"),
they use nova's own code. :class:`BulkVMOps` and :class:`BulkVolumeOps`
plug them into nova's classes for one driver instance; nothing in nova is
patched.
"""

import time

from nova import conf as nova_conf
from nova import exception as nova_exception
from nova.virt.xenapi import vm_utils
from nova.virt.xenapi import vmops
from nova.virt.xenapi import volume_utils
from nova.virt.xenapi import volumeops
from oslo_log import log as logging

from nova_xenapi_sr.virt import where

LOG = logging.getLogger(__name__)
CONF = nova_conf.CONF


def _records(session, cls, field, values):
    return session.call_xenapi('%s.get_all_records_where' % cls,
                               where.field_in(field, values))


def vm_vdis(session, vm_ref):
    """The VDI refs of the VM's VBDs, keyed by VBD ref (1 call).

    An empty VBD (a CD drive without a disc) has ``OpaqueRef:NULL``.
    """
    vbds = _records(session, 'VBD', 'VM', [vm_ref])
    return {ref: rec.get('VDI') for ref, rec in vbds.items()}


def generate_vdi_map(session, vm_ref, destination_sr_ref, sr_uuid_map):
    """``vdi_map`` for ``VM.migrate_send``, as nova builds it.

    Replaces ``VMOps._generate_vdi_map`` and the per-SR loop of
    ``VMOps._call_live_migrate_command``: the VM's VDIs on the host's
    image SR (nova's ``vm_utils.safe_find_sr``) go to
    ``destination_sr_ref``; those on the local SR of each uuid in
    ``sr_uuid_map`` go to the destination ref it names. XAPI calls: nova's
    image SR lookup, ``SR.get_VDIs`` of that SR, one VBD query and (with a
    map) one SR query, whatever the number of disks and SRs.

    :raises UnsafeWhereValue: an SR uuid of the map cannot be quoted into
        a query; nothing was called (the caller falls back to nova).
    :raises XenAPI.Failure: an SR of the map does not exist here, exactly
        as nova's ``SR.get_by_uuid`` fails.
    """
    uuids = list(sr_uuid_map or {})
    if uuids:
        where.field_in('uuid', uuids)  # refuse before the first call
    image_sr = vm_utils.safe_find_sr(session)
    disks = set(vm_vdis(session, vm_ref).values())
    on_image_sr = set(session.call_xenapi('SR.get_VDIs', image_sr))
    vdi_map = {vdi: destination_sr_ref for vdi in disks & on_image_sr}
    if not uuids:
        return vdi_map
    local = {rec['uuid']: rec.get('VDIs') or []
             for rec in _records(session, 'SR', 'uuid', uuids).values()}
    for sr_uuid in uuids:
        if sr_uuid not in local:
            # nova's call, for nova's error (UUID_INVALID); should the SR
            # have appeared meanwhile, its VDIs as nova would see them.
            local[sr_uuid] = session.call_xenapi(
                'SR.get_VDIs', session.call_xenapi('SR.get_by_uuid',
                                                   sr_uuid))
        for vdi in disks.intersection(local[sr_uuid]):
            vdi_map[vdi] = sr_uuid_map[sr_uuid]
    return vdi_map


def get_iscsi_srs(session, vm_ref, pbds=None):
    """The iSCSI SR of every VBD of the VM, in nova's order (3 calls).

    Replaces the walk of ``VMOps._get_iscsi_srs``: one ref per VBD whose
    VDI is on an SR of type ``iscsi``, in ``VM.get_VBDs`` order, repeated
    when two VBDs use one SR. An empty VBD is skipped (nova's walk fails on
    it with ``HANDLE_INVALID``). The SR query answers every iSCSI SR of the
    pool (its ``VDIs`` field links the VM's VDIs to their SRs): a larger
    reply on a pool with many volumes, in place of three calls per VBD.

    :param pbds: a dict, filled with ``{sr_ref: [pbd_ref]}`` for the SRs
        returned, from the same query (what ``SR.get_PBDs`` answers).
    """
    order = session.call_xenapi('VM.get_VBDs', vm_ref)
    disks = vm_vdis(session, vm_ref)
    sr_of = {}
    records = session.call_xenapi('SR.get_all_records_where',
                                  'field "type" = "iscsi"')
    for sr_ref, rec in records.items():
        for vdi in rec.get('VDIs') or []:
            sr_of[vdi] = sr_ref
    srs = [sr_of[disks[vbd]] for vbd in order if disks.get(vbd) in sr_of]
    if pbds is not None:
        for sr_ref in srs:
            pbds[sr_ref] = list(records[sr_ref].get('PBDs') or [])
    return srs


def strip_base_mirror_from_vdis(session, vm_ref):
    """Drop ``base_mirror`` from the sm_config of the VM's VDIs.

    Replaces the walk of ``vm_utils.strip_base_mirror_from_vdis`` (nova's
    workaround for XenServer bug CA-98606): one VBD query in place of
    ``VM.get_VBDs`` and a ``VBD.get_VDI`` per VBD, then nova's write for
    each VDI, failures logged and ignored as nova does. Empty VBDs have no
    VDI to write to (nova's write fails on them).
    """
    done = set()
    for vdi_ref in vm_vdis(session, vm_ref).values():
        if vdi_ref in done or vdi_ref == 'OpaqueRef:NULL':
            continue
        done.add(vdi_ref)
        try:
            session.call_xenapi('VDI.remove_from_sm_config', vdi_ref,
                                'base_mirror')
        except session.XenAPI.Failure:
            LOG.debug('Could not remove base_mirror from VDI %s', vdi_ref,
                      exc_info=True)


def _find_luns(session, sr_ref, luns):
    """``{lun: (ref, record)}`` of the SR's VDIs of these LUN ids.

    One VDI query for all of them; a LUN id without a VDI is missing from
    the answer. When several VDIs carry one LUN id, nova's choice (the
    first in ``SR.get_VDIs`` order) costs one more call.
    """
    wanted = set(luns)
    found = {}
    for ref, rec in _records(session, 'VDI', 'SR', [sr_ref]).items():
        lun = (rec.get('sm_config') or {}).get('LUNid')
        if lun in wanted:
            found.setdefault(lun, {})[ref] = rec
    if any(len(vdis) > 1 for vdis in found.values()):
        order = session.call_xenapi('SR.get_VDIs', sr_ref)
        for lun, vdis in found.items():
            first = [ref for ref in order if ref in vdis][:1] or list(vdis)
            found[lun] = {first[0]: vdis[first[0]]}
    return {lun: list(vdis.items())[0] for lun, vdis in found.items()}


def introduce_vdis(session, sr_ref, target_luns, new_vdis=None):
    """``[(vdi_ref, vdi_uuid)]`` of LUNs ``target_luns`` on ``sr_ref``.

    Replaces ``volume_utils.introduce_vdi`` for LUN ids, for all the
    volumes of one SR at once: nova's lookup (scan once and look again when
    a LUN is missing; ``VDI.introduce`` when the VDI is not managed) and
    nova's errors, with one VDI query in place of a ``VDI.get_record`` per
    VDI of the SR and per volume. The uuid comes from the record, so no
    ``VDI.get_uuid`` follows. LUN ids nova treats as absent (0, '') are
    the caller's to route to nova's own path.

    :param new_vdis: a set, filled with the refs returned that were not
        already managed VDIs of the SR at the first query (a scan found
        them, or ``VDI.introduce`` made them): what a rollback may forget.
        The others existed before and are someone's records.
    :raises StorageError: as nova's ``introduce_vdi``.
    """
    luns = [str(lun) for lun in target_luns]
    try:
        found = _find_luns(session, sr_ref, luns)
        there = set(ref for ref, rec in found.values() if rec.get('managed'))
        if any(lun not in found for lun in luns):
            time.sleep(CONF.xenserver.introduce_vdi_retry_wait)
            session.call_xenapi('SR.scan', sr_ref)
            found = _find_luns(session, sr_ref, luns)
    except session.XenAPI.Failure:
        LOG.exception('Unable to introduce VDI on SR %s', sr_ref)
        raise nova_exception.StorageError(
            reason='Unable to introduce VDI on SR %s' % sr_ref)
    result = []
    for lun, target_lun in zip(luns, target_luns):
        if lun not in found:
            raise nova_exception.StorageError(
                reason='VDI not found on SR %s (target_lun %s)'
                       % (sr_ref, target_lun))
        vdi_ref, rec = found[lun]
        if not rec.get('managed'):
            try:
                vdi_ref = session.call_xenapi(
                    'VDI.introduce', rec['uuid'], rec['name_label'],
                    rec['name_description'], rec['SR'], rec['type'],
                    rec['sharable'], rec['read_only'], rec['other_config'],
                    rec['location'], rec['xenstore_data'], rec['sm_config'])
            except session.XenAPI.Failure:
                LOG.exception('Unable to introduce VDI for SR %s', sr_ref)
                raise nova_exception.StorageError(
                    reason='Unable to introduce VDI for SR %s' % sr_ref)
            # Introduced now: the next volume of this LUN finds it managed.
            found[lun] = (vdi_ref, dict(rec, managed=True))
        if new_vdis is not None and vdi_ref not in there:
            new_vdis.add(vdi_ref)
        result.append((vdi_ref, rec['uuid']))
    return result


def introduce_vdi(session, sr_ref, target_lun):
    """Return the VDI of LUN ``target_lun`` on ``sr_ref``, introduced.

    :func:`introduce_vdis` for one LUN; a LUN id nova treats as absent
    (0, '') takes nova's own path.

    :raises StorageError: as nova's ``introduce_vdi``.
    """
    if not target_lun:
        return volume_utils.introduce_vdi(session, sr_ref,
                                          target_lun=target_lun)
    return introduce_vdis(session, sr_ref, [target_lun])[0][0]


class BulkVolumeOps(volumeops.VolumeOps):
    """nova's VolumeOps finding a LUN's VDI with one query."""

    def _connect_hypervisor_to_volume(self, sr_ref, connection_data):
        if ('vdi_uuid' not in connection_data and
                'target_lun' in connection_data):
            return introduce_vdi(self._session, sr_ref,
                                 connection_data['target_lun'])
        return super(BulkVolumeOps, self)._connect_hypervisor_to_volume(
            sr_ref, connection_data)

    def connect_hypervisor_to_volumes(self, sr_ref, connection_datas,
                                      new_vdis=None):
        """``_connect_hypervisor_to_volume`` for all volumes of one SR.

        Returns ``[(vdi_ref, vdi_uuid)]``, the LUN ids found in one query.
        Volumes nova finds otherwise (by ``vdi_uuid``, or a LUN id nova
        treats as absent) take nova's own path, one at a time.

        :param new_vdis: a set, filled with the refs of VDIs this call made
            appear (see :func:`introduce_vdis`); nova's own path cannot
            tell, so its VDIs count as new.
        """
        by_lun = [i for i, data in enumerate(connection_datas)
                  if 'vdi_uuid' not in data and data.get('target_lun')]
        result = [None] * len(connection_datas)
        if by_lun:
            vdis = introduce_vdis(
                self._session, sr_ref,
                [connection_datas[i]['target_lun'] for i in by_lun],
                new_vdis=new_vdis)
            for i, vdi in zip(by_lun, vdis):
                result[i] = vdi
        for i, data in enumerate(connection_datas):
            if result[i] is None:
                vdi_ref = super(
                    BulkVolumeOps, self)._connect_hypervisor_to_volume(
                    sr_ref, data)
                result[i] = (vdi_ref, data.get('vdi_uuid') or
                             self._session.VDI.get_uuid(vdi_ref))
                if new_vdis is not None:
                    new_vdis.add(vdi_ref)
        return result


class BulkVMOps(vmops.VMOps):
    """nova's VMOps with bulk reads for the live-migration maps."""

    #: The VolumeOps this VMOps connects volumes with.
    volumeops_class = BulkVolumeOps

    def __init__(self, session, virtapi):
        super(BulkVMOps, self).__init__(session, virtapi)
        self._volumeops = self.volumeops_class(self._session)

    def post_live_migration_at_destination(self, context, instance,
                                           network_info, block_migration,
                                           block_device_info):
        """nova's steps, with the bulk ``strip_base_mirror_from_vdis``."""
        self._post_start_actions(instance)
        vm_utils.create_kernel_and_ramdisk(context, self._session, instance,
                                           instance['name'])
        strip_base_mirror_from_vdis(self._session,
                                    self._get_vm_opaque_ref(instance))

    def _get_iscsi_srs(self, ctxt, instance_ref):
        return get_iscsi_srs(self._session,
                             self._get_vm_opaque_ref(instance_ref))

    def _call_live_migrate_command(self, command_name, vm_ref, migrate_data):
        """nova's command, with the ``vdi_map`` from bulk reads."""
        send_data = None
        if 'migrate_send_data' in migrate_data:
            send_data = migrate_data.migrate_send_data
        sr_uuid_map = None
        if 'sr_uuid_map' in migrate_data:
            sr_uuid_map = migrate_data.sr_uuid_map
        if not send_data:
            # nova's check and error.
            return super(BulkVMOps, self)._call_live_migrate_command(
                command_name, vm_ref, migrate_data)
        try:
            vdi_map = generate_vdi_map(
                self._session, vm_ref, migrate_data.destination_sr_ref,
                sr_uuid_map)
        except where.UnsafeWhereValue:
            return super(BulkVMOps, self)._call_live_migrate_command(
                command_name, vm_ref, migrate_data)
        send_data = dict(send_data)  # xmlrpc marshals dicts only
        vif_map = {}
        vif_uuid_map = None
        if 'vif_uuid_map' in migrate_data:
            vif_uuid_map = migrate_data.vif_uuid_map
        if vif_uuid_map and not vm_utils.host_in_this_pool(
                self._session, send_data.get('host')):
            vif_map = self._generate_vif_network_map(vm_ref, vif_uuid_map)
            LOG.debug('Generated vif_map for live migration: %s', vif_map)
        self._session.call_xenapi(command_name, vm_ref, send_data, True,
                                  vdi_map, vif_map, {})
