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

"""The bulk reads give exactly nova's answers, on the same VM.

Each test runs nova 21.2.4's own code (stock ``VMOps``, ``VolumeOps``,
``volume_utils.introduce_vdi``) and :mod:`nova_xenapi_sr.virt.bulk`
against one mock XAPI pool, over real XenAPI sessions, and compares the
``vdi_map`` (and ``vif_map``) each sends to ``VM.assert_can_migrate``, the
SR list of ``_get_iscsi_srs`` and the VDI each finds, then the number of
calls each made.
"""

import copy

from nova import exception as nova_exception
from nova import objects
from nova.virt.xenapi import volume_utils
from nova.virt.xenapi import volumeops

from nova_xenapi_sr import naming
from nova_xenapi_sr.virt import bulk
from nova_xenapi_sr_tools import fixture as xs_fixture
from nova_xenapi_sr_tools.mockxapi import fixture
from nova_xenapi_sr_tools.mockxapi import Scenario
from nova_xenapi_sr_tools import novaenv
from tests import base

EXTENSION = 'nova_xenapi_sr.virt.driver.XenAPISRDriver'
STOCK = 'nova.virt.xenapi.driver.XenAPIDriver'
NOVA_UUID = '3c9e0d7a-51f2-4a40-9d43-6f0b8f1e2a77'
PORTAL = '192.0.2.10:3260'


def iqn(name):
    return 'iqn.2010-10.org.openstack:%s' % name


class BulkTestCase(base.TestCase):

    def setUp(self):
        super(BulkTestCase, self).setUp()
        novaenv.prepare()
        self.useFixture(xs_fixture.ObjectRegistryFixture(
            register_extension=True))

    def build(self, volumes, neighbour=(), vifs=(), luns=()):
        """Instance 1 on pool-a with ``[(volume id, style, target, lun)]``.

        ``neighbour``: volumes of instance 2 on pool-a, same format;
        ``luns``: more LUNs on the array, same format.
        """
        sc = Scenario()
        sc.add_pool('pool-a', hosts=['host-a'])
        sc.add_pool('pool-b', hosts=['host-b'])
        for vol_id, _, target, lun in (list(volumes) + list(neighbour) +
                                       list(luns)):
            sc.add_volume(vol_id, PORTAL, iqn(target), lun)
        sc.add_instance('pool-a', 1, nova_uuid=NOVA_UUID, vifs=vifs,
                        volumes=[(v, style, '/dev/xvd%s' % chr(98 + i))
                                 for i, (v, style, _, _) in
                                 enumerate(volumes)])
        if neighbour:
            sc.add_instance('pool-a', 2, volumes=[
                (v, style, '/dev/xvd%s' % chr(98 + i))
                for i, (v, style, _, _) in enumerate(neighbour)])
        self.scenario = sc
        self.xapi = self.useFixture(fixture.MockXapiFixture(sc))
        self.db = self.xapi.pool('pool-a').db
        self.stock = novaenv.build_driver(STOCK, self.xapi.urls['pool-a'])
        self.ext = novaenv.build_driver(EXTENSION, self.xapi.urls['pool-a'])
        self.vm = self.db.find('VM', name_label='instance-00000001')[0]
        self.instance = novaenv.make_instance(1, NOVA_UUID, 'host-a')

    def sr_uuid(self, volume_id, style):
        data = self.scenario.connection_info(volume_id)['data']
        if style == naming.LEGACY:
            return naming.legacy_sr_uuid(volume_id)
        return naming.uuid5_sr_uuid(data)

    # -- VBDs nova did not create for a volume ------------------------------
    def add_local_disk(self, userdevice='0'):
        local = self.db.find('SR', type='ext')[0]
        vdi = self.db.create('VDI', SR=local, name_label='root')
        self.db.create('VBD', VM=self.vm, VDI=vdi, userdevice=userdevice,
                       bootable=True, currently_attached=True)
        return vdi

    def add_cd(self, userdevice='7'):
        iso_sr = self.db.create('SR', type='iso', content_type='iso',
                                name_label='ISOs')
        vdi = self.db.create('VDI', SR=iso_sr, name_label='cd.iso',
                             read_only=True)
        self.db.create('VBD', VM=self.vm, VDI=vdi, userdevice=userdevice,
                       type='CD', mode='RO', currently_attached=True)
        return vdi

    def add_empty_cd(self, userdevice='8'):
        self.db.create('VBD', VM=self.vm, userdevice=userdevice, type='CD',
                       mode='RO', empty=True)

    # -- running both --------------------------------------------------------
    def calls(self):
        return len(self.xapi.calls('pool-a'))

    def migrate_command(self, ops, migrate_data):
        """What ``ops`` sends to VM.assert_can_migrate, and its calls."""
        before = self.calls()
        error = None
        try:
            ops._call_live_migrate_command('VM.assert_can_migrate',
                                           self.vm, migrate_data)
        except Exception as exc:
            error = type(exc)
        calls = self.xapi.calls('pool-a')[before:]
        sent = [args for m, args in calls if m == 'VM.assert_can_migrate']
        return sent, error, len(calls)

    def migrate_data(self, sr_uuid_map, vif_uuid_map=None):
        data = objects.XenapiLiveMigrateData(
            block_migration=True, destination_sr_ref='OpaqueRef:dest-image',
            migrate_send_data={'host': 'OpaqueRef:dest-host',
                               'SM': 'http://192.0.2.99/SM',
                               'xenops': 'http://192.0.2.99/xenops',
                               'session_id': 'OpaqueRef:dest-session',
                               'master': 'http://192.0.2.99/'},
            sr_uuid_map=sr_uuid_map)
        if vif_uuid_map is not None:
            data.vif_uuid_map = vif_uuid_map
        return data

    def assert_same_command(self, sr_uuid_map, vif_uuid_map=None):
        data = self.migrate_data(sr_uuid_map, vif_uuid_map)
        stock, stock_error, stock_calls = self.migrate_command(
            self.stock._vmops, data)
        ext, ext_error, ext_calls = self.migrate_command(
            self.ext._vmops, data)
        self.assertEqual(stock_error, ext_error)
        self.assertEqual(len(stock), len(ext))
        for stock_args, ext_args in zip(stock, ext):
            self.assertEqual(stock_args, ext_args)
        return stock, ext_calls, stock_calls

    def local_map(self, volumes):
        """sr_uuid_map naming every volume SR of instance 1."""
        return {self.sr_uuid(v, style): 'OpaqueRef:dest-%s' % v
                for v, style, _, _ in volumes}


class VdiMapTestCase(BulkTestCase):
    """``_call_live_migrate_command``: nova's vdi_map, constant calls."""

    def test_each_volume_on_its_own_sr(self):
        volumes = [('vol-%d' % i, naming.UUID5, 'vol-%d' % i, 1)
                   for i in range(5)]
        self.build(volumes)
        sent, ext_calls, stock_calls = self.assert_same_command(
            self.local_map(volumes))
        vdi_map = sent[0][3]
        self.assertEqual(5, len(vdi_map))
        self.assertEqual({'OpaqueRef:dest-vol-%d' % i for i in range(5)},
                         set(vdi_map.values()))
        # image SR (the pool record) + its VDIs + VBDs + SRs + the command
        self.assertEqual(5, ext_calls)
        self.assertGreater(stock_calls, 5 * 5)

    def test_several_volumes_on_one_shared_sr(self):
        volumes = [('vol-%d' % i, naming.UUID5, 'shared', i + 1)
                   for i in range(4)]
        self.build(volumes, neighbour=[('vol-n', naming.UUID5, 'shared',
                                        9)])
        sent, ext_calls, _ = self.assert_same_command(
            self.local_map(volumes))
        # the neighbour's VDI on the shared SR is not the VM's
        self.assertEqual(4, len(sent[0][3]))
        self.assertEqual(5, ext_calls)

    def test_legacy_and_uuid5_mixed_with_other_vbds(self):
        volumes = [('vol-l1', naming.LEGACY, 'vol-l1', 1),
                   ('vol-u1', naming.UUID5, 'shared', 1),
                   ('vol-u2', naming.UUID5, 'shared', 2),
                   ('vol-l2', naming.LEGACY, 'vol-l2', 3)]
        self.build(volumes)
        root = self.add_local_disk()
        cd = self.add_cd()
        self.add_empty_cd()
        sent, ext_calls, _ = self.assert_same_command(
            self.local_map(volumes))
        vdi_map = sent[0][3]
        # the root disk on the image SR goes to the destination's image
        # SR; the ISO and the empty drive are not in the map
        self.assertEqual('OpaqueRef:dest-image', vdi_map[root])
        self.assertNotIn(cd, vdi_map)
        self.assertEqual(5, len(vdi_map))
        self.assertEqual(5, ext_calls)

    def test_map_naming_only_some_srs(self):
        volumes = [('vol-1', naming.LEGACY, 'vol-1', 1),
                   ('vol-2', naming.UUID5, 'vol-2', 1)]
        self.build(volumes)
        self.add_local_disk()
        sent, _, _ = self.assert_same_command(self.local_map(volumes[1:]))
        self.assertEqual(2, len(sent[0][3]))

    def test_map_naming_another_vms_sr(self):
        volumes = [('vol-1', naming.UUID5, 'vol-1', 1)]
        self.build(volumes, neighbour=[('vol-n', naming.UUID5, 'vol-n',
                                        1)])
        sr_map = self.local_map(volumes)
        sr_map[self.sr_uuid('vol-n', naming.UUID5)] = 'OpaqueRef:dest-n'
        sent, _, _ = self.assert_same_command(sr_map)
        self.assertEqual(['OpaqueRef:dest-vol-1'],
                         list(sent[0][3].values()))

    def test_map_naming_the_image_sr(self):
        # nova maps the image SR's VDIs to destination_sr_ref first, then
        # to the map's ref for that SR: the map wins.
        self.build([('vol-1', naming.UUID5, 'vol-1', 1)])
        root = self.add_local_disk()
        local = self.db.get('SR', self.db.find('SR', type='ext')[0])
        sr_map = {local['uuid']: 'OpaqueRef:dest-local'}
        sent, _, _ = self.assert_same_command(sr_map)
        self.assertEqual({root: 'OpaqueRef:dest-local'}, sent[0][3])

    def test_no_sr_uuid_map(self):
        self.build([('vol-1', naming.UUID5, 'vol-1', 1)])
        root = self.add_local_disk()
        sent, ext_calls, _ = self.assert_same_command({})
        self.assertEqual({root: 'OpaqueRef:dest-image'}, sent[0][3])
        self.assertEqual(4, ext_calls)

    def test_missing_sr_fails_as_nova_does(self):
        self.build([('vol-1', naming.UUID5, 'vol-1', 1)])
        sr_map = {'0f3e5bd4-0d0a-4b44-9d7f-4c1f2b9c0a11': 'OpaqueRef:x'}
        sent, _, _ = self.assert_same_command(sr_map)
        self.assertEqual([], sent)

    def test_unquotable_sr_uuid_takes_novas_path(self):
        self.build([('vol-1', naming.UUID5, 'vol-1', 1)])
        sent, _, _ = self.assert_same_command({'a" or "1': 'OpaqueRef:x'})
        self.assertEqual([], sent)

    def test_vif_map(self):
        volumes = [('vol-1', naming.UUID5, 'vol-1', 1)]
        self.build(volumes, vifs=[{'id': 'port-1'}, {'id': 'port-2'}])
        sent, _, _ = self.assert_same_command(
            self.local_map(volumes),
            {'port-1': 'OpaqueRef:net-1', '': 'OpaqueRef:net-default'})
        self.assertEqual({'OpaqueRef:net-1', 'OpaqueRef:net-default'},
                         set(sent[0][4].values()))

    def test_without_migrate_send_data_nova_refuses(self):
        self.build([('vol-1', naming.UUID5, 'vol-1', 1)])
        data = self.migrate_data({})
        data.migrate_send_data = {}
        for ops in (self.stock._vmops, self.ext._vmops):
            self.assertRaises(nova_exception.InvalidParameterValue,
                              ops._call_live_migrate_command,
                              'VM.assert_can_migrate', self.vm, data)


class IscsiSrsTestCase(BulkTestCase):
    """``_get_iscsi_srs``: nova's list, in nova's order, 4 calls."""

    def both(self):
        ctxt = novaenv.admin_context()
        before = self.calls()
        ext = bulk.BulkVMOps._get_iscsi_srs(self.ext._vmops, ctxt,
                                            self.instance)
        ext_calls = self.calls() - before
        stock = self.stock._vmops._get_iscsi_srs(ctxt, self.instance)
        return stock, ext, ext_calls

    def test_mixed_with_shared_sr_and_other_vbds(self):
        volumes = [('vol-l1', naming.LEGACY, 'vol-l1', 1),
                   ('vol-u1', naming.UUID5, 'shared', 1),
                   ('vol-u2', naming.UUID5, 'shared', 2),
                   ('vol-u3', naming.UUID5, 'vol-u3', 1)]
        self.build(volumes, neighbour=[('vol-n', naming.UUID5, 'shared',
                                        5)])
        self.add_local_disk()
        self.add_cd()
        stock, ext, ext_calls = self.both()
        self.assertEqual(stock, ext)
        # the shared SR once per VBD, as nova lists it
        self.assertEqual(4, len(ext))
        self.assertEqual(3, len(set(ext)))
        self.assertEqual(4, ext_calls)

    def test_empty_vbd_is_skipped_where_nova_fails(self):
        volumes = [('vol-1', naming.UUID5, 'vol-1', 1),
                   ('vol-2', naming.LEGACY, 'vol-2', 1)]
        self.build(volumes)
        stock_before, _, _ = self.both()
        self.add_empty_cd()
        ctxt = novaenv.admin_context()
        ext = bulk.BulkVMOps._get_iscsi_srs(self.ext._vmops, ctxt,
                                            self.instance)
        self.assertEqual(stock_before, ext)
        # nova's walk asks for the SR of OpaqueRef:NULL
        error = self.assertRaises(self.stock._session.XenAPI.Failure,
                                  self.stock._vmops._get_iscsi_srs,
                                  ctxt, self.instance)
        self.assertEqual('HANDLE_INVALID', error.details[0])

    def test_no_volumes(self):
        self.build([])
        self.add_local_disk()
        stock, ext, _ = self.both()
        self.assertEqual([], stock)
        self.assertEqual([], ext)


class IntroduceVdiTestCase(BulkTestCase):
    """``introduce_vdi``: nova's VDI for a LUN, without the walk."""

    def setUp(self):
        super(IntroduceVdiTestCase, self).setUp()
        self.build([], luns=[('vol-%d' % i, naming.UUID5, 'shared', i)
                             for i in range(1, 7)] +
                   [('vol-o1', naming.UUID5, 'other', 1)])
        self.session = self.ext._session
        config = {'target': '192.0.2.10', 'port': '3260',
                  'targetIQN': iqn('shared')}
        self.sr = self.session.call_xenapi(
            'SR.introduce', '6b1f5e0e-2f36-5d3b-9c63-2c1a2f0d0b51', 'shared',
            '', 'iscsi', '', False, dict(config))
        pbd = self.session.call_xenapi('PBD.create', {
            'host': self.session.host_ref, 'SR': self.sr,
            'device_config': config})
        self.session.call_xenapi('PBD.plug', pbd)

    def introduce(self, fn, lun):
        before = self.calls()
        try:
            return fn(lun), self.calls() - before
        except nova_exception.StorageError as exc:
            return type(exc), self.calls() - before

    def stock_fn(self, lun):
        return volume_utils.introduce_vdi(self.stock._session, self.sr,
                                          target_lun=lun)

    def bulk_fn(self, lun):
        return bulk.introduce_vdi(self.session, self.sr, lun)

    def vdi_lun(self, ref):
        return self.db.get('VDI', ref)['sm_config']['LUNid']

    def test_same_vdi_for_every_lun_either_first(self):
        self.flags_retry_wait()
        for lun in range(1, 7):
            first, second = ((self.bulk_fn, self.stock_fn) if lun % 2
                             else (self.stock_fn, self.bulk_fn))
            got, calls = self.introduce(first, lun)
            again, _ = self.introduce(second, lun)
            self.assertEqual(got, again)
            self.assertEqual(str(lun), self.vdi_lun(got))
            self.assertTrue(self.db.get('VDI', got)['managed'])
            if lun == 1:
                # not scanned yet: query, scan, query (the scan leaves
                # the LUNs' VDIs managed, as SM's LUNperVDI does)
                self.assertEqual(3, calls)

    def test_bulk_calls_do_not_grow_with_the_luns(self):
        self.flags_retry_wait()
        self.session.call_xenapi('SR.scan', self.sr)
        counts = [self.introduce(self.bulk_fn, lun)[1] for lun in (1, 6)]
        # one VDI query
        self.assertEqual([1, 1], counts)
        stock = [self.introduce(self.stock_fn, lun)[1] for lun in (2, 5)]
        self.assertLess(counts[1], stock[1])

    def test_lun_missing_fails_as_nova_does(self):
        self.flags_retry_wait()
        self.assertEqual(
            nova_exception.StorageError,
            self.introduce(self.bulk_fn, 42)[0])
        self.assertEqual(
            nova_exception.StorageError,
            self.introduce(self.stock_fn, 42)[0])

    def test_two_vdis_with_one_lun_id_nova_picks_the_first(self):
        self.flags_retry_wait()
        self.session.call_xenapi('SR.scan', self.sr)
        first = [r for r in self.db.find('VDI', SR=self.sr)
                 if self.vdi_lun(r) == '3'][0]
        self.db.create('VDI', SR=self.sr, managed=True,
                       sm_config={'LUNid': '3'}, name_label='twin')
        self.assertEqual(self.introduce(self.stock_fn, 3)[0],
                         self.introduce(self.bulk_fn, 3)[0])
        self.assertEqual(first, self.introduce(self.bulk_fn, 3)[0])

    def test_lun_id_nova_treats_as_absent_takes_novas_path(self):
        self.flags_retry_wait()
        self.session.call_xenapi('SR.scan', self.sr)
        self.assertEqual(self.introduce(self.stock_fn, 0)[0],
                         self.introduce(self.bulk_fn, 0)[0])

    def test_volumeops_dispatch(self):
        self.flags_retry_wait()
        stock = volumeops.VolumeOps(self.stock._session)
        ext = self.ext._vmops._volumeops
        self.assertIsInstance(ext, bulk.BulkVolumeOps)
        self.session.call_xenapi('SR.scan', self.sr)
        vdi_uuid = self.db.get('VDI', [
            r for r in self.db.find('VDI', SR=self.sr)
            if self.vdi_lun(r) == '2'][0])['uuid']
        for data in ({'target_lun': 4}, {'vdi_uuid': vdi_uuid},
                     {'vdi_uuid': vdi_uuid, 'target_lun': 5}, {}):
            self.assertEqual(
                stock._connect_hypervisor_to_volume(self.sr, dict(data)),
                ext._connect_hypervisor_to_volume(self.sr, dict(data)),
                data)

    def test_introduce_vdis_finds_every_lun_in_one_query(self):
        self.flags_retry_wait()
        before = self.calls()
        got = bulk.introduce_vdis(self.session, self.sr, [6, 2, 4])
        # query, scan (not scanned yet), query
        self.assertEqual(3, self.calls() - before)
        for lun, (ref, uuid) in zip((6, 2, 4), got):
            self.assertEqual(self.introduce(self.stock_fn, lun)[0], ref)
            self.assertEqual(self.db.get('VDI', ref)['uuid'], uuid)
        before = self.calls()
        again = bulk.introduce_vdis(self.session, self.sr, [2, 4, 6, 1])
        # one query
        self.assertEqual(1, self.calls() - before)
        self.assertEqual([got[1], got[2], got[0]], again[:3])

    def test_unmanaged_vdi_is_introduced_as_nova_does(self):
        self.flags_retry_wait()
        self.session.call_xenapi('SR.scan', self.sr)
        for lun in ('2', '5'):
            ref = [r for r in self.db.find('VDI', SR=self.sr)
                   if self.vdi_lun(r) == lun][0]
            self.db.get('VDI', ref)['managed'] = False
        before = self.calls()
        got = bulk.introduce_vdis(self.session, self.sr, [5, 3, 2])
        calls = self.xapi.calls('pool-a')[before:]
        # one query, then VDI.introduce for each unmanaged LUN
        self.assertEqual(['VDI.get_all_records_where', 'VDI.introduce',
                          'VDI.introduce'], [m for m, _ in calls])
        for lun, (ref, uuid) in zip((5, 3, 2), got):
            self.assertTrue(self.db.get('VDI', ref)['managed'])
            self.assertEqual(self.introduce(self.stock_fn, lun)[0], ref)

    def test_luns_of_several_srs_in_one_query(self):
        self.flags_retry_wait()
        config = {'target': '192.0.2.10', 'port': '3260',
                  'targetIQN': iqn('other')}
        other = self.session.call_xenapi(
            'SR.introduce', '0c6f0f6e-87a4-5f39-a0a8-70b1c9b5d5a4', 'other',
            '', 'iscsi', '', False, dict(config))
        pbd = self.session.call_xenapi('PBD.create', {
            'host': self.session.host_ref, 'SR': other,
            'device_config': config})
        self.session.call_xenapi('PBD.plug', pbd)
        for sr in (self.sr, other):
            self.session.call_xenapi('SR.scan', sr)
        before = self.calls()
        got = bulk.introduce_vdis_of_srs(self.session,
                                         [(self.sr, [3, 1]), (other, [1])])
        self.assertEqual(1, self.calls() - before)
        self.assertEqual(
            [volume_utils.introduce_vdi(self.stock._session, self.sr,
                                        target_lun=lun) for lun in (3, 1)],
            [ref for ref, _ in got[self.sr]])
        self.assertEqual(
            volume_utils.introduce_vdi(self.stock._session, other,
                                       target_lun=1), got[other][0][0])
        self.assertNotEqual(got[self.sr][1][0], got[other][0][0])

    def test_introduce_vdis_one_lun_missing_fails_as_nova_does(self):
        self.flags_retry_wait()
        self.assertRaises(nova_exception.StorageError, bulk.introduce_vdis,
                          self.session, self.sr, [1, 42])

    def flags_retry_wait(self):
        import nova.conf
        nova.conf.CONF.set_override('introduce_vdi_retry_wait', 0,
                                    group='xenserver')
        self.addCleanup(nova.conf.CONF.clear_override,
                        'introduce_vdi_retry_wait', group='xenserver')


class StripBaseMirrorTestCase(BulkTestCase):
    """``strip_base_mirror_from_vdis``: nova's writes, without the walk."""

    def written(self, fn):
        before = self.calls()
        fn(self.ext._session, self.vm)
        calls = self.xapi.calls('pool-a')[before:]
        return ({args[0] for m, args in calls
                 if m == 'VDI.remove_from_sm_config' and
                 args[0] != 'OpaqueRef:NULL'}, len(calls))

    def test_same_vdis_as_nova(self):
        from nova.virt.xenapi import vm_utils
        volumes = [('vol-%d' % i, naming.UUID5, 'shared', i + 1)
                   for i in range(4)]
        self.build(volumes)
        self.add_local_disk()
        self.add_cd()
        self.add_empty_cd()
        vdis = {self.db.get('VBD', v)['VDI']
                for v in self.db.find('VBD', VM=self.vm)} - {
                    'OpaqueRef:NULL'}
        for vdi in vdis:
            self.db.get('VDI', vdi)['sm_config']['base_mirror'] = 'x'
        ext, ext_calls = self.written(bulk.strip_base_mirror_from_vdis)
        self.assertEqual(vdis, ext)
        self.assertEqual(
            [], [v for v in vdis
                 if 'base_mirror' in self.db.get('VDI', v)['sm_config']])
        stock, stock_calls = self.written(
            vm_utils.strip_base_mirror_from_vdis)
        self.assertEqual(stock, ext)
        # one VBD query, one write per VDI; nova also reads every VBD
        self.assertEqual(1 + len(vdis), ext_calls)
        self.assertEqual(1 + 2 * (len(vdis) + 1), stock_calls)


class ConnectVolumesTestCase(BulkTestCase):
    """``connect_block_device_volumes``: nova's SRs and VDIs, SR by SR.

    Stock nova's ``VMOps.connect_block_device_volumes`` and the
    extension's connect the same ``block_device_info`` on pool-b, one
    after the other (stock's SRs forgotten in between); both must leave
    the same SRs, PBDs and VDIs and return the same ``sr_uuid_map`` keys.
    """

    def connect(self, volumes, neighbour=()):
        self.build(volumes, luns=neighbour)
        self.flags_retry_wait()
        pool_b = self.xapi.pool('pool-b').db
        kept = set()
        if neighbour:
            # An SR that was on pool-b before, holding another VM's VDI.
            other = novaenv.build_driver(STOCK, self.xapi.urls['pool-b'])
            other._vmops.connect_block_device_volumes(
                novaenv.block_device_info(
                    [(self.scenario.connection_info(v), '/dev/xvdb')
                     for v, _, _, _ in neighbour]))
            kept = set(pool_b.find('SR', type='iscsi'))
        bdi = novaenv.block_device_info(
            [(self.scenario.connection_info(v), '/dev/xvd%s' % chr(98 + i))
             for i, (v, _, _, _) in enumerate(volumes)])
        untouched = repr(bdi)
        results = []
        for path in (STOCK, EXTENSION):
            driver = novaenv.build_driver(path, self.xapi.urls['pool-b'])
            before = len(self.xapi.calls('pool-b'))
            existing = {}
            if path == STOCK:
                sr_map = driver._vmops.connect_block_device_volumes(
                    copy.deepcopy(bdi))
            else:
                sr_map = driver._vmops.connect_block_device_volumes(
                    copy.deepcopy(bdi), existing_srs=existing,
                    instance_uuid=NOVA_UUID)
            calls = self.xapi.calls('pool-b')[before:]
            results.append((sorted(sr_map), self.state(pool_b),
                            existing, calls))
            for ref in sr_map.values():
                self.assertEqual(
                    pool_b.get('SR', ref)['uuid'],
                    [u for u, r in sr_map.items() if r == ref][0])
            self.forget(driver, pool_b, set(sr_map.values()) - kept)
        self.assertEqual(untouched, repr(bdi))
        (stock_srs, stock_state, _, _), (ext_srs, ext_state, existing,
                                         calls) = results
        self.assertEqual(stock_srs, ext_srs)
        self.assertEqual(stock_state, ext_state)
        return ext_srs, existing, calls

    def state(self, db):
        """Each iSCSI SR: uuid, its PBDs' config and state, managed LUNs."""
        out = {}
        for ref in db.find('SR', type='iscsi'):
            rec = db.get('SR', ref)
            out[rec['uuid']] = (
                rec['name_label'],
                sorted((sorted(db.get('PBD', p)['device_config'].items()),
                        db.get('PBD', p)['currently_attached'])
                       for p in db.find('PBD', SR=ref)),
                sorted(db.get('VDI', v)['sm_config'].get('LUNid')
                       for v in db.find('VDI', SR=ref)
                       if db.get('VDI', v)['managed']))
        return out

    def forget(self, driver, db, sr_refs):
        session = driver._session
        for ref in sr_refs:
            for pbd in db.find('PBD', SR=ref):
                session.call_xenapi('PBD.unplug', pbd)
            session.call_xenapi('SR.forget', ref)

    def methods(self, calls):
        return [m for m, _ in calls]

    def test_own_and_shared_srs(self):
        volumes = [('vol-1', naming.UUID5, 'vol-1', 1),
                   ('vol-s1', naming.UUID5, 'shared', 1),
                   ('vol-2', naming.LEGACY, 'vol-2', 1),
                   ('vol-s2', naming.UUID5, 'shared', 2),
                   ('vol-s3', naming.UUID5, 'shared', 3)]
        srs, existing, calls = self.connect(volumes)
        self.assertEqual(3, len(srs))
        self.assertEqual({}, existing)
        methods = self.methods(calls)
        # one existence query for all SRs; introduce, PBD create and
        # plug, scan per SR; one VDI query for the LUNs of all SRs
        self.assertEqual(1, methods.count('SR.get_all_records_where'))
        for method in ('SR.introduce', 'PBD.create', 'PBD.plug', 'SR.scan'):
            self.assertEqual(3, methods.count(method), method)
        self.assertEqual(1, methods.count('VDI.get_all_records_where'))
        self.assertEqual(14, len(calls))
        self.assertNotIn('SR.get_by_uuid', methods)
        self.assertEqual(0, methods.count('VDI.introduce'))
        self.assertNotIn('VDI.get_uuid', methods)
        self.assertNotIn('VDI.get_record', methods)

    def test_sr_already_there_is_reported_without_the_vdis_it_had(self):
        volumes = [('vol-s1', naming.UUID5, 'shared', 1),
                   ('vol-s2', naming.UUID5, 'shared', 2),
                   ('vol-1', naming.UUID5, 'vol-1', 1)]
        neighbour = [('vol-n', naming.UUID5, 'shared', 7)]
        srs, existing, calls = self.connect(volumes, neighbour=neighbour)
        shared = self.sr_uuid('vol-s1', naming.UUID5)
        self.assertEqual([shared], list(existing))
        # the neighbour's scan of the shared target found LUNs 1 and 2:
        # their VDIs are not the migration's to forget
        self.assertEqual([], existing[shared])
        methods = self.methods(calls)
        self.assertEqual(1, methods.count('SR.introduce'))
        self.assertEqual(1, methods.count('SR.get_all_records_where'))

    def test_sr_already_there_is_reported_with_the_vdis_it_gained(self):
        volumes = [('vol-s1', naming.UUID5, 'shared', 1),
                   ('vol-s2', naming.UUID5, 'shared', 2)]
        neighbour = [('vol-n', naming.UUID5, 'shared', 7)]
        self.build(volumes, luns=neighbour)
        self.flags_retry_wait()
        pool_b = self.xapi.pool('pool-b').db
        novaenv.build_driver(STOCK, self.xapi.urls['pool-b'])._vmops.\
            connect_block_device_volumes(novaenv.block_device_info(
                [(self.scenario.connection_info('vol-n'), '/dev/xvdb')]))
        shared = self.sr_uuid('vol-s1', naming.UUID5)
        sr_ref = pool_b.find('SR', uuid=shared)[0]
        by_lun = {pool_b.get('VDI', v)['sm_config'].get('LUNid'): v
                  for v in pool_b.find('VDI', SR=sr_ref)}
        # LUN 2's VDI is forgotten: the extension's scan brings it back
        driver = novaenv.build_driver(EXTENSION, self.xapi.urls['pool-b'])
        driver._session.call_xenapi('VDI.forget', by_lun['2'])
        existing = {}
        driver._vmops.connect_block_device_volumes(
            novaenv.block_device_info(
                [(self.scenario.connection_info(v), '/dev/xvd%s' % d)
                 for v, d in (('vol-s1', 'b'), ('vol-s2', 'c'))]),
            existing_srs=existing, instance_uuid=NOVA_UUID)
        gained = [v for v in pool_b.find('VDI', SR=sr_ref)
                  if pool_b.get('VDI', v)['sm_config'].get('LUNid') == '2']
        self.assertEqual({shared: gained}, existing)
        self.assertNotIn(by_lun['1'], existing[shared])

    def test_unsupported_volume_type_fails_before_any_call(self):
        volumes = [('vol-1', naming.UUID5, 'vol-1', 1)]
        self.build(volumes)
        driver = novaenv.build_driver(EXTENSION, self.xapi.urls['pool-b'])
        info = self.scenario.connection_info('vol-1')
        bad = dict(info, driver_volume_type='nfs')
        before = len(self.xapi.calls('pool-b'))
        self.assertRaises(
            nova_exception.VolumeDriverNotFound,
            driver._vmops.connect_block_device_volumes,
            novaenv.block_device_info([(info, '/dev/xvdb'),
                                       (bad, '/dev/xvdc')]),
            existing_srs={}, instance_uuid=NOVA_UUID)
        self.assertEqual(before, len(self.xapi.calls('pool-b')))

    def flags_retry_wait(self):
        import nova.conf
        nova.conf.CONF.set_override('introduce_vdi_retry_wait', 0,
                                    group='xenserver')
        self.addCleanup(nova.conf.CONF.clear_override,
                        'introduce_vdi_retry_wait', group='xenserver')


class StepReadsTestCase(BulkTestCase):
    """Reads nova repeats within one step: nova's answers, each read once."""

    def setUp(self):
        super(StepReadsTestCase, self).setUp()
        self.volumes = [('vol-1', naming.UUID5, 'vol-1', 1)]
        self.build(self.volumes, vifs=[{'id': 'port-1'}, {'id': 'port-2'}])
        self.ops = self.ext._vmops

    def count(self, method):
        return [m for m, _ in self.xapi.calls('pool-a')].count(method)

    def test_vm_is_looked_up_once_per_step(self):
        before = self.count('VM.get_by_name_label')
        with self.ops.step_reads():
            ref = self.ops._get_vm_opaque_ref(self.instance)
            self.assertEqual(ref, self.ops._get_vm_opaque_ref(self.instance))
        self.assertEqual(1, self.count('VM.get_by_name_label') - before)
        self.assertEqual(self.stock._vmops._get_vm_opaque_ref(self.instance),
                         ref)
        # outside a step, nova's lookup every time
        self.ops._get_vm_opaque_ref(self.instance)
        self.assertEqual(3, self.count('VM.get_by_name_label') - before)

    def test_a_missing_vm_is_not_remembered(self):
        other = novaenv.make_instance(7, NOVA_UUID, 'host-a')
        with self.ops.step_reads():
            for _ in range(2):
                self.assertRaises(nova_exception.InstanceNotFound,
                                  self.ops._get_vm_opaque_ref, other)
        self.assertEqual(2, self.count('VM.get_by_name_label'))

    def test_pv_device_reported_as_nova_finds_it(self):
        domid = str(self.db.get('VM', self.vm)['domid'])
        devices = sorted(self.db.get('VIF', ref)['device']
                         for ref in self.db.find('VIF', VM=self.vm))
        self.assertEqual(2, len(devices))
        store = self.xapi.pool('pool-a').xenstore
        answers = []
        for states in ({}, {devices[1]: 4}, {devices[0]: 2},
                       {devices[0]: 2, devices[1]: 4}):
            store.clear()
            for device, state in states.items():
                store[(domid, 'device/vif/%s/state' % device)] = state
            stock = self.stock._vmops._pv_device_reported(self.instance,
                                                          self.vm)
            with self.ops.step_reads():
                ext = self.ops._pv_device_reported(self.instance, self.vm)
            self.assertEqual(stock, ext, states)
            answers.append(ext)
        self.assertEqual([False, True, False, True], answers)

    def test_vif_map_without_a_network_fails_as_nova_does(self):
        sent, _, _ = self.assert_same_command(self.local_map(self.volumes),
                                              {'port-1': 'OpaqueRef:net-1'})
        self.assertEqual([], sent)
        data = self.migrate_data(self.local_map(self.volumes),
                                 {'port-1': 'OpaqueRef:net-1'})
        self.assertRaises(nova_exception.MigrationError,
                          self.ops._call_live_migrate_command,
                          'VM.assert_can_migrate', self.vm, data)

    def test_image_sr_as_nova_finds_it(self):
        from nova.virt.xenapi import vm_utils
        session = self.ext._session
        self.assertEqual(vm_utils.safe_find_sr(self.stock._session),
                         bulk.image_sr(session))
        before = self.calls()
        bulk.image_sr(session)
        self.assertEqual(1, self.calls() - before)
        pool = self.db.refs('pool')[0]
        self.db.get('pool', pool)['default_SR'] = ''
        # no default SR: nova's lookup, nova's error
        self.assertRaises(nova_exception.StorageRepositoryNotFound,
                          vm_utils.safe_find_sr, self.stock._session)
        self.assertRaises(nova_exception.StorageRepositoryNotFound,
                          bulk.image_sr, session)

    def test_memo_ends_before_the_move(self):
        data = self.migrate_data(self.local_map(self.volumes))
        with self.ops.step_reads():
            self.ops._get_vm_opaque_ref(self.instance)
            # the mock refuses the fake destination session
            self.assertRaises(self.ext._session.XenAPI.Failure,
                              self.ops._call_live_migrate_command,
                              'VM.migrate_send', self.vm, data)
            self.assertIsNone(self.ops._step.reads)
            before = self.count('VM.get_by_name_label')
            self.ops._get_vm_opaque_ref(self.instance)
            self.assertEqual(1, self.count('VM.get_by_name_label') - before)

    def test_memo_ends_before_novas_recover_method(self):
        seen = []

        def recover(ctxt, instance, dest, migrate_data):
            seen.append(self.ops._step.reads)

        self.assertRaises(nova_exception.MigrationError,
                          bulk.BulkVMOps.live_migrate, self.ops,
                          novaenv.admin_context(), self.instance,
                          'no-such-host', None, recover, False,
                          migrate_data=None)
        self.assertEqual([None], seen)


class HostStatsTestCase(BulkTestCase):
    """update_provider_tree reuses what get_available_resource just read."""

    def setUp(self):
        super(HostStatsTestCase, self).setUp()
        self.build([])

    def tree(self, driver):
        from nova.compute import provider_tree
        tree = provider_tree.ProviderTree()
        node = driver.get_available_nodes()[0]
        tree.new_root(node, '6a1b6c5e-7f0e-4d8c-9d3e-2b1f0c9a8e71')
        return tree, node

    def update(self, driver):
        tree, node = self.tree(driver)
        resources = driver.get_available_resource(node)
        before = self.calls()
        driver.update_provider_tree(tree, node)
        return resources, tree.data(node).inventory, self.calls() - before

    def test_same_inventory_as_nova_without_a_second_refresh(self):
        stock = self.update(self.stock)
        ext = self.update(self.ext)
        self.assertEqual(stock[:2], ext[:2])
        self.assertGreater(stock[2], 0)
        self.assertEqual(0, ext[2])

    def test_other_callers_refresh(self):
        tree, node = self.tree(self.ext)
        before = self.calls()
        self.ext.update_provider_tree(tree, node)
        self.assertGreater(self.calls(), before)
        # a refresh in between replaces what get_available_resource read
        self.ext.get_available_resource(node)
        self.ext.host_state.get_host_stats(refresh=True)
        before = self.calls()
        self.ext.update_provider_tree(tree, node)
        self.assertGreater(self.calls(), before)
        # once only
        self.ext.get_available_resource(node)
        self.ext.update_provider_tree(tree, node)
        before = self.calls()
        self.ext.update_provider_tree(tree, node)
        self.assertGreater(self.calls(), before)

    def test_another_thread_refreshes(self):
        import threading
        tree, node = self.tree(self.ext)
        self.ext.get_available_resource(node)
        before = self.calls()
        worker = threading.Thread(
            target=self.ext.update_provider_tree, args=(tree, node))
        worker.start()
        worker.join()
        self.assertGreater(self.calls(), before)
