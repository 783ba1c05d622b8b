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

"""xapi's rules the mock follows, through the PyPI XenAPI SDK.

Each test names the xapi (``xen-api`` v1.249.42, ``ocaml/xapi``) or SM
(``sm`` v2.30.8) source it follows.
"""

import threading
import time
import xmlrpc.client

import XenAPI

from nova_xenapi_sr import naming
from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import fixture
from nova_xenapi_sr_tools.mockxapi import lifecycle
from nova_xenapi_sr_tools.mockxapi import Scenario
from tests import base as test_base
from tests.functional.mockxapi import base
from tests.functional.mockxapi import test_motion


class MigrationOrderTest(test_motion.MigrationTestCase):

    def test_vbd_whose_vdi_is_gone_is_handle_invalid(self):
        # xapi_vm_migrate.ml get_vdi_mirror: Db.VDI.get_snapshot_of of a
        # VDI that is gone; before check_vdi_map's VDI_NOT_IN_MAP, which
        # nova would tolerate. The VDI goes as a vanished LUN's does (SM
        # SR.py synchronise_gone at the next scan): VDI.forget refuses a
        # VDI a VBD has attached.
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        self.srv.array.remove_lun('192.0.2.10', 3260, base.IQN, 1)
        self.a.SR.scan(self.a.VDI.get_SR(vdi))
        self.srv.pool('pool-b').clear_calls()
        for call in (self.a.VM.assert_can_migrate, self.a.VM.migrate_send):
            self.assertFailure(['HANDLE_INVALID', 'VDI', vdi], call, vm,
                               self.receive(), True, {}, {}, {})
        self.assertNotMoved()

    def test_local_checks_come_before_any_destination_call(self):
        # assert_can_migrate: check_vdi_map runs before the destination is
        # asked anything (assert_sr_support_operations)
        vm = self.vm()
        dest = self.receive()
        self.srv.pool('pool-b').clear_calls()
        self.assertFailure(['VDI_NOT_IN_MAP', self.vm_vdi(self.a, vm)],
                           self.a.VM.migrate_send, vm, dest, True, {}, {},
                           {})
        self.assertEqual([], self.srv.pool('pool-b').calls())

    #: importexport.ml remote_metadata_export_import: the import's task
    #: and Cli_util.wait_for_task_completion
    IMPORT = ['task.create', '/import_metadata', 'event.register',
              'task.get_status', 'event.unregister', 'task.get_status',
              'task.get_result', 'task.destroy']

    def test_destination_calls_are_in_its_call_log(self):
        """xapi_vm_migrate.ml: what xapi asks the destination, in order.

        xapi_vm_migrate.ml assert_can_migrate, migrate_send', vdi_copy_fun
        and inter_pool_metadata_transfer, then VM.pool_migrate_complete
        on the destination, in that order.
        """
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        dest = self.receive()
        self.srv.pool('pool-b').clear_calls()
        new_vm = self.a.VM.migrate_send(vm, dest, True, {vdi: sr}, {}, {})
        methods = [m for m, _ in self.srv.pool('pool-b').calls()]
        self.assertMovedTo(new_vm)
        expected = (
            # assert_can_migrate (cross-pool): host_versions_not_decreasing,
            # assert_sr_support_operations, assert_hardware_platform_support,
            # the host enabled, assert_vm_is_compatible, assert_enough_pcpus,
            # the dry run; assert_can_migrate_sender's pGPUs
            ['host.get_software_version', 'SM.get_all_records',
             'SR.get_uuid', 'host.get_virtual_hardware_platform_versions',
             'host.get_enabled', 'host.get_cpu_info', 'host.get_cpu_info'] +
            self.IMPORT + ['host.get_PGPUs'] +
            # migrate_send': default and suspend-image SRs
            ['pool.get_all', 'pool.get_default_SR',
             'pool.get_suspend_image_SR', 'host.get_suspend_image_sr'] +
            # vdi_copy_fun: the SR, its PBDs, dest_vdi_exists_on_sr (a
            # scan as the SR was never scanned), get_mirror_record
            ['SR.get_uuid', 'pool.get_all', 'pool.get_master',
             'SR.get_PBDs', 'PBD.get_host', 'host.get_enabled',
             'PBD.get_currently_attached', 'VDI.get_by_uuid', 'SR.scan',
             'VDI.get_by_uuid', 'VDI.get_SR', 'VDI.get_by_uuid'] +
            # the import, resources, networks, the (empty) VIF and vGPU
            # maps, pool_migrate_complete, send_messages
            self.IMPORT +
            ['host.allocate_resources_for_vm', 'network.attach_for_vm',
             'VM.get_VIFs', 'VM.get_VGPUs', 'VM.pool_migrate_complete',
             '/messages'])
        self.assertEqual(expected, methods)

    def test_destination_pbds_plugged_before_the_keep_decision(self):
        """xapi_vm_migrate.ml vdi_copy_fun: destination PBDs plugged first.

        xapi_vm_migrate.ml vdi_copy_fun: the destination SR's unplugged
        PBDs on the master and the destination host are plugged, then the
        SR is scanned, before the disk is kept or copied.
        """
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, pbd = self.iscsi_sr(self.b, self.data('vol-1'), plug=False)
        new_vm = self.a.VM.migrate_send(vm, self.receive(), True,
                                        {vdi: sr}, {}, {})
        self.assertTrue(self.b.PBD.get_currently_attached(pbd))
        self.assertEqual(sr, self.b.VDI.get_SR(self.vm_vdi(self.b, new_vm)))

    def test_destination_plug_and_scan_errors_propagate(self):
        """xapi_vm_migrate.ml vdi_copy_fun: remote plug and scan errors.

        xapi_vm_migrate.ml vdi_copy_fun: the destination's PBD.plug and
        SR.scan are plain remote calls, so their errors fail migrate_send
        (and nothing moves).
        """
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'), plug=False)
        plug_error = ['SR_BACKEND_FAILURE_68', '', 'login', '']
        self.srv.inject_fault('pool-b', 'PBD.plug', error=plug_error)
        self.assertFailure(plug_error, self.a.VM.migrate_send, vm,
                           self.receive(), True, {vdi: sr}, {}, {})
        self.assertNotMoved()
        scan_error = ['SR_BACKEND_FAILURE_40', '', 'scan', '']
        self.srv.inject_fault('pool-b', 'SR.scan', error=scan_error)
        self.assertFailure(scan_error, self.a.VM.migrate_send, vm,
                           self.receive(), True, {vdi: sr}, {}, {})
        self.assertNotMoved()

    def test_failure_after_import_destroys_the_stale_vm(self):
        # migrate_send' error path: the VM imported on the destination is
        # destroyed (VM.get_by_uuid, VM.destroy), the source keeps it
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        self.srv.inject_fault('pool-b', 'VM.pool_migrate_complete',
                              error=['INTERNAL_ERROR', 'xenopsd'])
        self.srv.pool('pool-b').clear_calls()
        self.assertFailure(['INTERNAL_ERROR', 'xenopsd'],
                           self.a.VM.migrate_send, vm, self.receive(), True,
                           {vdi: sr}, {}, {})
        self.assertNotMoved()
        methods = [m for m, _ in self.srv.pool('pool-b').calls()]
        self.assertEqual(['VM.get_by_uuid', 'VM.destroy'], methods[-2:])
        self.assertEqual(
            ['Control domain on host: host-b'],
            [r['name_label'] for r in self.srv.pool('pool-b').inspect()[
                'VM'].values()])

    def test_failed_copy_is_destroyed_on_the_destination(self):
        """xapi_vm_migrate.ml vdi_copy_fun with_remote_vdi: copy destroyed.

        A failure after the copy (here the import's task.create) destroys
        it on the destination with XenAPI.VDI.destroy.
        """
        vm = self.vm(2)
        vdi = self.vm_vdi(self.a, vm)
        sr = self.lvm_sr(self.b, 'vol-lvm-dest')
        pool_b = self.srv.pool('pool-b')
        before = set(pool_b.inspect()['VDI'])
        # the first task.create is the dry run's
        self.srv.inject_fault('pool-b', 'task.create', after=1,
                              error=['INTERNAL_ERROR', 'import'])
        pool_b.clear_calls()
        self.assertFailure(['INTERNAL_ERROR', 'import'],
                           self.a.VM.migrate_send, vm, self.receive(), True,
                           {vdi: sr}, {}, {})
        self.assertEqual(['pool-a'], [p for p, _ in self.srv.find_vm(
            'instance-00000002')])
        self.assertEqual(before, set(pool_b.inspect()['VDI']))
        self.assertEqual([True], [c['deleted'] for c in self.srv.copies])
        # then the stale VM lookup, which finds none
        calls = pool_b.calls()
        copy = [args[0] for m, args in calls if m == 'VDI.destroy']
        self.assertEqual(1, len(copy))
        self.assertEqual(['task.create', 'VDI.destroy', 'VM.get_by_uuid'],
                         [m for m, _ in calls][-3:])

    def test_copy_the_imported_vm_uses_stays_on_the_destination(self):
        # with_remote_vdi's VDI.destroy runs before the stale VM is
        # destroyed: the imported VM's VBD is currently_attached (import.ml
        # keeps the flag), so it is VDI_IN_USE (xapi_vdi.ml
        # check_operation_error), which xapi only logs
        vm = self.vm(2)
        vdi = self.vm_vdi(self.a, vm)
        sr = self.lvm_sr(self.b, 'vol-lvm-dest')
        pool_b = self.srv.pool('pool-b')
        before = set(pool_b.inspect()['VDI'])
        self.srv.inject_fault('pool-b', 'VM.pool_migrate_complete',
                              error=['INTERNAL_ERROR', 'xenopsd'])
        pool_b.clear_calls()
        self.assertRaises(XenAPI.Failure, self.a.VM.migrate_send, vm,
                          self.receive(), True, {vdi: sr}, {}, {})
        self.assertEqual(['pool-a'], [p for p, _ in self.srv.find_vm(
            'instance-00000002')])
        self.assertEqual(['VM.pool_migrate_complete', 'VDI.destroy',
                          'VM.get_by_uuid', 'VM.destroy'],
                         [m for m, _ in pool_b.calls()][-4:])
        left = set(pool_b.inspect()['VDI']) - before
        self.assertEqual([self.srv.copies[0]['new_vdi_uuid']],
                         [self.b.VDI.get_uuid(v) for v in left])
        self.assertEqual([False], [c['deleted'] for c in self.srv.copies])
        # the source VDI stays, as post_mirror never ran
        self.assertEqual(vdi, self.vm_vdi(self.a, vm))
        self.assertEqual(vdi, self.a.VDI.get_by_uuid(self.a.VDI.get_uuid(
            vdi)))

    def test_stale_vm_lookup_after_every_failure(self):
        # migrate_send''s handler: cross-pool, VM.get_by_uuid of the VM's
        # uuid on the destination, imported or not (UUID_INVALID ignored)
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        vm_uuid = self.a.VM.get_uuid(vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-lvm-dest'),
                              sr_uuid=naming.uuid5_sr_uuid(
                                  self.data('vol-1')))
        pool_b = self.srv.pool('pool-b')
        pool_b.clear_calls()
        self.assertFailure(['INTERNAL_ERROR', 'SR UUID matches on '
                            'destination but VDI does not exist'],
                           self.a.VM.migrate_send, vm, self.receive(), True,
                           {vdi: sr}, {}, {})
        self.assertEqual(('VM.get_by_uuid', (vm_uuid,)), pool_b.calls()[-1])
        self.assertNotMoved()
        # a failure before the handler's scope (the destination's SRs for
        # snapshot and suspend VDIs) has no lookup
        self.srv.inject_fault('pool-b', 'pool.get_default_SR',
                              error=['INTERNAL_ERROR', 'default'])
        pool_b.clear_calls()
        self.assertFailure(['INTERNAL_ERROR', 'default'],
                           self.a.VM.migrate_send, vm, self.receive(), True,
                           {vdi: sr}, {}, {})
        self.assertEqual('pool.get_default_SR', pool_b.calls()[-1][0])

    def test_cancel_stops_at_the_next_cancellation_point(self):
        # xapi_task.ml cancel marks; vdi_copy_fun's exn_if_cancelling
        # stops the migration with TASK_CANCELLED
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        self.srv.set_latency('pool-a', 'VM.migrate_send', 1)
        task = self.a.Async.VM.migrate_send(vm, self.receive(), True,
                                            {vdi: sr}, {}, {})
        time.sleep(0.3)
        self.a.task.cancel(task)
        for _ in range(100):
            if self.a.task.get_status(task) != 'pending':
                break
            time.sleep(0.05)
        self.assertEqual('cancelled', self.a.task.get_status(task))
        self.assertEqual(['TASK_CANCELLED', task],
                         self.a.task.get_error_info(task))
        self.assertNotMoved()

    def wait_for_call(self, pool, method):
        for _ in range(200):
            if method in [m for m, _ in self.srv.pool(pool).calls()]:
                return
            time.sleep(0.02)
        self.fail('%s never called on %s' % (method, pool))

    def wait_for_task(self, task):
        for _ in range(200):
            if self.a.task.get_status(task) != 'pending':
                return self.a.task.get_status(task)
            time.sleep(0.05)
        self.fail('task %s still pending' % task)

    def test_cancel_after_the_point_of_no_return_is_too_late(self):
        # migrate_send': set_not_cancellable before pool_migrate_complete;
        # xapi_task.ml cancel still marks the task (it checks no allowed
        # operation), no cancellation point follows, and
        # server_helpers.ml exec_with_context completes the task
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        dest = self.receive()
        self.srv.pool('pool-b').clear_calls()
        self.srv.set_latency('pool-b', 'VM.pool_migrate_complete', 1)
        task = self.a.Async.VM.migrate_send(vm, dest, True, {vdi: sr}, {},
                                            {})
        self.wait_for_call('pool-b', 'VM.pool_migrate_complete')
        self.assertEqual([], self.a.task.get_allowed_operations(task))
        self.assertEqual('', self.a.task.cancel(task))
        self.assertEqual('success', self.wait_for_task(task))
        new_vm = self.srv.find_vm('instance-00000001')[0][1]
        self.assertMovedTo(new_vm)

    def test_cancel_of_a_call_without_cancellation_point(self):
        # assert_can_migrate has no exn_if_cancelling: the task completes
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        dest = self.receive()
        self.srv.pool('pool-b').clear_calls()
        self.srv.set_latency('pool-b', 'SM.get_all_records', 1)
        task = self.a.Async.VM.assert_can_migrate(vm, dest, True, {vdi: sr},
                                                  {}, {})
        self.wait_for_call('pool-b', 'SM.get_all_records')
        self.a.task.cancel(task)
        self.assertEqual('success', self.wait_for_task(task))
        self.assertEqual('', self.a.task.get_result(task))

    def test_failure_of_a_cancelled_migration_is_task_cancelled(self):
        # migrate_send''s handler ends with exn_if_cancelling: an error
        # met while the task is being cancelled is TASK_CANCELLED
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-lvm-dest'),
                              sr_uuid=naming.uuid5_sr_uuid(
                                  self.data('vol-1')))
        dest = self.receive()
        self.srv.pool('pool-b').clear_calls()
        # dest_vdi_exists_on_sr's scan; no cancellation point follows
        # before the failure ("SR UUID matches ...")
        self.srv.set_latency('pool-b', 'SR.scan', 1)
        task = self.a.Async.VM.migrate_send(vm, dest, True, {vdi: sr}, {},
                                            {})
        self.wait_for_call('pool-b', 'SR.scan')
        self.a.task.cancel(task)
        self.assertEqual('cancelled', self.wait_for_task(task))
        self.assertEqual(['TASK_CANCELLED', task],
                         self.a.task.get_error_info(task))
        self.assertNotMoved()

    def test_migrate_receive_sessions_stay_until_gc(self):
        # xapi_host.ml migrate_receive: login_no_password, never logged
        # out by migrate_send; db_gc.ml timeout_sessions bounds them
        pool = self.srv.pool('pool-b')
        before = pool.inspect()['sessions']
        for _ in range(3):
            self.receive()
        self.assertEqual(before + 3, pool.inspect()['sessions'])
        from nova_xenapi_sr_tools.mockxapi import gc
        with self.srv.world.lock:
            removed = gc.single_pass(pool.db, time.time() + 2 * 86400)
        self.assertEqual(before + 3, len(removed['session']))


class DiskOrderTest(test_motion.MigrationTestCase):

    def scenario(self):
        sc = test_motion.motion_scenario()
        sc.add_volume('vol-big', base.PORTAL, base.IQN, 3,
                      size=2 * 1024 ** 3)
        sc.add_instance('pool-a', 3, volumes=[
            ('vol-big', 'uuid5', '/dev/xvdb'),
            ('vol-2', 'uuid5', '/dev/xvdc')])
        return sc

    def test_disks_go_smallest_first(self):
        # migrate_send' compare_fun: List.sort by virtual size (then
        # snapshot_time), whatever the VBD order
        vm = self.vm(3)
        vdis = [self.a.VBD.get_VDI(vbd) for vbd in self.a.VM.get_VBDs(vm)]
        sizes = [int(self.a.VDI.get_virtual_size(v)) for v in vdis]
        self.assertEqual([2 * 1024 ** 3, 1024 ** 3], sizes)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-big'))
        self.b.SR.scan(sr)
        pool_b = self.srv.pool('pool-b')
        pool_b.clear_calls()
        self.a.VM.migrate_send(vm, self.receive(), True,
                               {vdi: sr for vdi in vdis}, {}, {})
        looked_up = [args[0] for m, args in pool_b.calls()
                     if m == 'VDI.get_by_uuid']
        small, big = self.a.VDI.get_uuid(vdis[1]), self.a.VDI.get_uuid(
            vdis[0])
        # dest_vdi_exists_on_sr, then get_mirror_record, per disk
        self.assertEqual([small, small, big, big], looked_up)


class IntraPoolTest(base.MockXapiTestCase):
    """Storage motion and pool_migrate inside one pool."""

    relax = True

    def scenario(self):
        sc = Scenario()
        sc.add_pool('pool-a', hosts=['host-a', 'host-a2'],
                    relax_xsm_sr_check=self.relax)
        sc.add_pool('pool-b', hosts=['host-b'])
        sc.add_volume('vol-1', base.PORTAL, base.IQN, 1)
        sc.add_instance('pool-a', 1, volumes=[('vol-1', 'uuid5',
                                               '/dev/xvdb')])
        return sc

    def setUp(self):
        super(IntraPoolTest, self).setUp()
        self.vm = self.a.VM.get_by_name_label('instance-00000001')[0]
        self.vdi = self.a.VBD.get_VDI(self.a.VM.get_VBDs(self.vm)[0])
        self.sr = self.a.VDI.get_SR(self.vdi)
        self.host2 = self.a.host.get_by_name_label('host-a2')[0]

    def test_pool_migrate_needs_the_sr_on_the_destination_host(self):
        # xapi_vm_helpers.ml assert_can_see_SRs: VM_REQUIRES_SR [vm, sr]
        self.assertFailure(['VM_REQUIRES_SR', self.vm, self.sr],
                           self.a.VM.pool_migrate, self.vm, self.host2,
                           {'live': 'true'})
        # nova's SRs are unshared: the second host cannot plug it
        # (xapi_pbd.ml check_sharing_constraint)
        config = self.a.PBD.get_device_config(self.a.SR.get_PBDs(
            self.sr)[0])
        pbd = self.a.PBD.create({'host': self.host2, 'SR': self.sr,
                                 'device_config': config})
        host1 = self.a.VM.get_resident_on(self.vm)
        self.assertFailure(['SR_NOT_SHARABLE', self.sr, host1],
                           self.a.PBD.plug, pbd)
        # shared, it can; then the VM moves
        self.a.SR.set_shared(self.sr, True)
        self.a.PBD.plug(pbd)
        self.assertEqual('', self.a.VM.pool_migrate(self.vm, self.host2,
                                                    {'live': 'true'}))
        self.assertEqual(self.host2, self.a.VM.get_resident_on(self.vm))

    def test_intra_pool_same_sr_is_never_copied(self):
        # vdi_copy_fun: mirror = not is_intra_pool || dest_sr <> vconf.sr
        self.srv.pool('pool-a').relax_xsm_sr_check = False
        self.a.SR.set_shared(self.sr, True)
        config = self.a.PBD.get_device_config(self.a.SR.get_PBDs(
            self.sr)[0])
        self.a.PBD.plug(self.a.PBD.create({'host': self.host2, 'SR': self.sr,
                                           'device_config': config}))
        dest = self.a.host.migrate_receive(self.host2,
                                           self.a.network.get_all()[0], {})
        self.assertFailure(['OPERATION_NOT_ALLOWED', 'VIF mapping is not '
                            'allowed for intra-pool migration -all VIFs '
                            'must be on the same network'],
                           self.a.VM.migrate_send, self.vm, dest, True,
                           {self.vdi: self.sr}, {'OpaqueRef:x': 'y'}, {})
        self.assertEqual(self.vm, self.a.VM.migrate_send(
            self.vm, dest, True, {self.vdi: self.sr}, {}, {}))
        self.assertEqual([], self.srv.copies)
        self.assertEqual(self.host2, self.a.VM.get_resident_on(self.vm))
        self.assertEqual(self.vdi, self.a.VBD.get_VDI(self.a.VM.get_VBDs(
            self.vm)[0]))

    def test_intra_pool_block_migration_needs_the_sr_there(self):
        """xapi_vm_helpers.ml assert_can_see_SRs, inside one pool.

        xapi_vm_helpers.ml assert_can_see_SRs (the mock's stand-in for
        xenopsd's failure): a kept disk's SR not plugged on the
        destination host is VM_REQUIRES_SR [vm, sr].
        """
        dest = self.a.host.migrate_receive(self.host2,
                                           self.a.network.get_all()[0], {})
        self.assertFailure(['VM_REQUIRES_SR', self.vm, self.sr],
                           self.a.VM.migrate_send, self.vm, dest, True,
                           {self.vdi: self.sr}, {}, {})
        self.assertNotEqual(self.host2, self.a.VM.get_resident_on(self.vm))

    def test_storage_migrations_are_counted_per_host(self):
        # xapi_vm_migrate.ml with_migrate: a counter in each host's xapi
        pool = self.srv.pool('pool-a')
        with pool.storage_migration_slot('h1'), \
                pool.storage_migration_slot('h1'), \
                pool.storage_migration_slot('h1'):
            with pool.storage_migration_slot('h2'):
                self.assertEqual(4, pool.storage_migrations_in_flight)
            exc = self.assertRaises(errors.XapiError,
                                    pool.storage_migration_slot('h1')
                                    .__enter__)
            self.assertEqual(['TOO_MANY_STORAGE_MIGRATES', '3'],
                             exc.description)

    def test_pool_member_answers_host_is_slave(self):
        # a pool member's xapi refers every client to the master; its
        # address is its management PIF's IP
        url = self.srv.host_urls[('pool-a', 'host-a2')]
        proxy = xmlrpc.client.ServerProxy(url)
        reply = proxy.session.login_with_password('root', 'mock')
        master = self.fx.urls['pool-a'].split('//')[1]
        self.assertEqual(['HOST_IS_SLAVE', master], reply['ErrorDescription'])
        address = url.split('//')[1]
        self.assertEqual(address, self.a.host.get_address(self.host2))
        pifs = self.a.PIF.get_all_records_where('field "IP"="%s"' % address)
        self.assertEqual([self.host2], [p['host'] for p in pifs.values()])

    def test_nova_session_through_a_pool_member(self):
        # os-xenapi's XenAPISession follows HOST_IS_SLAVE to the master and
        # finds its own host by the PIF IP
        from nova_xenapi_sr_tools import novaenv
        novaenv.prepare()
        from nova_xenapi_sr import os_xenapi_compat
        from os_xenapi.client import session as os_session
        os_xenapi_compat.apply()
        url = self.srv.host_urls[('pool-a', 'host-a2')]
        sess = os_session.XenAPISession(url, 'root', 'mock')
        self.assertTrue(sess.is_slave)
        self.assertEqual(self.host2, sess.host_ref)

    def test_each_host_has_its_own_local_sr(self):
        """xapi_pbd.ml check_sharing_constraint holds for local storage.

        A XenServer install gives every host its own unshared "Local
        storage" SR (its suspend-image and crash-dump SR); the pool's
        default SR is the master's (xapi_pool.ml join keeps it), which
        nova's default-SR lookups on a member host still find.
        """
        hosts = self.a.host.get_all()
        local = {}
        for ref, rec in self.a.SR.get_all_records_where(
                'field "name__label" = "Local storage"').items():
            self.assertEqual(('ext', False), (rec['type'], rec['shared']))
            [pbd] = rec['PBDs']
            self.assertTrue(self.a.PBD.get_currently_attached(pbd))
            local[self.a.PBD.get_host(pbd)] = ref
        self.assertEqual(sorted(hosts), sorted(local))
        for host in hosts:
            self.assertEqual(local[host],
                             self.a.host.get_suspend_image_sr(host))
            self.assertEqual(local[host], self.a.host.get_crash_dump_sr(host))
        pool = self.a.pool.get_all()[0]
        master = self.a.pool.get_master(pool)
        self.assertEqual(local[master], self.a.pool.get_default_SR(pool))
        # plugging the master's local SR on the other host is refused
        pbd = self.a.PBD.create({'host': self.host2, 'SR': local[master],
                                 'device_config': {}})
        self.assertFailure(['SR_NOT_SHARABLE', local[master], master],
                           self.a.PBD.plug, pbd)
        # nova on the member host: vm_utils.safe_find_sr reads the pool's
        # default SR, scan_default_sr scans it (a PBD plugged on the
        # master is enough), bulk.image_sr gives nova's answer
        from nova_xenapi_sr_tools import novaenv
        novaenv.prepare()
        from nova.virt.xenapi import vm_utils
        from nova_xenapi_sr import os_xenapi_compat
        from nova_xenapi_sr.virt import bulk
        from os_xenapi.client import session as os_session
        os_xenapi_compat.apply()
        url = self.srv.host_urls[('pool-a', 'host-a2')]
        sess = os_session.XenAPISession(url, 'root', 'mock')
        self.assertEqual(local[master], vm_utils.safe_find_sr(sess))
        self.assertEqual(local[master], vm_utils.scan_default_sr(sess))
        self.assertEqual(local[master], bulk.image_sr(sess))


class IntraPoolMirrorTest(test_motion.MigrationTestCase):
    """Storage motion to another SR of the same pool."""

    def scenario(self):
        sc = Scenario()
        sc.add_pool('pool-a', hosts=['host-a', 'host-a2'])
        sc.add_pool('pool-b', hosts=['host-b'])
        sc.add_volume('vol-lvm', test_motion.T2[0], test_motion.T2[1], 1)
        sc.add_volume('vol-lvm-dest', test_motion.T3[0], test_motion.T3[1],
                      1)
        sc.add_instance('pool-a', 2, volumes=[
            ('vol-lvm', 'uuid5', '/dev/xvdb', 'lvmoiscsi')])
        return sc

    def setUp(self):
        super(IntraPoolMirrorTest, self).setUp()
        self.host2 = self.a.host.get_by_name_label('host-a2')[0]
        self.dest = self.a.host.migrate_receive(
            self.host2, self.a.network.get_all()[0], {})

    def lvm_sr_on(self, host, volume_id):
        data = self.data(volume_id)
        config = naming.device_config(data)
        addr, port, iqn = naming.iscsi_target(data)
        config['SCSIid'] = self.srv.array.target(addr, int(port),
                                                 iqn).luns[1].scsi_id
        sr = self.a.SR.introduce(naming.uuid5_sr_uuid(data), 'l', '',
                                 'lvmoiscsi', '', False)
        self.a.PBD.plug(self.a.PBD.create({'host': host, 'SR': sr,
                                           'device_config': config}))
        return sr

    def test_copied_source_vdi_is_destroyed_after_the_mirror(self):
        # vdi_copy_fun post_mirror: once the rest succeeded, mirror && not
        # copy -> XenAPI.VDI.destroy of the source VDI through the pool's
        # own API; intra_pool_vdi_remap pointed the VBD at the copy first
        vm = self.vm(2)
        vdi = self.vm_vdi(self.a, vm)
        vdi_uuid = self.a.VDI.get_uuid(vdi)
        sr = self.lvm_sr_on(self.host2, 'vol-lvm-dest')
        pool_a = self.srv.pool('pool-a')
        pool_a.clear_calls()
        self.assertEqual(vm, self.a.VM.migrate_send(vm, self.dest, True,
                                                    {vdi: sr}, {}, {}))
        self.assertEqual(self.host2, self.a.VM.get_resident_on(vm))
        new_vdi = self.vm_vdi(self.a, vm)
        self.assertEqual(sr, self.a.VDI.get_SR(new_vdi))
        self.assertEqual([self.a.VDI.get_uuid(new_vdi)],
                         [c['new_vdi_uuid'] for c in self.srv.copies])
        self.assertEqual([False], [c['deleted'] for c in self.srv.copies])
        self.assertFailure(['UUID_INVALID', 'VDI', vdi_uuid],
                           self.a.VDI.get_by_uuid, vdi_uuid)
        lun = self.srv.array.target(test_motion.T2[0].split(':')[0], 3260,
                                    test_motion.T2[1]).luns[1]
        self.assertNotIn(vdi_uuid, lun.lvs)
        methods = [(m, args) for m, args in pool_a.calls()]
        complete = methods.index(('VM.pool_migrate_complete',
                                  (vm, self.host2)))
        self.assertIn(('VDI.destroy', (vdi,)), methods[complete:])
        # intra-pool: no import, no stale VM lookup
        self.assertNotIn('/import_metadata', [m for m, _ in methods])

    def test_failed_source_vdi_destroy_fails_the_migration(self):
        # post_mirror's VDI.destroy is inside with_remote_vdi: its error
        # propagates, and the copy, now the VM's disk, is VDI_IN_USE
        vm = self.vm(2)
        vdi = self.vm_vdi(self.a, vm)
        sr = self.lvm_sr_on(self.host2, 'vol-lvm-dest')
        self.srv.inject_fault('pool-a', 'VDI.destroy', match=[vdi],
                              error=['SR_BACKEND_FAILURE_77', '', 'busy',
                                     ''])
        self.assertFailure(['SR_BACKEND_FAILURE_77', '', 'busy', ''],
                           self.a.VM.migrate_send, vm, self.dest, True,
                           {vdi: sr}, {}, {})
        self.assertEqual(self.host2, self.a.VM.get_resident_on(vm))
        self.assertEqual(sr, self.a.VDI.get_SR(self.vm_vdi(self.a, vm)))
        self.assertEqual(vdi, self.a.VDI.get_by_uuid(self.a.VDI.get_uuid(
            vdi)))
        self.assertEqual([False], [c['deleted'] for c in self.srv.copies])

    def test_destination_host_disabled(self):
        # assert_can_migrate, intra-pool: xapi_vm_helpers.ml
        # assert_can_boot_here -> assert_host_is_enabled
        vm = self.vm(2)
        vdi = self.vm_vdi(self.a, vm)
        sr = self.lvm_sr_on(self.host2, 'vol-lvm-dest')
        with self.srv.world.lock:
            self.srv.pool('pool-a').db.get('host', self.host2)[
                'enabled'] = False
        self.assertFailure(['HOST_DISABLED', self.host2],
                           self.a.VM.migrate_send, vm, self.dest, True,
                           {vdi: sr}, {}, {})
        self.assertEqual([], self.srv.copies)


class SrBusyTest(base.MockXapiTestCase):

    def scenario(self):
        sc = base.two_pools()
        sc.pools[1]['sr_busy_timeout'] = 0.3
        return sc

    def test_busy_sr_fails_after_the_timeout(self):
        # message_forwarding.ml with_sr_marked -> Helpers.retry; after the
        # policy's wait, OTHER_OPERATION_IN_PROGRESS ["SR", sr, op]
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        self.srv.set_latency('pool-b', 'SR.scan', 1.5)
        thread = threading.Thread(target=self.fx.session(
            'pool-b').xenapi.SR.scan, args=(sr,))
        thread.start()
        time.sleep(0.3)
        try:
            self.assertFailure(['OTHER_OPERATION_IN_PROGRESS', 'SR', sr,
                                'scan'], self.b.SR.forget, sr)
        finally:
            thread.join()


class WhereOrderTest(base.MockXapiTestCase):

    def test_results_in_descending_ref_order(self):
        """db_cache_impl.ml read_refs, find_refs_with_filter_internal.

        A table is a map keyed by ref string (db_cache_types.ml); the
        class-wide reads fold over it and cons, so get_all,
        get_all_records, get_all_records_where and get_by_name_label
        answer in descending ref order, not in creation order: nova's
        "first dom0" of a pool is the one with the greatest ref.
        """
        nets = [self.a.network.create({'name_label': 'n', 'other_config':
                                       {}, 'name_description': str(i)})
                for i in range(8)]
        every = self.a.network.get_all()
        self.assertEqual(sorted(every, reverse=True), every)
        self.assertEqual(every, list(self.a.network.get_all_records()))
        found = self.a.network.get_all_records_where('field "name__label" '
                                                     '= "n"')
        self.assertEqual(sorted(nets, reverse=True), list(found))
        self.assertEqual(sorted(nets, reverse=True),
                         self.a.network.get_by_name_label('n'))


class GcTest(test_base.TestCase):

    def _forget_the_sr_of_a_vbd(self, fx):
        """Forget instance 1's volume SR: its VBD points at nothing."""
        xs = fx.session('pool-a').xenapi
        vm = xs.VM.get_by_name_label('instance-00000001')[0]
        vbd = xs.VM.get_VBDs(vm)[0]
        sr = xs.VDI.get_SR(xs.VBD.get_VDI(vbd))
        xs.VBD.unplug(vbd)
        for pbd in xs.SR.get_PBDs(sr):
            xs.PBD.unplug(pbd)
        xs.SR.forget(sr)
        return xs, vm, vbd

    def test_periodic_gc_removes_what_points_at_nothing(self):
        # db_gc.ml: a pass every db_GC_TIMER seconds (30; shortened here)
        sc = base.two_pools()
        fx = self.useFixture(fixture.MockXapiFixture(sc, gc_interval=0.2))
        xs, vm, vbd = self._forget_the_sr_of_a_vbd(fx)
        self.assertEqual([vbd], fx.inspect('pool-a')['dangling_VBDs'])
        for _ in range(50):
            if not fx.inspect('pool-a')['dangling_VBDs']:
                break
            time.sleep(0.1)
        self.assertEqual([], fx.inspect('pool-a')['dangling_VBDs'])
        self.assertEqual([], xs.VM.get_VBDs(vm))

    def test_run_gc_now(self):
        sc = base.two_pools()
        fx = self.useFixture(fixture.MockXapiFixture(sc, gc_interval=0))
        xs, vm, vbd = self._forget_the_sr_of_a_vbd(fx)
        time.sleep(0.3)
        self.assertEqual([vbd], fx.inspect('pool-a')['dangling_VBDs'])
        self.assertEqual([vbd], fx.server.run_gc('pool-a')['pool-a']['VBD'])
        self.assertEqual([], fx.inspect('pool-a')['dangling_VBDs'])

    def test_uuid5_sr_name_of_the_default_scenario(self):
        # the default scenario keeps one naming style per target
        sc = Scenario.default()
        data = sc.connection_info('vol-legacy')['data']
        self.assertNotEqual(data['target_iqn'], sc.connection_info(
            'vol-uuid5')['data']['target_iqn'])
        self.assertTrue(naming.uuid5_sr_uuid(data))


class LifecycleTest(base.MockXapiTestCase):

    def setUp(self):
        super(LifecycleTest, self).setUp()
        self.vm = self.a.VM.get_by_name_label('instance-00000001')[0]
        self.vbd = self.a.VM.get_VBDs(self.vm)[0]

    def test_vbd_destroy_needs_an_unplug(self):
        # xapi_vbd_helpers.ml destroy: OPERATION_NOT_ALLOWED
        exc = self.assertRaises(XenAPI.Failure, self.a.VBD.destroy,
                                self.vbd)
        self.assertEqual('OPERATION_NOT_ALLOWED', exc.details[0])
        self.assertIn('still attached', exc.details[1])
        self.a.VBD.unplug(self.vbd)
        self.a.VBD.destroy(self.vbd)

    def vbd_record(self, **fields):
        record = {'VM': self.vm, 'VDI': self.a.VBD.get_VDI(self.vbd),
                  'userdevice': '2', 'bootable': False, 'mode': 'RW',
                  'type': 'Disk', 'empty': False, 'other_config': {},
                  'qos_algorithm_type': '', 'qos_algorithm_params': {}}
        record.update(fields)
        return record

    def vif_record(self, net, **fields):
        record = {'VM': self.vm, 'network': net, 'device': '1',
                  'MAC': '02:00:00:00:00:09', 'MTU': '1500',
                  'other_config': {}, 'qos_algorithm_type': '',
                  'qos_algorithm_params': {}}
        record.update(fields)
        return record

    def network(self, **fields):
        return self.a.network.create(dict({'name_label': 'n',
                                           'name_description': '',
                                           'other_config': {}}, **fields))

    def test_vbd_create_on_a_used_userdevice(self):
        """xapi_vbd.ml create: DEVICE_ALREADY_EXISTS [userdevice]."""
        rec = self.a.VBD.get_record(self.vbd)
        self.assertFailure(['DEVICE_ALREADY_EXISTS', rec['userdevice']],
                           self.a.VBD.create,
                           self.vbd_record(userdevice=rec['userdevice']))

    def test_vbd_create_checks_in_xapis_order(self):
        """xapi_vbd.ml create: the order of its checks.

        xapi_vbd.ml create: the VDI, CDs read-only, only CDs empty,
        no RW VBD of a read-only VDI, then the VM.
        """
        self.assertFailure(['HANDLE_INVALID', 'VDI', 'OpaqueRef:x'],
                           self.a.VBD.create,
                           self.vbd_record(VDI='OpaqueRef:x', VM='y'))
        self.assertFailure(['VBD_CDS_MUST_BE_READONLY'], self.a.VBD.create,
                           self.vbd_record(type='CD'))
        self.assertFailure(['VBD_NOT_REMOVABLE_MEDIA', 'in constructor'],
                           self.a.VBD.create,
                           self.vbd_record(empty=True, VDI='OpaqueRef:NULL'))
        vdi = self.a.VBD.get_VDI(self.vbd)
        self.srv.pool('pool-a').db.get('VDI', vdi)['read_only'] = True
        self.assertFailure(['VDI_READONLY', vdi], self.a.VBD.create,
                           self.vbd_record())
        self.assertFailure(['HANDLE_INVALID', 'VM', 'OpaqueRef:y'],
                           self.a.VBD.create,
                           self.vbd_record(mode='RO', VM='OpaqueRef:y'))
        cd = self.a.VBD.create(self.vbd_record(
            type='CD', mode='RO', empty=True, VDI='OpaqueRef:NULL'))
        self.assertFalse(self.a.VBD.get_currently_attached(cd))

    def test_vbd_plug_and_unplug(self):
        """xapi_vbd_helpers.ml valid_operations: VBD plug and unplug.

        xapi_vbd_helpers.ml valid_operations: unpluggable, then the
        power state (DEVICE_ALREADY_ATTACHED / _DETACHED on a running VM,
        VM_BAD_POWER_STATE otherwise), then the VDI's managed flag.
        """
        self.assertFailure(['DEVICE_ALREADY_ATTACHED', self.vbd],
                           self.a.VBD.plug, self.vbd)
        self.a.VBD.unplug(self.vbd)
        self.assertFailure(['DEVICE_ALREADY_DETACHED', self.vbd],
                           self.a.VBD.unplug, self.vbd)
        db = self.srv.pool('pool-a').db
        vdi = self.a.VBD.get_VDI(self.vbd)
        db.get('VDI', vdi)['managed'] = False
        self.assertFailure(['VDI_NOT_MANAGED', self.vbd], self.a.VBD.plug,
                           self.vbd)
        db.get('VDI', vdi)['managed'] = True
        self.a.VBD.plug(self.vbd)
        db.get('VBD', self.vbd)['unpluggable'] = False
        self.assertFailure(['VBD_NOT_UNPLUGGABLE', self.vbd],
                           self.a.VBD.unplug, self.vbd)
        db.get('VBD', self.vbd)['unpluggable'] = True
        db.get('VM', self.vm)['power_state'] = 'Halted'
        for call in (self.a.VBD.plug, self.a.VBD.unplug):
            self.assertFailure(['VM_BAD_POWER_STATE', self.vm, 'running',
                                'halted'], call, self.vbd)

    def test_vif_create_checks(self):
        """xapi_vif_helpers.ml create: the order of its checks.

        xapi_vif_helpers.ml create: the network, the device (an
        integer), the MAC (helpers.ml is_valid_MAC; made from the VM's
        mac_seed when empty, gen_mac), then a device new to the VM.
        """
        net = self.network()
        self.assertFailure(['HANDLE_INVALID', 'network', 'OpaqueRef:n'],
                           self.a.VIF.create,
                           self.vif_record('OpaqueRef:n', device='x'))
        self.assertFailure(['INVALID_DEVICE', 'eth1'], self.a.VIF.create,
                           self.vif_record(net, device='eth1'))
        self.assertFailure(['MAC_INVALID', ''], self.a.VIF.create,
                           self.vif_record(net, MAC=''))
        self.assertFailure(['HANDLE_INVALID', 'VM', 'OpaqueRef:v'],
                           self.a.VIF.create,
                           self.vif_record(net, VM='OpaqueRef:v'))
        vif = self.a.VIF.create(self.vif_record(net))
        self.assertFalse(self.a.VIF.get_currently_attached(vif))
        self.assertFailure(['DEVICE_ALREADY_EXISTS', '1'], self.a.VIF.create,
                           self.vif_record(net, MAC='02:00:00:00:00:0a'))
        self.a.VM.add_to_other_config(self.vm, 'mac_seed', 'seed')
        made = self.a.VIF.create(self.vif_record(net, device='2', MAC=''))
        mac = self.a.VIF.get_MAC(made)
        self.assertRegex(mac, '^([0-9a-f]{2}:){5}[0-9a-f]{2}$')
        self.assertEqual(0x2, int(mac[:2], 16) & 0x3)
        self.assertEqual(mac, lifecycle.generated_mac('2', 'seed'))

    def test_vif_plug_and_unplug(self):
        """xapi_vif_helpers.ml valid_operations: VIF plug and unplug.

        xapi_vif_helpers.ml valid_operations: no hotplug on dom0, then
        the power state, as for VBDs.
        """
        net = self.network()
        vif = self.a.VIF.create(self.vif_record(net))
        self.assertFailure(['DEVICE_ALREADY_DETACHED', vif],
                           self.a.VIF.unplug, vif)
        self.a.VIF.plug(vif)
        self.assertFailure(['DEVICE_ALREADY_ATTACHED', vif],
                           self.a.VIF.plug, vif)
        dom0 = self.a.VM.get_all_records_where(
            'field "is_control_domain" = "true"')
        dom0_vif = self.a.VIF.create(self.vif_record(
            net, VM=list(dom0)[0], device='3'))
        self.assertFailure(['OPERATION_NOT_ALLOWED',
                            'Control domain does not support hotplug'],
                           self.a.VIF.plug, dom0_vif)
        self.srv.pool('pool-a').db.get('VM', self.vm)['power_state'] = \
            'Halted'
        self.assertFailure(['VM_BAD_POWER_STATE', self.vm, 'running',
                            'halted'], self.a.VIF.unplug, vif)

    def test_network_destroy_blocked_by_attached_vifs_only(self):
        """xapi_network.ml destroy; xapi_vif_helpers.ml destroy.

        xapi_network.ml destroy: attached VIFs block it; the others
        are destroyed with it, "rather than wait for the GC thread";
        xapi_vif_helpers.ml destroy refuses an attached VIF of a running
        VM.
        """
        net = self.network()
        vif = self.a.VIF.create(self.vif_record(net))
        self.a.VIF.plug(vif)
        self.assertFailure(['NETWORK_CONTAINS_VIF', vif],
                           self.a.network.destroy, net)
        self.assertFailure(['OPERATION_NOT_ALLOWED',
                            'VIF currently attached to a running VM'],
                           self.a.VIF.destroy, vif)
        self.a.VIF.unplug(vif)
        self.a.network.destroy(net)
        self.assertFailure(['HANDLE_INVALID', 'VIF', vif],
                           self.a.VIF.get_record, vif)
        self.assertEqual([], self.srv.run_gc('pool-a')['pool-a']['VIF'])
        # the host-internal management network cannot go
        internal = self.network(other_config={
            'is_host_internal_management_network': 'true'})
        self.assertFailure(['CANNOT_DESTROY_SYSTEM_NETWORK', internal],
                           self.a.network.destroy, internal)

    def test_vif_destroy_of_a_vm_that_is_gone(self):
        """xapi_vif_helpers.ml destroy of a VIF whose VM is gone.

        xapi_vif_helpers.ml destroy -> Helpers.is_running reads the VM's
        domid: HANDLE_INVALID for a VIF whose VM is gone (the GC removes
        such VIFs).
        """
        net = self.network()
        vif = self.a.VIF.create(self.vif_record(net))
        self.srv.pool('pool-a').db.destroy('VM', self.vm)
        self.assertFailure(['HANDLE_INVALID', 'VM', self.vm],
                           self.a.VIF.destroy, vif)

    def test_bridge_names(self):
        """xapi_network.ml create: bridge names and the MTU.

        xapi_network.ml create: choose_bridge_name gives xapi<N> from
        a counter, skipping names in use; a client's own name must not be
        longer than 15 characters or start with a blacklisted prefix
        (INVALID_VALUE), nor be in use (BRIDGE_NAME_EXISTS).
        """
        first = self.a.network.get_bridge(self.network())
        self.assertRegex(first, '^xapi[0-9]+$')
        number = int(first[4:])
        self.network(bridge='qbr1')
        self.srv.pool('pool-a').db.create(
            'network', bridge='xapi%d' % (number + 1))
        self.assertEqual('xapi%d' % (number + 2),
                         self.a.network.get_bridge(self.network()))
        for bad in ('xenbr9', 'tap1', 'a' * 16):
            self.assertFailure(['INVALID_VALUE', 'bridge', bad],
                               lambda: self.network(bridge=bad))
        self.assertFailure(['BRIDGE_NAME_EXISTS', 'qbr1'],
                           lambda: self.network(bridge='qbr1'))
        # an MTU of 0 or less is 1500
        self.assertEqual('1500', self.a.network.get_MTU(self.network(
            MTU='0')))
