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

"""XenAPISRDriver through whole live migrations, with nova's real services.

nova 21.2.4's api, conductor, scheduler, placement and two nova-computes
run in this process (``nova_xenapi_sr_tools.inprocess``; Cinder, Neutron,
Glance, Keystone and spawn are faked, see there), source on pool-a
(host-a), destination on pool-b (host-b) of the mock XAPI, reached over
XML-RPC. Each test boots a volume-backed server adopting a scenario VM
and live-migrates it through the compute API (``os-migrateLive``). After
every run: the VM is on exactly one pool, no copy was recorded, no volume
SR or PBD is left where it should not be, the dicts nova handed to the
driver are unchanged, and nova's own records (instance host and states,
block device mappings, migration status, instance actions, the Cinder
fake's attachments) say what happened.
"""

import copy
import inspect
import re

from nova_xenapi_sr import naming
from nova_xenapi_sr.virt import destination
from tests.functional import base

EXTENSION = base.EXTENSION
STOCK = base.STOCK
volume_uuid = base.volume_uuid
PORTAL_A = '192.0.2.10:3260'
PORTAL_B = '192.0.2.20:3260'
#: The source's lookup queries (nova itself queries VMs by domid).
LOOKUP = (('SR.get_all_records_where', 'field "uuid"'),
          ('VM.get_all_records_where', 'field "name__label"'),
          ('VDI.get_all_records_where', 'field "SR"'))
SOURCE, DEST = 'host-a', 'host-b'
#: How a destination's refusal shows in nova's records and logs.
UNTRUSTED = destination.UntrustedSRUuid.__name__


def iqn(name):
    return 'iqn.2010-10.org.openstack:%s' % name


class Volume(object):
    """How one test volume is exported and named on the source."""

    def __init__(self, name, style, portal=PORTAL_A, target=None,
                 lun=1, chap=None, dest_portal=None, name_label=None):
        self.name = name
        self.volume_id = volume_uuid(name)
        self.style = style
        self.portal = portal
        self.iqn = iqn(target or name)
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
            xapi.array.add_lun(host, int(port), dest_iqn, 9, serial, None,
                               self.volume_id)
            info['data'].update(target_portal=self.dest_portal,
                                target_iqn=dest_iqn, target_lun=9)
        return info


class LiveMigrationTestCase(base.NovaTestCase):
    """Boots the server on the source; migrates it through nova's API."""

    drivers = (EXTENSION, EXTENSION)

    def setUp(self):
        super(LiveMigrationTestCase, self).setUp()
        self.retry_without_waiting()

    def build(self, volumes, extra=None, boot=True):
        sc = self.dep.new_scenario()
        self.volumes = volumes
        self.source_infos = []
        for index, vol in enumerate(volumes):
            self.source_infos.append((sc.add_volume(
                vol.volume_id, vol.portal, vol.iqn, vol.lun, chap=vol.chap),
                '/dev/xvd%s' % chr(ord('b') + index)))
        sc.add_instance('pool-a', 1, volumes=[
            (vol.volume_id, vol.style, device)
            for vol, (_, device) in zip(volumes, self.source_infos)])
        if extra:
            extra(sc)
        self.scenario = sc
        self.dep.reset(sc)
        self.xapi = self.dep.xapi
        for vol in volumes:
            if vol.dest_portal or vol.name_label:
                self.dep.set_connection_info(
                    vol.volume_id, DEST,
                    vol.dest_connection_info(sc, self.xapi))
        if boot:
            self.server = self.boot()

    def boot(self):
        server = self.dep.boot(1, [(vol.volume_id, device) for vol, (
            _, device) in zip(self.volumes, self.source_infos)])
        self.name = self.dep.vm_name(server)
        self.source_attachments = {
            vol_id: bdm.attachment_id
            for vol_id, bdm in self.dep.bdms(server).items()}
        self.baseline = {pool: self.xapi.pool(pool).inspect()
                         for pool in ('pool-a', 'pool-b')}
        self.dep.clear_calls()
        self.dep.cinder.events[:] = []
        self.watch_driver_arguments()
        self.watch_source_check()
        return server

    def watch_source_check(self):
        """Note where the source's pre-check starts and ends in its log."""
        self.check_window = window = []
        pool = self.xapi.pool('pool-a')

        def watching(method):
            def call(*args, **kwargs):
                window[:] = [len(pool.calls())]
                try:
                    return method(*args, **kwargs)
                finally:
                    window.append(len(pool.calls()))
            return call
        self.wrap_driver(SOURCE, 'check_can_live_migrate_source', watching)

    def watch_driver_arguments(self):
        """Fail the test if a driver changes a dict nova handed to it."""
        seen = self.handed = []

        def watching(method):
            sig = inspect.signature(method)

            def call(*args, **kwargs):
                arg = sig.bind(*args, **kwargs).arguments.get(
                    'block_device_info')
                before = copy.deepcopy(arg)
                try:
                    return method(*args, **kwargs)
                finally:
                    seen.append((method.__name__, before == arg))
            return call

        for host, name in ((SOURCE, 'check_can_live_migrate_source'),
                           (DEST, 'pre_live_migration'),
                           (DEST, 'rollback_live_migration_at_destination')):
            self.wrap_driver(host, name, watching)

    def migrate(self, **kwargs):
        self.migration = self.dep.live_migrate(self.server, **kwargs)
        self.instance = self.dep.instance(self.server)
        self.assertTrue(self.handed)
        self.assertEqual([], [name for name, same in self.handed
                              if not same])
        return self.migration

    @property
    def error(self):
        """What nova recorded of the failure, or None if it migrated."""
        if self.migration.status == 'completed':
            return None
        return '\n'.join(self.dep.event_errors(self.server) +
                         [self.log_problems()])

    # -- state checks ---------------------------------------------------------
    def vm_pools(self, name=None):
        return [pool for pool, _ in self.xapi.find_vm(name or self.name)]

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
        self.assertEqual([], self.xapi.copies)
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
        vm = [r for r in view['VM'].values()
              if r['name_label'] == self.name][0]
        got = sorted(view['VDI'][view['VBD'][v]['VDI']]['uuid']
                     for v in vm['VBDs'])
        want = sorted(self.lun_vdi(info) for info, _ in self.source_infos)
        self.assertEqual(want, got)
        self.assert_nova_migrated()

    def assert_nova_migrated(self):
        """nova's records: on the destination, new attachments only."""
        self.assertEqual('completed', self.migration.status)
        self.assertEqual((DEST, 'active', None),
                         (self.instance.host, self.instance.vm_state,
                          self.instance.task_state))
        bdms = self.dep.bdms(self.server)
        attachments = self.dep.cinder.attachments()
        for vol in self.volumes:
            bdm = bdms[vol.volume_id]
            self.assertNotEqual(self.source_attachments[vol.volume_id],
                                bdm.attachment_id)
            self.assertEqual({bdm.attachment_id}, {
                a['id'] for a in attachments.values()
                if a['volume_id'] == vol.volume_id})
            self.assertEqual(DEST, attachments[bdm.attachment_id]['host'])
            self.assertEqual([('create', vol.volume_id),
                              ('complete', vol.volume_id),
                              ('delete', vol.volume_id)],
                             self.dep.cinder.ops(vol.volume_id))

    def lun_vdi(self, info):
        data = info['data']
        host, port = data['target_portal'].split(':')
        return self.xapi.array.target(
            host, int(port), data['target_iqn']).luns[
                data['target_lun']].vdi_uuid

    def assert_failed_clean(self, vm_state='error', refused=False):
        self.assertIsNotNone(self.error)
        self.assertEqual(['pool-a'], self.vm_pools())
        self.assertEqual([], self.xapi.copies)
        for cls in ('SR', 'PBD', 'VDI', 'VBD', 'secret'):
            self.assertEqual([], self.new_objects('pool-b', cls), cls)
        source = self.xapi.pool('pool-a').inspect()
        for cls in ('SR', 'PBD', 'VDI', 'VBD', 'VM'):
            self.assertEqual(sorted(self.baseline['pool-a'][cls]),
                             sorted(source[cls]), cls)
        self.assert_nova_rolled_back(vm_state, refused)

    def assert_nova_rolled_back(self, vm_state, refused=False):
        """nova's records: on the source, on its own attachments again."""
        self.assertEqual('error', self.migration.status)
        self.assertEqual((SOURCE, vm_state, None),
                         (self.instance.host, self.instance.vm_state,
                          self.instance.task_state))
        self.assertEqual(self.source_attachments, {
            vol_id: bdm.attachment_id
            for vol_id, bdm in self.dep.bdms(self.server).items()})
        self.assertEqual(sorted(self.source_attachments.values()),
                         sorted(self.dep.cinder.attachments()))
        if refused:
            self.assertEqual([], self.dep.cinder.ops())
        else:
            events = dict(self.dep.events(self.server))
            self.assertEqual(
                'Success',
                events.get('compute_rollback_live_migration_at_destination'))

    def assert_unchanged(self):
        for pool in ('pool-a', 'pool-b'):
            view = self.xapi.pool(pool).inspect()
            for cls in ('SR', 'PBD', 'VDI', 'VBD', 'VM', 'secret'):
                self.assertEqual(sorted(self.baseline[pool][cls]),
                                 sorted(view[cls]), (pool, cls))

    def source_lookup_calls(self):
        """The source lookup's calls (in the source's pre-check)."""
        calls = self.xapi.pool('pool-a').calls()
        if getattr(self, 'check_window', None):
            calls = calls[self.check_window[0]:self.check_window[-1]]
        return [m for m, args in calls
                for method, clause in LOOKUP
                if m == method and args and clause in str(args[0])]


class MigrateTestCase(LiveMigrationTestCase):

    def test_legacy_only(self):
        self.build([Volume('vol-1', naming.LEGACY)])
        self.migrate()
        self.assert_migrated([naming.legacy_sr_uuid(volume_uuid('vol-1'))])
        self.assertEqual(['SR.get_all_records_where'],
                         self.source_lookup_calls())
        label = [r['name_label'] for r in
                 self.volume_srs('pool-b').values()]
        self.assertEqual(['tempSR-%s' % volume_uuid('vol-1')], label)

    def test_uuid5_only(self):
        self.build([Volume('vol-1', naming.UUID5)])
        self.migrate()
        self.assert_migrated(
            [naming.uuid5_sr_uuid(self.source_infos[0][0]['data'])])

    def test_mixed(self):
        self.build([Volume('vol-1', naming.LEGACY, name_label='mine'),
                    Volume('vol-2', naming.UUID5, portal=PORTAL_B,
                           name_label='mine-too')])
        self.migrate()
        self.assert_migrated(
            [naming.legacy_sr_uuid(volume_uuid('vol-1')),
             naming.uuid5_sr_uuid(self.source_infos[1][0]['data'])])
        self.assertEqual(['SR.get_all_records_where'],
                         self.source_lookup_calls())
        labels = sorted(r['name_label'] for r in
                        self.volume_srs('pool-b').values())
        self.assertEqual(['mine', 'mine-too'], labels)

    def test_legacy_through_another_target_on_the_destination(self):
        self.build([Volume('vol-1', naming.LEGACY,
                           dest_portal='198.51.100.30:3260')])
        self.migrate()
        self.assert_migrated([naming.legacy_sr_uuid(volume_uuid('vol-1'))])
        pbd = list(self.xapi.pool('pool-b').inspect()['PBD'].values())
        self.assertIn('198.51.100.30',
                      [p['device_config'].get('target') for p in pbd])

    def test_neighbour_on_the_source_keeps_the_shared_sr(self):
        def neighbour(sc):
            sc.add_volume(volume_uuid('vol-n'), PORTAL_A, iqn('shared'), 5)
            sc.add_instance('pool-a', 2, volumes=[
                (volume_uuid('vol-n'), naming.UUID5, '/dev/xvdb')])
        self.build([Volume('vol-1', naming.UUID5, target='shared', lun=1)],
                   extra=neighbour)
        self.migrate()
        uuid5 = naming.uuid5_sr_uuid(self.source_infos[0][0]['data'])
        self.assert_migrated([uuid5], source_kept=[uuid5])
        self.assertNotIn('compute_rollback_live_migration_at_destination',
                         dict(self.dep.events(self.server)))
        self.assertIn('another VM still uses it', self.logger.output)
        view = self.xapi.pool('pool-a').inspect()
        neighbour_vm = [r for r in view['VM'].values()
                        if r['name_label'] == self.dep.scenario_vm_name(2)][0]
        self.assertEqual(1, len(neighbour_vm['VBDs']))

    def test_volumes_sharing_one_uuid5_sr(self):
        self.build([Volume('vol-1', naming.UUID5, target='shared', lun=1),
                    Volume('vol-2', naming.UUID5, target='shared', lun=2),
                    Volume('vol-3', naming.UUID5, target='shared', lun=3)])
        self.migrate()
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
                   extra=neighbour, boot=False)
        self._attach_through_partial_scan(volume_uuid('vol-2'),
                                          iqn('shared'), 1)
        self.server = self.boot()
        self.migrate()
        # the neighbour keeps its SR and stays where it was
        uuid5 = naming.uuid5_sr_uuid(self.source_infos[0][0]['data'])
        self.assert_migrated([naming.legacy_sr_uuid(volume_uuid('vol-1'))],
                             source_kept=[uuid5])
        self.assertEqual([m for m, _ in LOOKUP], self.source_lookup_calls())
        self.assertEqual(['pool-a'],
                         self.vm_pools(self.dep.scenario_vm_name(2)))

    def _attach_through_partial_scan(self, volume_id, target_iqn, lun):
        """Attach a new LUN to scenario VM 2 through a failing uuid5 scan.

        Before nova boots the server: boot() takes the baseline and
        clears the call logs.
        """
        import XenAPI
        session = XenAPI.Session(self.xapi.urls['pool-a'])
        session.login_with_password('root', 'mock', '2.1', 'test')
        self.addCleanup(session.xenapi.session.logout)
        xs = session.xenapi
        host, port = PORTAL_A.split(':')
        self.xapi.array.add_lun(host, int(port), target_iqn, lun,
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
        vm = xs.VM.get_by_name_label(self.dep.scenario_vm_name(2))[0]
        vbd = xs.VBD.create({'VM': vm, 'VDI': vdi, 'userdevice': '1',
                             'bootable': False, 'mode': 'RW', 'type': 'Disk',
                             'empty': False, 'other_config': {},
                             'qos_algorithm_type': '',
                             'qos_algorithm_params': {}})
        xs.VBD.plug(vbd)

    def test_chap(self):
        self.build([Volume('vol-1', naming.LEGACY, chap=('user', 'pw-1')),
                    Volume('vol-2', naming.UUID5, portal=PORTAL_B,
                           chap=('user2', 'pw-2'))])
        self.migrate()
        self.assert_migrated(
            [naming.legacy_sr_uuid(volume_uuid('vol-1')),
             naming.uuid5_sr_uuid(self.source_infos[1][0]['data'])])
        view = self.xapi.pool('pool-b').inspect()
        users = sorted(p['device_config'].get('chapuser')
                       for p in view['PBD'].values()
                       if 'chapuser' in p['device_config'])
        self.assertEqual(['user', 'user2'], users)

    def test_no_volumes(self):
        self.build([])
        self.migrate()
        self.assertIsNone(self.error)
        self.assertEqual(['pool-b'], self.vm_pools())
        self.assertEqual([], self.source_lookup_calls())
        self.assertEqual((DEST, 'active'), (self.instance.host,
                                            self.instance.vm_state))

    def test_source_lookup_is_constant(self):
        volumes = [Volume('vol-%d' % i, style, portal=PORTAL_A, lun=i)
                   for i, style in enumerate(
                       [naming.LEGACY, naming.UUID5] * 4, 1)]
        self.build(volumes)
        self.migrate()
        self.assertEqual(8, len(self.volume_srs('pool-b')))
        self.assertEqual(['SR.get_all_records_where'],
                         self.source_lookup_calls())
        self.assert_nova_migrated()


class DoNoHarmTestCase(LiveMigrationTestCase):
    """uuid5-only: the extension changes what stock nova changes.

    Four computes: host-a -> host-b run the extension, host-c -> host-d
    stock nova; the same case migrates once on each pair (the scheduler
    checks the requested destination).
    """

    drivers = (EXTENSION, EXTENSION, STOCK, STOCK)
    nodes = (('pool-a', 'host-a'), ('pool-b', 'host-b'),
             ('pool-c', 'host-c'), ('pool-d', 'host-d'))

    def _calls(self, source, dest):
        src_pool, dst_pool = 'pool-' + source[-1], 'pool-' + dest[-1]
        sc = self.dep.new_scenario()
        sc.add_volume(volume_uuid('vol-1'), PORTAL_A, iqn('shared'), 1)
        sc.add_volume(volume_uuid('vol-2'), PORTAL_B, iqn('vol-2'), 1)
        sc.add_instance(src_pool, 1, volumes=[
            (volume_uuid('vol-1'), naming.UUID5, '/dev/xvdb'),
            (volume_uuid('vol-2'), naming.UUID5, '/dev/xvdc')])
        self.dep.reset(sc)
        server = self.dep.boot(1, [(volume_uuid('vol-1'), '/dev/xvdb'),
                                   (volume_uuid('vol-2'), '/dev/xvdc')],
                               host=source)
        self.dep.clear_calls()
        migration = self.dep.live_migrate(server, host=dest)
        self.assertEqual('completed', migration.status)
        self.assertEqual(dest, self.dep.instance(server).host)
        masks = self.masks(server, (src_pool, dst_pool))
        return {side: [(m, self.mask(args, masks))
                       for m, args in self.dep.xapi.pool(pool).calls()
                       if not m.startswith('session.')]
                for side, pool in (('source', src_pool),
                                   ('dest', dst_pool))}

    def masks(self, server, pools):
        """What differs between two runs: ids of the server and nodes."""
        masks = [(server['id'], 'SERVER'), (self.dep.vm_name(server),
                                            'instance-*')]
        port = self.dep.neutron.list_ports(True, device_id=server['id'])
        for p in port['ports']:
            # nova names the interim network and devices after the port
            masks += [(p['id'], 'PORT'), (p['id'][:11], 'PORT'),
                      (p['mac_address'], 'MAC')]
        for side, pool in zip(('source', 'dest'), pools):
            for rec in self.dep.xapi.pool(pool).inspect()['host'].values():
                masks += [(rec['uuid'], side + '-host-uuid'),
                          (rec['name_label'], side + '-host'),
                          (rec['address'], side + '-address')]
            masks.append((pool, side + '-pool'))
        # the VM keeps its uuid across pools (xapi's /messages names it)
        for pool in pools:
            for rec in self.dep.xapi.pool(pool).inspect()['VM'].values():
                if rec['name_label'] == self.dep.vm_name(server):
                    masks.append((rec['uuid'], 'VM-uuid'))
        return masks

    def mask(self, args, masks):
        text = repr(args)
        text = re.sub(r'OpaqueRef:[0-9a-f-]+', 'OpaqueRef:*', text)
        text = re.sub(r"'dom_id': '\d+'", "'dom_id': '*'", text)
        text = re.sub(r'127\.\d+\.\d+\.\d+', '127.*', text)
        # the bridge xapi names the interim network's (a counter)
        text = re.sub(r'xapi\d+', 'xapi*', text)
        for value, name in masks:
            text = text.replace(value, name)
        return text

    def test_same_writes_as_stock_with_fewer_reads(self):
        stock = self._calls('host-c', 'host-d')
        extension = self._calls('host-a', 'host-b')
        for side in ('source', 'dest'):
            # Every call that changes something (and every plugin call),
            # with its arguments, in order: the vdi_map of migrate_send
            # included. Only the reads differ (nova_xenapi_sr.virt.bulk),
            # and the resource tracker's second refresh of the host
            # statistics, which the extension answers with the first.
            self.assertEqual(self.without_second_refresh(
                self.writes(stock[side])), self.writes(extension[side]),
                side)
            self.assertLess(len(extension[side]), len(stock[side]), side)
        self.assertLess(len(self.writes(extension['source'])),
                        len(self.writes(stock['source'])))

    def writes(self, calls):
        # '/import_metadata': xapi's HTTP handler, a write
        return [(m, args) for m, args in calls
                if '.' not in m or not m.split('.', 1)[1].startswith('get_')]

    REFRESH = ('host_data', 'SR.scan', 'get_pci_device_details')

    def without_second_refresh(self, writes):
        """``writes`` without a refresh that follows another at once.

        A refresh of nova's host statistics shows in the writes as the
        ``host_data`` plugin, the default SR's scan and the PCI plugin.
        """
        def kind(call):
            method, args = call
            if method == 'host.call_plugin':
                for fn in self.REFRESH:
                    if "'%s'" % fn in args:
                        return fn
            return method
        kinds = [kind(call) for call in writes]
        out, i, n = [], 0, len(self.REFRESH)
        while i < len(writes):
            if tuple(kinds[i:i + n]) == self.REFRESH and \
                    i >= n and tuple(kinds[i - n:i]) == self.REFRESH:
                i += n
                continue
            out.append(writes[i])
            i += 1
        return out


class RefusalTestCase(LiveMigrationTestCase):

    def test_stock_destination_refused_for_legacy_before_any_change(self):
        self.build([Volume('vol-1', naming.LEGACY)])

        # A stock destination knows only 1.4: what it sends is 1.4. (One
        # process has one object registry; the destination's reply is
        # backported as a stock node's would be.)
        def as_stock_destination(method):
            def check(*args, **kwargs):
                data = method(*args, **kwargs)
                return type(data).obj_from_primitive(
                    data.obj_to_primitive(target_version='1.4'))
            return check
        self.wrap_driver(DEST, 'check_can_live_migrate_destination',
                         as_stock_destination)
        self.migrate(host=DEST, force=True)
        # nova keeps 255 characters of the message in the event; the
        # conductor logs it whole
        failure = self.dep.event_errors(self.server)[0]
        self.assertIn('Migration pre-check error', failure)
        self.assertIn(volume_uuid('vol-1'), failure)
        self.assertIn('Install nova-xenapi-sr on the destination',
                      self.error)
        self.assertEqual([('conductor_live_migrate_instance', 'Error'),
                          ('compute_check_can_live_migrate_destination',
                           'Error'),
                          ('compute_check_can_live_migrate_source',
                           'Error')],
                         self.dep.events(self.server))
        self.assert_unchanged()
        self.assert_nova_rolled_back('active', refused=True)

    def test_stock_destination_refused_when_the_scheduler_picks(self):
        self.build([Volume('vol-1', naming.LEGACY)])

        def as_stock_destination(method):
            def check(*args, **kwargs):
                data = method(*args, **kwargs)
                return type(data).obj_from_primitive(
                    data.obj_to_primitive(target_version='1.4'))
            return check
        self.wrap_driver(DEST, 'check_can_live_migrate_destination',
                         as_stock_destination)
        self.migrate()
        # the conductor skips the refused host; no other host is left
        self.assertIn('No valid host', self.dep.event_errors(
            self.server)[0])
        self.assertIn('Install nova-xenapi-sr on the destination',
                      self.logger.output)
        self.assert_unchanged()
        self.assert_nova_rolled_back('active', refused=True)

    def _tamper(self, at_source):
        """Replace vol-1's SR uuid in the map, at the source or in transit."""
        def idle_foreign_sr(sc):
            # another tenant's LUN, with an idle legacy SR on pool-b
            sc.add_volume(volume_uuid('vol-x'), PORTAL_B, iqn('vol-x'), 1)
            sc.add_sr('pool-b', volume_uuid('vol-x'), naming.LEGACY)
        self.build([Volume('vol-1', naming.LEGACY)], extra=idle_foreign_sr)
        self.foreign = naming.legacy_sr_uuid(volume_uuid('vol-x'))
        vol_1 = volume_uuid('vol-1')

        def tampering(method):
            def call(*args, **kwargs):
                data = [a for a in list(args) + list(kwargs.values())
                        if type(a).__name__ == 'XenapiLiveMigrateData'][0]
                data.volume_sr_uuid_map = {vol_1: self.foreign}
                return method(*args, **kwargs)
            return call

        if at_source:
            # every later copy, the one rollback gets included
            def tampered_source(method):
                def check(*args, **kwargs):
                    data = method(*args, **kwargs)
                    data.volume_sr_uuid_map = {vol_1: self.foreign}
                    return data
                return check
            self.wrap_driver(SOURCE, 'check_can_live_migrate_source',
                             tampered_source)
        else:
            # only the copy pre_live_migration receives
            self.wrap_driver(DEST, 'pre_live_migration', tampering)
        self.migrate()
        self.assertIn(UNTRUSTED, self.error)
        self.assertIn(vol_1, self.error)
        self.assertIn(self.foreign, self.error)
        self.assert_failed_clean(vm_state='active')
        self.assertIn(self.foreign, [
            r['uuid'] for r in
            self.xapi.pool('pool-b').inspect()['SR'].values()])
        self.assertEqual('Error', dict(self.dep.events(self.server))[
            'compute_pre_live_migration'])

    def test_map_tampered_in_transit_refused(self):
        self._tamper(at_source=False)

    def test_map_tampered_at_source_refused_and_rollback_ignores_it(self):
        self._tamper(at_source=True)
        self.assertIn('Rollback ignores SR %s' % self.foreign,
                      self.logger.output)

    def test_legacy_volume_whose_target_has_a_uuid5_sr_here_refused(self):
        # Another instance on the destination uses the uuid5 SR of the
        # legacy volume's target: it holds the LUN, so no legacy SR there
        # can show it (XAPI keeps a LUN in one SR per pool).
        def bystander(sc):
            sc.add_volume(volume_uuid('vol-b'), PORTAL_A, iqn('shared'), 2)
            sc.add_instance('pool-b', 9, volumes=[
                (volume_uuid('vol-b'), naming.UUID5, '/dev/xvdb')])
        self.build([Volume('vol-1', naming.LEGACY, target='shared', lun=1)],
                   extra=bystander, boot=False)
        # As on a real host, a scan of that SR lists every LUN behind the
        # target, vol-1's included.
        import XenAPI
        session = XenAPI.Session(self.xapi.urls['pool-b'])
        session.login_with_password('root', 'mock', '2.1', 'test')
        session.xenapi.SR.scan(session.xenapi.SR.get_by_uuid(
            naming.uuid5_sr_uuid(self.source_infos[0][0]['data'])))
        session.xenapi.session.logout()
        self.server = self.boot()
        self.migrate()
        self.assertIn(UNTRUSTED, self.error)
        self.assertIn('cannot arrive in place', self.error)
        # It names the target and the SR that holds the LUN, and sends the
        # operator to another pool: every host of this one has the SR.
        self.assertIn('target %s, port 3260, IQN %s' % (
            PORTAL_A.split(':')[0], iqn('shared')), self.error)
        self.assertIn('uuid5 SR %s' % naming.uuid5_sr_uuid(
            self.source_infos[0][0]['data']), self.error)
        self.assertIn('a host of another pool', self.error)
        self.assert_failed_clean(vm_state='active')
        self.assert_unchanged()

    def test_uuid5_through_another_target_refused_with_advice(self):
        self.build([Volume('vol-1', naming.UUID5,
                           dest_portal='198.51.100.30:3260')])
        self.migrate()
        self.assertIn(UNTRUSTED, self.error)
        self.assertIn('Migrate the instance cold', self.error)
        self.assert_failed_clean(vm_state='active')

    def test_existing_sr_with_the_name_but_another_target_refused(self):
        def impostor(sc):
            sc.add_volume(volume_uuid('vol-x'), PORTAL_B, iqn('vol-x'), 1)
            sc.add_sr('pool-b', volume_uuid('vol-x'),
                      sr_uuid=naming.legacy_sr_uuid(volume_uuid('vol-1')))
        self.build([Volume('vol-1', naming.LEGACY)], extra=impostor)
        self.migrate()
        self.assertIn(UNTRUSTED, self.error)
        self.assertIn(iqn('vol-x'), self.error)
        self.assertIn('xe sr-forget', self.error)
        self.assertEqual(['pool-a'], self.vm_pools())
        self.assertEqual([], self.xapi.copies)
        # refused before any write, and rollback saw that the SR named
        # like the volume's points elsewhere: the impostor was not touched
        writes = [m for m, _ in self.xapi.pool('pool-b').calls()
                  if m.split('.')[-1] in ('introduce', 'create', 'plug',
                                          'forget', 'unplug')]
        self.assertEqual([], [m for m in writes
                              if not m.startswith(('VIF.', 'network.'))])
        self.assert_unchanged()
        self.assert_nova_rolled_back('active')


class FailureTestCase(LiveMigrationTestCase):
    """An XAPI failure at each step, then nova's rollback."""

    volumes = (('vol-1', naming.LEGACY, PORTAL_A),
               ('vol-2', naming.UUID5, PORTAL_B))

    def _fail(self, pool, method, volumes=None, vm_state='active',
              times=None):
        self.build(volumes or [Volume(v, style, portal=portal)
                               for v, style, portal in self.volumes])
        # Persistent (times=None): the driver retries idempotent calls.
        self.xapi.inject_fault(pool, method, times=times, error=[
            'SR_BACKEND_FAILURE_47', '', 'injected by the test'])
        self.migrate()
        self.assert_failed_clean(vm_state=vm_state)

    # pre_live_migration fails: nova puts the instance back to ACTIVE
    def test_sr_introduce(self):
        self._fail('pool-b', 'SR.introduce')

    def test_pbd_create(self):
        self._fail('pool-b', 'PBD.create')

    def test_pbd_plug(self):
        # idempotent: retried on a transient failure, so it keeps failing
        self._fail('pool-b', 'PBD.plug', times=None)

    def test_sr_scan(self):
        # Every attempt of the first scan fails; later scans (nova's host
        # stats in the recover path scan the default SR) succeed.
        self._fail('pool-b', 'SR.scan', times=self.compute(
            DEST).driver._policy.attempts)

    def test_vdi_query(self):
        # RawISCSISR.py: scanned VDIs are managed, so nova (XenServer >=
        # 7.0) never calls VDI.introduce; the VDI query finding the LUNs
        # (in place of nova's VDI.get_record walk) is the last call before
        # the VDIs are used. A read: the driver's retry policy (xapi_retry)
        # retries a transient failure, so it keeps failing.
        self._fail('pool-b', 'VDI.get_all_records_where', times=None)

    def test_second_volume_connect(self):
        self.build([Volume('vol-1', naming.LEGACY),
                    Volume('vol-2', naming.UUID5, portal=PORTAL_B)])
        self.xapi.inject_fault(
            'pool-b', 'PBD.plug', after=1, times=None,
            error=['SR_BACKEND_FAILURE_47', '', 'second plug fails'])
        self.migrate()
        self.assert_failed_clean(vm_state='active')

    # the driver's live_migration fails: nova puts the instance to ERROR
    def test_migrate_send(self):
        self._fail('pool-a', 'VM.migrate_send', vm_state='error')
        self.assertIn('Migrate Send failed', self.error)

    def test_migrate_send_destination_through_another_target(self):
        # nova gives rollback the source's connection data; the SR this
        # host introduced points at its own target, found by its ref.
        self._fail('pool-a', 'VM.migrate_send', vm_state='error', volumes=[
            Volume('vol-1', naming.LEGACY, dest_portal='198.51.100.30:3260')])


class UUID5FirstFailureTestCase(FailureTestCase):
    """The same failures, hitting the uuid5 volume's connect first."""

    volumes = (('vol-2', naming.UUID5, PORTAL_B),
               ('vol-1', naming.LEGACY, PORTAL_A))


class StockSourceTestCase(LiveMigrationTestCase):
    """An upgraded destination, a source whose driver is stock nova's."""

    drivers = (STOCK, EXTENSION)

    def test_uuid5_migrates(self):
        self.build([Volume('vol-1', naming.UUID5)])
        self.migrate()
        self.assert_migrated(
            [naming.uuid5_sr_uuid(self.source_infos[0][0]['data'])])

    def test_legacy_fails_and_leaves_nothing_behind(self):
        # Stock nova's source fails with UUID_INVALID (bug 1566622); nova
        # hands the destination's rollback the source's connection data,
        # which names another target than the SR this host introduced.
        self.build([Volume('vol-1', naming.LEGACY,
                           dest_portal='198.51.100.30:3260')])
        self.migrate()
        self.assertIn('Migrate Send failed', self.error)
        self.assert_failed_clean(vm_state='error')

    def test_shared_uuid5_sr_refused_by_the_destination(self):
        self.build([Volume('vol-1', naming.UUID5, target='shared', lun=1),
                    Volume('vol-2', naming.UUID5, target='shared', lun=2)])
        self.migrate()
        self.assertIn('Install nova-xenapi-sr on the source compute',
                      self.error)
        self.assert_failed_clean(vm_state='active')


class StockSharedSRTestCase(LiveMigrationTestCase):
    """Why the driver lists each shared SR once after a migration."""

    drivers = (STOCK, STOCK)

    def test_stock_nova_rolls_back_a_finished_migration(self):
        self.build([Volume('vol-1', naming.UUID5, target='shared', lun=1),
                    Volume('vol-2', naming.UUID5, target='shared', lun=2)])
        self.migrate()
        # The VM did move, but nova forgot the shared SR twice, the second
        # SR.forget failed and the recover path ran after the move.
        self.assertIsNotNone(self.error)
        self.assertEqual(['pool-b'], self.vm_pools())
        self.assertIn('compute_rollback_live_migration_at_destination',
                      dict(self.dep.events(self.server)))
        # nova believes the instance is still on the source, in ERROR
        self.assertEqual('error', self.migration.status)
        self.assertEqual((SOURCE, 'error'), (self.instance.host,
                                             self.instance.vm_state))


class ExtensionSharedSRTestCase(LiveMigrationTestCase):

    def test_extension_completes(self):
        self.build([Volume('vol-1', naming.UUID5, target='shared', lun=1),
                    Volume('vol-2', naming.UUID5, target='shared', lun=2)])
        self.migrate()
        self.assert_migrated(
            [naming.uuid5_sr_uuid(self.source_infos[0][0]['data'])])
        self.assertNotIn('compute_rollback_live_migration_at_destination',
                         dict(self.dep.events(self.server)))


class ConcurrentMigrationsTestCase(LiveMigrationTestCase):
    """Two migrations to one destination share a uuid5 SR."""

    # nova's default (1) would queue the second migration behind the first
    max_concurrent_live_migrations = 0

    def test_rollback_keeps_the_sr_another_migration_holds(self):
        def second(sc):
            sc.add_volume(volume_uuid('vol-2'), PORTAL_A, iqn('shared'), 2)
            sc.add_instance('pool-a', 2, volumes=[
                (volume_uuid('vol-2'), naming.UUID5, '/dev/xvdb')])
        self.build([Volume('vol-1', naming.UUID5, target='shared', lun=1)],
                   extra=second, boot=False)
        other = self.dep.boot(2, [(volume_uuid('vol-2'), '/dev/xvdb')])
        other_name = self.dep.vm_name(other)
        self.server = self.boot()
        uuid5 = naming.uuid5_sr_uuid(self.source_infos[0][0]['data'])

        # The other migration gets as far as pre_live_migration, then
        # waits in the source driver's live_migration ...
        import threading
        prepared, release = threading.Event(), threading.Event()

        def holding(method):
            def live_migration(context, instance, *args, **kwargs):
                if instance.uuid == other['id']:
                    prepared.set()
                    release.wait(60)
                return method(context, instance, *args, **kwargs)
            return live_migration
        self.wrap_driver(SOURCE, 'live_migration', holding)
        self.dep.live_migrate(other, wait=False)
        self.assertTrue(prepared.wait(60))

        # ... then this one fails at migrate_send and rolls back: the SR
        # has no VBD on the destination yet, but the other migration
        # holds it.
        self.xapi.inject_fault('pool-a', 'VM.migrate_send', error=[
            'SR_BACKEND_FAILURE_47', '', 'injected by the test'])
        self.migrate()
        self.assertIsNotNone(self.error)
        self.assertIn(uuid5, self.volume_srs('pool-b'))
        self.assertEqual(['pool-a'], self.vm_pools())
        self.assertEqual('error', self.migration.status)

        # The other migration completes.
        release.set()
        self.dep.wait_settled(other)
        self.assertEqual('completed', self.dep.migration(other).status)
        self.assertEqual(DEST, self.dep.instance(other).host)
        self.assertEqual(['pool-b'], self.vm_pools(other_name))
        self.assertEqual([], self.xapi.copies)
        # this instance still uses the shared SR on the source
        self.assertIn(uuid5, self.volume_srs('pool-a'))
        self.assertEqual(set(), self.compute(DEST).driver._sr_claims.holders(
            uuid5))
