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

"""Cross-pool migration and the storage-motion table, through the SDK."""

import threading
import time
import xmlrpc.client

import XenAPI

from nova_xenapi_sr import naming
from nova_xenapi_sr_tools.mockxapi import Scenario
from tests.functional.mockxapi import base

T2 = ('192.0.2.30:3260', 'iqn.2010-10.org.openstack:lvm-source')
T3 = ('192.0.2.40:3260', 'iqn.2010-10.org.openstack:lvm-dest')


def motion_scenario(relax=True, vifs=()):
    sc = Scenario()
    sc.add_pool('pool-a', hosts=['host-a'], relax_xsm_sr_check=relax)
    sc.add_pool('pool-b', hosts=['host-b'], relax_xsm_sr_check=relax)
    sc.add_volume('vol-1', base.PORTAL, base.IQN, 1)
    sc.add_volume('vol-2', base.PORTAL, base.IQN, 2)
    sc.add_volume('vol-lvm', T2[0], T2[1], 1)
    sc.add_volume('vol-lvm-dest', T3[0], T3[1], 1)
    sc.add_instance('pool-a', 1, volumes=[('vol-1', 'uuid5', '/dev/xvdb')],
                    vifs=[{'id': v} for v in vifs])
    sc.add_instance('pool-a', 2, volumes=[
        ('vol-lvm', 'uuid5', '/dev/xvdb', 'lvmoiscsi')])
    return sc


class MigrationTestCase(base.MockXapiTestCase):

    relax = True
    vifs = ()

    def scenario(self):
        return motion_scenario(self.relax, self.vifs)

    def vm(self, instance_id=1):
        return self.a.VM.get_by_name_label('instance-%08x' % instance_id)[0]

    def vm_vdi(self, xenapi, vm):
        return xenapi.VBD.get_VDI(xenapi.VM.get_VBDs(vm)[0])

    def receive(self):
        host = self.b.host.get_all()[0]
        network = self.b.network.get_all()[0]
        return self.b.host.migrate_receive(host, network, {})

    def lvm_sr(self, xenapi, volume_id, sr_uuid=None):
        """An lvmoiscsi SR on a volume's LUN (device_config + SCSIid)."""
        data = self.data(volume_id)
        config = naming.device_config(data)
        host, port, iqn = naming.iscsi_target(data)
        lun = self.srv.array.target(host, int(port), iqn).luns[1]
        config['SCSIid'] = lun.scsi_id
        sr_uuid = sr_uuid or naming.uuid5_sr_uuid(data)
        sr = xenapi.SR.introduce(sr_uuid, 'l', '', 'lvmoiscsi', '', False)
        pbd = xenapi.PBD.create({'host': xenapi.host.get_all()[0],
                                 'SR': sr, 'device_config': config})
        xenapi.PBD.plug(pbd)
        return sr

    def assertNotMoved(self, instance_id=1):
        name = 'instance-%08x' % instance_id
        self.assertEqual(['pool-a'],
                         [p for p, _ in self.srv.find_vm(name)])
        vm = self.vm(instance_id)
        self.assertEqual(1, len(self.a.VM.get_VBDs(vm)))
        self.assertEqual([], self.srv.copies)

    def assertMovedTo(self, new_vm, instance_id=1):
        name = 'instance-%08x' % instance_id
        self.assertEqual([('pool-b', new_vm)], self.srv.find_vm(name))
        self.assertEqual('host-b', self.b.host.get_name_label(
            self.b.VM.get_resident_on(new_vm)))


class MigrateReceiveTest(MigrationTestCase):

    def test_shape(self):
        dest = self.receive()
        self.assertEqual({'SM', 'host', 'xenops', 'session_id', 'master'},
                         set(dest))
        self.assertTrue(all(isinstance(v, str) for v in dest.values()))
        self.assertEqual(self.b.host.get_all()[0], dest['host'])
        self.assertEqual(self.fx.urls['pool-b'], dest['master'])
        self.assertEqual({}, self.a.host.get_all_records_where(
            'field "uuid" = "%s"' % self.b.host.get_uuid(dest['host'])))
        self.assertIn(dest['session_id'],
                      self.srv.pool('pool-b').db.tables['session'])

    def test_bad_refs(self):
        self.assertFailure(['HANDLE_INVALID', 'network', 'OpaqueRef:x'],
                           self.b.host.migrate_receive,
                           self.b.host.get_all()[0], 'OpaqueRef:x', {})


class AssertCanMigrateTest(MigrationTestCase):

    def test_vdi_not_in_map(self):
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        self.assertFailure(['VDI_NOT_IN_MAP', vdi],
                           self.a.VM.assert_can_migrate, vm, self.receive(),
                           True, {}, {}, {})
        self.assertFailure(['VDI_NOT_IN_MAP', vdi],
                           self.a.VM.migrate_send, vm, self.receive(), True,
                           {}, {}, {})
        self.assertNotMoved()

    def test_assert_passes_and_changes_nothing(self):
        vm = self.vm()
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        self.assertEqual('', self.a.VM.assert_can_migrate(
            vm, self.receive(), True, {self.vm_vdi(self.a, vm): sr}, {}, {}))
        self.assertNotMoved()

    def test_dest_host_unknown(self):
        # xapi_vm_migrate.ml remote_of_dest makes no call: check_vdi_map
        # comes first, then the destination answers for the host it is
        # asked about (helpers.ml host_versions_not_decreasing)
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        dest = dict(self.receive(), host='OpaqueRef:nowhere')
        pool_b = self.srv.pool('pool-b')
        for call in (self.a.VM.assert_can_migrate, self.a.VM.migrate_send):
            pool_b.clear_calls()
            self.assertFailure(['VDI_NOT_IN_MAP', vdi], call, vm, dest,
                               True, {}, {}, {})
            self.assertEqual([], pool_b.calls())
            self.assertFailure(['HANDLE_INVALID', 'host',
                                'OpaqueRef:nowhere'], call, vm, dest, True,
                               {vdi: sr}, {}, {})
            self.assertEqual([('host.get_software_version',
                               ('OpaqueRef:nowhere',))], pool_b.calls())
        self.assertNotMoved()

    def test_dest_keys_are_read_first(self):
        # remote_of_dest: List.assoc of a missing key is Not_found
        # (exnHelper.ml error_of_exn), before check_vdi_map
        vm = self.vm()
        for key in ('master', 'xenops', 'session_id', 'host', 'SM'):
            dest = self.receive()
            del dest[key]
            self.assertFailure(['INTERNAL_ERROR', 'Not_found'],
                               self.a.VM.assert_can_migrate, vm, dest, True,
                               {}, {}, {})

    def test_lower_platform_version_on_the_destination(self):
        # assert_can_migrate, cross-pool: host_versions_not_decreasing
        # with the destination host's software_version
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        dest = self.receive()
        with self.srv.world.lock:
            host = self.srv.pool('pool-b').db.get('host', dest['host'])
            host['software_version']['platform_version'] = '2.0.9'
        self.assertFailure(['VM_HOST_INCOMPATIBLE_VERSION_MIGRATE', vm,
                            dest['host']], self.a.VM.assert_can_migrate, vm,
                           dest, True, {vdi: sr}, {}, {})
        with self.srv.world.lock:
            host['software_version']['platform_version'] = '2.1.1'
        self.assertEqual('', self.a.VM.assert_can_migrate(
            vm, dest, True, {vdi: sr}, {}, {}))

    def test_destination_host_disabled(self):
        # assert_can_migrate, cross-pool: XenAPI.Host.get_enabled
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        dest = self.receive()
        with self.srv.world.lock:
            self.srv.pool('pool-b').db.get('host', dest['host'])[
                'enabled'] = False
        self.assertFailure(['HOST_DISABLED', dest['host']],
                           self.a.VM.migrate_send, vm, dest, True, {vdi: sr},
                           {}, {})
        self.assertNotMoved()

    def test_too_few_pcpus_on_the_destination(self):
        # xapi_vm_helpers.ml assert_enough_pcpus ~remote: the VM's
        # VCPUs_max against the destination's cpu_info cpu_count
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        dest = self.receive()
        self.a.VM.set_VCPUs_max(vm, '8')
        with self.srv.world.lock:
            self.srv.pool('pool-b').db.get('host', dest['host'])[
                'cpu_info'] = {'cpu_count': '4', 'vendor': 'GenuineIntel'}
        self.assertFailure(['HOST_NOT_ENOUGH_PCPUS', '8', '4'],
                           self.a.VM.assert_can_migrate, vm, dest, True,
                           {vdi: sr}, {}, {})
        self.a.VM.set_platform(vm, {'vcpu-unrestricted': 'true'})
        self.assertEqual('', self.a.VM.assert_can_migrate(
            vm, dest, True, {vdi: sr}, {}, {}))


class DestinationSessionTest(MigrationTestCase):
    """xapi reaches the destination with dest["session_id"]."""

    def raw(self, method, *args):
        """Call pool-a without the SDK's re-login on SESSION_INVALID."""
        proxy = xmlrpc.client.ServerProxy(self.fx.urls['pool-a'])
        session = proxy.session.login_with_password('root', 'mock')['Value']
        return getattr(proxy, method)(session, *args)

    def test_dead_destination_session_is_session_invalid(self):
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        dest = self.receive()
        self.srv.pool('pool-b').expire_session(dest['session_id'])
        for method in ('VM.assert_can_migrate', 'VM.migrate_send'):
            reply = self.raw(method, vm, dest, True, {vdi: sr}, {}, {})
            self.assertEqual(['SESSION_INVALID', dest['session_id']],
                             reply['ErrorDescription'], method)
        # the SDK takes SESSION_INVALID for its own session: it logs in
        # again and gives up after three tries, as against xapi
        exc = self.assertRaises(xmlrpc.client.Fault,
                                self.a.VM.migrate_send, vm, dest, True,
                                {vdi: sr}, {}, {})
        self.assertIn('Tried 3 times', exc.faultString)
        self.assertNotMoved()

    def test_session_of_another_pool_is_session_invalid(self):
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        source_session = self.fx.session('pool-a')._session
        for session in (source_session, 'OpaqueRef:nope'):
            dest = dict(self.receive(), session_id=session)
            reply = self.raw('VM.assert_can_migrate', vm, dest, True,
                             {vdi: sr}, {}, {})
            self.assertEqual(['SESSION_INVALID', session],
                             reply['ErrorDescription'])
        # the session is the destination's to check: after check_vdi_map
        dest = dict(self.receive(), session_id='OpaqueRef:nope')
        reply = self.raw('VM.migrate_send', vm, dest, True, {}, {}, {})
        self.assertEqual(['VDI_NOT_IN_MAP', vdi], reply['ErrorDescription'])
        self.assertNotMoved()

    def test_live_destination_session_works(self):
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        dest = self.receive()
        self.assertEqual('Success', self.raw(
            'VM.assert_can_migrate', vm, dest, True, {vdi: sr}, {},
            {})['Status'])
        reply = self.raw('VM.migrate_send', vm, dest, True, {vdi: sr}, {},
                         {})
        self.assertEqual('Success', reply['Status'])
        self.assertMovedTo(reply['Value'])


class StorageMotionTest(MigrationTestCase):

    def test_same_sr_uuid_raw_iscsi_no_copy(self):
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        vdi_uuid = self.a.VDI.get_uuid(vdi)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))  # not scanned
        self.assertEqual(self.a.SR.get_uuid(self.a.VDI.get_SR(vdi)),
                         self.b.SR.get_uuid(sr))
        new_vm = self.a.VM.migrate_send(vm, self.receive(), True,
                                        {vdi: sr}, {}, {})
        self.assertMovedTo(new_vm)
        self.assertEqual([], self.srv.copies)
        dest_vdi = self.vm_vdi(self.b, new_vm)
        self.assertEqual(vdi_uuid, self.b.VDI.get_uuid(dest_vdi))
        self.assertEqual(sr, self.b.VDI.get_SR(dest_vdi))
        self.assertEqual(self.sc.instances[0]['nova_uuid'],
                         self.b.VM.get_other_config(new_vm)['nova_uuid'])
        # the source keeps its SR and VDI record (nova forgets them)
        self.assertEqual(vdi_uuid, self.a.VDI.get_uuid(vdi))
        self.assertFailure(['HANDLE_INVALID', 'VM', vm],
                           self.a.VM.get_record, vm)
        view = self.srv.pool('pool-a').inspect()
        self.assertEqual([], [r for r in view['VBD'].values()
                              if r['VM'] == vm])

    def test_same_sr_uuid_but_vdi_missing(self):
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr_uuid = naming.uuid5_sr_uuid(self.data('vol-1'))
        # same uuid, but the SR really sits on another target
        sr, _ = self.iscsi_sr(self.b, self.data('vol-lvm-dest'),
                              sr_uuid=sr_uuid)
        self.assertFailure(['INTERNAL_ERROR', 'SR UUID matches on '
                            'destination but VDI does not exist'],
                           self.a.VM.migrate_send, vm, self.receive(), True,
                           {vdi: sr}, {}, {})
        self.assertNotMoved()

    def test_same_sr_uuid_but_vdi_on_another_dest_sr(self):
        # VDI uuids are unique per pool: the LUN's VDI already shows in a
        # legacy-named SR of the destination, so the uuid5 SR that matches
        # the source cannot show it too, and xapi (which looks the uuid up
        # pool-wide) refuses the mapping.
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        vdi_uuid = self.a.VDI.get_uuid(vdi)
        legacy, legacy_pbd = self.iscsi_sr(
            self.b, self.data('vol-1'),
            sr_uuid=naming.legacy_sr_uuid('vol-1'))
        self.b.SR.scan(legacy)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        self.assertEqual(self.a.SR.get_uuid(self.a.VDI.get_SR(vdi)),
                         self.b.SR.get_uuid(sr))
        self.assertFailure(['INTERNAL_ERROR', 'SR UUID matches on '
                            'destination but VDI does not exist'],
                           self.a.VM.migrate_send, vm, self.receive(), True,
                           {vdi: sr}, {}, {})
        self.assertNotMoved()
        self.assertEqual([legacy], [
            r['SR'] for r in self.b.VDI.get_all_records_where(
                'field "uuid" = "%s"' % vdi_uuid).values()])
        # once the other SR is forgotten, the same mapping works
        self.b.PBD.unplug(legacy_pbd)
        self.b.SR.forget(legacy)
        new_vm = self.a.VM.migrate_send(vm, self.receive(), True,
                                        {vdi: sr}, {}, {})
        self.assertMovedTo(new_vm)
        self.assertEqual(sr, self.b.VDI.get_SR(self.vm_vdi(self.b, new_vm)))
        self.assertEqual([], self.srv.copies)

    def test_different_sr_uuid_raw_iscsi_refused(self):
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        src_sr = self.a.VDI.get_SR(vdi)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'),
                              sr_uuid=naming.legacy_sr_uuid('vol-1'))
        self.b.SR.scan(sr)
        before_b = self.srv.pool('pool-b').inspect()
        for call in (self.a.VM.assert_can_migrate, self.a.VM.migrate_send):
            self.assertFailure(['SR_DOES_NOT_SUPPORT_MIGRATION', src_sr],
                               call, vm, self.receive(), True, {vdi: sr},
                               {}, {})
        self.assertNotMoved()
        after_b = self.srv.pool('pool-b').inspect()
        self.assertEqual(before_b['VDI'], after_b['VDI'])
        self.assertEqual(before_b['VM'], after_b['VM'])

    def test_different_sr_uuid_mirror_capable_copies(self):
        vm = self.vm(2)
        vdi = self.vm_vdi(self.a, vm)
        vdi_uuid = self.a.VDI.get_uuid(vdi)
        src_sr_uuid = self.a.SR.get_uuid(self.a.VDI.get_SR(vdi))
        sr = self.lvm_sr(self.b, 'vol-lvm-dest')
        new_vm = self.a.VM.migrate_send(vm, self.receive(), True,
                                        {vdi: sr}, {}, {})
        self.assertMovedTo(new_vm, 2)
        copies = self.srv.copies
        self.assertEqual(1, len(copies))
        copy = copies[0]
        self.assertEqual(vdi_uuid, copy['vdi_uuid'])
        self.assertEqual(src_sr_uuid, copy['source_sr_uuid'])
        self.assertEqual(self.b.SR.get_uuid(sr), copy['destination_sr_uuid'])
        self.assertEqual(('pool-a', 'pool-b'),
                         (copy['source_pool'], copy['destination_pool']))
        dest_vdi = self.vm_vdi(self.b, new_vm)
        self.assertEqual(copy['new_vdi_uuid'], self.b.VDI.get_uuid(dest_vdi))
        # the source VDI was destroyed, LV and all
        self.assertFailure(['UUID_INVALID', 'VDI', vdi_uuid],
                           self.a.VDI.get_by_uuid, vdi_uuid)
        lun = self.srv.array.target('192.0.2.30', 3260, T2[1]).luns[1]
        self.assertNotIn(vdi_uuid, lun.lvs)

    def test_same_sr_uuid_mirror_capable_no_copy(self):
        vm = self.vm(2)
        vdi = self.vm_vdi(self.a, vm)
        vdi_uuid = self.a.VDI.get_uuid(vdi)
        sr = self.lvm_sr(self.b, 'vol-lvm')
        new_vm = self.a.VM.migrate_send(vm, self.receive(), True,
                                        {vdi: sr}, {}, {})
        self.assertMovedTo(new_vm, 2)
        self.assertEqual([], self.srv.copies)
        self.assertEqual(vdi_uuid, self.b.VDI.get_uuid(
            self.vm_vdi(self.b, new_vm)))

    def test_async_migrate_send(self):
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        task = self.a.Async.VM.migrate_send(vm, self.receive(), True,
                                            {vdi: sr}, {}, {})
        for _ in range(200):
            if self.a.task.get_status(task) != 'pending':
                break
            time.sleep(0.05)
        self.assertEqual('success', self.a.task.get_status(task))
        new_vm = self.srv.find_vm('instance-00000001')[0][1]
        self.assertEqual('<value>%s</value>' % new_vm,
                         self.a.task.get_result(task))


class RelaxOffTest(MigrationTestCase):

    relax = False

    def test_config_file_plugin_reports_setting(self):
        host = self.a.host.get_all()[0]
        self.assertEqual('false', self.a.host.call_plugin(
            host, 'config_file.py', 'get_val',
            {'key': 'relax-xsm-sr-check'}))

    def test_same_uuid_raw_iscsi_needs_mirror(self):
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        self.assertFailure(['SR_DOES_NOT_SUPPORT_MIGRATION',
                            self.a.VDI.get_SR(vdi)],
                           self.a.VM.migrate_send, vm, self.receive(), True,
                           {vdi: sr}, {}, {})
        self.assertNotMoved()

    def test_same_uuid_lvm_is_copied(self):
        vm = self.vm(2)
        vdi = self.vm_vdi(self.a, vm)
        sr = self.lvm_sr(self.b, 'vol-lvm')
        self.a.VM.migrate_send(vm, self.receive(), True, {vdi: sr}, {}, {})
        self.assertEqual(1, len(self.srv.copies))


class VifMapTest(MigrationTestCase):

    vifs = ('port-1',)

    def test_vif_not_in_map_then_mapped(self):
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        vif = self.a.VM.get_VIFs(vm)[0]
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        self.assertFailure(['VIF_NOT_IN_MAP', vif], self.a.VM.migrate_send,
                           vm, self.receive(), True, {vdi: sr}, {}, {})
        net = self.b.network.create({'name_label': 'net-port-1',
                                     'other_config': {}})
        new_vm = self.a.VM.migrate_send(vm, self.receive(), True,
                                        {vdi: sr}, {vif: net}, {})
        new_vif = self.b.VM.get_VIFs(new_vm)[0]
        self.assertEqual(net, self.b.VIF.get_network(new_vif))
        self.assertEqual('port-1',
                         self.b.VIF.get_other_config(new_vif)[
                             'neutron-port-id'])
        # xapi_vm_migrate.ml migrate_send': the source VM record goes
        # (Db.VM.destroy), its VIF records stay, pointing at it, until
        # db_gc.ml's gc_VIFs
        left = self.srv.pool('pool-a').inspect()['VIF']
        self.assertEqual([vif], list(left))
        self.assertEqual(vm, left[vif]['VM'])
        self.assertFailure(['HANDLE_INVALID', 'VM', vm],
                           self.a.VM.get_resident_on, vm)
        network = left[vif]['network']
        self.assertEqual([vif], self.a.network.get_VIFs(network))
        removed = self.srv.run_gc('pool-a')['pool-a']
        self.assertEqual([vif], removed['VIF'])
        self.assertEqual({}, self.srv.pool('pool-a').inspect()['VIF'])
        self.assertEqual([], self.a.network.get_VIFs(network))


class TooManyStorageMigratesTest(MigrationTestCase):

    def scenario(self):
        sc = motion_scenario()
        for n in (3, 4, 5):
            sc.add_volume('vol-%d' % n, base.PORTAL, base.IQN, n)
            sc.add_instance('pool-a', n, volumes=[
                ('vol-%d' % n, 'uuid5', '/dev/xvdb')])
        return sc

    def test_fourth_concurrent_migration_refused(self):
        # xapi_vm_migrate.ml with_migrate: three per source host's xapi,
        # taken after VM.assert_can_migrate (message_forwarding.ml)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        self.srv.set_latency('pool-a', 'VM.migrate_send', 3)
        url = self.fx.urls['pool-a']
        results = []

        def migrate(vm, vdi, dest):
            s = XenAPI.Session(url)
            s.login_with_password('root', 'mock')
            try:
                results.append(s.xenapi.VM.migrate_send(
                    vm, dest, True, {vdi: sr}, {}, {}))
            except XenAPI.Failure as exc:
                results.append(exc.details)

        threads = [threading.Thread(target=migrate, args=(
            self.vm(n), self.vm_vdi(self.a, self.vm(n)), self.receive()))
            for n in (3, 4, 5)]
        for t in threads:
            t.start()
        pool = self.srv.pool('pool-a')
        for _ in range(200):
            if pool.storage_migrations_in_flight == 3:
                break
            time.sleep(0.01)
        self.assertEqual(3, pool.storage_migrations_in_flight)
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        self.assertFailure(['TOO_MANY_STORAGE_MIGRATES', '3'],
                           self.a.VM.migrate_send, vm, self.receive(),
                           True, {vdi: sr}, {}, {})
        # a bad request fails its checks before it asks for a slot
        self.assertFailure(['VDI_NOT_IN_MAP', vdi], self.a.VM.migrate_send,
                           vm, self.receive(), True, {}, {}, {})
        for t in threads:
            t.join()
        self.assertEqual(0, pool.storage_migrations_in_flight)
        self.assertEqual(3, len([r for r in results if isinstance(r, str)]))

    def test_one_migration_per_vm_at_a_time(self):
        # message_forwarding.ml with_vm_operation: the second migration of
        # a VM waits for the first, then finds the VM gone
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        self.srv.set_latency('pool-a', 'VM.migrate_send', 1)
        results = []

        def migrate(dest):
            s = XenAPI.Session(self.fx.urls['pool-a'])
            s.login_with_password('root', 'mock')
            try:
                results.append(s.xenapi.VM.migrate_send(
                    vm, dest, True, {vdi: sr}, {}, {}))
            except XenAPI.Failure as exc:
                results.append(exc.details)

        threads = [threading.Thread(target=migrate, args=(self.receive(),))
                   for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        moved = [r for r in results if isinstance(r, str)]
        self.assertEqual(1, len(moved))
        self.assertMovedTo(moved[0])
        self.assertIn(['HANDLE_INVALID', 'VM', vm], results)


class PowerStateTest(MigrationTestCase):

    def test_live_migration_needs_a_running_vm(self):
        vm = self.vm()
        vdi = self.vm_vdi(self.a, vm)
        sr, _ = self.iscsi_sr(self.b, self.data('vol-1'))
        with self.srv.world.lock:
            self.srv.pool('pool-a').db.get('VM', vm)['power_state'] = \
                'Halted'
        self.assertFailure(['VM_BAD_POWER_STATE', vm, 'running', 'halted'],
                           self.a.VM.migrate_send, vm, self.receive(), True,
                           {vdi: sr}, {}, {})
        self.assertNotMoved()


class LvmPlugTest(MigrationTestCase):

    def test_lvmoiscsi_needs_the_lun(self):
        data = self.data('vol-lvm')
        config = naming.device_config(data)
        config['SCSIid'] = 'nope'
        sr = self.b.SR.introduce('u', 'l', '', 'lvmoiscsi', '', False)
        pbd = self.b.PBD.create({'host': self.b.host.get_all()[0],
                                 'SR': sr, 'device_config': config})
        exc = self.assertRaises(XenAPI.Failure, self.b.PBD.plug, pbd)
        self.assertEqual('SR_BACKEND_FAILURE_107', exc.details[0])
