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
  volume under the source's SR uuid (:mod:`nova_xenapi_sr.virt.destination`).
* ``rollback_live_migration_at_destination``: forgets the SRs the failed
  migration introduced, found through the migrate data.

It also applies :mod:`nova_xenapi_sr.os_xenapi_compat` before connecting:
os-xenapi 0.3.4, which nova 21 uses, cannot exchange dom0 plugin arguments
on Python 3, so stock nova 21's XenAPI driver cannot even start there.
"""

from nova import conf as nova_conf
from nova import exception as nova_exception
from nova.virt.xenapi import driver as xenapi_driver
from nova.virt.xenapi import vmops
from oslo_log import log as logging

from nova_xenapi_sr import objects
from nova_xenapi_sr import opts
from nova_xenapi_sr import os_xenapi_compat
from nova_xenapi_sr.virt import destination
from nova_xenapi_sr.virt import source

LOG = logging.getLogger(__name__)
CONF = nova_conf.CONF
opts.register_opts(CONF)
objects.register_all()


class SharedSRAwareVMOps(vmops.VMOps):
    """nova's VMOps, listing each iSCSI SR of a VM once.

    After a successful migration the source forgets every SR that
    ``_get_iscsi_srs`` lists. nova lists an SR once per VBD, so a uuid5 SR
    shared by two volumes of the VM was forgotten twice and the second
    ``SR.forget`` failed with ``HANDLE_INVALID``, turning a completed
    migration into a rollback.
    """

    def _get_iscsi_srs(self, ctxt, instance_ref):
        unique = []
        for sr_ref in super(SharedSRAwareVMOps, self)._get_iscsi_srs(
                ctxt, instance_ref):
            if sr_ref not in unique:
                unique.append(sr_ref)
        return unique


class XenAPISRDriver(xenapi_driver.XenAPIDriver):
    """nova 21's XenAPI driver, live-migrating across SR naming styles."""

    def __init__(self, virtapi, read_only=False):
        # Idempotent; also restores 1.5 after a test reset the registry.
        objects.register_all()
        os_xenapi_compat.apply()
        super(XenAPISRDriver, self).__init__(virtapi, read_only=read_only)
        self._vmops = SharedSRAwareVMOps(self._session, self.virtapi)

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
        to_inject = {}
        if volume_sr_uuid_map is not None:
            to_inject = destination.validate(
                self._session, block_device_info, volume_sr_uuid_map)
        # Always hand nova a copy: parse_sr_info pops keys from the
        # connection data, and nova persists connection_info.
        block_device_info = self._inject_source_sr_uuids(block_device_info,
                                                         to_inject)
        return super(XenAPISRDriver, self).pre_live_migration(
            context, instance, block_device_info, network_info, disk_info,
            migrate_data)

    def rollback_live_migration_at_destination(self, context, instance,
                                               network_info,
                                               block_device_info,
                                               destroy_disks=True,
                                               migrate_data=None):
        volume_sr_uuid_map = destination.source_map(migrate_data)
        if volume_sr_uuid_map is None:
            return super(XenAPISRDriver,
                         self).rollback_live_migration_at_destination(
                context, instance, network_info, block_device_info,
                destroy_disks=destroy_disks, migrate_data=migrate_data)
        sr_uuid_map = {}
        if migrate_data.obj_attr_is_set('sr_uuid_map'):
            sr_uuid_map = migrate_data.sr_uuid_map
        for sr_uuid, device_config in destination.rollback_srs(
                block_device_info, volume_sr_uuid_map, sr_uuid_map):
            try:
                destination.forget_unused_sr(self._session, sr_uuid,
                                             device_config)
            except Exception:
                LOG.exception('Rollback could not forget SR %(sr)s on this '
                              'host; check it with "xe sr-list uuid=%(sr)s" '
                              'and forget it by hand if no VM uses it.',
                              {'sr': sr_uuid}, instance=instance)
        # nova's own rollback, minus its SR handling (done above), deletes
        # the interim networks.
        return super(XenAPISRDriver,
                     self).rollback_live_migration_at_destination(
            context, instance, network_info, {'block_device_mapping': []},
            destroy_disks=destroy_disks, migrate_data=migrate_data)
