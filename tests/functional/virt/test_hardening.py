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

"""Faults at the driver's XAPI calls, driver by driver.

The real ``XenAPISRDriver`` on both pools of the mock XAPI (real os-xenapi
sessions over XML-RPC); each test calls the driver methods nova's compute
manager calls, in nova's order, and injects faults with the mock's fault
rules. nova's manager itself is not in the loop: ``post_method`` and
``recover_method`` are the test's, and record what nova would do next
(the recover path's destination calls are the ones nova's
``_rollback_live_migration`` makes: ``remove_volume_connection``, i.e.
``detach_volume``, then ``rollback_live_migration_at_destination``).
"""

import copy
import http.client
import threading
import time
from unittest import mock

from nova import conf as nova_conf
from nova import exception as nova_exception
from os_xenapi.client import session as os_xenapi_session
from oslo_config import fixture as config_fixture

from nova_xenapi_sr import naming
from nova_xenapi_sr import opts
from nova_xenapi_sr.virt import xapi_retry
from nova_xenapi_sr_tools import fixture as xs_fixture
from nova_xenapi_sr_tools.mockxapi import fixture
from nova_xenapi_sr_tools.mockxapi import Scenario
from nova_xenapi_sr_tools import novaenv
from tests import base

CONF = nova_conf.CONF
opts.register_opts(CONF)
EXTENSION = 'nova_xenapi_sr.virt.driver.XenAPISRDriver'
PORTAL = '192.0.2.10:3260'
OWN_PORTAL = '192.0.2.30:3260'
SHARED = 'iqn.2010-10.org.openstack:shared'
OWN = 'iqn.2010-10.org.openstack:own'
ERROR = ['SR_BACKEND_FAILURE_47', '', 'injected by the test']


def nova_uuid(instance_id):
    return '0b5c3f1e-3c55-4a8e-8f0e-%012d' % instance_id


def plugin_fn(name):
    """Fault match for ``host.call_plugin`` of one dom0 plugin function."""
    return lambda args: len(args) > 2 and args[2] == name


class HardeningTestCase(base.TestCase):
    """Two pools, the drivers, and helpers playing nova's order."""

    def setUp(self):
        super(HardeningTestCase, self).setUp()
        novaenv.prepare()
        self.useFixture(xs_fixture.ObjectRegistryFixture(
            register_extension=True))
        self.useFixture(config_fixture.Config(CONF)).config(
            xapi_retry_interval=0, migration_locate_timeout=0,
            group='xenapi_sr')
        # nova waits this long before rescanning for a VDI it did not find
        self.useFixture(config_fixture.Config(CONF)).config(
            introduce_vdi_retry_wait=0, group='xenserver')
        self.ctxt = novaenv.admin_context()

    def build(self, instances, neighbour=None, neighbour_state='Running'):
        """``instances``: {id: [(volume id, portal, iqn, lun)]}.

        ``neighbour``: volumes of instance 9, running (or halted) on
        pool-b, whose uuid5 SRs exist there before any migration.
        """
        sc = Scenario()
        sc.add_pool('pool-a', hosts=['host-a'])
        sc.add_pool('pool-b', hosts=['host-b'])
        self.infos = {}
        for instance_id, vols in sorted(instances.items()):
            infos = []
            for index, (vol, portal, target, lun) in enumerate(vols):
                infos.append((sc.add_volume(vol, portal, target, lun),
                              '/dev/xvd%s' % chr(ord('b') + index)))
            sc.add_instance(
                'pool-a', instance_id, nova_uuid=nova_uuid(instance_id),
                volumes=[(vol[0], naming.UUID5, device)
                         for vol, (_, device) in zip(vols, infos)])
            self.infos[instance_id] = infos
        if neighbour:
            for vol, portal, target, lun in neighbour:
                sc.add_volume(vol, portal, target, lun)
            sc.add_instance('pool-b', 9, volumes=[
                (vol[0], naming.UUID5, '/dev/xvd%s' % chr(ord('b') + i))
                for i, vol in enumerate(neighbour)])
        self.xapi = self.useFixture(fixture.MockXapiFixture(sc))
        if neighbour and neighbour_state != 'Running':
            self.set_power_state('pool-b', 'instance-00000009',
                                 neighbour_state)
        self.baseline = {p: self.xapi.inspect(p)
                         for p in ('pool-a', 'pool-b')}
        self.src = self.driver('pool-a')
        self.dst = self.driver('pool-b')

    def driver(self, pool):
        return novaenv.build_driver(EXTENSION, self.xapi.urls[pool])

    def set_power_state(self, pool, name, state):
        """A halted VM: VBDs stay, detached (xapi's VM.shutdown)."""
        p = self.xapi.pool(pool)
        with p.world.lock:
            for ref in p.db.find('VM', name_label=name):
                p.db.get('VM', ref)['power_state'] = state
                for vbd in p.db.find('VBD', VM=ref):
                    p.db.get('VBD', vbd)['currently_attached'] = False

    def instance(self, instance_id):
        return novaenv.make_instance(instance_id, nova_uuid(instance_id),
                                     'host-a')

    def bdi(self, instance_id):
        return novaenv.block_device_info(self.infos[instance_id])

    # nova's order -----------------------------------------------------------
    def prepare(self, instance_id, dst=None):
        """Pre-checks and pre_live_migration; return the migrate data."""
        dst = dst or self.dst
        inst = self.instance(instance_id)
        data = dst.check_can_live_migrate_destination(
            self.ctxt, inst, None, None, block_migration=None)
        data = novaenv.roundtrip(self.src.check_can_live_migrate_source(
            self.ctxt, inst, novaenv.roundtrip(data),
            self.bdi(instance_id)))
        before = novaenv.roundtrip(data)
        return before, novaenv.roundtrip(dst.pre_live_migration(
            self.ctxt, inst, self.bdi(instance_id), [], None,
            novaenv.roundtrip(data)))

    def migrate(self, instance_id, data, post=None, dst=None):
        """``live_migration`` with recording post and recover methods.

        Returns ``(error, steps)``; ``steps`` names what ran. The recover
        method does what nova's would on the destination.
        """
        dst = dst or self.dst
        inst = self.instance(instance_id)
        steps = []

        def post_method(ctxt, instance, dest, block_migration, md):
            steps.append('post')
            if post:
                post(instance)
            dst.post_live_migration_at_destination(
                ctxt, instance, [], block_migration, self.bdi(instance_id))

        def recover_method(ctxt, instance, dest, md):
            steps.append('recover')
            self.rollback(instance_id, novaenv.roundtrip(md), dst=dst)

        try:
            self.src.live_migration(self.ctxt, inst, 'host-b', post_method,
                                    recover_method, block_migration=True,
                                    migrate_data=data)
        except Exception as exc:
            return exc, steps
        return None, steps

    def rollback(self, instance_id, data, dst=None):
        dst = dst or self.dst
        inst = self.instance(instance_id)
        for bdm in self.bdi(instance_id)['block_device_mapping']:
            try:
                dst.detach_volume(self.ctxt, copy.deepcopy(
                    bdm['connection_info']), inst, bdm['mount_device'])
            except nova_exception.InstanceNotFound:
                pass
        dst.rollback_live_migration_at_destination(
            self.ctxt, inst, [], self.bdi(instance_id), destroy_disks=True,
            migrate_data=data)

    # state ------------------------------------------------------------------
    def vm_pools(self, name):
        return [pool for pool, _ in self.xapi.server.find_vm(name)]

    def srs(self, pool):
        return {rec['uuid']: ref for ref, rec in
                self.xapi.inspect(pool)['SR'].items()
                if rec['type'] == 'iscsi'}

    def uuid5(self, instance_id, index=0):
        return naming.uuid5_sr_uuid(self.infos[instance_id][index][0]['data'])

    def assert_vm_whole(self, pool, name):
        """The VM runs on ``pool`` with every VBD on a live VDI."""
        self.assertEqual([pool], self.vm_pools(name))
        view = self.xapi.inspect(pool)
        vm = [r for r in view['VM'].values() if r['name_label'] == name][0]
        self.assertTrue(vm['VBDs'])
        for vbd in vm['VBDs']:
            self.assertIn(view['VBD'][vbd]['VDI'], view['VDI'])
        self.assertEqual([], view['dangling_VBDs'])
        for sr_ref in {view['VDI'][view['VBD'][v]['VDI']]['SR']
                       for v in vm['VBDs']}:
            self.assertTrue(any(view['PBD'][p]['currently_attached']
                                for p in view['SR'][sr_ref]['PBDs']))

    def assert_nothing_new(self, pool):
        view = self.xapi.inspect(pool)
        for cls in ('SR', 'PBD', 'VBD', 'VM', 'secret'):
            self.assertEqual(sorted(self.baseline[pool][cls]),
                             sorted(view[cls]), (pool, cls))
        self.assertEqual([], view['dangling_VBDs'])


class NeighbourTestCase(HardeningTestCase):
    """1. A fault connecting a volume behind a neighbour's target."""

    def _fail_behind_the_neighbour(self, state):
        # vol-0 on its own target (a new SR), vol-1 behind the target of
        # the neighbour's SR on the destination.
        self.build({1: [('vol-0', OWN_PORTAL, OWN, 1),
                        ('vol-1', PORTAL, SHARED, 1)]},
                   neighbour=[('vol-n', PORTAL, SHARED, 5)],
                   neighbour_state=state)
        # The LUNs of both SRs are found in one VDI query, once both SRs
        # are connected (scanned LUN VDIs are managed: no VDI.introduce).
        self.xapi.server.inject_fault('pool-b', 'VDI.get_all_records_where',
                                      times=None, match=lambda args: True,
                                      error=ERROR)
        before = None
        try:
            before, _ = self.prepare(1)
        except Exception as exc:
            error = exc
        else:
            self.fail('pre_live_migration did not fail')
        self.assertIsNone(before)
        return error

    def _check_neighbour_kept(self, new_sr=True):
        view = self.xapi.inspect('pool-b')
        base_view = self.baseline['pool-b']
        for cls in ('SR', 'PBD', 'VBD', 'VM'):
            self.assertEqual(sorted(base_view[cls]), sorted(view[cls]), cls)
        for pbd, rec in base_view['PBD'].items():
            self.assertEqual(rec['currently_attached'],
                             view['PBD'][pbd]['currently_attached'])
        self.assertEqual([], view['dangling_VBDs'])
        # the neighbour's VDI is still there; the new SR is gone
        neighbour = [r for r in view['VM'].values()
                     if r['name_label'] == 'instance-00000009'][0]
        for vbd in neighbour['VBDs']:
            self.assertIn(view['VBD'][vbd]['VDI'], view['VDI'])
        if new_sr:
            self.assertNotIn(self.uuid5(1, 0), self.srs('pool-b'))

    def test_halted_neighbour_keeps_its_sr_pbd_and_vdi(self):
        error = self._fail_behind_the_neighbour('Halted')
        self.assertIsInstance(error, nova_exception.StorageError)
        self._check_neighbour_kept()
        self.assertIn('existed on this host before this migration',
                      self.logger.output)

    def test_running_neighbour_and_the_real_fault_is_reported(self):
        error = self._fail_behind_the_neighbour('Running')
        # not SR_HAS_PBD from a cleanup of someone else's SR
        self.assertNotIn('SR_HAS_PBD', str(error))
        self.assertIsInstance(error, nova_exception.StorageError)
        self.assertIn('Unable to introduce VDI', str(error))
        self._check_neighbour_kept()

    def test_halted_neighbour_survives_the_rollback_too(self):
        self.build({1: [('vol-1', PORTAL, SHARED, 1)]},
                   neighbour=[('vol-n', PORTAL, SHARED, 5)],
                   neighbour_state='Halted')
        _, data = self.prepare(1)
        self.xapi.server.inject_fault('pool-a', 'VM.migrate_send',
                                      error=ERROR)
        error, steps = self.migrate(1, data)
        self.assertIn('SR_BACKEND_FAILURE_47', str(error))
        self.assertEqual(['recover'], steps)
        self._check_neighbour_kept(new_sr=False)
        # the VDI this migration connected in the neighbour's SR is gone
        view = self.xapi.inspect('pool-b')
        managed = sorted(ref for ref, rec in view['VDI'].items()
                         if rec['managed'])
        self.assertEqual(sorted(ref for ref, rec in
                                self.baseline['pool-b']['VDI'].items()
                                if rec['managed']), managed)
        self.assert_vm_whole('pool-a', 'instance-00000001')


class MovedVMTestCase(HardeningTestCase):
    """2. A failure after the VM has moved never strips it."""

    def setUp(self):
        super(MovedVMTestCase, self).setUp()
        self.build({1: [('vol-1', PORTAL, SHARED, 1),
                        ('vol-2', PORTAL, SHARED, 2)]})
        _, self.data = self.prepare(1)

    def connector(self, instance):
        # nova's _post_live_migration asks for the source's connector;
        # the driver's cache is cold (a fresh nova-compute).
        self.connectors.append(self.src.get_volume_connector(instance))

    def test_persistent_host_data_failure_takes_the_host_record(self):
        self.connectors = []
        self.xapi.server.inject_fault(
            'pool-a', 'host.call_plugin', match=plugin_fn('host_data'),
            times=None, error=['XENAPI_PLUGIN_FAILURE', 'host_data',
                               'Exception', 'injected'])
        error, steps = self.migrate(1, self.data, post=self.connector)
        self.assertIsNone(error)
        self.assertEqual(['post'], steps)
        host = self.xapi.inspect('pool-a')['host']
        rec = [r for r in host.values() if r['name_label'] == 'host-a'][0]
        self.assertEqual(rec['other_config']['iscsi_iqn'],
                         self.connectors[0]['initiator'])
        self.assertEqual(rec['hostname'], self.connectors[0]['host'])
        self.assert_vm_whole('pool-b', 'instance-00000001')
        self.assertIn('took the iSCSI IQN and the hostname from its host '
                      'record', self.logger.output)

    def test_host_data_and_host_record_failing_is_not_rolled_back(self):
        self.connectors = []
        self.xapi.server.inject_fault(
            'pool-a', 'host.call_plugin', match=plugin_fn('host_data'),
            times=None, error=['XENAPI_PLUGIN_FAILURE', 'host_data',
                               'Exception', 'injected'])
        self.xapi.server.inject_fault(
            'pool-a', 'host.get_record', times=None,
            error=['INTERNAL_ERROR', 'injected'])
        error, steps = self.migrate(1, self.data, post=self.connector)
        self.assertEqual(['post'], steps)           # no recover
        self.assertIsInstance(error, xapi_retry.XapiCallError)
        self.assertIn('host.call_plugin xenhost.py host_data', str(error))
        self.assertIn(self.xapi.urls['pool-a'], str(error))
        self.assertNotIsInstance(error, TypeError)
        self.assert_vm_whole('pool-b', 'instance-00000001')
        self.assertIn(self.uuid5(1), self.srs('pool-b'))
        self.assertIn('Not rolling back the live migration',
                      self.logger.output)
        self.assertIn('the VM has already moved', self.logger.output)

    def test_transient_host_data_failure_is_retried(self):
        self.connectors = []
        self.xapi.server.inject_fault(
            'pool-a', 'host.call_plugin', match=plugin_fn('host_data'),
            times=2, kind='drop')
        error, steps = self.migrate(1, self.data, post=self.connector)
        self.assertIsNone(error)
        self.assertEqual(['post'], steps)
        self.assertEqual('host-a', self.connectors[0]['host'])
        self.assertIsNotNone(self.connectors[0]['initiator'])
        self.assert_vm_whole('pool-b', 'instance-00000001')
        self.assertIn('retrying', self.logger.output)

    def test_scan_failing_after_the_move_takes_the_host_record(self):
        self.connectors = []
        # nova's host stats scan the default SR
        self.xapi.server.inject_fault('pool-a', 'SR.scan', times=None,
                                      error=ERROR)
        error, steps = self.migrate(1, self.data, post=self.connector)
        self.assertIsNone(error)
        self.assertEqual(['post'], steps)
        self.assertEqual('host-a', self.connectors[0]['host'])
        self.assertIn('SR_BACKEND_FAILURE_47', self.logger.output)
        self.assert_vm_whole('pool-b', 'instance-00000001')

    def test_lost_migrate_send_reply_finishes_as_a_success(self):
        # The mock cannot lose a reply after serving the call, so the
        # client side does: VM.migrate_send is served, then the
        # connection drops before the answer is read.
        real = os_xenapi_session.XenAPISession.call_xenapi

        def lossy(session, method, *args):
            result = real(session, method, *args)
            if method == 'VM.migrate_send':
                raise http.client.RemoteDisconnected(
                    'Remote end closed connection without response')
            return result
        with mock.patch.object(os_xenapi_session.XenAPISession,
                               'call_xenapi', lossy):
            self.src = self.driver('pool-a')
        error, steps = self.migrate(1, self.data)
        self.assertIsNone(error)
        self.assertEqual(['post'], steps)
        self.assert_vm_whole('pool-b', 'instance-00000001')
        self.assertEqual({}, {u: r for u, r in self.srs('pool-a').items()
                              if u == self.uuid5(1)})
        self.assertIn('finishing the migration', self.logger.output)

    def test_destination_keeps_a_moved_vm_a_source_rolls_back(self):
        # A source without the extension runs nova's recover path after
        # the move; the destination's detach_volume refuses to strip it.
        def post_method(ctxt, instance, dest, block_migration, md):
            pass
        self.src.live_migration(self.ctxt, self.instance(1), 'host-b',
                                post_method, None, block_migration=True,
                                migrate_data=self.data)
        self.assert_vm_whole('pool-b', 'instance-00000001')
        self.rollback(1, novaenv.roundtrip(self.data))
        self.assert_vm_whole('pool-b', 'instance-00000001')
        self.assertIn(self.uuid5(1), self.srs('pool-b'))
        self.assertIn('Not detaching the volume at /dev/xvdb',
                      self.logger.output)

    def test_unanswered_migrate_send_that_did_not_move_rolls_back(self):
        self.xapi.server.inject_fault('pool-a', 'VM.migrate_send',
                                      kind='drop', times=None)
        error, steps = self.migrate(1, self.data)
        self.assertEqual(['recover'], steps)
        self.assertIsInstance(error, nova_exception.MigrationError)
        self.assertIn('Migrate Send failed', str(error))
        self.assertIn('XAPI call VM.migrate_send to %s failed'
                      % self.xapi.urls['pool-a'], str(error))
        self.assertIn('connection dropped', str(error))
        self.assert_vm_whole('pool-a', 'instance-00000001')
        self.assert_nothing_new('pool-b')


class SourceCleanupTestCase(HardeningTestCase):
    """3. The source's SR cleanup after the move."""

    def setUp(self):
        super(SourceCleanupTestCase, self).setUp()
        self.build({1: [('vol-1', PORTAL, SHARED, 1)]})
        _, self.data = self.prepare(1)

    def test_pbds_come_from_the_bulk_sr_query(self):
        # A failing SR.get_PBDs cannot leave the SR: it is not called.
        self.xapi.server.inject_fault('pool-a', 'SR.get_PBDs', times=None,
                                      error=ERROR)
        error, steps = self.migrate(1, self.data)
        self.assertIsNone(error)
        self.assertNotIn(self.uuid5(1), self.srs('pool-a'))
        self.assertNotIn('SR.get_PBDs', [
            method for method, _ in self.xapi.calls('pool-a')])
        self.assertNotIn('is left on the source', self.logger.output)

    def test_failed_forget_leaves_the_sr_with_a_warning(self):
        self.xapi.server.inject_fault('pool-a', 'SR.forget', times=None,
                                      error=ERROR)
        error, steps = self.migrate(1, self.data)
        self.assertIsNone(error)
        self.assertIn(self.uuid5(1), self.srs('pool-a'))
        output = self.logger.output
        self.assertIn('WARNING nova_xenapi_sr.virt.driver The VM has moved, '
                      'but SR %s is left on the source' % self.uuid5(1),
                      output)
        self.assertIn('SR.forget failed', output)
        self.assertNotIn('another VM still uses it', output)

    def test_failed_unplug_leaves_the_sr_with_a_warning(self):
        self.xapi.server.inject_fault('pool-a', 'PBD.unplug', times=None,
                                      kind='drop')
        error, steps = self.migrate(1, self.data)
        self.assertIsNone(error)
        self.assertIn(self.uuid5(1), self.srs('pool-a'))
        output = self.logger.output
        self.assertIn('but SR %s is left on the source' % self.uuid5(1),
                      output)
        self.assertIn('XAPI call PBD.unplug to %s failed after'
                      % self.xapi.urls['pool-a'], output)
        self.assertNotIn('another VM still uses it', output)

    def test_transient_unplug_failure_is_retried(self):
        self.xapi.server.inject_fault('pool-a', 'PBD.unplug', times=2,
                                      error=['INTERNAL_ERROR', 'injected'])
        error, steps = self.migrate(1, self.data)
        self.assertIsNone(error)
        self.assertNotIn(self.uuid5(1), self.srs('pool-a'))
        self.assertNotIn('is left on the source', self.logger.output)


class PostAtDestinationTestCase(HardeningTestCase):
    """4. A failed read after the migration finished."""

    def setUp(self):
        super(PostAtDestinationTestCase, self).setUp()
        self.build({1: [('vol-1', PORTAL, SHARED, 1)]})
        _, self.data = self.prepare(1)

    def test_transient_read_failure_is_retried(self):
        self.xapi.server.inject_fault('pool-b', 'VBD.get_VDI', times=2,
                                      kind='drop')
        error, _ = self.migrate(1, self.data)
        self.assertIsNone(error)
        self.assertNotIn('Not failing the finished migration',
                         self.logger.output)
        self.assert_vm_whole('pool-b', 'instance-00000001')

    def test_persistent_read_failure_does_not_fail_the_migration(self):
        self.xapi.server.inject_fault('pool-b', 'VM.get_by_name_label',
                                      times=None, error=ERROR)
        error, steps = self.migrate(1, self.data)
        self.assertIsNone(error)
        self.assertEqual(['post'], steps)
        self.assertIn('Not failing the finished migration',
                      self.logger.output)
        self.assert_vm_whole('pool-b', 'instance-00000001')


class SecondFaultTestCase(HardeningTestCase):
    """5. ``VM.migrate_send`` fails, then a call of the rollback."""

    def setUp(self):
        super(SecondFaultTestCase, self).setUp()
        self.build({1: [('vol-1', PORTAL, SHARED, 1)]})
        _, self.data = self.prepare(1)
        self.xapi.server.inject_fault('pool-a', 'VM.migrate_send',
                                      error=ERROR)

    def _fail_twice(self, method, **kwargs):
        self.xapi.server.inject_fault('pool-b', method, **kwargs)
        error, steps = self.migrate(1, self.data)
        self.assertEqual(['recover'], steps)
        self.assertIn('Migrate Send failed: XAPI VM.migrate_send on %s '
                      'answered SR_BACKEND_FAILURE_47'
                      % self.xapi.urls['pool-a'], str(error))
        self.assert_vm_whole('pool-a', 'instance-00000001')

    def test_transient_forget_failure_is_retried(self):
        self._fail_twice('SR.forget', times=2, kind='drop')
        self.assert_nothing_new('pool-b')

    def test_transient_check_failures_are_retried(self):
        for method in ('SR.get_by_uuid', 'SR.get_VDIs', 'VDI.get_VBDs',
                       'PBD.get_device_config'):
            self.xapi.server.inject_fault('pool-b', method, times=2,
                                          error=['INTERNAL_ERROR', 'x'])
        self._fail_twice('SR.get_PBDs', times=2, kind='drop')
        self.assert_nothing_new('pool-b')

    def test_expired_session_during_the_rollback(self):
        # xapi answers SESSION_INVALID; the XenAPI client logs in again.
        self._fail_twice('SR.forget', kind='session_expiry')
        self.assert_nothing_new('pool-b')

    def test_persistent_forget_failure_says_what_is_left(self):
        self._fail_twice('SR.forget', times=None,
                         error=['INTERNAL_ERROR', 'injected'])
        self.assertIn(self.uuid5(1), self.srs('pool-b'))
        output = self.logger.output
        self.assertIn('The failed migration left SR %s on this host (%s)'
                      % (self.uuid5(1), self.xapi.urls['pool-b']), output)
        self.assertIn('xe sr-forget uuid=%s' % self.uuid5(1), output)
        self.assertEqual(CONF.xenapi_sr.xapi_retry_attempts, [
            m for m, _ in self.xapi.pool('pool-b').calls()].count(
                'SR.forget'))


class ErrorsSayWhereTestCase(HardeningTestCase):
    """6. Errors name the XAPI call, the host and the XAPI code."""

    def test_dropped_connection_names_call_and_host(self):
        self.build({1: [('vol-1', PORTAL, SHARED, 1)]})
        self.xapi.server.inject_fault('pool-b', 'SR.introduce', kind='drop',
                                      times=None)
        error = self.assertRaises(xapi_retry.XapiCallError, self.prepare, 1)
        self.assertEqual('SR.introduce', error.method)
        self.assertIn('XAPI call SR.introduce to %s failed: connection '
                      'dropped (RemoteDisconnected'
                      % self.xapi.urls['pool-b'], str(error))
        self.assert_nothing_new('pool-b')

    def test_migrate_send_failure_carries_the_xapi_code(self):
        self.build({1: [('vol-1', PORTAL, SHARED, 1)]})
        _, data = self.prepare(1)
        self.xapi.server.inject_fault('pool-a', 'VM.migrate_send',
                                      error=['VDI_NOT_IN_MAP', 'OpaqueRef:x'])
        error, _ = self.migrate(1, data)
        self.assertIn('Migrate Send failed', str(error))
        self.assertIn('VDI_NOT_IN_MAP OpaqueRef:x', str(error))


class RestartTestCase(HardeningTestCase):
    """Claims lost on a nova-compute restart."""

    def test_rollback_after_a_restart_keeps_the_sr_another_migration_uses(
            self):
        self.build({1: [('vol-1', PORTAL, SHARED, 1)],
                    2: [('vol-2', PORTAL, SHARED, 2)]})
        shared = self.uuid5(1)
        self.assertEqual(shared, self.uuid5(2))
        _, data1 = self.prepare(1)
        _, data2 = self.prepare(2)
        # nova-compute on the destination restarts: a new driver, no claims
        restarted = self.driver('pool-b')
        self.xapi.server.inject_fault('pool-a', 'VM.migrate_send',
                                      error=ERROR)
        error, steps = self.migrate(1, data1, dst=restarted)
        self.assertEqual(['recover'], steps)
        self.assertIn(shared, self.srs('pool-b'))
        self.assertIn('No claim record of this migration',
                      self.logger.output)
        # the other migration still completes, with nothing copied
        error, steps = self.migrate(2, data2, dst=restarted)
        self.assertIsNone(error)
        self.assertEqual(['post'], steps)
        self.assert_vm_whole('pool-b', 'instance-00000002')
        self.assertEqual([], self.xapi.server.copies)
        self.assert_vm_whole('pool-a', 'instance-00000001')

    def test_last_rollback_after_a_restart_forgets_the_sr(self):
        self.build({1: [('vol-1', PORTAL, SHARED, 1)],
                    2: [('vol-2', PORTAL, SHARED, 2)]})
        _, data1 = self.prepare(1)
        _, data2 = self.prepare(2)
        restarted = self.driver('pool-b')
        self.xapi.server.inject_fault('pool-a', 'VM.migrate_send',
                                      error=ERROR, times=2)
        self.migrate(1, data1, dst=restarted)
        self.migrate(2, data2, dst=restarted)
        self.assert_nothing_new('pool-b')
        self.assert_vm_whole('pool-a', 'instance-00000001')
        self.assert_vm_whole('pool-a', 'instance-00000002')


class ConcurrentConnectTestCase(HardeningTestCase):
    """Two migrations to one host connect one new shared SR at once."""

    def test_one_introduce_and_both_rollbacks_leave_nothing(self):
        self.build({1: [('vol-1', PORTAL, SHARED, 1)],
                    2: [('vol-2', PORTAL, SHARED, 2)]})
        # Hold the first introduce long enough for the second lookup.
        self.xapi.server.set_latency('pool-b', 'SR.introduce', 0.3)
        results = {}

        def prepare(instance_id):
            try:
                results[instance_id] = self.prepare(instance_id)[1]
            except Exception as exc:    # reported below
                results[instance_id] = exc
        workers = [threading.Thread(target=prepare, args=(i,))
                   for i in (1, 2)]
        workers[0].start()
        # The second starts once the first is inside SR.introduce.
        for _ in range(200):
            if 'SR.introduce' in [m for m, _ in
                                  self.xapi.pool('pool-b').calls()]:
                break
            time.sleep(0.01)
        workers[1].start()
        for worker in workers:
            worker.join(60)
        self.assertEqual([], [r for r in results.values()
                              if isinstance(r, Exception)])
        calls = [m for m, _ in self.xapi.pool('pool-b').calls()]
        self.assertEqual(1, calls.count('SR.introduce'))
        self.assertEqual(1, calls.count('PBD.create'))
        self.assertEqual({nova_uuid(1), nova_uuid(2)},
                         self.dst._sr_claims.holders(self.uuid5(1)))
        # Both fail; the first rollback keeps the SR (the second migration
        # holds it), the second forgets it: it found the SR, but the SR was
        # not there before either migration.
        self.xapi.server.inject_fault('pool-a', 'VM.migrate_send',
                                      error=ERROR, times=2)
        for instance_id in (1, 2):
            error, steps = self.migrate(instance_id, results[instance_id])
            self.assertEqual(['recover'], steps)
        self.assert_nothing_new('pool-b')
        self.assert_vm_whole('pool-a', 'instance-00000001')
        self.assert_vm_whole('pool-a', 'instance-00000002')
