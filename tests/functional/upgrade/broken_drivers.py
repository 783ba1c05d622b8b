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

"""Deliberately broken extensions, to prove the verification catches them.

Loaded by dotted path (``--extension-driver``) in the extension compute
processes, which get the repository root on ``sys.path``. Each overrides
one hook of the extension driver's contract.
"""

import os

from nova import exception as nova_exception

from nova_xenapi_sr.virt import driver
from nova_xenapi_sr.virt import source


class SkipsInjection(driver.XenAPISRDriver):
    """Forgets to honour the source's SR uuids on the destination."""

    def _inject_source_sr_uuids(self, block_device_info, volume_sr_uuid_map):
        return block_device_info


class ForgetsIntroduceKeys(driver.XenAPISRDriver):
    """Injects only ``sr_uuid``, without ``introduce_sr_keys``.

    nova then introduces an SR and a PBD with an empty ``device_config``.
    """

    def _sr_connection_data(self, connection_data, sr_uuid):
        data = dict(connection_data)
        data['sr_uuid'] = sr_uuid
        return data


class DiesInPreLiveMigration(driver.XenAPISRDriver):
    """The destination's nova-compute process dies mid-migration."""

    def pre_live_migration(self, context, instance, block_device_info,
                           network_info, disk_info, migrate_data):
        os._exit(3)


class MutatesBlockDeviceInfo(driver.XenAPISRDriver):
    """Migrates, but writes into the connection_info nova persists."""

    def pre_live_migration(self, context, instance, block_device_info,
                           network_info, disk_info, migrate_data):
        for bdm in block_device_info['block_device_mapping']:
            bdm['connection_info']['data']['touched_by_driver'] = True
        return super(MutatesBlockDeviceInfo, self).pre_live_migration(
            context, instance, block_device_info, network_info, disk_info,
            migrate_data)


class FailsPostAtDestination(driver.XenAPISRDriver):
    """Moves the VM, then fails the destination's post-migration step.

    nova's destination manager then sets the instance to ERROR; the source
    only logs the failure.
    """

    def post_live_migration_at_destination(self, context, instance,
                                           network_info,
                                           block_migration=False,
                                           block_device_info=None):
        super(FailsPostAtDestination,
              self).post_live_migration_at_destination(
            context, instance, network_info, block_migration,
            block_device_info)
        raise RuntimeError('broken on purpose after the move')


class RefusesEveryStockDestination(driver.XenAPISRDriver):
    """Refuses every 1.4 destination, uuid5-only instances included.

    Stock nova migrates uuid5 SRs by itself: the refusal is harm done by
    the extension, however well it is worded.
    """

    def check_can_live_migrate_source(self, context, instance,
                                      dest_check_data, block_device_info=None):
        if not source.carries_sr_uuid_map(dest_check_data):
            raise nova_exception.MigrationPreCheckError(
                reason='the destination runs stock nova; install '
                       'nova-xenapi-sr on the destination, then retry')
        return super(RefusesEveryStockDestination,
                     self).check_can_live_migrate_source(
            context, instance, dest_check_data, block_device_info)
