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

"""Wiring of XenAPISRDriver: what it hands to nova's own driver code."""

import copy
from unittest import mock

from nova import exception as nova_exception
from nova.objects import migrate_data as nova_migrate_data
from nova.virt.xenapi import driver as xenapi_driver
from oslo_config import fixture as config_fixture

from nova_xenapi_sr import naming
from nova_xenapi_sr.objects import migrate_data
from nova_xenapi_sr.virt import claims
from nova_xenapi_sr.virt import destination
from nova_xenapi_sr.virt import driver
from nova_xenapi_sr.virt.forget import GONE
from nova_xenapi_sr.virt.forget import Outcome
from nova_xenapi_sr.virt import xapi_retry
from nova_xenapi_sr_tools import fixture as xs_fixture
from tests import base
from tests.unit.virt import fakes
from tests.unit.virt.test_source import bdi
from tests.unit.virt.test_source import connection_info

PARENT = xenapi_driver.XenAPIDriver
POLICY = xapi_retry.Policy(interval=0)
GONE = Outcome(GONE)


class Instance(object):
    name = 'instance-00000001'
    uuid = '1e9e8a36-44f4-4c0c-a7b2-3f1f0e4f5d6a'


class DriverTestCase(base.TestCase):

    def setUp(self):
        super(DriverTestCase, self).setUp()
        self.useFixture(xs_fixture.ObjectRegistryFixture(
            register_extension=True))
        self.conf = self.useFixture(config_fixture.Config(driver.CONF))
        self.session = fakes.FakeSession()
        # No XAPI here: the driver is built without its constructor.
        self.drv = driver.XenAPISRDriver.__new__(driver.XenAPISRDriver)
        self.drv._session = self.session
        self.drv._sr_claims = claims.SRClaims()
        self.drv._policy = xapi_retry.Policy(interval=0)
        self.info = connection_info('vol-1')
        self.legacy = naming.legacy_sr_uuid('vol-1')
        self.uuid5 = naming.uuid5_sr_uuid(self.info['data'])

    def add_sr(self, sr_uuid):
        self.session.add('SR', 'OpaqueRef:%s' % sr_uuid, uuid=sr_uuid)


class SourceTestCase(DriverTestCase):

    def test_extension_destination_gets_the_map(self):
        self.add_sr(self.legacy)
        data = migrate_data.XenapiLiveMigrateData()
        with mock.patch.object(PARENT, 'check_can_live_migrate_source',
                               side_effect=lambda c, i, d, b: d) as parent:
            got = self.drv.check_can_live_migrate_source(
                'ctxt', Instance(), data, bdi(self.info))
        self.assertEqual({'vol-1': self.legacy}, got.volume_sr_uuid_map)
        parent.assert_called_once_with('ctxt', mock.ANY, data, mock.ANY)
        primitive = got.obj_to_primitive()
        self.assertEqual({'vol-1': self.legacy},
                         primitive['nova_object.data']['volume_sr_uuid_map'])

    def _stock_data(self):
        data = nova_migrate_data.XenapiLiveMigrateData(
            migrate_send_data={'master': 'http://pool-b'})
        return migrate_data.XenapiLiveMigrateData.obj_from_primitive(
            data.obj_to_primitive())

    def test_stock_destination_refused_for_legacy_before_nova_runs(self):
        self.add_sr(self.legacy)
        with mock.patch.object(PARENT,
                               'check_can_live_migrate_source') as parent:
            exc = self.assertRaises(
                nova_exception.MigrationPreCheckError,
                self.drv.check_can_live_migrate_source, 'ctxt', Instance(),
                self._stock_data(), bdi(self.info))
        parent.assert_not_called()
        self.assertIn('vol-1', str(exc))
        self.assertIn('http://pool-b', str(exc))

    def test_stock_destination_warned_when_configured(self):
        self.conf.config(refuse_unsafe_destination=False, group='xenapi_sr')
        self.add_sr(self.legacy)
        data = self._stock_data()
        with mock.patch.object(PARENT, 'check_can_live_migrate_source',
                               side_effect=lambda c, i, d, b: d):
            got = self.drv.check_can_live_migrate_source(
                'ctxt', Instance(), data, bdi(self.info))
        self.assertEqual('1.4', got.VERSION)
        self.assertNotIn('volume_sr_uuid_map', got.obj_to_primitive()[
            'nova_object.data'])
        self.assertIn('refuse_unsafe_destination is False',
                      self.logger.output)

    def test_stock_destination_uuid5_proceeds_untouched(self):
        self.add_sr(self.uuid5)
        data = self._stock_data()
        before = data.obj_to_primitive()
        with mock.patch.object(PARENT, 'check_can_live_migrate_source',
                               side_effect=lambda c, i, d, b: d):
            got = self.drv.check_can_live_migrate_source(
                'ctxt', Instance(), data, bdi(self.info))
        self.assertEqual(before, got.obj_to_primitive())


class DestinationTestCase(DriverTestCase):

    def _pre(self, volume_sr_uuid_map, block_device_info):
        data = migrate_data.XenapiLiveMigrateData()
        if volume_sr_uuid_map is not None:
            data.volume_sr_uuid_map = volume_sr_uuid_map
        self.drv._vmops = parent = mock.Mock()
        parent.pre_live_migration.return_value = data
        got = self.drv.pre_live_migration(
            'ctxt', Instance(), block_device_info, [], None, data)
        self.assertIs(data, got)
        return parent.pre_live_migration.call_args[0][2]

    def test_legacy_injected_into_a_copy(self):
        original = bdi(self.info)
        snapshot = copy.deepcopy(original)
        handed = self._pre({'vol-1': self.legacy}, original)
        self.assertEqual(snapshot, original)
        data = handed['block_device_mapping'][0]['connection_info']['data']
        self.assertEqual(self.legacy, data['sr_uuid'])
        self.assertEqual(['target', 'port', 'targetIQN'],
                         data['introduce_sr_keys'])

    def test_uuid5_and_absent_map_hand_nova_an_equal_copy(self):
        for volume_sr_uuid_map in ({'vol-1': self.uuid5}, None):
            original = bdi(self.info)
            handed = self._pre(volume_sr_uuid_map, original)
            self.assertEqual(original, handed)
            self.assertIsNot(original['block_device_mapping'][0][
                'connection_info'], handed['block_device_mapping'][0][
                'connection_info'])
        # only the read that looks for SRs already holding the target
        # (destination._check_target_holders), with and without a map
        self.assertEqual(['PBD.get_all_records'] * 2,
                         self.session.methods())

    def test_same_pool_refused_before_nova_runs(self):
        # no block migration: VM.pool_migrate needs the SRs plugged here
        # (xapi_vm_helpers.ml assert_can_see_SRs)
        uuid5 = naming.uuid5_sr_uuid(self.info['data'])
        self.session.add('SR', 'OpaqueRef:sr', uuid=uuid5, type='iscsi')
        self.session.add('PBD', 'OpaqueRef:pbd', SR='OpaqueRef:sr',
                         host='OpaqueRef:source', currently_attached=True)
        for volume_sr_uuid_map in ({'vol-1': uuid5}, None):
            data = migrate_data.XenapiLiveMigrateData(block_migration=False)
            if volume_sr_uuid_map is not None:
                data.volume_sr_uuid_map = volume_sr_uuid_map
            with mock.patch.object(PARENT, 'pre_live_migration') as parent:
                exc = self.assertRaises(destination.SamePoolRefusal,
                                        self.drv.pre_live_migration, 'ctxt',
                                        Instance(), bdi(self.info), [],
                                        None, data)
            parent.assert_not_called()
            self.assertIn('VM_REQUIRES_SR', str(exc))

    def test_tampered_map_refused_before_nova_runs(self):
        self.drv._vmops = parent = mock.Mock()
        data = migrate_data.XenapiLiveMigrateData(
            volume_sr_uuid_map={'vol-1': 'FA15E-D15C-someone-else'})
        self.assertRaises(destination.UntrustedSRUuid,
                          self.drv.pre_live_migration, 'ctxt',
                          Instance(), bdi(self.info), [], None, data)
        parent.pre_live_migration.assert_not_called()


class RollbackTestCase(DriverTestCase):

    def test_without_map_uuid5_srs_forgotten_then_nova_cleans_networks(self):
        # A stock source: nova's rollback would re-derive the names and
        # forget SRs other instances use; the driver does it carefully.
        data = migrate_data.XenapiLiveMigrateData()
        info = bdi(self.info)
        with mock.patch.object(
                PARENT, 'rollback_live_migration_at_destination') as parent, \
                mock.patch.object(destination, 'forget_unused_sr',
                                  return_value=GONE) as forget:
            self.drv.rollback_live_migration_at_destination(
                'ctxt', Instance(), [], info, migrate_data=data)
        # No claim record (as after a restart): own_vdis guards the SR.
        forget.assert_called_once_with(
            self.session, self.uuid5, naming.device_config(self.info['data']),
            known_ref=None, policy=self.drv._policy, own_vdis=mock.ANY)
        self.assertIsNotNone(forget.call_args[1]['own_vdis'])
        parent.assert_called_once_with(
            'ctxt', mock.ANY, [], {'block_device_mapping': []},
            destroy_disks=True, migrate_data=data)

    def test_claimed_srs_found_with_this_hosts_own_data(self):
        # pre_live_migration claimed the SR with this host's target; nova
        # hands rollback the source's data, naming another target.
        own = naming.device_config(self.info['data'])
        self.drv._sr_claims.claim(Instance.uuid, [(self.legacy, own)])
        data = migrate_data.XenapiLiveMigrateData(
            volume_sr_uuid_map={'vol-1': self.legacy})
        source_side = connection_info('vol-1', iqn='iqn.source-side')
        with mock.patch.object(
                PARENT, 'rollback_live_migration_at_destination'), \
                mock.patch.object(destination, 'forget_unused_sr',
                                  return_value=GONE) as forget:
            self.drv.rollback_live_migration_at_destination(
                'ctxt', Instance(), [], bdi(source_side), migrate_data=data)
        forget.assert_called_once_with(self.session, self.legacy, own,
                                       known_ref=None,
                                       policy=self.drv._policy,
                                       own_vdis=None)
        self.assertEqual([], self.drv._sr_claims.srs_of(Instance.uuid))

    def test_with_map_forgets_trusted_srs_then_nova_cleans_networks(self):
        data = migrate_data.XenapiLiveMigrateData(
            volume_sr_uuid_map={'vol-1': self.legacy})
        with mock.patch.object(
                PARENT, 'rollback_live_migration_at_destination') as parent, \
                mock.patch.object(destination, 'forget_unused_sr',
                                  side_effect=[Exception('boom')]) as forget:
            self.drv.rollback_live_migration_at_destination(
                'ctxt', Instance(), ['vif'], bdi(self.info),
                migrate_data=data)
        forget.assert_called_once_with(
            self.session, self.legacy, naming.device_config(self.info["data"]),
            known_ref=None, policy=self.drv._policy, own_vdis=mock.ANY)
        self.assertIn('left SR %s' % self.legacy, self.logger.output)
        self.assertIn('xe sr-forget uuid=%s' % self.legacy,
                      self.logger.output)
        parent.assert_called_once_with(
            'ctxt', mock.ANY, ['vif'], {'block_device_mapping': []},
            destroy_disks=True, migrate_data=data)


class SourceSRCleanupTestCase(base.TestCase):

    def setUp(self):
        super(SourceSRCleanupTestCase, self).setUp()
        self.session = fakes.FakeSession()
        for name in ('a', 'b', 'c'):
            self.session.add('SR', 'OpaqueRef:%s' % name, PBDs=[])

    def test_nova_pre_check_counts_each_sr_once(self):
        ops = driver.SharedSRAwareVMOps.__new__(driver.SharedSRAwareVMOps)
        ops._session = self.session
        ops._policy = POLICY
        refs = ['OpaqueRef:a', 'OpaqueRef:b', 'OpaqueRef:a']

        def get_iscsi_srs(session, vm_ref, pbds, memo=None):
            pbds.update({'OpaqueRef:a': [], 'OpaqueRef:b': []})
            return refs
        with mock.patch('nova_xenapi_sr.virt.bulk.get_iscsi_srs',
                        side_effect=get_iscsi_srs), \
                mock.patch.object(ops, '_get_vm_opaque_ref',
                                  return_value='OpaqueRef:vm'):
            srs = ops._get_iscsi_srs('ctxt', 'instance')
        self.assertEqual(2, len(srs))
        self.assertEqual([], self.session.calls)
        # forgotten from the PBDs the query returned: no SR.get_PBDs
        self.assertEqual([], list(srs))
        self.assertEqual(['SR.forget', 'SR.forget'], self.session.methods())

    def test_iterating_forgets_each_sr_once_and_yields_nothing(self):
        srs = driver._SourceSRCleanup(
            self.session, ['OpaqueRef:a', 'OpaqueRef:b', 'OpaqueRef:a'],
            POLICY)
        self.assertEqual([], list(srs))
        forgotten = [args[0] for method, args in self.session.calls
                     if method == 'SR.forget']
        self.assertEqual(['OpaqueRef:a', 'OpaqueRef:b'], forgotten)

    def test_in_use_and_left_behind_are_told_apart(self):
        self.session.records['SR']['OpaqueRef:a']['PBDs'] = ['OpaqueRef:pa']
        self.session.add('SR', 'OpaqueRef:d', PBDs=['OpaqueRef:pd'],
                         uuid='d-uuid')
        real = self.session.call_xenapi
        forgets = []

        def call(method, *args):
            if method == 'SR.forget':
                forgets.append(args[0])
            if method == 'PBD.unplug' and args[0] == 'OpaqueRef:pa':
                raise fakes.Failure(['VDI_IN_USE', 'OpaqueRef:vdi'])
            if method == 'PBD.unplug' and args[0] == 'OpaqueRef:pd':
                raise fakes.Failure(['INTERNAL_ERROR', 'unplug boom'])
            if method == 'SR.forget' and args[0] == 'OpaqueRef:b':
                raise fakes.Failure(['INTERNAL_ERROR', 'boom'])
            return real(method, *args)
        self.session.call_xenapi = call
        srs = driver._SourceSRCleanup(
            self.session, ['OpaqueRef:a', 'OpaqueRef:b', 'OpaqueRef:c',
                           'OpaqueRef:d'], POLICY)
        self.assertEqual([], list(srs))
        self.assertNotIn('OpaqueRef:c', self.session.records['SR'])
        output = self.logger.output
        self.assertIn('INFO nova_xenapi_sr.virt.driver Keeping SR '
                      'OpaqueRef:a on the source: another VM still uses it',
                      output)
        # Both faults: retried, then a WARNING with what was left.
        self.assertIn('WARNING nova_xenapi_sr.virt.driver The VM has moved, '
                      'but SR OpaqueRef:b is left', output)
        self.assertIn('SR.forget failed: XAPI error INTERNAL_ERROR boom',
                      output)
        self.assertIn('but SR d-uuid is left', output)
        self.assertIn('PBD.unplug of OpaqueRef:pd failed', output)
        self.assertIn('xe sr-forget uuid=d-uuid', output)
        self.assertNotIn('OpaqueRef:a on the source: another VM',
                         output.split('OpaqueRef:b is left')[1])
        self.assertEqual(POLICY.attempts, forgets.count('OpaqueRef:b'))
        self.assertNotIn('OpaqueRef:a', forgets)
        self.assertNotIn('OpaqueRef:d', forgets)


class DetachTestCase(DriverTestCase):
    """detach_volume leaves a VM on another host of the pool alone."""

    def _vm(self, host):
        self.session.add('VM', 'OpaqueRef:vm', name_label=Instance.name,
                         resident_on=host, is_a_template=False,
                         is_a_snapshot=False)

    def _detach(self):
        with mock.patch.object(PARENT, 'detach_volume') as parent:
            self.drv.detach_volume('ctxt', {'data': {}}, Instance(),
                                   '/dev/xvdb')
        return parent

    def test_vm_on_another_pool_host_not_detached(self):
        self._vm('OpaqueRef:source-host')
        self._detach().assert_not_called()

    def test_vm_here_or_halted_or_absent_detached_by_nova(self):
        for host in ('OpaqueRef:host', 'OpaqueRef:NULL'):
            self.session.records.clear()
            self._vm(host)
            self._detach().assert_called_once()
        self.session.records.clear()
        self._detach().assert_called_once()
