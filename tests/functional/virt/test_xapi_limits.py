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

"""Migrations real XAPI cannot do, through the real drivers and the mock.

Stock nova 21's XenAPI driver and XenAPISRDriver, on real os-xenapi
sessions, against the mock XAPI with xapi's rules: what stock nova does
and how the extension refuses, before any XAPI write on the destination.

* Same pool (``VM.pool_migrate``, no block migration): a pool of two hosts;
  the destination compute's session goes to the pool member, which refers
  it to the master (``HOST_IS_SLAVE``). nova connects nothing on the
  destination host for an SR the pool already has, and its SRs are
  unshared, so ``VM.pool_migrate`` fails with ``VM_REQUIRES_SR``
  (``xapi_vm_helpers.ml`` ``assert_can_see_SRs``).
* A volume whose target another SR of the destination pool already holds:
  SM's scan of the SR nova introduces fails (``SR_BACKEND_FAILURE_40``).
"""

import copy

from nova_xenapi_sr import naming
from nova_xenapi_sr.virt import destination
from nova_xenapi_sr_tools import fixture as xs_fixture
from nova_xenapi_sr_tools.mockxapi import fixture
from nova_xenapi_sr_tools.mockxapi import Scenario
from nova_xenapi_sr_tools import novaenv
from tests import base

EXTENSION = 'nova_xenapi_sr.virt.driver.XenAPISRDriver'
STOCK = 'nova.virt.xenapi.driver.XenAPIDriver'
NOVA_UUID = '6d1f2b3a-0c4d-4e5f-8a9b-0c1d2e3f4a5b'
NAME = 'instance-00000001'
PORTAL = '192.0.2.10:3260'
WRITES = ('SR.introduce', 'SR.forget', 'PBD.create', 'PBD.plug',
          'PBD.unplug', 'PBD.destroy', 'SR.scan', 'VDI.introduce',
          'VBD.create', 'network.create')


def iqn(name):
    return 'iqn.2010-10.org.openstack:%s' % name


class _Base(base.TestCase):

    def setUp(self):
        super(_Base, self).setUp()
        novaenv.prepare()
        self.useFixture(xs_fixture.ObjectRegistryFixture(
            register_extension=True))

    def start(self, sc, source_url, dest_url, driver):
        self.xapi = self.useFixture(fixture.MockXapiFixture(sc))
        self.src = novaenv.build_driver(driver, source_url(self.xapi))
        self.dst = novaenv.build_driver(driver, dest_url(self.xapi))
        for pool in self.xapi.server.world.pools:
            self.xapi.pool(pool).clear_calls()
        self.flow = novaenv.ManagerFlow(self.src, self.dst)

    def run_flow(self, source_bdi, dest_bdi, dest_host, block_migration):
        instance = novaenv.make_instance(1, NOVA_UUID, 'host-a')
        snapshots = copy.deepcopy((source_bdi, dest_bdi))
        try:
            self.flow.run(novaenv.admin_context(), instance, source_bdi,
                          dest_bdi, dest_host,
                          block_migration=block_migration)
        except Exception as exc:
            error = exc
        else:
            error = None
        self.assertEqual(snapshots, (source_bdi, dest_bdi))
        return error

    def writes(self, pool):
        """Write calls, minus nova's scans of the local default SR."""
        xs = self.xapi.session(pool).xenapi
        default = xs.pool.get_default_SR(xs.pool.get_all()[0])
        return [m for m, a in self.xapi.pool(pool).calls()
                if m in WRITES and (m, tuple(a)) != ('SR.scan', (default,))]


class SamePoolTestCase(_Base):
    """Two hosts in one pool; nova's non-block live migration."""

    def build(self, driver, style):
        sc = Scenario()
        sc.add_pool('pool-a', hosts=['host-a', 'host-a2'])
        sc.add_pool('pool-b', hosts=['host-b'])
        info = sc.add_volume('vol-1', PORTAL, iqn('vol-1'), 1)
        sc.add_instance('pool-a', 1, nova_uuid=NOVA_UUID, host='host-a',
                        volumes=[('vol-1', style, '/dev/xvdb')])
        self.start(sc, lambda x: x.urls['pool-a'],
                   lambda x: x.server.host_urls[('pool-a', 'host-a2')],
                   driver)
        self.sr_uuid = (naming.legacy_sr_uuid('vol-1')
                        if style == naming.LEGACY
                        else naming.uuid5_sr_uuid(info['data']))
        self.bdi = novaenv.block_device_info([(info, '/dev/xvdb')])
        self.baseline = self.xapi.pool('pool-a').inspect()

    def resident_host(self):
        xs = self.xapi.session('pool-a').xenapi
        vm = xs.VM.get_by_name_label(NAME)[0]
        return xs.host.get_name_label(xs.VM.get_resident_on(vm))

    def assert_pool_unchanged(self):
        after = self.xapi.pool('pool-a').inspect()
        for cls in ('SR', 'PBD', 'VDI', 'VBD', 'VM'):
            self.assertEqual(sorted(self.baseline[cls]), sorted(after[cls]),
                             cls)

    def test_destination_session_is_on_the_pool_member(self):
        self.build(EXTENSION, naming.UUID5)
        xs = self.xapi.session('pool-a').xenapi
        self.assertEqual('host-a2',
                         xs.host.get_name_label(self.dst._session.host_ref))
        self.assertTrue(self.dst._session.is_slave)

    def _stock(self, style, expected):
        self.build(STOCK, style)
        error = self.run_flow(self.bdi, self.bdi, 'host-a2', False)
        self.assertIsNotNone(error)
        self.assertIn(expected, str(error))
        self.assertEqual('host-a', self.resident_host())
        # nova's recover path calls detach_volume on the destination, and
        # nova's lookup by name finds the source's VM in the pool: the
        # running instance loses its volume and its SR is forgotten
        xs = self.xapi.session('pool-a').xenapi
        vm = xs.VM.get_by_name_label(NAME)[0]
        self.assertEqual([], xs.VM.get_VBDs(vm))
        self.assertEqual(['ext'], [r['type'] for r in self.xapi.pool(
            'pool-a').inspect()['SR'].values()])

    def test_stock_nova_uuid5_fails_and_detaches(self):
        # nova finds the pool's SR, connects nothing on host-a2, and
        # VM.pool_migrate refuses (assert_can_see_SRs)
        self._stock(naming.UUID5, 'VM_REQUIRES_SR')
        self.assertEqual(1, len([m for m, _ in self.xapi.pool(
            'pool-a').calls() if m == 'VM.pool_migrate']))

    def test_stock_nova_legacy_fails_and_detaches(self):
        # nova derives the uuid5 name, introduces that SR on host-a2, and
        # its scan fails on the LUN the legacy SR holds (SR.py
        # synchronise_new: SR_BACKEND_FAILURE_40)
        self._stock(naming.LEGACY, 'SR_BACKEND_FAILURE_40')
        self.assertNotIn('VM.pool_migrate', [m for m, _ in self.xapi.pool(
            'pool-a').calls()])

    def _extension(self, style):
        self.build(EXTENSION, style)
        error = self.run_flow(self.bdi, self.bdi, 'host-a2', False)
        self.assertIsInstance(error, destination.SamePoolRefusal)
        for needle in ('vol-1', self.sr_uuid, 'VM_REQUIRES_SR',
                       'Nothing was changed', 'block migration'):
            self.assertIn(needle, str(error))
        self.assertIn(('dest', 'pre_live_migration'), self.flow.steps)
        self.assertNotIn(('source', 'live_migration'), self.flow.steps)
        self.assertEqual([], self.writes('pool-a'))
        self.assertEqual('host-a', self.resident_host())
        self.assert_pool_unchanged()

    def test_extension_refuses_uuid5_before_any_write(self):
        self._extension(naming.UUID5)

    def test_block_migration_inside_the_pool_refused(self):
        # nova's default inside a pool whose default SR is unshared: block
        # migration (migrate_send within the pool). The kept disk's SR is
        # not plugged on host-a2 and cannot be (SR_NOT_SHARABLE)
        for driver in (STOCK, EXTENSION):
            self.build(driver, naming.UUID5)
            error = self.run_flow(self.bdi, self.bdi, 'host-a2', None)
            self.assertIsNotNone(error)
            self.assertEqual('host-a', self.resident_host())
            xs = self.xapi.session('pool-a').xenapi
            vbds = xs.VM.get_VBDs(xs.VM.get_by_name_label(NAME)[0])
            if driver == STOCK:
                # migrate_send refused; nova's recover path then detaches
                # the running instance's volume
                self.assertIn('Migrate Send failed', str(error))
                self.assertIn('VM.migrate_send', [
                    m for m, _ in self.xapi.pool('pool-a').calls()])
                self.assertEqual([], vbds)
            else:
                self.assertIsInstance(error, destination.UntrustedSRUuid)
                self.assertIn('SR_NOT_SHARABLE', str(error))
                self.assertIn('VM_REQUIRES_SR', str(error))
                self.assertNotIn(('source', 'live_migration'),
                                 self.flow.steps)
                self.assertEqual([], self.writes('pool-a'))
                self.assert_pool_unchanged()

    def test_extension_refuses_legacy_before_any_write(self):
        self._extension(naming.LEGACY)


class TargetHeldTestCase(_Base):
    """Cross-pool: the destination pool already reaches the target."""

    def build(self, driver, style, holder_style):
        sc = Scenario()
        sc.add_pool('pool-a', hosts=['host-a'])
        sc.add_pool('pool-b', hosts=['host-b'])
        info = sc.add_volume('vol-1', PORTAL, iqn('shared'), 1)
        sc.add_volume('vol-9', PORTAL, iqn('shared'), 9)
        sc.add_instance('pool-a', 1, nova_uuid=NOVA_UUID,
                        volumes=[('vol-1', style, '/dev/xvdb')])
        # a bystander on the destination pool holds the target's LUNs
        sc.add_instance('pool-b', 9, volumes=[('vol-9', holder_style,
                                               '/dev/xvdb')])
        self.start(sc, lambda x: x.urls['pool-a'],
                   lambda x: x.urls['pool-b'], driver)
        self.bdi = novaenv.block_device_info([(info, '/dev/xvdb')])
        self.baseline = self.xapi.pool('pool-b').inspect()
        self.holder = (naming.legacy_sr_uuid('vol-9')
                       if holder_style == naming.LEGACY
                       else naming.uuid5_sr_uuid(info['data']))

    def test_stock_nova_fails_at_the_scan(self):
        # uuid5 volume, legacy holder: nova introduces the uuid5 SR and its
        # scan fails (SR.py synchronise_new, SR_BACKEND_FAILURE_40)
        self.build(STOCK, naming.UUID5, naming.LEGACY)
        error = self.run_flow(self.bdi, self.bdi, 'host-b', None)
        self.assertIsNotNone(error)
        scans = [m for m in self.writes('pool-b') if m == 'SR.scan']
        self.assertTrue(scans)
        self.assertEqual(['pool-a'], [
            p for p, _ in self.xapi.server.find_vm(NAME)])

    def _extension(self, style, holder):
        self.build(EXTENSION, style, holder)
        error = self.run_flow(self.bdi, self.bdi, 'host-b', None)
        self.assertIsInstance(error, destination.UntrustedSRUuid)
        self.assertIn('vol-1', str(error))
        self.assertIn(self.holder, str(error))
        self.assertIn('Nothing was changed', str(error))
        self.assertEqual([], self.writes('pool-b'))
        after = self.xapi.pool('pool-b').inspect()
        for cls in ('SR', 'PBD', 'VDI'):
            self.assertEqual(sorted(self.baseline[cls]), sorted(after[cls]),
                             cls)
        self.assertEqual(['pool-a'], [
            p for p, _ in self.xapi.server.find_vm(NAME)])

    def test_uuid5_volume_legacy_holder_refused(self):
        self._extension(naming.UUID5, naming.LEGACY)

    def test_legacy_volume_other_legacy_holder_refused(self):
        self._extension(naming.LEGACY, naming.LEGACY)

    def test_legacy_volume_uuid5_holder_refused(self):
        self._extension(naming.LEGACY, naming.UUID5)

    def test_stock_source_uuid5_volume_legacy_holder_refused(self):
        # without a map the destination expects stock nova's uuid5 name,
        # whose SR's scan would fail: refused before any write
        self.build(EXTENSION, naming.UUID5, naming.LEGACY)
        self.src = novaenv.build_driver(STOCK, self.xapi.urls['pool-a'])
        self.flow = novaenv.ManagerFlow(self.src, self.dst)
        error = self.run_flow(self.bdi, self.bdi, 'host-b', None)
        self.assertIsInstance(error, destination.UnsafeStockSource)
        self.assertIn(self.holder, str(error))
        self.assertEqual([], self.writes('pool-b'))
        self.assertEqual(['pool-a'], [
            p for p, _ in self.xapi.server.find_vm(NAME)])


class SourceVifLeftoverTestCase(_Base):
    """After a cross-pool move the source's VIF records outlive the VM.

    ``xapi_vm_migrate.ml``: the source VM record is destroyed, its VIFs
    stay until ``db_gc.ml``. nova's network cleanup on the source
    (``vif.py`` ``delete_network_and_bridge``) finds the VIF on the interim
    network, fails to look up its (gone) VM and keeps the network: a
    leftover of stock nova and of the extension alike.
    """

    def _migrate(self, driver):
        sc = Scenario()
        sc.add_pool('pool-a', hosts=['host-a'])
        sc.add_pool('pool-b', hosts=['host-b'])
        info = sc.add_volume('vol-1', PORTAL, iqn('vol-1'), 1)
        sc.add_instance('pool-a', 1, nova_uuid=NOVA_UUID,
                        volumes=[('vol-1', naming.UUID5, '/dev/xvdb')],
                        vifs=[{'id': 'port-1'}])
        self.start(sc, lambda x: x.urls['pool-a'],
                   lambda x: x.urls['pool-b'], driver)
        bdi = novaenv.block_device_info([(info, '/dev/xvdb')])
        network_info = [{
            'id': 'port-1', 'address': '02:00:00:aa:00:00', 'type': 'ovs',
            'details': {}, 'devname': 'tapport-1',
            'ovs_interfaceid': 'port-1',
            'network': {'id': 'net-1', 'bridge': 'br-int', 'subnets': [],
                        'meta': {}}}]
        instance = novaenv.make_instance(1, NOVA_UUID, 'host-a')
        self.flow.run(novaenv.admin_context(), instance, bdi, bdi, 'host-b',
                      network_info=network_info)
        self.assertEqual(['pool-b'], [
            p for p, _ in self.xapi.server.find_vm(NAME)])

    def _source_state(self):
        view = self.xapi.pool('pool-a').inspect()
        nets = [r['name_label'] for r in view['network'].values()
                if r['name_label'].startswith('net-')]
        return nets, list(view['VIF'])

    def _check(self, driver):
        self._migrate(driver)
        nets, vifs = self._source_state()
        self.assertEqual(['net-port-1'], nets)
        self.assertEqual(1, len(vifs))
        self.assertEqual(vifs, self.xapi.server.run_gc('pool-a')['pool-a'][
            'VIF'])
        nets, vifs = self._source_state()
        self.assertEqual((['net-port-1'], []), (nets, vifs))

    def test_stock(self):
        self._check(STOCK)

    def test_extension(self):
        self._check(EXTENSION)
