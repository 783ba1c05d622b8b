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

"""Stock nova 21's XenAPIDriver through a whole cross-pool live migration.

Two real ``nova.virt.xenapi.driver.XenAPIDriver`` instances (source on
pool-a, destination on pool-b of the mock XAPI) are driven in nova's
manager order by ``novaenv.ManagerFlow``, with the migrate data crossing
between them only as primitives. A uuid5-named SR migrates; a legacy-named
SR fails with ``UUID_INVALID`` exactly as nova bug 1566622 describes, and
the destination is left clean.
"""

from nova_xenapi_sr import naming
from nova_xenapi_sr_tools.mockxapi import fixture
from nova_xenapi_sr_tools.mockxapi import Scenario
from nova_xenapi_sr_tools import novaenv
from tests import base

STOCK = 'nova.virt.xenapi.driver.XenAPIDriver'
NOVA_UUID = '6a2b4f3e-6f5d-4c1b-9f65-3b8e0d0b7c11'
PORTAL = '192.0.2.10:3260'
IQN = 'iqn.2010-10.org.openstack:vol-1'

SUCCESS_STEPS = [
    ('dest', 'check_can_live_migrate_destination'),
    ('source', 'check_can_live_migrate_source'),
    ('dest', 'pre_live_migration'),
    ('source', 'live_migration'),
    ('source', 'post_live_migration'),
    ('source', 'get_volume_connector'),
    ('source', 'post_live_migration_at_source'),
    ('dest', 'post_live_migration_at_destination'),
]
FAILURE_STEPS = [
    ('dest', 'check_can_live_migrate_destination'),
    ('source', 'check_can_live_migrate_source'),
    ('dest', 'pre_live_migration'),
    ('source', 'live_migration'),
    ('dest', 'remove_volume_connection'),
    ('dest', 'get_volume_connector'),
    ('dest', 'rollback_live_migration_at_destination'),
]


class StockNovaFlowTest(base.TestCase):

    def setUp(self):
        super(StockNovaFlowTest, self).setUp()
        novaenv.prepare()

    def _run(self, style, vifs=(), faults=()):
        sc = Scenario()
        sc.add_pool('pool-a', hosts=['host-a'])
        sc.add_pool('pool-b', hosts=['host-b'])
        source_ci = sc.add_volume('vol-1', PORTAL, IQN, 1)
        sc.add_instance('pool-a', 1, nova_uuid=NOVA_UUID,
                        volumes=[('vol-1', style, '/dev/xvdb')],
                        vifs=[{'id': v} for v in vifs])
        xapi = self.useFixture(fixture.MockXapiFixture(sc))
        self.xapi = xapi
        for pool, method, error in faults:
            xapi.server.inject_fault(pool, method, error=error)
        src = novaenv.build_driver(STOCK, xapi.urls['pool-a'])
        dst = novaenv.build_driver(STOCK, xapi.urls['pool-b'])
        instance = novaenv.make_instance(1, NOVA_UUID, 'host-a')
        network_info = [{
            'id': v, 'address': '02:00:00:aa:00:%02x' % i, 'type': 'ovs',
            'network': {'id': 'net-1', 'bridge': 'br-int', 'subnets': [],
                        'meta': {}},
            'details': {}, 'devname': 'tap' + v, 'ovs_interfaceid': v}
            for i, v in enumerate(vifs)]
        flow = novaenv.ManagerFlow(src, dst)
        self.sources = []

        def send(obj):
            primitive = novaenv.to_primitive(obj)
            self.sources.append(primitive)
            return novaenv.from_primitive(primitive)
        flow.send = send
        source_bdi = novaenv.block_device_info([(source_ci, '/dev/xvdb')])
        dest_bdi = novaenv.block_device_info(
            [(sc.connection_info('vol-1'), '/dev/xvdb')])
        error = None
        try:
            flow.run(novaenv.admin_context(), instance, source_bdi, dest_bdi,
                     'host-b', network_info=network_info)
        except Exception as exc:
            error = exc
        return flow, error, naming.uuid5_sr_uuid(source_ci['data'])

    def _iscsi_srs(self, pool):
        return sorted(r['uuid'] for r in
                      self.xapi.pool(pool).inspect()['SR'].values()
                      if r['type'] == 'iscsi')

    def _assert_migrated(self, flow, error, uuid5):
        self.assertIsNone(error)
        self.assertEqual(SUCCESS_STEPS, flow.steps)
        self.assertEqual(['pool-b'],
                         [p for p, _ in self.xapi.server.find_vm(
                             'instance-00000001')])
        self.assertEqual([], self._iscsi_srs('pool-a'))
        self.assertEqual([uuid5], self._iscsi_srs('pool-b'))
        self.assertEqual([], self.xapi.server.copies)
        # the VM's volume VBD on pool-b points at the LUN's VDI
        view = self.xapi.pool('pool-b').inspect()
        vm = [r for r in view['VM'].values()
              if r['name_label'] == 'instance-00000001'][0]
        vdis = [view['VDI'][view['VBD'][v]['VDI']]['uuid']
                for v in vm['VBDs']]
        lun = self.xapi.server.array.target('192.0.2.10', 3260, IQN).luns[1]
        self.assertEqual([lun.vdi_uuid], vdis)
        # every hop carried a primitive, never an object
        self.assertEqual(['dest->source', 'source->dest', 'dest->conductor',
                          'conductor->source', 'source->dest',
                          'dest->source'], flow.hops)
        self.assertEqual(6, len(self.sources))
        for primitive in self.sources:
            self.assertEqual('XenapiLiveMigrateData',
                             primitive['nova_object.name'])
        self.assertEqual(['sr_uuid_map'], [
            k for k in self.sources[-1]['nova_object.data']
            if k == 'sr_uuid_map'])
        self.assertEqual({uuid5}, set(
            self.sources[-1]['nova_object.data']['sr_uuid_map']))

    def test_uuid5_sr_migrates(self):
        flow, error, uuid5 = self._run(naming.UUID5)
        self._assert_migrated(flow, error, uuid5)
        calls = [m for m, _ in self.xapi.pool('pool-a').calls()]
        self.assertIn('VM.migrate_send', calls)
        self.assertIn('SR.forget', calls)

    def test_uuid5_sr_with_vif_migrates(self):
        flow, error, uuid5 = self._run(naming.UUID5, vifs=['port-1'])
        self._assert_migrated(flow, error, uuid5)
        view = self.xapi.pool('pool-b').inspect()
        self.assertEqual(1, len(view['VIF']))
        commands = [c for c, _ in self.xapi.pool('pool-b').network_commands]
        self.assertIn('ovs_create_port', commands)

    def test_legacy_sr_fails_like_bug_1566622(self):
        from nova import exception
        flow, error, uuid5 = self._run(naming.LEGACY)
        self.assertIsInstance(error, exception.MigrationError)
        self.assertIn('Migrate Send failed', str(error))
        self.assertEqual(FAILURE_STEPS, flow.steps)
        calls = self.xapi.pool('pool-a').calls()
        self.assertIn(('SR.get_by_uuid', (uuid5,)), calls)
        self.assertNotIn('VM.migrate_send', [m for m, _ in calls])
        self.assertIn("['UUID_INVALID', 'SR', '%s']" % uuid5,
                      self.logger.output)
        # the VM is still running on the source only, with its legacy SR
        self.assertEqual(['pool-a'],
                         [p for p, _ in self.xapi.server.find_vm(
                             'instance-00000001')])
        self.assertEqual([naming.legacy_sr_uuid('vol-1')],
                         self._iscsi_srs('pool-a'))
        # the destination forgot the SR it introduced: nothing left behind
        self.assertEqual([], self._iscsi_srs('pool-b'))
        self.assertEqual({}, self.xapi.pool('pool-b').inspect()['secret'])
        self.assertEqual([], self.xapi.server.copies)

    def test_failed_pre_live_migration_is_rolled_back(self):
        from os_xenapi.client import XenAPI
        error = ['SR_BACKEND_FAILURE_68', '', 'iSCSI login failed', '']
        flow, error_raised, uuid5 = self._run(
            naming.UUID5, faults=[('pool-b', 'PBD.plug', error)])
        self.assertIsInstance(error_raised, XenAPI.Failure)
        self.assertEqual(error, error_raised.details)
        self.assertEqual([
            ('dest', 'check_can_live_migrate_destination'),
            ('source', 'check_can_live_migrate_source'),
            ('dest', 'pre_live_migration'),
            ('dest', 'remove_volume_connection'),
            ('dest', 'get_volume_connector'),
            ('dest', 'rollback_live_migration_at_destination'),
        ], flow.steps)
        self.assertEqual(['pool-a'],
                         [p for p, _ in self.xapi.server.find_vm(
                             'instance-00000001')])
        self.assertEqual([uuid5], self._iscsi_srs('pool-a'))
        # stock nova leaves the half-introduced SR to the rollback, which
        # forgets it: nothing is left behind
        self.assertEqual([], self._iscsi_srs('pool-b'))
        pbds = self.xapi.pool('pool-b').inspect()['PBD'].values()
        self.assertEqual([], [p for p in pbds
                              if 'targetIQN' in p['device_config']])
