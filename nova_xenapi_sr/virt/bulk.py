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

import collections
import contextlib
import threading
import time

from nova import conf as nova_conf
from nova import exception as nova_exception
from nova.virt.xenapi import vm_utils
from nova.virt.xenapi import vmops
from nova.virt.xenapi import volume_utils
from nova.virt.xenapi import volumeops
from oslo_log import log as logging
from oslo_utils import strutils

from nova_xenapi_sr.virt import where

LOG = logging.getLogger(__name__)
CONF = nova_conf.CONF


def _records(session, cls, field, values):
    return session.call_xenapi('%s.get_all_records_where' % cls,
                               where.field_in(field, values))


def _no_memo(key, read):
    return read()


def vm_vdis(session, vm_ref, memo=_no_memo):
    """The VDI refs of the VM's VBDs, keyed by VBD ref (1 call).

    An empty VBD (a CD drive without a disc) has ``OpaqueRef:NULL``.
    """
    vbds = memo(('VBDs of', vm_ref),
                lambda: _records(session, 'VBD', 'VM', [vm_ref]))
    return {ref: rec.get('VDI') for ref, rec in vbds.items()}


def image_sr(session):
    """The host's image SR, as nova's ``vm_utils.safe_find_sr`` finds it.

    With nova's default ``sr_matching_filter`` (``default-sr:true``)
    nova reads ``pool.get_all``, then ``pool.get_default_SR`` of the first
    pool; this reads the pool's record (1 call, a XAPI has one pool).
    Without a default SR, or with another filter, nova's own lookup runs
    (its calls, its log, its ``StorageRepositoryNotFound``).
    """
    if CONF.xenserver.sr_matching_filter == 'default-sr:true':
        pools = list(session.call_xenapi('pool.get_all_records').values())
        if pools and pools[0].get('default_SR'):
            return pools[0]['default_SR']
    return vm_utils.safe_find_sr(session)


def vm_vifs(session, vm_ref, memo=_no_memo):
    """The VM's VIF records, keyed by VIF ref (1 call).

    The records of ``VM.get_VIFs`` (what nova reads one by one with
    ``VIF.get_record`` or ``VIF.get_other_config``), in the order of their
    device numbers.
    """
    def read():
        vifs = _records(session, 'VIF', 'VM', [vm_ref])

        def device(item):
            number = str(item[1].get('device', ''))
            return (0, int(number), '') if number.isdigit() else \
                (1, 0, number)
        return collections.OrderedDict(sorted(vifs.items(), key=device))
    return memo(('VIFs of', vm_ref), read)


def vif_network_map(vifs, vif_uuid_map):
    """nova's ``VMOps._generate_vif_network_map`` from VIF records.

    ``{vif_ref: network_ref}``: the network ``vif_uuid_map`` names for
    the VIF's ``neutron-port-id``, else its default (key ``''``).

    :raises MigrationError: as nova, for a VIF without either.
    """
    vif_map = {}
    default = vif_uuid_map.get('')
    for vif_ref, rec in vifs.items():
        port = (rec.get('other_config') or {}).get('neutron-port-id')
        network_ref = vif_uuid_map.get(port, default)
        if network_ref is None:
            raise nova_exception.MigrationError(
                reason='No mapping for source network %s' % port)
        vif_map[vif_ref] = network_ref
    return vif_map


def generate_vdi_map(session, vm_ref, destination_sr_ref, sr_uuid_map,
                     memo=_no_memo):
    """``vdi_map`` for ``VM.migrate_send``, as nova builds it.

    Replaces ``VMOps._generate_vdi_map`` and the per-SR loop of
    ``VMOps._call_live_migrate_command``: the VM's VDIs on the host's
    image SR (nova's ``vm_utils.safe_find_sr``) go to
    ``destination_sr_ref``; those on the local SR of each uuid in
    ``sr_uuid_map`` go to the destination ref it names. XAPI calls: the
    image SR (:func:`image_sr`), ``SR.get_VDIs`` of that SR, one VBD query
    and (with a map) one SR query, whatever the number of disks and SRs.
    ``memo`` (see :meth:`BulkVMOps.step_reads`) answers the image SR and
    the VBDs read earlier in the same step, and the SRs when the step's
    iSCSI SR query (:func:`get_iscsi_srs`) returned all of them.

    :raises UnsafeWhereValue: an SR uuid of the map cannot be quoted into
        a query; nothing was called (the caller falls back to nova).
    :raises XenAPI.Failure: an SR of the map does not exist here, exactly
        as nova's ``SR.get_by_uuid`` fails.
    """
    uuids = list(sr_uuid_map or {})
    if uuids:
        where.field_in('uuid', uuids)  # refuse before the first call
    image = memo(('image SR',), lambda: image_sr(session))
    disks = set(vm_vdis(session, vm_ref, memo).values())
    on_image_sr = set(session.call_xenapi('SR.get_VDIs', image))
    vdi_map = {vdi: destination_sr_ref for vdi in disks & on_image_sr}
    if not uuids:
        return vdi_map
    known = memo(('iSCSI SRs',), lambda: None) or {}
    found = [rec for rec in known.values() if rec.get('uuid') in uuids]
    if len(found) != len(uuids):
        found = _records(session, 'SR', 'uuid', uuids).values()
    local = {rec['uuid']: rec.get('VDIs') or [] for rec in found}
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


def get_iscsi_srs(session, vm_ref, pbds=None, memo=_no_memo):
    """The iSCSI SR of every VBD of the VM, in nova's order (3 calls).

    Replaces the walk of ``VMOps._get_iscsi_srs``: one ref per VBD whose
    VDI is on an SR of type ``iscsi``, in ``VM.get_VBDs`` order, repeated
    when two VBDs use one SR. An empty VBD is skipped (nova's walk fails on
    it with ``HANDLE_INVALID``). The SR query answers every iSCSI SR of the
    pool (its ``VDIs`` field links the VM's VDIs to their SRs): a larger
    reply on a pool with many volumes, in place of three calls per VBD.

    :param pbds: a dict, filled with ``{sr_ref: [pbd_ref]}`` for the SRs
        returned, from the same query (what ``SR.get_PBDs`` answers).
    :param memo: the step's reads (:meth:`BulkVMOps.step_reads`): the
        VBD query is shared with :func:`generate_vdi_map`, which may also
        find the SRs of its map in this SR query.
    """
    order = session.call_xenapi('VM.get_VBDs', vm_ref)
    disks = vm_vdis(session, vm_ref, memo)
    sr_of = {}
    records = memo(('iSCSI SRs',), lambda: session.call_xenapi(
        'SR.get_all_records_where', 'field "type" = "iscsi"'))
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


def find_srs_by_uuid(session, sr_uuids):
    """``{sr_uuid: sr_ref or None}``, nova's ``find_sr_by_uuid`` for each.

    One SR query for all of them; a uuid the where guard refuses is looked
    up with nova's ``SR.get_by_uuid``.
    """
    try:
        records = _records(session, 'SR', 'uuid', sr_uuids)
    except where.UnsafeWhereValue:
        return {sr_uuid: volume_utils.find_sr_by_uuid(session, sr_uuid)
                for sr_uuid in sr_uuids}
    refs = {rec['uuid']: ref for ref, rec in records.items()}
    return {sr_uuid: refs.get(sr_uuid) for sr_uuid in sr_uuids}


def _find_luns(session, wanted):
    """``{(sr_ref, lun): (ref, record)}`` of the VDIs of these LUN ids.

    ``wanted``: ``{sr_ref: set of LUN ids}``. One VDI query for all the
    SRs; a LUN id without a VDI is missing from the answer. When several
    VDIs of one SR carry one LUN id, nova's choice (the first in
    ``SR.get_VDIs`` order) costs one more call for that SR.
    """
    found = {}
    for ref, rec in _records(session, 'VDI', 'SR', list(wanted)).items():
        lun = (rec.get('sm_config') or {}).get('LUNid')
        if lun in wanted.get(rec.get('SR'), ()):
            found.setdefault((rec['SR'], lun), {})[ref] = rec
    orders = {}
    for (sr_ref, lun), vdis in found.items():
        if len(vdis) > 1:
            if sr_ref not in orders:
                orders[sr_ref] = session.call_xenapi('SR.get_VDIs', sr_ref)
            first = [ref for ref in orders[sr_ref] if ref in vdis][:1] or \
                list(vdis)
            found[(sr_ref, lun)] = {first[0]: vdis[first[0]]}
    return {key: list(vdis.items())[0] for key, vdis in found.items()}


def introduce_vdis_of_srs(session, sr_luns, new_vdis=None):
    """``{sr_ref: [(vdi_ref, vdi_uuid)]}`` of each SR's LUN ids.

    ``sr_luns``: ``[(sr_ref, [target_lun, ...])]``. Replaces
    ``volume_utils.introduce_vdi`` for LUN ids, for all the volumes of
    all the SRs at once: nova's lookup (scan an SR once and look again when
    one of its LUNs is missing; ``VDI.introduce`` when the VDI is not
    managed) and nova's errors, with one VDI query in place of a
    ``VDI.get_record`` per VDI of each SR and per volume. The uuid comes
    from the record, so no ``VDI.get_uuid`` follows. LUN ids nova treats
    as absent (0, '') are the caller's to route to nova's own path.

    :param new_vdis: a set, filled with the refs returned that were not
        already managed VDIs of their SR at the first query (a scan found
        them, or ``VDI.introduce`` made them): what a rollback may forget.
        The others existed before and are someone's records.
    :raises StorageError: as nova's ``introduce_vdi``, naming the SR.
    """
    wanted = {}
    for sr_ref, luns in sr_luns:
        wanted.setdefault(sr_ref, set()).update(str(lun) for lun in luns)
    sr_ref = None
    try:
        found = _find_luns(session, wanted)
        there = set(ref for ref, rec in found.values() if rec.get('managed'))
        missing = [sr for sr, luns in wanted.items()
                   if any((sr, lun) not in found for lun in luns)]
        if missing:
            time.sleep(CONF.xenserver.introduce_vdi_retry_wait)
            for sr_ref in missing:
                session.call_xenapi('SR.scan', sr_ref)
            sr_ref = None
            found.update(_find_luns(session, {sr: wanted[sr]
                                              for sr in missing}))
    except session.XenAPI.Failure:
        sr_ref = sr_ref or ', '.join(wanted)
        LOG.exception('Unable to introduce VDI on SR %s', sr_ref)
        raise nova_exception.StorageError(
            reason='Unable to introduce VDI on SR %s' % sr_ref)
    result = {}
    for sr_ref, target_luns in sr_luns:
        vdis = result.setdefault(sr_ref, [])
        for target_lun in target_luns:
            key = (sr_ref, str(target_lun))
            if key not in found:
                raise nova_exception.StorageError(
                    reason='VDI not found on SR %s (target_lun %s)'
                           % (sr_ref, target_lun))
            vdi_ref, rec = found[key]
            if not rec.get('managed'):
                try:
                    vdi_ref = session.call_xenapi(
                        'VDI.introduce', rec['uuid'], rec['name_label'],
                        rec['name_description'], rec['SR'], rec['type'],
                        rec['sharable'], rec['read_only'],
                        rec['other_config'], rec['location'],
                        rec['xenstore_data'], rec['sm_config'])
                except session.XenAPI.Failure:
                    LOG.exception('Unable to introduce VDI for SR %s',
                                  sr_ref)
                    raise nova_exception.StorageError(
                        reason='Unable to introduce VDI for SR %s' % sr_ref)
                # Introduced now: the next volume of this LUN finds it.
                found[key] = (vdi_ref, dict(rec, managed=True))
            if new_vdis is not None and vdi_ref not in there:
                new_vdis.add(vdi_ref)
            vdis.append((vdi_ref, rec['uuid']))
    return result


def introduce_vdis(session, sr_ref, target_luns, new_vdis=None):
    """``[(vdi_ref, vdi_uuid)]`` of LUNs ``target_luns`` on ``sr_ref``.

    :func:`introduce_vdis_of_srs` for one SR.

    :param new_vdis: a set, filled with the refs returned that were not
        already managed VDIs of the SR at the first query (a scan found
        them, or ``VDI.introduce`` made them): what a rollback may forget.
        The others existed before and are someone's records.
    :raises StorageError: as nova's ``introduce_vdi``.
    """
    return introduce_vdis_of_srs(session, [(sr_ref, target_luns)],
                                 new_vdis=new_vdis)[sr_ref]


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

        Returns ``[(vdi_ref, vdi_uuid)]``; see
        :meth:`connect_hypervisor_to_volumes_of_srs`.
        """
        return self.connect_hypervisor_to_volumes_of_srs(
            [(sr_ref, connection_datas)], new_vdis=new_vdis)[0]

    def connect_hypervisor_to_volumes_of_srs(self, sr_datas, new_vdis=None):
        """``_connect_hypervisor_to_volume`` for the volumes of many SRs.

        ``sr_datas``: ``[(sr_ref, [connection_data])]``. Returns, in that
        order, ``[[(vdi_ref, vdi_uuid)]]``: the LUN ids found in one VDI
        query for all the SRs. Volumes nova finds otherwise (by
        ``vdi_uuid``, or a LUN id nova treats as absent) take nova's own
        path, one at a time, after them.

        :param new_vdis: a set, filled with the refs of VDIs this call made
            appear (see :func:`introduce_vdis_of_srs`); nova's own path
            cannot tell, so its VDIs count as new.
        """
        def by_lun(data):
            return 'vdi_uuid' not in data and data.get('target_lun')
        lun_srs = [(sr_ref, [data['target_lun'] for data in datas
                             if by_lun(data)])
                   for sr_ref, datas in sr_datas]
        lun_srs = [(sr_ref, luns) for sr_ref, luns in lun_srs if luns]
        found = {}
        if lun_srs:
            found = introduce_vdis_of_srs(self._session, lun_srs,
                                          new_vdis=new_vdis)
        results = []
        for sr_ref, datas in sr_datas:
            from_query = iter(found.get(sr_ref, ()))
            result = []
            for data in datas:
                if by_lun(data):
                    result.append(next(from_query))
                    continue
                vdi_ref = super(
                    BulkVolumeOps, self)._connect_hypervisor_to_volume(
                    sr_ref, data)
                result.append((vdi_ref, data.get('vdi_uuid') or
                               self._session.VDI.get_uuid(vdi_ref)))
                if new_vdis is not None:
                    new_vdis.add(vdi_ref)
            results.append(result)
        return results


class BulkVMOps(vmops.VMOps):
    """nova's VMOps with bulk reads for the live-migration maps.

    Within one driver step (a pre-check, or ``live_migrate`` up to
    ``VM.migrate_send``) nova reads some records several times with no
    write in between: the VM by name, its domid, its VIFs, its VBDs, the
    pool's default SR, the management PIF. :meth:`step_reads` answers
    each of those once per step and thread; the memo ends with the step,
    and in ``live_migrate`` before ``VM.migrate_send`` and before nova's
    post or recover method run, so nothing read before the move is used
    after it, and no other step or migration ever sees it.
    """

    #: The VolumeOps this VMOps connects volumes with.
    volumeops_class = BulkVolumeOps

    def __init__(self, session, virtapi):
        super(BulkVMOps, self).__init__(session, virtapi)
        self._volumeops = self.volumeops_class(self._session)
        self._step = threading.local()

    # -- one step's reads --------------------------------------------------

    @contextlib.contextmanager
    def step_reads(self):
        """Memoize this thread's repeated reads until the block ends.

        Nested use joins the outer step.
        """
        if getattr(self._step, 'reads', None) is not None:
            yield
            return
        self._step.reads = {}
        try:
            yield
        finally:
            self._step.reads = None

    def end_step_reads(self):
        """No memo from here to the end of this thread's step."""
        self._step.reads = None

    def memo(self, key, read):
        """``read()``, or what it answered earlier in this step."""
        reads = getattr(self._step, 'reads', None)
        if reads is None:
            return read()
        if key not in reads:
            value = read()
            if value is None:
                return value  # nothing to share (or not read here)
            reads[key] = value
        return reads[key]

    def _get_vm_opaque_ref(self, instance, check_rescue=False):
        """nova's lookup by name, once per step."""
        return self.memo(
            ('VM', instance['name'], check_rescue),
            lambda: super(BulkVMOps, self)._get_vm_opaque_ref(
                instance, check_rescue=check_rescue))

    def _post_start_actions(self, instance):
        """nova's VIF hooks, the VM looked up once per step.

        nova's ``vm_utils.lookup`` (None for a missing VM, as nova).
        """
        vm_ref = self.memo(('VM', instance['name'], False),
                           lambda: vm_utils.lookup(self._session,
                                                   instance['name']))
        for vif_ref in self._session.call_xenapi('VM.get_VIFs', vm_ref):
            self.vif_driver.post_start_actions(instance, vif_ref)

    def _get_dom_id(self, instance, vm_ref=None, check_rescue=False):
        """nova's ``VM.get_domid`` (and its check), once per step."""
        vm_ref = vm_ref or self._get_vm_opaque_ref(instance, check_rescue)
        return self.memo(
            ('domid', vm_ref),
            lambda: super(BulkVMOps, self)._get_dom_id(
                instance, vm_ref=vm_ref, check_rescue=check_rescue))

    def _get_network_ref(self):
        """nova's management-PIF query, once per step."""
        return self.memo(('migration network',),
                         super(BulkVMOps, self)._get_network_ref)

    def _pv_device_reported(self, instance, vm_ref):
        """nova's check, with the VIFs' devices from one VIF query.

        nova reads ``VM.get_record`` and ``VIF.get_record`` per VIF for
        their devices, then each device's state in xenstore: True at the
        first device in state 4 (connected).
        """
        for rec in vm_vifs(self._session, vm_ref, self.memo).values():
            state = self._read_from_xenstore(
                instance, 'device/vif/%s/state' % rec['device'],
                vm_ref=vm_ref)
            LOG.debug('PV Device vif.%(device)s reporting state %(state)s',
                      {'device': rec['device'], 'state': state},
                      instance=instance)
            if strutils.is_int_like(state) and int(state) == 4:
                return True
        return False

    def _generate_vif_network_map(self, vm_ref, vif_uuid_map):
        """nova's ``vif_map`` from one VIF query (shared with the step)."""
        return vif_network_map(vm_vifs(self._session, vm_ref, self.memo),
                               vif_uuid_map)

    # -- steps ---------------------------------------------------------------

    def check_can_live_migrate_destination(self, ctxt, instance_ref,
                                           block_migration=False,
                                           disk_over_commit=False):
        with self.step_reads():
            return super(BulkVMOps, self).check_can_live_migrate_destination(
                ctxt, instance_ref, block_migration=block_migration,
                disk_over_commit=disk_over_commit)

    def check_can_live_migrate_source(self, ctxt, instance_ref,
                                      dest_check_data):
        with self.step_reads():
            return super(BulkVMOps, self).check_can_live_migrate_source(
                ctxt, instance_ref, dest_check_data)

    def live_migrate(self, context, instance, destination_hostname,
                     post_method, recover_method, block_migration,
                     migrate_data=None):
        """nova's; the step's memo ends before the move and nova's hooks."""
        def ending(method):
            def call(*args, **kwargs):
                self.end_step_reads()
                return method(*args, **kwargs)
            return call
        with self.step_reads():
            return super(BulkVMOps, self).live_migrate(
                context, instance, destination_hostname, ending(post_method),
                ending(recover_method), block_migration,
                migrate_data=migrate_data)

    def post_live_migration_at_destination(self, context, instance,
                                           network_info, block_migration,
                                           block_device_info):
        """nova's steps, with the bulk ``strip_base_mirror_from_vdis``."""
        with self.step_reads():
            self._post_start_actions(instance)
            vm_utils.create_kernel_and_ramdisk(context, self._session,
                                               instance, instance['name'])
            strip_base_mirror_from_vdis(self._session,
                                        self._get_vm_opaque_ref(instance))

    def _get_iscsi_srs(self, ctxt, instance_ref):
        return get_iscsi_srs(self._session,
                             self._get_vm_opaque_ref(instance_ref),
                             memo=self.memo)

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
                sr_uuid_map, memo=self.memo)
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
        if command_name == 'VM.migrate_send':
            self.end_step_reads()  # what the VM was, not what it will be
        self._session.call_xenapi(command_name, vm_ref, send_data, True,
                                  vdi_map, vif_map, {})
