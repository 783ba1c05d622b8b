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
* ``detach_volume``: never detaches from a VM that runs on another host of
  the pool (nova's recover path of a failed same-pool migration calls it
  on the destination, where nova's own lookup finds the source's VM).
* ``rollback_live_migration_at_destination``: forgets the SRs the failed
  migration introduced, found through the claims and the migrate data,
  unless something else uses them (for a stock source too);
  ``post_live_migration_at_destination`` releases the claims.
* after the move, the source forgets each of the VM's SRs once and never
  fails the finished migration over it (:class:`SharedSRAwareVMOps`).

It also applies :mod:`nova_xenapi_sr.os_xenapi_compat` before connecting:
os-xenapi 0.3.4, which nova 21 uses, cannot exchange dom0 plugin arguments
on Python 3, so stock nova 21's XenAPI driver cannot even start there.
"""

from nova import conf as nova_conf
from nova import exception as nova_exception
from nova.virt.xenapi import driver as xenapi_driver
from nova.virt.xenapi import vm_utils
from nova.virt.xenapi import vmops
from nova.virt.xenapi import volume_utils
from oslo_log import log as logging
from oslo_utils import excutils

from nova_xenapi_sr import objects
from nova_xenapi_sr import opts
from nova_xenapi_sr import os_xenapi_compat
from nova_xenapi_sr.virt import claims
from nova_xenapi_sr.virt import destination
from nova_xenapi_sr.virt import source

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

    Iterating this list therefore does the forgetting itself, with the same
    XAPI calls as nova, logs what it cannot forget instead of raising, and
    yields nothing, so nova's own loop has nothing left to do. ``len()``
    still counts the SRs (nova's pre-check uses it).
    """

    def __init__(self, session, sr_refs):
        unique = []
        for sr_ref in sr_refs:
            if sr_ref not in unique:
                unique.append(sr_ref)
        super(_SourceSRCleanup, self).__init__(unique)
        self._session = session

    def __iter__(self):
        for sr_ref in list(super(_SourceSRCleanup, self).__iter__()):
            try:
                volume_utils.forget_sr(self._session, sr_ref)
            except Exception as exc:
                details = getattr(exc, 'details', None) or [exc]
                if details[0] == 'SR_HAS_PBD':
                    LOG.info('Keeping SR %s on the source: another VM still '
                             'uses it.', sr_ref)
                else:
                    LOG.error('The VM has moved, but the source could not '
                              'forget its SR %(sr)s: %(exc)s. Check it with '
                              '"xe sr-list" and forget it by hand once no '
                              'VM uses it.', {'sr': sr_ref, 'exc': exc})
        return iter(())


class SharedSRAwareVMOps(vmops.VMOps):
    """nova's VMOps whose post-migration SR cleanup cannot fail the move.

    See :class:`_SourceSRCleanup`.
    """

    def _get_iscsi_srs(self, ctxt, instance_ref):
        return _SourceSRCleanup(
            self._session,
            super(SharedSRAwareVMOps, self)._get_iscsi_srs(ctxt,
                                                           instance_ref))


class XenAPISRDriver(xenapi_driver.XenAPIDriver):
    """nova 21's XenAPI driver, live-migrating across SR naming styles."""

    def __init__(self, virtapi, read_only=False):
        # Idempotent; also restores 1.5 after a test reset the registry.
        objects.register_all()
        os_xenapi_compat.apply()
        super(XenAPISRDriver, self).__init__(virtapi, read_only=read_only)
        self._vmops = SharedSRAwareVMOps(self._session, self.virtapi)
        self._sr_claims = claims.SRClaims()

    # Source side -----------------------------------------------------------

    def check_can_live_migrate_source(self, context, instance,
                                      dest_check_data, block_device_info=None):
        decided = source.decide_sr_uuids(self._session, instance.name,
                                         block_device_info)
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
        try:
            # Always a copy: parse_sr_info pops keys from the connection
            # data, and nova persists connection_info.
            return super(XenAPISRDriver, self).pre_live_migration(
                context, instance,
                self._inject_source_sr_uuids(block_device_info, to_inject),
                network_info, disk_info, migrate_data)
        except Exception:
            with excutils.save_and_reraise_exception():
                self._forget_srs(instance,
                                 self._sr_claims.srs_of(instance.uuid), {})

    def _forget_srs(self, instance, srs, sr_uuid_map):
        """Forget this migration's SRs that nothing else uses; release."""
        for sr_uuid, device_config in srs:
            def forget():
                return destination.forget_unused_sr(
                    self._session, sr_uuid, device_config,
                    known_ref=sr_uuid_map.get(sr_uuid))
            try:
                if not self._sr_claims.forget_unless_held(
                        instance.uuid, sr_uuid, forget):
                    LOG.info('Keeping SR %s: it is still in use.', sr_uuid,
                             instance=instance)
            except Exception:
                LOG.exception('Could not forget SR %(sr)s on this host; '
                              'check it with "xe sr-list uuid=%(sr)s" and '
                              'forget it by hand if no VM uses it.',
                              {'sr': sr_uuid}, instance=instance)
        self._sr_claims.release(instance.uuid)

    def detach_volume(self, context, connection_info, instance, mountpoint,
                      encryption=None):
        """nova's detach, but never of a VM running on another pool host.

        After a failed live migration inside a pool, nova's compute manager
        calls ``remove_volume_connection`` on the destination, and nova's
        detach there looks the VM up by name in the whole pool: it would
        unplug and destroy the VBD of the instance still running on the
        source host and forget its SR. Nothing was connected here for such
        a VM (the pool already had the SR), so there is nothing to undo.
        """
        vm_ref = vm_utils.lookup(self._session, instance.name)
        if vm_ref is not None:
            host = self._session.call_xenapi('VM.get_resident_on', vm_ref)
            if host not in (self._session.host_ref, 'OpaqueRef:NULL'):
                LOG.info('Not detaching %s here: the instance runs on '
                         'another host of this pool (%s).', mountpoint, host,
                         instance=instance)
                return
        return super(XenAPISRDriver, self).detach_volume(
            context, connection_info, instance, mountpoint,
            encryption=encryption)

    def post_live_migration_at_destination(self, context, instance,
                                           network_info,
                                           block_migration=False,
                                           block_device_info=None):
        self._sr_claims.release(instance.uuid)
        return super(XenAPISRDriver, self).post_live_migration_at_destination(
            context, instance, network_info, block_migration=block_migration,
            block_device_info=block_device_info)

    def rollback_live_migration_at_destination(self, context, instance,
                                               network_info,
                                               block_device_info,
                                               destroy_disks=True,
                                               migrate_data=None):
        volume_sr_uuid_map = destination.source_map(migrate_data) or {}
        sr_uuid_map = {}
        if migrate_data is not None and migrate_data.obj_attr_is_set(
                'sr_uuid_map'):
            sr_uuid_map = dict(migrate_data.sr_uuid_map)
        # First what this host connected for the migration, from its own
        # connection data; then the trusted names of the data nova hands
        # rollback (the source's: nova restores the source's attachments
        # first), whose SRs the refs this host reported in sr_uuid_map
        # identify when the targets differ.
        srs = self._sr_claims.srs_of(instance.uuid)
        for sr_uuid, device_config in destination.rollback_srs(
                block_device_info, volume_sr_uuid_map, sr_uuid_map):
            if sr_uuid not in [name for name, _ in srs]:
                srs.append((sr_uuid, device_config))
        self._forget_srs(instance, srs, sr_uuid_map)
        # nova's own rollback, minus its SR handling (done above, also for
        # a stock source: nova's re-derives names from the source's data
        # and forgets SRs other instances use), deletes the interim
        # networks.
        return super(XenAPISRDriver,
                     self).rollback_live_migration_at_destination(
            context, instance, network_info, {'block_device_mapping': []},
            destroy_disks=destroy_disks, migrate_data=migrate_data)
