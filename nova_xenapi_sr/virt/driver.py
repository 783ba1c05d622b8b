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

"""``XenAPISRDriver``: nova's XenAPI driver with source-decided SR names.

Configure a compute with ``compute_driver = xenapi_sr.driver.XenAPISRDriver``
(nova loads it through the shim ``nova/virt/xenapi_sr/driver.py``). The
driver overrides only the live-migration steps the fix needs:

* ``check_can_live_migrate_source`` (source): decides every volume's SR
  uuid (:mod:`nova_xenapi_sr.virt.source`) and sends it in
  ``XenapiLiveMigrateData.volume_sr_uuid_map`` (1.5); refuses up front when
  the destination is too old for a legacy SR.
* ``pre_live_migration`` (destination): checks the map and connects each
  volume under the source's SR uuid (:mod:`nova_xenapi_sr.virt.destination`),
  claiming the SRs for this migration (:mod:`nova_xenapi_sr.virt.claims`)
  and cleaning up after itself if it fails. Without a map (a stock source)
  it connects as stock nova does, but refuses the cases stock nova
  cannot finish safely (volumes sharing one target; a target another SR
  of this pool already holds). Inside a pool (no block migration) it refuses,
  before any XAPI write, volumes whose SRs are not plugged on this host
  (XAPI's ``VM.pool_migrate`` would fail with ``VM_REQUIRES_SR``).
* ``get_volume_connector``: when nova's host stats fail (cold connector
  cache: the source first asks after ``VM.migrate_send``), the iSCSI IQN
  and hostname come from the host record.
* ``detach_volume``: never detaches from a VM that runs on another host of
  the pool (nova's recover path of a failed same-pool migration calls it
  on the destination, where nova's own lookup finds the source's VM).
* ``rollback_live_migration_at_destination``: forgets the SRs the failed
  migration introduced, found through the claims and the migrate data,
  unless something else uses them (for a stock source too);
  ``post_live_migration_at_destination`` releases the claims.
* after the move, the source forgets each of the VM's SRs once and never
  fails the finished migration over it (:class:`SharedSRAwareVMOps`).
* the ``vdi_map`` of ``VM.migrate_send``, the source's iSCSI SRs and the
  destination's LUN VDIs come from bulk queries, not record-by-record
  walks (:mod:`nova_xenapi_sr.virt.bulk`).

Failure handling (``doc/source/hardening.rst`` in the source tree):

* every XAPI call goes through one retry policy
  (:mod:`nova_xenapi_sr.virt.xapi_retry`): reads and idempotent calls are
  retried on transient faults, and transport errors name the call and the
  host;
* ``pre_live_migration`` connects the volumes without nova's own error
  handlers, which forget every SR they touched, also a neighbour's: the
  driver's cleanup forgets only SRs this migration introduced and nobody
  else uses, and the original fault is raised;
* ``VM.migrate_send`` failures carry XAPI's code; before nova's recover
  path runs on the source, both pools are asked where the VM is
  (:mod:`nova_xenapi_sr.virt.locate`), and a VM that has left the source
  is never rolled back (a lost ``migrate_send`` reply of a VM that moved
  finishes as a success);
* ``post_live_migration_at_destination`` never fails a finished
  migration; SR cleanups report what they left and what to do
  (:mod:`nova_xenapi_sr.virt.forget`);
* a rollback without a claim record (nova-compute restarted) keeps SRs
  that hold other VDIs without VBDs (:mod:`nova_xenapi_sr.virt.claims`);
* the lookup and introduce of one SR run under a per-SR lock, so two
  migrations to this host never both introduce it;
* ``detach_volume`` refuses, while a migration to this host is in flight,
  to strip a VM that runs here (a stock source's recover path after the
  move).

It also applies :mod:`nova_xenapi_sr.os_xenapi_compat` before connecting:
os-xenapi 0.3.4, which nova 21 uses, cannot exchange dom0 plugin arguments
on Python 3, so stock nova 21's XenAPI driver cannot even start there.
"""

import collections
import contextlib
import functools
import threading

from nova import conf as nova_conf
from nova import exception as nova_exception
from nova.virt.xenapi import driver as xenapi_driver
from nova.virt.xenapi import host as xenapi_host
from nova.virt.xenapi import vm_utils
from nova.virt.xenapi import volume_utils
from oslo_log import log as logging
from oslo_utils import excutils

from nova_xenapi_sr import objects
from nova_xenapi_sr import opts
from nova_xenapi_sr import os_xenapi_compat
from nova_xenapi_sr.virt import bulk
from nova_xenapi_sr.virt import claims
from nova_xenapi_sr.virt import destination
from nova_xenapi_sr.virt import forget
from nova_xenapi_sr.virt import locate
from nova_xenapi_sr.virt import source
from nova_xenapi_sr.virt import xapi_retry

LOG = logging.getLogger(__name__)
CONF = nova_conf.CONF
opts.register_opts(CONF)
objects.register_all()


class _SourceSRCleanup(list):
    """The source's iSCSI SRs of a VM, each once, forgotten when iterated.

    nova's ``VMOps.live_migrate`` takes this list before ``VM.migrate_send``
    and iterates it once, after the VM has moved, calling ``forget_sr`` on
    each entry. An exception there runs nova's recover path for a VM that
    already runs on the destination, and that path detaches its volumes
    there. Two cases raise with stock nova: an SR listed twice (a uuid5 SR
    shared by two volumes of the VM: the second ``SR.forget`` fails with
    ``HANDLE_INVALID``) and an SR another VM on the source still uses (the
    unplug meets ``VDI_IN_USE``, then ``SR.forget`` fails with
    ``SR_HAS_PBD``).

    Iterating this list therefore does the forgetting itself
    (:func:`nova_xenapi_sr.virt.forget.forget_sr`: the same XAPI calls as
    nova, transient faults retried), tells an SR another VM uses (INFO)
    from one a fault left behind (WARNING, with what to do) instead of
    raising, and yields nothing, so nova's own loop has nothing left to
    do. ``len()`` still counts the SRs (nova's pre-check uses it).
    """

    def __init__(self, session, sr_refs, policy, pbds=None):
        unique = []
        for sr_ref in sr_refs:
            if sr_ref not in unique:
                unique.append(sr_ref)
        super(_SourceSRCleanup, self).__init__(unique)
        self._session = session
        self._policy = policy
        self._pbds = pbds or {}

    def __iter__(self):
        for sr_ref in list(super(_SourceSRCleanup, self).__iter__()):
            outcome = forget.forget_sr(self._session, self._policy, sr_ref,
                                       pbds=self._pbds.get(sr_ref))
            if outcome.state == forget.IN_USE:
                LOG.info('Keeping SR %s on the source: another VM still '
                         'uses it.', sr_ref)
            elif outcome.state == forget.LEFT:
                sr_uuid = sr_ref
                try:
                    sr_uuid = self._session.call_xenapi('SR.get_uuid',
                                                        sr_ref)
                except Exception:  # nosec: the ref names it too
                    pass
                LOG.warning(
                    'The VM has moved, but SR %(sr)s is left on the source '
                    '(%(host)s): %(reason)s. No VM of this migration uses '
                    'it any more. Once no other VM uses it, unplug its PBDs '
                    'and forget it: "xe pbd-unplug uuid=<pbd>" for each of '
                    '"xe pbd-list sr-uuid=%(sr)s", then "xe sr-forget '
                    'uuid=%(sr)s".',
                    {'sr': sr_uuid, 'reason': outcome.reason,
                     'host': xapi_retry.host_of(self._session)})
        return iter(())


class SharedSRAwareVMOps(bulk.BulkVMOps):
    """nova's VMOps, minus the ways a fault could cost someone storage.

    * its post-migration SR cleanup cannot fail the move
      (:class:`_SourceSRCleanup`);
    * connecting the volumes in ``pre_live_migration`` never forgets an SR
      (nova's ``_attach_volume`` and ``connect_block_device_volumes``
      forget every SR they touched when a later call fails, including SRs
      that existed before, which a halted neighbour then loses); it
      records which SRs existed, and the driver's cleanup forgets only the
      migration's own;
    * a failed ``VM.migrate_send`` says what XAPI answered; one that did
      not answer is checked with both pools before anything is rolled
      back (:mod:`nova_xenapi_sr.virt.locate`);
    * nova's recover path never runs for a VM that has left the source.
    """

    def __init__(self, session, virtapi, policy, sr_claims=None):
        super(SharedSRAwareVMOps, self).__init__(session, virtapi)
        self._policy = policy
        self._sr_claims = sr_claims or claims.SRClaims()
        self._in_flight_lock = threading.Lock()
        #: id(migrate data) -> instance, for the live migrations running.
        self._in_flight = {}

    def _get_iscsi_srs(self, ctxt, instance_ref):
        """nova's SR list, each once, forgotten from the PBDs read with it."""
        pbds = {}
        srs = bulk.get_iscsi_srs(self._session,
                                 self._get_vm_opaque_ref(instance_ref),
                                 pbds=pbds, memo=self.memo)
        return _SourceSRCleanup(self._session, srs, self._policy, pbds=pbds)

    # Destination: connecting without nova's forgetting -------------------

    def pre_live_migration(self, context, instance, block_device_info,
                           network_info, disk_info, migrate_data,
                           existing_srs=None):
        """nova's; fills ``existing_srs`` (see below)."""
        migrate_data.sr_uuid_map = self.connect_block_device_volumes(
            block_device_info, existing_srs=existing_srs,
            instance_uuid=instance['uuid'])
        migrate_data.vif_uuid_map = self.create_interim_networks(network_info)
        LOG.debug('pre_live_migration, vif_uuid_map: %(vif_map)s, '
                  'sr_uuid_map: %(sr_map)s',
                  {'vif_map': migrate_data.vif_uuid_map,
                   'sr_map': migrate_data.sr_uuid_map}, instance=instance)
        return migrate_data

    def connect_block_device_volumes(self, block_device_info,
                                     existing_srs=None, instance_uuid=None):
        """nova's, grouped by SR, and a failure forgets nothing.

        nova connects volume after volume (``VolumeOps.connect_volume``),
        each with its own SR lookup, its own walk of the SR's VDIs, a
        ``VDI.get_uuid`` and a second ``SR.get_by_uuid``, and on a failure
        forgets every SR it touched. This connects the same volumes to the
        same SRs and VDIs: one existence query for all the SRs, introduce
        (with PBD create, plug and scan) once per missing SR in the order
        nova first meets them, then one VDI query finding the LUNs of all
        the SRs. The caller cleans up after a failure.

        :param existing_srs: a dict, filled with ``{sr_uuid: [vdi_ref]}``
            for the SRs that were already there (and not introduced by
            another migration in flight), and the VDIs connecting made
            appear in them (not those that were there before).
        :param instance_uuid: the migrating instance, for the claims.
        :returns: ``sr_uuid_map``, ``{sr_uuid: sr_ref}``, as nova's.
        """
        if existing_srs is None:
            existing_srs = {}
        groups = collections.OrderedDict()
        if block_device_info is not None:
            for bdm in block_device_info['block_device_mapping']:
                connection_info = bdm['connection_info']
                self._volumeops._check_is_supported_driver_type(
                    connection_info)
                connection_data = connection_info['data']
                sr_uuid, sr_label, sr_params = volume_utils.parse_sr_info(
                    connection_data, 'Disk-for:%s' % None)
                groups.setdefault(sr_uuid, (sr_label, sr_params, []))[
                    2].append(connection_data)
        sr_uuid_map = collections.OrderedDict()
        if not groups:
            return sr_uuid_map
        self._connect_srs(groups, sr_uuid_map, existing_srs, instance_uuid)
        connect = self._volumeops.connect_hypervisor_to_volumes_of_srs
        new_vdis = set()
        connected = connect([(sr_uuid_map[sr_uuid], datas)
                             for sr_uuid, (_, _, datas) in groups.items()],
                            new_vdis=new_vdis)
        for sr_uuid, vdis in zip(groups, connected):
            for vdi_ref, vdi_uuid in vdis:
                # In an SR that was there, only the VDIs this connect made
                # appear are the migration's to forget: a scan of the
                # target may have found its LUNs before.
                if sr_uuid in existing_srs and vdi_ref in new_vdis:
                    existing_srs[sr_uuid].append(vdi_ref)
                LOG.info('Connected volume (vdi_uuid): %s', vdi_uuid)
        return dict(sr_uuid_map)

    def _connect_srs(self, groups, sr_uuid_map, existing_srs, instance_uuid):
        """nova's SR half of ``VolumeOps.connect_volume``, for all SRs.

        One SR query tells which exist (in place of an ``SR.get_by_uuid``
        per SR); the others are introduced (with PBD create, plug and scan)
        in nova's order; fills ``sr_uuid_map``. Without nova's forget_sr.
        The lookup and the introduces run under the SRs' locks, taken in
        sorted order, so two migrations never both introduce one SR.
        """
        with contextlib.ExitStack() as locks:
            for sr_uuid in sorted(groups):
                locks.enter_context(self._sr_claims.connecting(sr_uuid))
            refs = bulk.find_srs_by_uuid(self._session, list(groups))
            for sr_uuid, (sr_label, sr_params, _) in groups.items():
                sr_ref = refs[sr_uuid]
                if sr_ref:
                    if not self._sr_claims.introduced_in_flight(sr_uuid):
                        existing_srs.setdefault(sr_uuid, [])
                else:
                    self._sr_claims.note_introduced(instance_uuid, sr_uuid)
                    sr_ref = volume_utils.introduce_sr(
                        self._session, sr_uuid, sr_label, sr_params)
                sr_uuid_map[sr_uuid] = sr_ref

    # Source: migrate_send and the recover path --------------------------

    def _locate(self, instance, migrate_data):
        send_data = None
        if migrate_data is not None and 'migrate_send_data' in migrate_data:
            send_data = migrate_data.migrate_send_data
        return locate.locate(self._session, self._policy, instance['name'],
                             send_data,
                             timeout=CONF.xenapi_sr.migration_locate_timeout)

    def _call_live_migrate_command(self, command_name, vm_ref, migrate_data):
        with self._in_flight_lock:
            instance = self._in_flight.get(id(migrate_data))
        if command_name != 'VM.migrate_send' or instance is None:
            return super(SharedSRAwareVMOps, self)._call_live_migrate_command(
                command_name, vm_ref, migrate_data)
        host = xapi_retry.host_of(self._session)
        try:
            return super(SharedSRAwareVMOps, self)._call_live_migrate_command(
                command_name, vm_ref, migrate_data)
        except self._session.XenAPI.Failure as exc:
            LOG.error('VM.migrate_send on %(host)s failed: %(error)s',
                      {'host': host, 'error': xapi_retry.describe(exc)},
                      instance=instance)
            raise nova_exception.MigrationError(reason=(
                'Migrate Send failed: XAPI VM.migrate_send on %s answered '
                '%s' % (host, ' '.join(str(d) for d in exc.details))))
        except xapi_retry.XapiCallError as exc:
            where_now = self._locate(instance, migrate_data)
            if where_now.moved:
                LOG.warning('VM.migrate_send on %(host)s gave no answer '
                            '(%(error)s), but XAPI shows the VM has moved '
                            '(%(where)s): finishing the migration.',
                            {'host': host, 'error': exc, 'where': where_now},
                            instance=instance)
                return None
            raise nova_exception.MigrationError(reason=(
                'Migrate Send failed: %s; %s' % (exc, where_now)))

    def live_migrate(self, context, instance, destination_hostname,
                     post_method, recover_method, block_migration,
                     migrate_data=None):
        def guarded_recover(ctxt, inst, dest, data):
            where_now = self._locate(inst, data)
            if not where_now.safe_to_roll_back:
                LOG.error(
                    'Not rolling back the live migration to %(dest)s: '
                    '%(what)s (%(where)s). A rollback would detach the '
                    'volumes of a VM that runs on the destination. nova '
                    'will mark the instance ERROR on this host; its VM '
                    '%(state)s. Fix the cause of the failure logged above, '
                    'check the VM with "xe vm-list name-label=%(name)s" on '
                    'both pools, then make nova\'s record match XAPI (the '
                    'instance\'s host and node must name the host the VM '
                    'runs on) and reset its state with "nova reset-state '
                    '--active %(uuid)s".',
                    {'dest': dest, 'where': where_now,
                     'what': ('the VM has already moved' if where_now.moved
                              else 'XAPI could not say that the VM is not '
                              'on the destination'),
                     'state': ('runs on the destination' if where_now.moved
                               else 'may run on either pool'),
                     'name': inst['name'], 'uuid': inst['uuid']},
                    instance=inst)
                return
            recover_method(ctxt, inst, dest, data)

        # nova calls _call_live_migrate_command without the instance: keyed
        # by this migration's own migrate data object, so concurrent
        # migrations never see each other's.
        key = id(migrate_data)
        with self._in_flight_lock:
            self._in_flight[key] = instance
        try:
            return super(SharedSRAwareVMOps, self).live_migrate(
                context, instance, destination_hostname, post_method,
                guarded_recover, block_migration, migrate_data=migrate_data)
        finally:
            with self._in_flight_lock:
                self._in_flight.pop(key, None)


class _HostState(xenapi_host.HostState):
    """nova's HostState; one refresh can be answered by the one just made.

    nova's resource tracker asks the driver for fresh host statistics
    twice per update (``get_available_resource``, then
    ``update_provider_tree``), a few milliseconds apart, each time with
    the host plugin, the default SR's scan, record and VDIs, the VM list
    and the PCI devices. :meth:`reusing` lets the second use the
    statistics of the first, once and in this thread only, unless another
    refresh replaced them meanwhile.
    """

    def __init__(self, session):
        super(_HostState, self).__init__(session)
        self._reuse = threading.local()

    def current(self):
        """The statistics of the last refresh (None before the first)."""
        return self._stats or None

    @contextlib.contextmanager
    def reusing(self, stats):
        self._reuse.stats = stats
        try:
            yield
        finally:
            self._reuse.stats = None

    def get_host_stats(self, refresh=False):
        stats = getattr(self._reuse, 'stats', None)
        if refresh and stats is not None and stats is self._stats:
            self._reuse.stats = None  # once
            return stats
        return super(_HostState, self).get_host_stats(refresh=refresh)


class XenAPISRDriver(xenapi_driver.XenAPIDriver):
    """nova 21's XenAPI driver, live-migrating across SR naming styles."""

    def __init__(self, virtapi, read_only=False):
        # Idempotent; also restores 1.5 after a test reset the registry.
        objects.register_all()
        os_xenapi_compat.apply()
        super(XenAPISRDriver, self).__init__(virtapi, read_only=read_only)
        self._policy = xapi_retry.Policy.from_conf(CONF)
        xapi_retry.instrument(self._session, self._policy)
        self._sr_claims = claims.SRClaims()
        self._vmops = SharedSRAwareVMOps(self._session, self.virtapi,
                                         self._policy, self._sr_claims)
        #: per thread: the host statistics get_available_resource read
        self._resource_stats = threading.local()

    # Host statistics ---------------------------------------------------------

    @property
    def host_state(self):
        if not self._host_state:
            self._host_state = _HostState(self._session)
        return self._host_state

    def get_available_resource(self, nodename):
        """nova's; keeps its statistics for the tracker's next step."""
        resources = super(XenAPISRDriver, self).get_available_resource(
            nodename)
        self._resource_stats.stats = self.host_state.current()
        return resources

    def update_provider_tree(self, provider_tree, nodename,
                             allocations=None):
        """nova's, from the statistics ``get_available_resource`` just read.

        The resource tracker calls both in one update, in this thread; any
        other caller, or a refresh by anyone in between, refreshes.
        """
        stats = getattr(self._resource_stats, 'stats', None)
        self._resource_stats.stats = None
        with self.host_state.reusing(stats):
            return super(XenAPISRDriver, self).update_provider_tree(
                provider_tree, nodename, allocations=allocations)

    # Source side -----------------------------------------------------------

    def check_can_live_migrate_source(self, context, instance,
                                      dest_check_data, block_device_info=None):
        decided = source.decide_sr_uuids(self._session, instance.name,
                                         block_device_info)
        if source.inside_the_pool(dest_check_data):
            message = source.same_pool_message(self._session, instance.name,
                                               decided)
            if message:
                raise nova_exception.MigrationPreCheckError(reason=message)
        if source.carries_sr_uuid_map(dest_check_data):
            dest_check_data.volume_sr_uuid_map = decided
        else:
            message = source.stock_destination_message(
                instance.name, decided, dest_check_data)
            if message and CONF.xenapi_sr.refuse_unsafe_destination:
                raise nova_exception.MigrationPreCheckError(
                    reason=message)
            if message:
                LOG.warning('%s Proceeding because [xenapi_sr] '
                            'refuse_unsafe_destination is False.', message,
                            instance=instance)
        return super(XenAPISRDriver, self).check_can_live_migrate_source(
            context, instance, dest_check_data, block_device_info)

    # Both sides ------------------------------------------------------------

    def get_volume_connector(self, instance):
        """nova's, falling back to the host record when the stats fail.

        nova fills its connector cache from the host's stats
        (``HostState.get_host_stats(refresh=True)``: the ``xenhost.py
        host_data`` dom0 plugin, a scan of the default SR, its record).
        With the cache cold (no volume attached since nova-compute
        started), the source first asks in ``_post_live_migration``, after
        ``VM.migrate_send``: a failure there fails a migration whose VM
        has moved, and nova records the instance on the source. The
        connector needs only the host's iSCSI IQN and hostname, which the
        plugin takes from the host record (os-xenapi's ``xenhost.py``
        ``host_data`` parses ``xe host-param-list``): when the stats fail,
        one ``host.get_record`` gives them. If that fails too, nova's
        error is raised.
        """
        try:
            return super(XenAPISRDriver, self).get_volume_connector(instance)
        except Exception as exc:
            with excutils.save_and_reraise_exception() as ctxt:
                connector = self._connector_from_host_record(instance, exc)
                if connector is not None:
                    ctxt.reraise = False
        return connector

    def _connector_from_host_record(self, instance, error):
        """nova's connector from ``host.get_record``, or None."""
        host = xapi_retry.host_of(self._session)
        try:
            rec = xapi_retry.call(self._session, self._policy,
                                  'host.get_record', self._session.host_ref)
            initiator = (rec.get('other_config') or {}).get('iscsi_iqn')
            hostname = rec.get('hostname')
        except Exception as exc:
            LOG.error('Cannot build the volume connector of %(host)s: its '
                      'host stats failed (%(error)s), and so did reading '
                      'its host record (%(again)s).',
                      {'host': host, 'error': xapi_retry.describe(error),
                       'again': xapi_retry.describe(exc)},
                      instance=instance)
            return None
        if not initiator or not hostname:
            LOG.error('Cannot build the volume connector of %(host)s: its '
                      'host stats failed (%(error)s), and its host record '
                      'has no %(what)s.',
                      {'host': host, 'error': xapi_retry.describe(error),
                       'what': ('other_config:iscsi_iqn' if not initiator
                                else 'hostname')}, instance=instance)
            return None
        LOG.warning('Reading the host stats of %(host)s for the volume '
                    'connector failed (%(error)s); took the iSCSI IQN and '
                    'the hostname from its host record instead.',
                    {'host': host, 'error': xapi_retry.describe(error)},
                    instance=instance)
        self._initiator = initiator
        self._hypervisor_hostname = hostname
        return {'ip': self._get_block_storage_ip(), 'initiator': initiator,
                'host': hostname}

    # Destination side ------------------------------------------------------

    def _sr_connection_data(self, connection_data, sr_uuid):
        """Connection data that makes nova introduce the SR as ``sr_uuid``."""
        return destination.sr_connection_data(connection_data, sr_uuid)

    def _inject_source_sr_uuids(self, block_device_info, volume_sr_uuid_map):
        """A copy of ``block_device_info`` honouring the given SR uuids."""
        return destination.inject(block_device_info, volume_sr_uuid_map,
                                  self._sr_connection_data)

    def pre_live_migration(self, context, instance, block_device_info,
                           network_info, disk_info, migrate_data):
        volume_sr_uuid_map = destination.source_map(migrate_data)
        if migrate_data is not None and \
                migrate_data.obj_attr_is_set('block_migration') and \
                not migrate_data.block_migration:
            # Inside the pool (VM.pool_migrate): refuse what XAPI cannot do.
            message = destination.same_pool_message(
                self._session, block_device_info, volume_sr_uuid_map)
            if message:
                raise destination.SamePoolRefusal(reason=message)
        if volume_sr_uuid_map is None:
            # An older source: stock nova's names, except for the one case
            # that stock nova always turns into an unsafe state.
            message = destination.stock_source_shared_sr_message(
                block_device_info) or \
                destination.stock_source_target_held_message(
                    self._session, block_device_info)
            if message:
                raise destination.UnsafeStockSource(reason=message)
            to_inject = {}
        else:
            to_inject = destination.validate(
                self._session, block_device_info, volume_sr_uuid_map)
        # The SRs this host is about to connect, with what they point at
        # here: rollback gets the source's connection data from nova.
        self._sr_claims.claim(instance.uuid, destination.rollback_srs(
            block_device_info, volume_sr_uuid_map or {}, None))
        existing = {}
        try:
            # Always a copy: parse_sr_info pops keys from the connection
            # data, and nova persists connection_info.
            result = self._vmops.pre_live_migration(
                context, instance,
                self._inject_source_sr_uuids(block_device_info, to_inject),
                network_info, disk_info, migrate_data, existing_srs=existing)
        except Exception:
            with excutils.save_and_reraise_exception():
                # The original fault is re-raised: the cleanup logs its own.
                self._forget_srs(instance,
                                 self._sr_claims.srs_of(instance.uuid), {},
                                 existing)
        self._sr_claims.note_existing(instance.uuid, existing)
        return result

    def _destroy_stale_import(self, instance):
        """Remove the VM record a failed ``VM.migrate_send`` left here.

        See :func:`destination.destroy_stale_import`. Nothing here raises:
        a failure is logged with what to do, and the SRs it keeps are
        reported by :meth:`_forget_srs`.
        """
        try:
            destroyed = destination.destroy_stale_import(
                self._session, self._policy, instance.name)
        except Exception as exc:
            LOG.warning('Cannot check %(host)s for a halted copy of the VM '
                        'that the failed migration may have left: '
                        '%(error)s. Check with "xe vm-list name-label=%(vm)s '
                        'power-state=halted" and destroy it ("xe vm-destroy '
                        'uuid=<vm>"); it keeps its SRs on this host.',
                        {'host': xapi_retry.host_of(self._session),
                         'error': xapi_retry.describe(exc),
                         'vm': instance.name}, instance=instance)
            return
        for vm_uuid in destroyed:
            LOG.warning('Destroyed VM %(uuid)s on %(host)s: a halted copy of '
                        'the instance that the failed migration left (xapi '
                        'could not remove it); the instance runs on the '
                        'source.', {'uuid': vm_uuid,
                                    'host': xapi_retry.host_of(self._session)},
                        instance=instance)

    def _forget_srs(self, instance, srs, sr_uuid_map, existing,
                    own_vdis=None):
        """Forget this migration's SRs that nothing else uses; release.

        SRs in ``existing`` were there before this migration: never
        forgotten by it. Nothing here raises: what is left is logged, with
        what to do.
        """
        host = xapi_retry.host_of(self._session)
        for sr_uuid, device_config in srs:
            if sr_uuid in existing:
                LOG.info('Keeping SR %s: it existed on this host before '
                         'this migration.', sr_uuid, instance=instance)
                self._forget_own_vdis(instance, sr_uuid, existing[sr_uuid])
                continue

            def forget_it():
                return destination.forget_unused_sr(
                    self._session, sr_uuid, device_config,
                    known_ref=sr_uuid_map.get(sr_uuid), policy=self._policy,
                    own_vdis=(functools.partial(own_vdis, sr_uuid)
                              if own_vdis else None))
            try:
                outcome = self._sr_claims.forget_unless_held(
                    instance.uuid, sr_uuid, forget_it)
            except Exception as exc:  # not expected: forget_unused_sr
                outcome = forget.Outcome(forget.LEFT, str(exc))
            if outcome is False:
                LOG.info('Keeping SR %s: another migration to this host '
                         'holds it.', sr_uuid, instance=instance)
            elif outcome.state in (forget.KEPT, forget.IN_USE):
                LOG.info('Keeping SR %(sr)s: %(why)s.',
                         {'sr': sr_uuid,
                          'why': outcome.reason or 'a VM uses it'},
                         instance=instance)
            elif outcome.state == forget.LEFT:
                LOG.warning(
                    'The failed migration left SR %(sr)s on this host '
                    '(%(host)s): %(reason)s. Check it with "xe sr-list '
                    'uuid=%(sr)s" and "xe vbd-list vdi-uuid=<vdi>" for its '
                    'VDIs; if no VM uses it, unplug its PBDs ("xe '
                    'pbd-unplug uuid=<pbd>" for each of "xe pbd-list '
                    'sr-uuid=%(sr)s") and forget it ("xe sr-forget '
                    'uuid=%(sr)s").',
                    {'sr': sr_uuid, 'host': host, 'reason': outcome.reason},
                    instance=instance)
        self._sr_claims.release(instance.uuid)

    def _forget_own_vdis(self, instance, sr_uuid, vdi_refs):
        """Forget the VDIs this migration connected in a kept SR.

        Only those no VBD uses (the SR's next scan shows the LUNs again).
        """
        for vdi_ref in vdi_refs:
            try:
                if xapi_retry.call(self._session, self._policy,
                                   'VDI.get_VBDs', vdi_ref):
                    continue
                self._session.call_xenapi('VDI.forget', vdi_ref)
            except Exception as exc:
                if xapi_retry.xapi_code(exc) == 'HANDLE_INVALID':
                    continue
                LOG.warning('Could not forget VDI %(vdi)s that this failed '
                            'migration connected in SR %(sr)s: %(error)s. '
                            'It holds no data of its own (the LUN stays); '
                            'forget it with "xe vdi-forget uuid=<vdi>" if '
                            'no VBD uses it.',
                            {'vdi': vdi_ref, 'sr': sr_uuid, 'error': exc},
                            instance=instance)

    def post_live_migration_at_destination(self, context, instance,
                                           network_info,
                                           block_migration=False,
                                           block_device_info=None):
        self._sr_claims.release(instance.uuid)
        try:
            return super(
                XenAPISRDriver, self).post_live_migration_at_destination(
                context, instance, network_info,
                block_migration=block_migration,
                block_device_info=block_device_info)
        except Exception as exc:
            # The VM runs here: failing now would put a healthy instance
            # into ERROR. Reads were retried already.
            LOG.warning(
                'The instance runs on this host, but the last step after '
                'its live migration failed: %(error)s. Not failing the '
                'finished migration. If it was "strip_base_mirror", remove '
                'the "base_mirror" key from its VDIs\' sm-config by hand '
                '("xe vdi-param-remove uuid=<vdi> param-name=sm-config '
                'param-key=base_mirror"); network hooks run again on the '
                'next reboot.', {'error': exc}, instance=instance)
            return None

    def detach_volume(self, context, connection_info, instance, mountpoint,
                      encryption=None):
        """nova's detach, but never of a VM that runs elsewhere or moved here.

        * nova's recover path detaches the volumes on the destination
          (``remove_volume_connection``). A source without the extension
          runs it also after the VM has moved; stripping the running VM of
          its disks cannot be the right outcome, so the volume stays
          attached and the operator is told.
        * After a failed live migration inside a pool, nova's detach on the
          destination looks the VM up by name in the whole pool: it would
          unplug and destroy the VBD of the instance still running on the
          source host and forget its SR. Nothing was connected here for
          such a VM (the pool already had the SR), so there is nothing to
          undo.
        """
        vm_ref = vm_utils.lookup(self._session, instance.name)
        if vm_ref is not None:
            if self._sr_claims.knows(instance.uuid) and \
                    self._session.call_xenapi(
                        'VM.get_power_state', vm_ref) == 'Running':
                LOG.error('Not detaching the volume at %(mountpoint)s: the '
                          'instance runs on this host while its live '
                          'migration to here is being rolled back (the '
                          'source rolled back a migration that had '
                          'completed). Check where nova records the '
                          'instance and correct it; its VM and volumes on '
                          'this host are intact.',
                          {'mountpoint': mountpoint}, instance=instance)
                return
            host = self._session.call_xenapi('VM.get_resident_on', vm_ref)
            if host not in (self._session.host_ref, 'OpaqueRef:NULL'):
                LOG.info('Not detaching %s here: the instance runs on '
                         'another host of this pool (%s).', mountpoint, host,
                         instance=instance)
                return
        return super(XenAPISRDriver, self).detach_volume(
            context, connection_info, instance, mountpoint,
            encryption=encryption)

    def rollback_live_migration_at_destination(self, context, instance,
                                               network_info,
                                               block_device_info,
                                               destroy_disks=True,
                                               migrate_data=None):
        volume_sr_uuid_map = destination.source_map(migrate_data) or {}
        self._destroy_stale_import(instance)
        sr_uuid_map = {}
        if migrate_data is not None and migrate_data.obj_attr_is_set(
                'sr_uuid_map'):
            sr_uuid_map = dict(migrate_data.sr_uuid_map)
        # First what this host connected for the migration, from its own
        # connection data; then the trusted names of the data nova hands
        # rollback (the source's: nova restores the source's attachments
        # first), whose SRs the refs this host reported in sr_uuid_map
        # identify when the targets differ.
        known = self._sr_claims.knows(instance.uuid)
        srs = self._sr_claims.srs_of(instance.uuid)
        for sr_uuid, device_config in destination.rollback_srs(
                block_device_info, volume_sr_uuid_map, sr_uuid_map):
            if sr_uuid not in [name for name, _ in srs]:
                srs.append((sr_uuid, device_config))
        own_vdis = None
        if not known:
            # nova-compute restarted since pre_live_migration: its claims,
            # and those of other migrations in flight, are lost.
            LOG.warning('No claim record of this migration (nova-compute '
                        'restarted?): keeping SRs that hold VDIs other than '
                        'this instance\'s.', instance=instance)
            own_vdis = destination.own_vdi_test(
                self._session, block_device_info)
        self._forget_srs(instance, srs, sr_uuid_map,
                         self._sr_claims.existing(instance.uuid),
                         own_vdis=own_vdis)
        # nova's own rollback, minus its SR handling (done above, also for
        # a stock source: nova's re-derives names from the source's data
        # and forgets SRs other instances use), deletes the interim
        # networks.
        return super(XenAPISRDriver,
                     self).rollback_live_migration_at_destination(
            context, instance, network_info, {'block_device_mapping': []},
            destroy_disks=destroy_disks, migrate_data=migrate_data)
