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

from nova import exception as nova_exception

from nova_xenapi_sr import naming
from nova_xenapi_sr.virt import source
from tests import base
from tests.unit.virt import fakes

PORTAL = '192.0.2.10:3260'


def connection_info(volume_id, iqn=None, lun=1, **extra):
    data = {'volume_id': volume_id, 'target_portal': PORTAL,
            'target_iqn': iqn or 'iqn.2010-10.org.openstack:%s' % volume_id,
            'target_lun': lun}
    data.update(extra)
    return {'driver_volume_type': 'iscsi', 'data': data}


def bdi(*infos):
    return {'block_device_mapping': [
        {'connection_info': info, 'mount_device': '/dev/xvd%s' % chr(98 + i)}
        for i, info in enumerate(infos)]}


class DecideSRUuidsTestCase(base.TestCase):

    def setUp(self):
        super(DecideSRUuidsTestCase, self).setUp()
        self.session = fakes.FakeSession()

    def add_sr(self, sr_uuid):
        ref = 'OpaqueRef:sr-%s' % sr_uuid
        return self.session.add('SR', ref, uuid=sr_uuid, type='iscsi')

    def test_no_volumes_costs_no_call(self):
        self.assertEqual({}, source.decide_sr_uuids(self.session, 'i-1',
                                                    bdi()))
        self.assertEqual({}, source.decide_sr_uuids(self.session, 'i-1',
                                                    None))
        self.assertEqual([], self.session.calls)

    def test_one_candidate_each_costs_one_call(self):
        infos = [connection_info('vol-%d' % i) for i in range(6)]
        expected = {}
        for i, info in enumerate(infos):
            uuid5, legacy = naming.sr_uuid_candidates(info['data'])
            chosen = legacy if i % 2 else uuid5
            self.add_sr(chosen)
            expected['vol-%d' % i] = chosen
        decided = source.decide_sr_uuids(self.session, 'i-1', bdi(*infos))
        self.assertEqual(expected, decided)
        self.assertEqual(['SR.get_all_records_where'], self.session.methods())

    def test_non_iscsi_and_named_srs_are_skipped(self):
        infos = [{'driver_volume_type': 'rbd', 'data': {'name': 'x'}},
                 connection_info('vol-x', sr_uuid='given')]
        self.assertEqual({}, source.decide_sr_uuids(self.session, 'i-1',
                                                    bdi(*infos)))
        self.assertEqual([], self.session.calls)

    def test_missing_sr_refused_with_volume_named(self):
        exc = self.assertRaises(nova_exception.MigrationPreCheckError,
                                source.decide_sr_uuids, self.session, 'i-1',
                                bdi(connection_info('vol-gone')))
        self.assertIn('vol-gone', str(exc))
        self.assertIn('re-attach', str(exc))

    def test_malformed_connection_data_refused(self):
        info = connection_info('vol-bad')
        del info['data']['target_iqn']
        exc = self.assertRaises(nova_exception.MigrationPreCheckError,
                                source.decide_sr_uuids, self.session, 'i-1',
                                bdi(info))
        self.assertIn('vol-bad', str(exc))
        self.assertIn('target_iqn', str(exc))

    def test_quote_in_volume_id_refused_before_any_call(self):
        exc = self.assertRaises(nova_exception.MigrationPreCheckError,
                                source.decide_sr_uuids, self.session, 'i-1',
                                bdi(connection_info('v" or field "x')))
        self.assertIn('volume_id holds characters no Cinder volume id has',
                      str(exc))
        self.assertIn('v" or field "x', str(exc))
        self.assertEqual([], self.session.calls)

    def _ambiguous_setup(self, vm_uses_legacy):
        # vol-a (LUN 1) and vol-b (LUN 2) share one target; vol-a predates
        # Mitaka (legacy SR), vol-b brought the uuid5 SR.
        iqn = 'iqn.2010-10.org.openstack:shared'
        info_a = connection_info('vol-a', iqn=iqn, lun=1)
        info_b = connection_info('vol-b', iqn=iqn, lun=2)
        uuid5, legacy_a = naming.sr_uuid_candidates(info_a['data'])
        sr5 = self.add_sr(uuid5)
        sr_legacy = self.add_sr(legacy_a)
        s = self.session
        s.add('VM', 'OpaqueRef:vm', name_label='i-1', is_a_template=False,
              is_a_snapshot=False, VBDs=['OpaqueRef:vbd-a', 'OpaqueRef:vbd-b'])
        s.add('VM', 'OpaqueRef:other', name_label='i-2', is_a_template=False,
              is_a_snapshot=False, VBDs=['OpaqueRef:vbd-o'])
        lun1_sr = sr_legacy if vm_uses_legacy else sr5
        s.add('VDI', 'OpaqueRef:vdi-a', uuid='u-a', SR=lun1_sr,
              VBDs=['OpaqueRef:vbd-a'], sm_config={'LUNid': '1'})
        s.add('VDI', 'OpaqueRef:vdi-b', uuid='u-b', SR=sr5,
              VBDs=['OpaqueRef:vbd-b'], sm_config={'LUNid': '2'})
        return info_a, info_b, uuid5, legacy_a

    def test_both_candidates_decided_by_vm_links_in_three_calls(self):
        info_a, info_b, uuid5, legacy_a = self._ambiguous_setup(True)
        decided = source.decide_sr_uuids(self.session, 'i-1',
                                         bdi(info_a, info_b))
        self.assertEqual({'vol-a': legacy_a, 'vol-b': uuid5}, decided)
        self.assertEqual(['SR.get_all_records_where',
                          'VM.get_all_records_where',
                          'VDI.get_all_records_where'],
                         self.session.methods())

    def test_both_candidates_vm_on_uuid5(self):
        info_a, info_b, uuid5, legacy_a = self._ambiguous_setup(False)
        decided = source.decide_sr_uuids(self.session, 'i-1',
                                         bdi(info_a, info_b))
        self.assertEqual({'vol-a': uuid5, 'vol-b': uuid5}, decided)
        self.assertEqual(3, len(self.session.calls))

    def test_both_candidates_neither_holds_disk_refused(self):
        info_a, info_b, uuid5, legacy_a = self._ambiguous_setup(True)
        self.session.records['VDI']['OpaqueRef:vdi-a']['VBDs'] = []
        exc = self.assertRaises(nova_exception.MigrationPreCheckError,
                                source.decide_sr_uuids, self.session, 'i-1',
                                bdi(info_a, info_b))
        self.assertIn('vol-a', str(exc))
        self.assertIn('neither', str(exc))

    def test_caller_data_unchanged(self):
        info = connection_info('vol-1', auth_method='CHAP',
                               auth_username='u', auth_password='p')
        self.add_sr(naming.legacy_sr_uuid('vol-1'))
        before = bdi(info)
        snapshot = repr(before)
        source.decide_sr_uuids(self.session, 'i-1', before)
        self.assertEqual(snapshot, repr(before))


class StockDestinationMessageTestCase(base.TestCase):

    class Data(object):
        VERSION = '1.4'
        fields = {}

        def __init__(self, send_data):
            self.migrate_send_data = send_data

        def __contains__(self, name):
            return name == 'migrate_send_data'

    def test_uuid5_only_is_fine(self):
        sr = naming.uuid5_sr_uuid(connection_info('v')['data'])
        self.assertIsNone(source.stock_destination_message(
            'i-1', {'v': sr}, self.Data({})))

    def test_legacy_names_volumes_destination_and_remedy(self):
        msg = source.stock_destination_message(
            'i-1', {'v2': naming.legacy_sr_uuid('v2'),
                    'v1': naming.legacy_sr_uuid('v1'),
                    'v3': naming.uuid5_sr_uuid(connection_info('v3')['data'])},
            self.Data({'master': 'http://dest'}))
        self.assertIn('v1, v2', msg)
        self.assertNotIn('v3', msg)
        self.assertIn('http://dest', msg)
        self.assertIn('1.4', msg)
        self.assertIn('Install nova-xenapi-sr on the destination', msg)


class SamePoolTestCase(base.TestCase):
    """The source's refusal of VM.pool_migrate for unshared volume SRs."""

    class CheckData(object):
        def __init__(self, **fields):
            self.fields = fields

        def __contains__(self, name):
            return name in self.fields

        def __getattr__(self, name):
            try:
                return self.fields[name]
            except KeyError:
                raise AttributeError(name)

    def setUp(self):
        super(SamePoolTestCase, self).setUp()
        self.session = fakes.FakeSession()

    def test_inside_the_pool_only_without_block_migration(self):
        self.assertTrue(source.inside_the_pool(
            self.CheckData(block_migration=False)))
        self.assertFalse(source.inside_the_pool(
            self.CheckData(block_migration=True)))
        # not decided (an older destination that did not set it)
        self.assertFalse(source.inside_the_pool(self.CheckData()))

    def test_unshared_sr_refused_with_volumes_srs_and_remedy(self):
        legacy = naming.legacy_sr_uuid('v1')
        uuid5 = naming.uuid5_sr_uuid(connection_info('v2')['data'])
        shared = naming.uuid5_sr_uuid(connection_info('v3')['data'])
        self.session.add('SR', 'OpaqueRef:a', uuid=legacy, shared=False)
        self.session.add('SR', 'OpaqueRef:b', uuid=uuid5, shared=False)
        self.session.add('SR', 'OpaqueRef:c', uuid=shared, shared=True)
        message = source.same_pool_message(
            self.session, 'i-1', {'v1': legacy, 'v2': uuid5, 'v3': shared})
        self.assertIn('instance i-1', message)
        self.assertIn('v1 (SR %s); v2 (SR %s)' % (legacy, uuid5), message)
        self.assertNotIn('v3', message)
        for needle in ('VM_REQUIRES_SR', 'SR_NOT_SHARABLE',
                       'Nothing was changed', 'block migration',
                       'nova migrate'):
            self.assertIn(needle, message)
        self.assertEqual(['SR.get_all_records_where'],
                         self.session.methods())

    def test_shared_srs_pass(self):
        sr = naming.uuid5_sr_uuid(connection_info('v')['data'])
        self.session.add('SR', 'OpaqueRef:a', uuid=sr, shared=True)
        self.assertIsNone(source.same_pool_message(self.session, 'i-1',
                                                   {'v': sr}))

    def test_no_volumes_costs_no_call(self):
        self.assertIsNone(source.same_pool_message(self.session, 'i-1', {}))
        self.assertEqual([], self.session.calls)
