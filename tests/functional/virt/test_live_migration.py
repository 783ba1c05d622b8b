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

"""XenAPISRDriver through whole live migrations against the mock XAPI.

Real nova 21.2.4 driver code on both sides (source on pool-a, destination
on pool-b), real os-xenapi sessions over XML-RPC, nova's manager order
(``novaenv.ManagerFlow``), and the migrate data crossing between the sides
only as primitives. After every run: the VM is on exactly one pool, no copy
was recorded, no volume SR or PBD is left where it should not be, and the
dicts nova handed to the driver are unchanged.
"""

import copy
import re

from nova import exception as nova_exception
import XenAPI

from nova_xenapi_sr import naming
from nova_xenapi_sr.virt import destination
from nova_xenapi_sr_tools import fixture as xs_fixture
from nova_xenapi_sr_tools.mockxapi import fixture
from nova_xenapi_sr_tools.mockxapi import Scenario
from nova_xenapi_sr_tools import novaenv
from tests import base

EXTENSION = 'nova_xenapi_sr.virt.driver.XenAPISRDriver'
STOCK = 'nova.virt.xenapi.driver.XenAPIDriver'
NOVA_UUID = '0b5c3f1e-3c55-4a8e-8f0e-5b7e3c1d2a90'
NAME = 'instance-00000001'
PORTAL_A = '192.0.2.10:3260'
PORTAL_B = '192.0.2.20:3260'
#: The source's lookup queries (nova itself queries VMs by domid).
LOOKUP = (('SR.get_all_records_where', 'field "uuid"'),
          ('VM.get_all_records_where', 'field "name__label"'),
          ('VDI.get_all_records_where', 'field "SR"'))


def iqn(name):
    return 'iqn.2010-10.org.openstack:%s' % name


class Volume(object):
    """How one test volume is exported and named on the source."""

    def __init__(self, volume_id, style, portal=PORTAL_A, target=None,
                 lun=1, chap=None, dest_portal=None, name_label=None):
        self.volume_id = volume_id
        self.style = style
        self.portal = portal
        self.iqn = iqn(target or volume_id)
        self.lun = lun
        self.chap = chap
        #: The destination's attachment reaches the same LUN (same serial)
        #: through this other portal and IQN.
        self.dest_portal = dest_portal
        #: A name_label in the destination's connection data (nova's
        #: parse_sr_info pops it from the dict it is given).
        self.name_label = name_label

    def dest_connection_info(self, sc, xapi):
        info = sc.connection_info(self.volume_id)
        if self.name_label:
            info['data']['name_label'] = self.name_label
        if self.dest_portal:
            serial = [v['serial'] for v in sc.volumes
                      if v['id'] == self.volume_id][0]
            host, port = self.dest_portal.split(':')
            dest_iqn = self.iqn + '-dest'
            xapi.server.array.add_lun(host, int(port), dest_iqn, 9, serial,
                                      None, self.volume_id)
            info['data'].update(target_portal=self.dest_portal,
                                target_iqn=dest_iqn, target_lun=9)
        return info


class LiveMigrationTestCase(base.TestCase):
    """Builds the two pools, the drivers and the flow for one migration."""

    source_driver = EXTENSION
    dest_driver = EXTENSION

    def setUp(self):
        super(LiveMigrationTestCase, self).setUp()
        novaenv.prepare()
        self.useFixture(xs_fixture.ObjectRegistryFixture(
            register_extension=True))

    def build(self, volumes, source_driver=None, dest_driver=None,
              extra=None):
        sc = Scenario()
        sc.add_pool('pool-a', hosts=['host-a'])
        sc.add_pool('pool-b', hosts=['host-b'])
        self.source_infos = []
        for index, vol in enumerate(volumes):
            self.source_infos.append((sc.add_volume(
                vol.volume_id, vol.portal, vol.iqn, vol.lun, chap=vol.chap),
                '/dev/xvd%s' % chr(ord('b') + index)))
        sc.add_instance('pool-a', 1, nova_uuid=NOVA_UUID, volumes=[
            (vol.volume_id, vol.style, device)
            for vol, (_, device) in zip(volumes, self.source_infos)])
        if extra:
            extra(sc)
        self.scenario = sc
        self.xapi = self.useFixture(fixture.MockXapiFixture(sc))
        self.baseline = {pool: self.xapi.pool(pool).inspect()
                         for pool in ('pool-a', 'pool-b')}
        self.src = novaenv.build_driver(source_driver or self.source_driver,
                                        self.xapi.urls['pool-a'])
        self.dst = novaenv.build_driver(dest_driver or self.dest_driver,
                                        self.xapi.urls['pool-b'])
        for pool in ('pool-a', 'pool-b'):
            self.xapi.pool(pool).clear_calls()
        self.source_bdi = novaenv.block_device_info(self.source_infos)
        # The destination gets a fresh attachment: a new connection_info.
        self.dest_bdi = novaenv.block_device_info(
            [(vol.dest_connection_info(sc, self.xapi), device)
             for vol, (_, device) in zip(volumes, self.source_infos)])
        self.snapshots = (copy.deepcopy(self.source_bdi),
                          copy.deepcopy(self.dest_bdi))
        self.flow = novaenv.ManagerFlow(self.src, self.dst)
        self.watch_driver_arguments()

    def watch_driver_arguments(self):
        """Fail the test if a driver changes a dict nova handed to it."""
        seen = self.handed = []

        def watching(method, position):
            def call(*args, **kwargs):
                arg = args[position]
                before = copy.deepcopy(arg)
                try:
                    return method(*args, **kwargs)
                finally:
                    seen.append((method.__name__, before == arg))
            return call

        for drv, name, position in (
                (self.src, 'check_can_live_migrate_source', 3),
                (self.dst, 'pre_live_migration', 2),
                (self.dst, 'rollback_live_migration_at_destination', 3)):
            setattr(drv, name, watching(getattr(drv, name), position))

    def run_flow(self):
        instance = novaenv.make_instance(1, NOVA_UUID, 'host-a')
        self.error = None
        try:
            self.result = self.flow.run(novaenv.admin_context(), instance,
                                        self.source_bdi, self.dest_bdi,
                                        'host-b')
        except Exception as exc:
            self.error = exc
        self.assertEqual(self.snapshots, (self.source_bdi, self.dest_bdi))
        self.assertTrue(self.handed)
        self.assertEqual([], [name for name, same in self.handed
                              if not same])
        return self.error

    # -- state checks ---------------------------------------------------------
    def vm_pools(self):
        return [pool for pool, _ in self.xapi.server.find_vm(NAME)]

    def volume_srs(self, pool):
        view = self.xapi.pool(pool).inspect()
        return {rec['uuid']: rec for rec in view['SR'].values()
                if rec['type'] != 'lvm' and rec['uuid'] in self.names()}

    def names(self):
        result = set()
        for info, _ in self.source_infos:
            result.update(naming.sr_uuid_candidates(info['data']))
        return result

    def new_objects(self, pool, cls):
        before = set(self.baseline[pool][cls])
        return sorted(set(self.xapi.pool(pool).inspect()[cls]) - before)

    def assert_migrated(self, expected_sr_uuids, source_kept=()):
        self.assertIsNone(self.error, 'migration failed: %s' % self.error)
        self.assertEqual(['pool-b'], self.vm_pools())
        self.assertEqual([], self.xapi.server.copies)
        self.assertEqual(sorted(source_kept),
                         sorted(self.volume_srs('pool-a')))
        srs = self.volume_srs('pool-b')
        self.assertEqual(sorted(expected_sr_uuids), sorted(srs))
        view = self.xapi.pool('pool-b').inspect()
        for sr_uuid, rec in srs.items():
            pbds = [view['PBD'][p] for p in rec['PBDs']]
            self.assertEqual(1, len(pbds))
            config = pbds[0]['device_config']
            self.assertTrue({'target', 'port', 'targetIQN'} <= set(config),
                            config)
            self.assertTrue(pbds[0]['currently_attached'])
        # every volume VBD of the VM points at its LUN's VDI (the same
        # uuid through any target: it comes from the LUN serial)
        vm = [r for r in view['VM'].values() if r['name_label'] == NAME][0]
        got = sorted(view['VDI'][view['VBD'][v]['VDI']]['uuid']
                     for v in vm['VBDs'])
        want = sorted(self.lun_vdi(info) for info, _ in self.source_infos)
        self.assertEqual(want, got)

    def lun_vdi(self, info):
        data = info['data']
        host, port = data['target_portal'].split(':')
        return self.xapi.server.array.target(
            host, int(port), data['target_iqn']).luns[
                data['target_lun']].vdi_uuid

    def assert_failed_clean(self):
        self.assertIsNotNone(self.error)
        self.assertEqual(['pool-a'], self.vm_pools())
        self.assertEqual([], self.xapi.server.copies)
        for cls in ('SR', 'PBD', 'VDI', 'VBD', 'secret'):
            self.assertEqual([], self.new_objects('pool-b', cls), cls)
        source = self.xapi.pool('pool-a').inspect()
        for cls in ('SR', 'PBD', 'VDI', 'VBD', 'VM'):
            self.assertEqual(sorted(self.baseline['pool-a'][cls]),
                             sorted(source[cls]), cls)

    def assert_unchanged(self):
        for pool in ('pool-a', 'pool-b'):
            view = self.xapi.pool(pool).inspect()
            for cls in ('SR', 'PBD', 'VDI', 'VBD', 'VM', 'secret'):
                self.assertEqual(sorted(self.baseline[pool][cls]),
                                 sorted(view[cls]), (pool, cls))

    def source_lookup_calls(self):
        """The source's calls that only the extension makes."""
        return [m for m, args in self.xapi.pool('pool-a').calls()
                for method, clause in LOOKUP
                if m == method and args and clause in str(args[0])]


class MigrateTestCase(LiveMigrationTestCase):

    def test_legacy_only(self):
        self.build([Volume('vol-1', naming.LEGACY)])
        self.run_flow()
        self.assert_migrated([naming.legacy_sr_uuid('vol-1')])
        self.assertEqual(['SR.get_all_records_where'],
                         self.source_lookup_calls())
        label = [r['name_label'] for r in
                 self.volume_srs('pool-b').values()]
        self.assertEqual(['tempSR-vol-1'], label)

    def test_uuid5_only(self):
        self.build([Volume('vol-1', naming.UUID5)])
        self.run_flow()
        self.assert_migrated(
            [naming.uuid5_sr_uuid(self.source_infos[0][0]['data'])])

    def test_mixed(self):
        self.build([Volume('vol-1', naming.LEGACY, name_label='mine'),
                    Volume('vol-2', naming.UUID5, portal=PORTAL_B,
                           name_label='mine-too')])
        self.run_flow()
        self.assert_migrated(
            [naming.legacy_sr_uuid('vol-1'),
             naming.uuid5_sr_uuid(self.source_infos[1][0]['data'])])
        self.assertEqual(['SR.get_all_records_where'],
                         self.source_lookup_calls())
        labels = sorted(r['name_label'] for r in
                        self.volume_srs('pool-b').values())
        self.assertEqual(['mine', 'mine-too'], labels)

    def test_legacy_through_another_target_on_the_destination(self):
        self.build([Volume('vol-1', naming.LEGACY,
                           dest_portal='198.51.100.30:3260')])
        self.run_flow()
        self.assert_migrated([naming.legacy_sr_uuid('vol-1')])
        pbd = list(self.xapi.pool('pool-b').inspect()['PBD'].values())
        self.assertIn('198.51.100.30',
                      [p['device_config'].get('target') for p in pbd])

    def test_neighbour_on_the_source_keeps_the_shared_sr(self):
        def neighbour(sc):
            sc.add_volume('vol-n', PORTAL_A, iqn('shared'), 5)
            sc.add_instance('pool-a', 2, volumes=[
                ('vol-n', naming.UUID5, '/dev/xvdb')])
        self.build([Volume('vol-1', naming.UUID5, target='shared', lun=1)],
                   extra=neighbour)
        self.run_flow()
        uuid5 = naming.uuid5_sr_uuid(self.source_infos[0][0]['data'])
        self.assert_migrated([uuid5], source_kept=[uuid5])
        self.assertNotIn(('dest', 'rollback_live_migration_at_destination'),
                         self.flow.steps)
        self.assertIn('another VM still uses it', self.logger.output)
        view = self.xapi.pool('pool-a').inspect()
        neighbour_vm = [r for r in view['VM'].values()
                        if r['name_label'] == 'instance-00000002'][0]
        self.assertEqual(1, len(neighbour_vm['VBDs']))

    def test_volumes_sharing_one_uuid5_sr(self):
        self.build([Volume('vol-1', naming.UUID5, target='shared', lun=1),
                    Volume('vol-2', naming.UUID5, target='shared', lun=2),
                    Volume('vol-3', naming.UUID5, target='shared', lun=3)])
        self.run_flow()
        self.assert_migrated(
            [naming.uuid5_sr_uuid(self.source_infos[0][0]['data'])])

    def test_legacy_and_uuid5_on_one_target_decided_by_vm_links(self):
        # vol-1 predates Mitaka; vol-2, exported later on the same target
        # and attached to another instance, brought the uuid5 SR: both
        # names of vol-1's SR exist on the source, and the VM's own VBDs
        # decide. XAPI reaches that state only one way: the uuid5 SR's
        # scan introduces vol-2's new LUN, then fails on vol-1's LUN that
        # the legacy SR holds (SR.py synchronise_new, SR_BACKEND_FAILURE_40),
        # and nova's retried attach finds vol-2's VDI without a scan.
        def neighbour(sc):
            sc.add_instance('pool-a', 2)
        self.build([Volume('vol-1', naming.LEGACY, target='shared', lun=2)],
                   extra=neighbour)
        self._attach_through_partial_scan('vol-2', iqn('shared'), 1)
        self.run_flow()
        # the neighbour keeps its SR and stays where it was
        uuid5 = naming.uuid5_sr_uuid(self.source_infos[0][0]['data'])
        self.assert_migrated([naming.legacy_sr_uuid('vol-1')],
                             source_kept=[uuid5])
        self.assertEqual([m for m, _ in LOOKUP], self.source_lookup_calls())
        self.assertEqual(['pool-a'], [
            p for p, _ in self.xapi.server.find_vm('instance-00000002')])

    def _attach_through_partial_scan(self, volume_id, target_iqn, lun):
        """Attach a new LUN to instance 2 through a failing uuid5 scan."""
        xs = self.xapi.session('pool-a').xenapi
        host, port = PORTAL_A.split(':')
        self.xapi.server.array.add_lun(host, int(port), target_iqn, lun,
                                       None, None, volume_id)
        data = {'volume_id': volume_id, 'target_portal': PORTAL_A,
                'target_iqn': target_iqn, 'target_lun': lun}
        config = naming.device_config(data)
        sr = xs.SR.introduce(naming.uuid5_sr_uuid(data), 'tempSR', '',
                             'iscsi', '', False, config)
        pbd = xs.PBD.create({'host': xs.host.get_all()[0], 'SR': sr,
                             'device_config': config})
        xs.PBD.plug(pbd)
        exc = self.assertRaises(XenAPI.Failure, xs.SR.scan, sr)
        self.assertEqual('SR_BACKEND_FAILURE_40', exc.details[0])
        vdi = [v for v in xs.SR.get_VDIs(sr)
               if xs.VDI.get_sm_config(v)['LUNid'] == str(lun)][0]
        vm = xs.VM.get_by_name_label('instance-00000002')[0]
        vbd = xs.VBD.create({'VM': vm, 'VDI': vdi, 'userdevice': '1',
                             'bootable': False, 'mode': 'RW', 'type': 'Disk',
                             'empty': False, 'other_config': {},
                             'qos_algorithm_type': '',
                             'qos_algorithm_params': {}})
        xs.VBD.plug(vbd)
        self.baseline = {pool: self.xapi.pool(pool).inspect()
                         for pool in ('pool-a', 'pool-b')}
        for pool in ('pool-a', 'pool-b'):
            self.xapi.pool(pool).clear_calls()

    def test_chap(self):
        self.build([Volume('vol-1', naming.LEGACY, chap=('user', 'pw-1')),
                    Volume('vol-2', naming.UUID5, portal=PORTAL_B,
                           chap=('user2', 'pw-2'))])
        self.run_flow()
        self.assert_migrated(
            [naming.legacy_sr_uuid('vol-1'),
             naming.uuid5_sr_uuid(self.source_infos[1][0]['data'])])
        view = self.xapi.pool('pool-b').inspect()
        users = sorted(p['device_config'].get('chapuser')
                       for p in view['PBD'].values()
                       if 'chapuser' in p['device_config'])
        self.assertEqual(['user', 'user2'], users)

    def test_no_volumes(self):
        self.build([])
        self.run_flow()
        self.assertIsNone(self.error)
        self.assertEqual(['pool-b'], self.vm_pools())
        self.assertEqual([], self.source_lookup_calls())

    def test_source_lookup_is_constant(self):
        volumes = [Volume('vol-%d' % i, style, portal=PORTAL_A, lun=i)
                   for i, style in enumerate(
                       [naming.LEGACY, naming.UUID5] * 4, 1)]
        self.build(volumes)
        self.run_flow()
        self.assertEqual(8, len(self.volume_srs('pool-b')))
        self.assertEqual(['SR.get_all_records_where'],
                         self.source_lookup_calls())


class DoNoHarmTestCase(LiveMigrationTestCase):
    """uuid5-only: the extension's XAPI calls equal stock nova's."""

    def _calls(self, driver):
        self.build([Volume('vol-1', naming.UUID5, target='shared', lun=1),
                    Volume('vol-2', naming.UUID5, portal=PORTAL_B)],
                   source_driver=driver, dest_driver=driver)
        self.run_flow()
        return {pool: [(m, self.mask(args))
                       for m, args in self.xapi.pool(pool).calls()
                       if not m.startswith('session.')]
                for pool in ('pool-a', 'pool-b')}

    def mask(self, args):
        """Arguments, with what differs between two runs masked.

        Refs, the pools' loopback addresses, host uuids, domain ids.
        """
        text = repr(args)
        text = re.sub(r'OpaqueRef:[0-9a-f-]+', 'OpaqueRef:*', text)
        text = re.sub(r"'dom_id': '\d+'", "'dom_id': '*'", text)
        text = re.sub(r'127\.\d+\.\d+\.\d+', '127.*', text)
        for ref in self.xapi.pool('pool-a').inspect()['host'].values():
            text = text.replace(ref['uuid'], 'host-a-uuid')
        for ref in self.xapi.pool('pool-b').inspect()['host'].values():
            text = text.replace(ref['uuid'], 'host-b-uuid')
        return text

    def test_same_calls_as_stock_apart_from_the_lookup(self):
        stock = self._calls(STOCK)
        self.assertIsNone(self.error)
        extension = self._calls(EXTENSION)
        self.assertIsNone(self.error)
        # the destination's one extra call: a read that finds SRs already
        # holding a volume's target (destination._check_target_holders),
        # which real XAPI's scan would fail on; then the same calls
        holders = [i for i, (m, _) in enumerate(extension['pool-b'])
                   if m == 'PBD.get_all_records']
        self.assertEqual(1, len(holders))
        methods = [m for m, _ in extension['pool-b']]
        self.assertLess(holders[0], methods.index('SR.introduce'))
        del extension['pool-b'][holders[0]]
        self.assertEqual(stock['pool-b'], extension['pool-b'])
        lookup = [i for i, (m, _) in enumerate(extension['pool-a'])
                  if m == 'SR.get_all_records_where']
        self.assertEqual(1, len(lookup))
        del extension['pool-a'][lookup[0]]
        self.assertEqual(stock['pool-a'], extension['pool-a'])


class RefusalTestCase(LiveMigrationTestCase):

    def test_stock_destination_refused_for_legacy_before_any_change(self):
        self.build([Volume('vol-1', naming.LEGACY)], dest_driver=STOCK)

        def as_stock_destination(obj):
            # A stock destination knows only 1.4: everything it sends is
            # 1.4, and the conductor backports what is sent to it.
            return novaenv.from_primitive(
                obj.obj_to_primitive(target_version='1.4'))
        self.flow.send = as_stock_destination
        self.run_flow()
        self.assertIsInstance(self.error,
                              nova_exception.MigrationPreCheckError)
        self.assertIn('vol-1', str(self.error))
        self.assertIn('Install nova-xenapi-sr on the destination',
                      str(self.error))
        self.assertEqual([('dest', 'check_can_live_migrate_destination'),
                          ('source', 'check_can_live_migrate_source')],
                         self.flow.steps)
        self.assert_unchanged()

    def _tamper(self, hop, step=None):
        """Replace vol-1's SR uuid in the map on one hop of the flow."""
        def idle_foreign_sr(sc):
            # another tenant's LUN, with an idle legacy SR on pool-b
            sc.add_volume('vol-x', PORTAL_B, iqn('vol-x'), 1)
            sc.add_sr('pool-b', 'vol-x', naming.LEGACY)
        self.build([Volume('vol-1', naming.LEGACY)], extra=idle_foreign_sr)
        self.foreign = naming.legacy_sr_uuid('vol-x')

        def tamper(obj):
            if (self.flow.hops[-1] == hop and
                    (step is None or self.flow.steps[-1] == step)):
                obj.volume_sr_uuid_map = {'vol-1': self.foreign}
            return novaenv.roundtrip(obj)
        self.flow.send = tamper
        self.run_flow()
        self.assertIsInstance(self.error, destination.UntrustedSRUuid)
        self.assertIn('vol-1', str(self.error))
        self.assertIn(self.foreign, str(self.error))
        self.assert_failed_clean()
        self.assertIn(self.foreign, [
            r['uuid'] for r in
            self.xapi.pool('pool-b').inspect()['SR'].values()])

    def test_map_tampered_in_transit_refused(self):
        self._tamper('source->dest', ('dest', 'pre_live_migration'))

    def test_map_tampered_at_source_refused_and_rollback_ignores_it(self):
        # every later copy, the one rollback gets included, is tampered
        self._tamper('source->dest',
                     ('source', 'check_can_live_migrate_source'))
        self.assertIn('Rollback ignores SR %s' % self.foreign,
                      self.logger.output)

    def test_legacy_volume_whose_target_has_a_uuid5_sr_here_refused(self):
        # Another instance on the destination uses the uuid5 SR of the
        # legacy volume's target: it holds the LUN, so no legacy SR there
        # can show it (XAPI keeps a LUN in one SR per pool).
        def bystander(sc):
            sc.add_volume('vol-b', PORTAL_A, iqn('shared'), 2)
            sc.add_instance('pool-b', 9, volumes=[
                ('vol-b', naming.UUID5, '/dev/xvdb')])
        self.build([Volume('vol-1', naming.LEGACY, target='shared', lun=1)],
                   extra=bystander)
        # As on a real host, a scan of that SR lists every LUN behind the
        # target, vol-1's included.
        session = self.xapi.session('pool-b')
        session.xenapi.SR.scan(session.xenapi.SR.get_by_uuid(
            naming.uuid5_sr_uuid(self.source_infos[0][0]['data'])))
        self.baseline['pool-b'] = self.xapi.pool('pool-b').inspect()
        self.run_flow()
        self.assertIsInstance(self.error, destination.UntrustedSRUuid)
        self.assertIn('cannot arrive in place', str(self.error))
        self.assert_failed_clean()
        self.assert_unchanged()

    def test_uuid5_through_another_target_refused_with_advice(self):
        self.build([Volume('vol-1', naming.UUID5,
                           dest_portal='198.51.100.30:3260')])
        self.run_flow()
        self.assertIsInstance(self.error, destination.UntrustedSRUuid)
        self.assertIn('Migrate the instance cold', str(self.error))
        self.assert_failed_clean()

    def test_existing_sr_with_the_name_but_another_target_refused(self):
        def impostor(sc):
            sc.add_volume('vol-x', PORTAL_B, iqn('vol-x'), 1)
            sc.add_sr('pool-b', 'vol-x',
                      sr_uuid=naming.legacy_sr_uuid('vol-1'))
        self.build([Volume('vol-1', naming.LEGACY)], extra=impostor)
        self.run_flow()
        self.assertIsInstance(self.error, destination.UntrustedSRUuid)
        self.assertIn(iqn('vol-x'), str(self.error))
        self.assertIn('xe sr-forget', str(self.error))
        self.assertEqual(['pool-a'], self.vm_pools())
        self.assertEqual([], self.xapi.server.copies)
        # refused before any write, and rollback saw that the SR named
        # like the volume's points elsewhere: the impostor was not touched
        writes = [m for m, _ in self.xapi.pool('pool-b').calls()
                  if m.split('.')[-1] in ('introduce', 'create', 'plug',
                                          'forget', 'unplug')]
        self.assertEqual([], writes)
        self.assert_unchanged()


class FailureTestCase(LiveMigrationTestCase):
    """An XAPI failure at each step, then nova's rollback."""

    volumes = (('vol-1', naming.LEGACY, PORTAL_A),
               ('vol-2', naming.UUID5, PORTAL_B))

    def _fail(self, pool, method, volumes=None):
        self.build(volumes or [Volume(v, style, portal=portal)
                               for v, style, portal in self.volumes])
        self.xapi.server.inject_fault(pool, method, error=[
            'SR_BACKEND_FAILURE_47', '', 'injected by the test'])
        self.run_flow()
        self.assert_failed_clean()
        self.assertEqual(
            ('dest', 'rollback_live_migration_at_destination'),
            self.flow.steps[-1])

    def test_sr_introduce(self):
        self._fail('pool-b', 'SR.introduce')

    def test_pbd_create(self):
        self._fail('pool-b', 'PBD.create')

    def test_pbd_plug(self):
        self._fail('pool-b', 'PBD.plug')

    def test_sr_scan(self):
        self._fail('pool-b', 'SR.scan')

    def test_vdi_get_record(self):
        # RawISCSISR.py: scanned VDIs are managed, so nova (XenServer >=
        # 7.0) never calls VDI.introduce; VDI.get_record is its last call
        # before the VDI is used
        self._fail('pool-b', 'VDI.get_record')

    def test_second_volume_connect(self):
        self.build([Volume('vol-1', naming.LEGACY),
                    Volume('vol-2', naming.UUID5, portal=PORTAL_B)])
        self.xapi.server.inject_fault('pool-b', 'PBD.plug', after=1, error=[
            'SR_BACKEND_FAILURE_47', '', 'second plug fails'])
        self.run_flow()
        self.assert_failed_clean()

    def test_migrate_send(self):
        self._fail('pool-a', 'VM.migrate_send')
        self.assertIn('Migrate Send failed', str(self.error))

    def test_migrate_send_destination_through_another_target(self):
        # nova gives rollback the source's connection data; the SR this
        # host introduced points at its own target, found by its ref.
        self._fail('pool-a', 'VM.migrate_send', volumes=[
            Volume('vol-1', naming.LEGACY, dest_portal='198.51.100.30:3260')])


class StockSourceTestCase(LiveMigrationTestCase):
    """An upgraded destination, a source that still runs stock nova."""

    def test_uuid5_migrates(self):
        self.build([Volume('vol-1', naming.UUID5)], source_driver=STOCK)
        self.run_flow()
        self.assert_migrated(
            [naming.uuid5_sr_uuid(self.source_infos[0][0]['data'])])

    def test_legacy_fails_and_leaves_nothing_behind(self):
        # Stock nova's source fails with UUID_INVALID (bug 1566622); nova
        # hands the destination's rollback the source's connection data,
        # which names another target than the SR this host introduced.
        self.build([Volume('vol-1', naming.LEGACY,
                           dest_portal='198.51.100.30:3260')],
                   source_driver=STOCK)
        self.run_flow()
        self.assertIn('Migrate Send failed', str(self.error))
        self.assert_failed_clean()


class UUID5FirstFailureTestCase(FailureTestCase):
    """The same failures, hitting the uuid5 volume's connect first."""

    volumes = (('vol-2', naming.UUID5, PORTAL_B),
               ('vol-1', naming.LEGACY, PORTAL_A))


class SharedSRSourceCleanupTestCase(LiveMigrationTestCase):
    """Why the driver lists each shared SR once after a migration."""

    def _run(self, driver):
        self.build([Volume('vol-1', naming.UUID5, target='shared', lun=1),
                    Volume('vol-2', naming.UUID5, target='shared', lun=2)],
                   source_driver=driver, dest_driver=driver)
        self.run_flow()

    def test_stock_nova_rolls_back_a_finished_migration(self):
        self._run(STOCK)
        # The VM did move, but nova forgot the shared SR twice, the second
        # SR.forget failed and the recover path ran after the move.
        self.assertIsNotNone(self.error)
        self.assertEqual(['pool-b'], self.vm_pools())
        self.assertIn(('dest', 'rollback_live_migration_at_destination'),
                      self.flow.steps)

    def test_extension_destination_refuses_a_stock_source(self):
        self.build([Volume('vol-1', naming.UUID5, target='shared', lun=1),
                    Volume('vol-2', naming.UUID5, target='shared', lun=2)],
                   source_driver=STOCK, dest_driver=EXTENSION)
        self.run_flow()
        self.assertIn('Install nova-xenapi-sr on the source compute',
                      str(self.error))
        self.assert_failed_clean()

    def test_extension_completes(self):
        self._run(EXTENSION)
        self.assert_migrated(
            [naming.uuid5_sr_uuid(self.source_infos[0][0]['data'])])
        self.assertNotIn(('dest', 'rollback_live_migration_at_destination'),
                         self.flow.steps)


class ConcurrentMigrationsTestCase(LiveMigrationTestCase):
    """Two migrations to one destination share a uuid5 SR."""

    other_uuid = '5f0e5d52-1b5e-4a43-9c5e-0e0f7b2a4c11'

    def test_rollback_keeps_the_sr_another_migration_holds(self):
        def second(sc):
            sc.add_volume('vol-2', PORTAL_A, iqn('shared'), 2)
            sc.add_instance('pool-a', 2, nova_uuid=self.other_uuid,
                            volumes=[('vol-2', naming.UUID5, '/dev/xvdb')])
        self.build([Volume('vol-1', naming.UUID5, target='shared', lun=1)],
                   extra=second)
        uuid5 = naming.uuid5_sr_uuid(self.source_infos[0][0]['data'])
        ctxt = novaenv.admin_context()
        other = novaenv.make_instance(2, self.other_uuid, 'host-a')
        bdi = novaenv.block_device_info(
            [(self.scenario.connection_info('vol-2'), '/dev/xvdb')])

        # The other migration gets as far as pre_live_migration ...
        data = self.dst.check_can_live_migrate_destination(
            ctxt, other, None, None, block_migration=None)
        data = novaenv.roundtrip(self.src.check_can_live_migrate_source(
            ctxt, other, novaenv.roundtrip(data), copy.deepcopy(bdi)))
        data = novaenv.roundtrip(self.dst.pre_live_migration(
            ctxt, other, copy.deepcopy(bdi), [], None,
            novaenv.roundtrip(data)))

        # ... then this one fails at migrate_send and rolls back: the SR
        # has no VBD on the destination yet, but the other migration
        # holds it.
        self.xapi.server.inject_fault('pool-a', 'VM.migrate_send', error=[
            'SR_BACKEND_FAILURE_47', '', 'injected by the test'])
        self.run_flow()
        self.assertIsNotNone(self.error)
        self.assertIn(uuid5, self.volume_srs('pool-b'))
        self.assertEqual(['pool-a'], self.vm_pools())

        # The other migration completes.
        done = []

        def post_method(ctxt, instance, dest, block_migration, data):
            self.dst.post_live_migration_at_destination(
                ctxt, instance, [], block_migration, copy.deepcopy(bdi))
            done.append(dest)

        def recover_method(ctxt, instance, dest, data):
            self.fail('the other migration failed')

        self.src.live_migration(ctxt, other, 'host-b', post_method,
                                recover_method, block_migration=True,
                                migrate_data=data)
        self.assertEqual(['host-b'], done)
        self.assertEqual(['pool-b'], [
            p for p, _ in self.xapi.server.find_vm('instance-00000002')])
        self.assertEqual([], self.xapi.server.copies)
        # this instance still uses the shared SR on the source
        self.assertIn(uuid5, self.volume_srs('pool-a'))
        self.assertEqual(set(), self.dst._sr_claims.holders(uuid5))
