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

"""Migrations real XAPI cannot do, through nova's real services.

nova 21.2.4's api, conductor, scheduler, placement and four nova-computes
run in this process (``nova_xenapi_sr_tools.inprocess``), two with the
extension's driver, two with stock nova's, over the mock XAPI with xapi's
rules; each test boots a volume-backed server adopting a scenario VM and
live-migrates it through the compute API (``os-migrateLive``): what stock
nova does, and how the extension refuses before any XAPI write on the
destination, in XAPI and in nova's records.

* Same pool (``VM.pool_migrate``, no block migration): two computes on
  two hosts of one pool; the second compute's session goes to the pool
  member, which refers it to the master (``HOST_IS_SLAVE``); nova's
  hypervisor-pool aggregate lists both. nova connects nothing on the
  destination host for an SR the pool already has, and its SRs are
  unshared, so ``VM.pool_migrate`` fails with ``VM_REQUIRES_SR``
  (``xapi_vm_helpers.ml`` ``assert_can_see_SRs``).
* A volume whose target another SR of the destination pool already holds:
  SM's scan of the SR nova introduces fails (``SR_BACKEND_FAILURE_40``).
* After a cross-pool move the source keeps the moved VM's VIF records
  until xapi's database GC, and with them nova's interim network.
"""

from nova.network import model as network_model

from nova_xenapi_sr import naming
from nova_xenapi_sr.virt import destination
from tests.functional import base

EXTENSION = base.EXTENSION
STOCK = base.STOCK
volume_uuid = base.volume_uuid
PORTAL = '192.0.2.10:3260'
WRITES = ('SR.introduce', 'SR.forget', 'PBD.create', 'PBD.plug',
          'PBD.unplug', 'PBD.destroy', 'SR.scan', 'VDI.introduce',
          'VBD.create', 'network.create')
#: Classes whose records a refusal leaves as they were.
KEPT = ('SR', 'PBD', 'VDI', 'VBD', 'VM')


def iqn(name):
    return 'iqn.2010-10.org.openstack:%s' % name


class _Base(base.NovaTestCase):
    """A server adopting scenario instance 1, migrated through the API."""

    def setUp(self):
        super(_Base, self).setUp()
        self.retry_without_waiting()

    def start(self, sc, source, volumes):
        """Serve ``sc``, boot instance 1 on ``source``; take baselines."""
        self.dep.reset(sc)
        self.xapi = self.dep.xapi
        self.server = self.dep.boot(1, volumes, host=source)
        self.name = self.dep.vm_name(self.server)
        self.source_attachments = {
            vol_id: bdm.attachment_id
            for vol_id, bdm in self.dep.bdms(self.server).items()}
        self.baseline = {pool: self.xapi.pool(pool).inspect()
                         for pool in self.dep.pools}
        self.dep.clear_calls()
        self.dep.cinder.events[:] = []

    def migrate(self, dest, block_migration='auto'):
        self.migration = self.dep.live_migrate(
            self.server, host=dest, block_migration=block_migration)
        self.instance = self.dep.instance(self.server)
        return self.migration

    @property
    def error(self):
        """What nova recorded of the failure, or None if it migrated.

        The failed events' messages (nova keeps 255 characters), the
        instance faults' whole messages (their tracebacks) and this
        test's warnings and errors in the log.
        """
        if self.migration.status == 'completed':
            return None
        return '\n'.join(
            self.dep.event_errors(self.server) +
            [details for _, details in self.dep.faults(self.server)] +
            [self.log_problems()])

    def calls(self, pool):
        return [m for m, _ in self.xapi.pool(pool).calls()]

    def writes(self, pool):
        """Write calls, minus scans of the pool's local storage."""
        local = [ref for ref, rec in self.baseline[pool]['SR'].items()
                 if rec['type'] != 'iscsi']
        return [m for m, a in self.xapi.pool(pool).calls()
                if m in WRITES and not (m == 'SR.scan' and
                                        tuple(a) in [(r,) for r in local])]

    def vm(self, pool):
        view = self.xapi.pool(pool).inspect()
        found = [rec for rec in view['VM'].values()
                 if rec['name_label'] == self.name]
        self.assertEqual(1, len(found), found)
        return view, found[0]

    def vm_pools(self):
        return [pool for pool, _ in self.xapi.find_vm(self.name)]

    def assert_unchanged(self, pool, classes=KEPT):
        after = self.xapi.pool(pool).inspect()
        for cls in classes:
            self.assertEqual(sorted(self.baseline[pool][cls]),
                             sorted(after[cls]), (pool, cls))

    def assert_nova_on_source(self, source, vm_state):
        """nova's records: on the source, on its own attachments."""
        self.assertEqual('error', self.migration.status)
        self.assertEqual((source, vm_state, None),
                         (self.instance.host, self.instance.vm_state,
                          self.instance.task_state))
        self.assertEqual(self.source_attachments, {
            vol_id: bdm.attachment_id
            for vol_id, bdm in self.dep.bdms(self.server).items()})

    def assert_refused_at_pre_live_migration(self, refusal, needles):
        """The destination's refusal, as nova recorded it.

        ``compute_pre_live_migration`` failed with the refusal's message
        (its first 255 characters); the instance fault on the destination
        has it whole; the source never started the move.
        """
        events = self.dep.events(self.server)
        self.assertIn(('compute_pre_live_migration', 'Error'), events)
        failed = [e for e in self.dep.event_errors(self.server)
                  if e.startswith('compute_pre_live_migration:')]
        self.assertEqual(1, len(failed))
        self.assertIn(refusal.msg_fmt.split(':')[0], failed[0])
        faults = [details for _, details in self.dep.faults(self.server)
                  if refusal.__name__ in details]
        self.assertEqual(1, len(faults), self.dep.faults(self.server))
        for needle in needles:
            self.assertIn(needle, faults[0])


class SamePoolTestCase(_Base):
    """Two hosts in one pool; nova's live migration between them.

    pool-a (host-a, host-a2) runs the extension, pool-c (host-c, host-c2)
    stock nova; each pool has nova's hypervisor-pool aggregate.
    """

    drivers = (EXTENSION, EXTENSION, STOCK, STOCK)
    nodes = (('pool-a', 'host-a'), ('pool-a', 'host-a2'),
             ('pool-c', 'host-c'), ('pool-c', 'host-c2'))
    PAIRS = {EXTENSION: ('pool-a', 'host-a', 'host-a2'),
             STOCK: ('pool-c', 'host-c', 'host-c2')}

    @classmethod
    def setUpClass(cls):
        super(SamePoolTestCase, cls).setUpClass()
        # nova 21's live migration finds the pool through XAPI itself
        # (vmops.check_can_live_migrate_destination: host.get_by_name_label
        # of the instance's host, then host.get_all_records); the
        # aggregate is what nova's pool join leaves in a real deployment
        # (xenapi/pool.py), read by its host maintenance mode.
        try:
            for pool in ('pool-a', 'pool-c'):
                cls.deployment.add_pool_aggregate(pool)
        except Exception:
            # unittest runs no tearDownClass after a failed setUpClass
            cls.deployment.cleanUp()
            raise

    def build(self, driver, style):
        self.pool, source, self.dest = self.PAIRS[driver]
        sc = self.dep.new_scenario()
        self.volume_id = volume_uuid('vol-1')
        info = sc.add_volume(self.volume_id, PORTAL, iqn('vol-1'), 1)
        sc.add_instance(self.pool, 1, host=source,
                        volumes=[(self.volume_id, style, '/dev/xvdb')])
        self.start(sc, source, [(self.volume_id, '/dev/xvdb')])
        self.source = source
        self.sr_uuid = (naming.legacy_sr_uuid(self.volume_id)
                        if style == naming.LEGACY
                        else naming.uuid5_sr_uuid(info['data']))

    def resident_host(self):
        view, vm = self.vm(self.pool)
        return view['host'][vm['resident_on']]['name_label']

    def vm_vbds(self):
        return self.vm(self.pool)[1]['VBDs']

    def volume_srs(self):
        return sorted(rec['uuid'] for rec in self.xapi.pool(
            self.pool).inspect()['SR'].values() if rec['type'] == 'iscsi')

    def test_destination_session_is_on_the_pool_member(self):
        self.build(EXTENSION, naming.UUID5)
        for host in ('host-a2', 'host-c2'):
            session = self.compute(host).driver._session
            self.assertTrue(session.is_slave, host)
            pool = self.dep.computes[host].pool
            view = self.xapi.pool(pool).inspect()
            self.assertEqual(host,
                             view['host'][session.host_ref]['name_label'])
            # after dep.reset too, the host's address is its endpoint's,
            # which the member's session looked its host up by
            self.assertEqual(session.ip,
                             view['host'][session.host_ref]['address'])
        # the member's endpoint refers every login to the master
        self.assertNotEqual(self.xapi.urls['pool-a'],
                            self.compute('host-a2').url)
        self.assertEqual(self.xapi.host_urls[('pool-a', 'host-a2')],
                         self.compute('host-a2').url)
        # nova's aggregate, as its pool join leaves it
        aggregate = [a for a in self.dep.api.api_get(
            '/os-aggregates').body['aggregates'] if a['name'] == 'pool-a'][0]
        self.assertEqual(['host-a', 'host-a2'], sorted(aggregate['hosts']))
        self.assertEqual('host-a', aggregate['metadata']['master_compute'])
        hosts = self.xapi.pool('pool-a').inspect()['host']
        self.assertEqual(
            sorted(rec['uuid'] for rec in hosts.values()),
            sorted(aggregate['metadata'][h] for h in ('host-a', 'host-a2')))

    def _stock(self, style, expected, vm_state):
        self.build(STOCK, style)
        self.migrate(self.dest, block_migration=False)
        self.assertIsNotNone(self.error)
        self.assertIn(expected, self.error)
        self.assertEqual(self.source, self.resident_host())
        self.assert_nova_on_source(self.source, vm_state)
        # nova's recover path calls detach_volume on the destination
        # (remove_volume_connection), and nova's lookup by name finds the
        # source's VM in the pool: the running instance loses its volume
        # and the source's SR is forgotten
        self.assertEqual([], self.vm_vbds())
        self.assertNotIn(self.sr_uuid, self.volume_srs())
        # nova never asks the destination to roll back a migration that is
        # not a block migration (manager._live_migration_cleanup_flags:
        # XenAPI's do_cleanup is migrate_data.block_migration)
        self.assertNotIn('compute_rollback_live_migration_at_destination',
                         dict(self.dep.events(self.server)))

    def test_stock_nova_uuid5_fails_and_detaches(self):
        # nova finds the pool's SR, connects nothing on host-c2, and
        # VM.pool_migrate refuses (assert_can_see_SRs). The driver's
        # live_migration failed: nova puts the instance in ERROR (the
        # failure is in the source's log: live_migration is a cast whose
        # event ends when the migration thread starts)
        self._stock(naming.UUID5, 'VM_REQUIRES_SR', 'error')
        self.assertEqual(1, self.calls('pool-c').count('VM.pool_migrate'))
        self.assertEqual('Success', dict(self.dep.events(self.server))[
            'compute_pre_live_migration'])
        self.assertEqual([], self.volume_srs())

    def test_stock_nova_legacy_fails_and_detaches(self):
        # nova derives the uuid5 name, introduces that SR on host-c2, and
        # its scan fails on the LUN the legacy SR holds (SR.py
        # synchronise_new: SR_BACKEND_FAILURE_40)
        self._stock(naming.LEGACY, 'SR_BACKEND_FAILURE_40', 'active')
        self.assertNotIn('VM.pool_migrate', self.calls('pool-c'))
        self.assertEqual('Error', dict(self.dep.events(self.server))[
            'compute_pre_live_migration'])
        # Under nova's real flow (the hand-written model expected no SR
        # left): the scan fails inside volume_utils.introduce_sr, outside
        # _attach_volume's forget-on-error, and no rollback reaches the
        # destination (see _stock), so the uuid5 SR nova introduced stays
        # in the pool, plugged on host-c2 only, holding no VDI.
        uuid5 = naming.uuid5_sr_uuid(self.xapi.scenario.connection_info(
            self.volume_id)['data'])
        self.assertEqual([uuid5], self.volume_srs())
        view = self.xapi.pool(self.pool).inspect()
        sr = [rec for rec in view['SR'].values() if rec['uuid'] == uuid5][0]
        self.assertEqual([], sr['VDIs'])
        self.assertEqual([('host-c2', True)], [
            (view['host'][view['PBD'][p]['host']]['name_label'],
             view['PBD'][p]['currently_attached']) for p in sr['PBDs']])

    def _extension(self, style):
        self.build(EXTENSION, style)
        self.migrate(self.dest, block_migration=False)
        # The upgraded source refuses in its pre-check
        # (check_can_live_migrate_source), which nova's conductor runs
        # before pre_live_migration: the destination never prepares.
        events = self.dep.events(self.server)
        self.assertIn(('compute_check_can_live_migrate_source', 'Error'),
                      events)
        self.assertNotIn('compute_pre_live_migration', dict(events))
        for needle in (self.volume_id, self.sr_uuid, 'VM_REQUIRES_SR',
                       'SR_NOT_SHARABLE', 'Nothing was changed',
                       'block migration'):
            self.assertIn(needle, self.error)
        self.assertNotIn('VM.pool_migrate', self.calls('pool-a'))
        self.assertEqual([], self.writes('pool-a'))
        self.assertEqual('host-a', self.resident_host())
        self.assert_unchanged('pool-a')
        self.assert_nova_on_source('host-a', 'active')

    def test_extension_refuses_uuid5_before_any_write(self):
        self._extension(naming.UUID5)

    def test_block_migration_inside_the_pool_refused(self):
        # nova's default inside a pool whose default SR is unshared: block
        # migration (migrate_send within the pool). The kept disk's SR is
        # not plugged on the destination host and cannot be
        # (SR_NOT_SHARABLE)
        for driver in (STOCK, EXTENSION):
            self.build(driver, naming.UUID5)
            self.migrate(self.dest)
            self.assertIsNotNone(self.error)
            self.assertEqual(self.source, self.resident_host())
            self.assertEqual(self.source, self.instance.host)
            if driver == STOCK:
                # migrate_send refused; nova's recover path then detaches
                # the running instance's volume
                self.assertIn('Migrate Send failed', self.error)
                self.assertIn('VM.migrate_send', self.calls(self.pool))
                self.assertEqual([], self.vm_vbds())
                self.assert_nova_on_source(self.source, 'error')
            else:
                self.assertIn(('compute_pre_live_migration', 'Error'),
                              self.dep.events(self.server))
                failure = [d for _, d in self.dep.faults(self.server)
                           if destination.UntrustedSRUuid.__name__ in d]
                self.assertEqual(1, len(failure))
                self.assertIn('SR_NOT_SHARABLE', failure[0])
                self.assertIn('VM_REQUIRES_SR', failure[0])
                self.assertNotIn('VM.migrate_send', self.calls(self.pool))
                self.assertEqual([], self.writes(self.pool))
                self.assert_unchanged(self.pool)
                self.assert_nova_on_source(self.source, 'active')

    def test_extension_refuses_legacy_before_any_write(self):
        self._extension(naming.LEGACY)


class _CrossPool(_Base):
    """host-a -> host-b run the extension, host-c -> host-d stock nova."""

    drivers = (EXTENSION, EXTENSION, STOCK, STOCK)
    nodes = (('pool-a', 'host-a'), ('pool-b', 'host-b'),
             ('pool-c', 'host-c'), ('pool-d', 'host-d'))

    @staticmethod
    def pool_of(host):
        return 'pool-' + host[-1]


class TargetHeldTestCase(_CrossPool):
    """Cross-pool: the destination pool already reaches the target."""

    def build(self, source, dest, style, holder_style):
        self.source, self.dest = source, dest
        self.dest_pool = self.pool_of(dest)
        sc = self.dep.new_scenario()
        self.volume_id = volume_uuid('vol-1')
        info = sc.add_volume(self.volume_id, PORTAL, iqn('shared'), 1)
        sc.add_volume(volume_uuid('vol-9'), PORTAL, iqn('shared'), 9)
        sc.add_instance(self.pool_of(source), 1, volumes=[
            (self.volume_id, style, '/dev/xvdb')])
        # a bystander on the destination pool holds the target's LUNs
        sc.add_instance(self.dest_pool, 9, volumes=[
            (volume_uuid('vol-9'), holder_style, '/dev/xvdb')])
        self.start(sc, source, [(self.volume_id, '/dev/xvdb')])
        self.holder = (naming.legacy_sr_uuid(volume_uuid('vol-9'))
                       if holder_style == naming.LEGACY
                       else naming.uuid5_sr_uuid(info['data']))

    def assert_stayed(self):
        self.assertEqual([self.pool_of(self.source)], self.vm_pools())
        self.assertEqual([], self.xapi.copies)

    def test_stock_nova_fails_at_the_scan(self):
        # uuid5 volume, legacy holder: nova introduces the uuid5 SR and its
        # scan fails (SR.py synchronise_new, SR_BACKEND_FAILURE_40)
        self.build('host-c', 'host-d', naming.UUID5, naming.LEGACY)
        self.migrate(self.dest)
        self.assertIsNotNone(self.error)
        self.assertIn('SR_BACKEND_FAILURE_40', self.error)
        self.assertIn('SR.scan', self.writes('pool-d'))
        self.assert_stayed()
        self.assertEqual('Error', dict(self.dep.events(self.server))[
            'compute_pre_live_migration'])
        self.assert_nova_on_source('host-c', 'active')

    def _extension(self, style, holder):
        self.build('host-a', 'host-b', style, holder)
        self.migrate(self.dest)
        self.assert_refused_at_pre_live_migration(
            destination.UntrustedSRUuid,
            (self.volume_id, self.holder, 'Nothing was changed'))
        self.assertEqual([], self.writes('pool-b'))
        self.assert_unchanged('pool-b', ('SR', 'PBD', 'VDI'))
        self.assert_stayed()
        self.assert_nova_on_source('host-a', 'active')

    def test_uuid5_volume_legacy_holder_refused(self):
        self._extension(naming.UUID5, naming.LEGACY)

    def test_legacy_volume_other_legacy_holder_refused(self):
        self._extension(naming.LEGACY, naming.LEGACY)

    def test_legacy_volume_uuid5_holder_refused(self):
        self._extension(naming.LEGACY, naming.UUID5)

    def test_stock_source_uuid5_volume_legacy_holder_refused(self):
        # without a map the destination expects stock nova's uuid5 name,
        # whose SR's scan would fail: refused before any write
        self.build('host-c', 'host-b', naming.UUID5, naming.LEGACY)
        self.migrate(self.dest)
        self.assert_refused_at_pre_live_migration(
            destination.UnsafeStockSource, (self.holder,))
        self.assertEqual([], self.writes('pool-b'))
        self.assert_stayed()
        self.assert_nova_on_source('host-c', 'active')


class SourceVifLeftoverTestCase(_CrossPool):
    """After a cross-pool move the source's VIF records outlive the VM.

    ``xapi_vm_migrate.ml``: the source VM record is destroyed, its VIFs
    stay until ``db_gc.ml``. nova's network cleanup on the source
    (``vif.py`` ``delete_network_and_bridge``, from
    ``post_live_migration_at_source``) finds the VIF on the interim
    network, fails to look up its (gone) VM and keeps the network: a
    leftover of stock nova and of the extension alike.
    """

    def _migrate(self, source, dest):
        sc = self.dep.new_scenario()
        volume_id = volume_uuid('vol-1')
        sc.add_volume(volume_id, PORTAL, iqn('vol-1'), 1)
        sc.add_instance(self.pool_of(source), 1, volumes=[
            (volume_id, naming.UUID5, '/dev/xvdb')])
        # the server's port (NeutronFixture) becomes the VM's VIF on boot
        self.start(sc, source, [(volume_id, '/dev/xvdb')])
        self.source_pool = self.pool_of(source)
        ports = self.dep.neutron.list_ports(
            True, device_id=self.server['id'])['ports']
        self.assertEqual(1, len(ports))
        # nova's interim network of the port (vif.py
        # get_vif_interim_net_name: 'net-' + port id, NIC_NAME_LEN long)
        self.network = ('net-' + ports[0]['id'])[:network_model.NIC_NAME_LEN]
        self.assertEqual(([self.network], 1), self._source_state())
        self.migrate(dest)
        self.assertEqual('completed', self.migration.status,
                         self.error)
        self.assertEqual(dest, self.instance.host)
        self.assertEqual([self.pool_of(dest)], self.vm_pools())

    def _source_state(self, vifs=len):
        view = self.xapi.pool(self.source_pool).inspect()
        nets = [r['name_label'] for r in view['network'].values()
                if r['name_label'].startswith('net-')]
        return nets, vifs(list(view['VIF']))

    def _check(self, source, dest):
        self._migrate(source, dest)
        nets, vifs = self._source_state(list)
        self.assertEqual([self.network], nets)
        self.assertEqual(1, len(vifs))
        self.assertEqual(vifs, self.xapi.run_gc(self.source_pool)[
            self.source_pool]['VIF'])
        self.assertEqual(([self.network], 0), self._source_state())

    def test_stock(self):
        self._check('host-c', 'host-d')

    def test_extension(self):
        self._check('host-a', 'host-b')
