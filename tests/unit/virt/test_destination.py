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

import copy

from nova_xenapi_sr import naming
from nova_xenapi_sr.virt import destination
from nova_xenapi_sr.virt import forget
from nova_xenapi_sr.virt import xapi_retry
from tests import base
from tests.unit.virt import fakes
from tests.unit.virt.test_source import bdi
from tests.unit.virt.test_source import connection_info


class Data(object):
    """Just enough of a migrate-data object for ``source_map``."""

    fields = {'volume_sr_uuid_map': None}

    def __init__(self, volume_sr_uuid_map=None):
        self._map = volume_sr_uuid_map

    def obj_attr_is_set(self, name):
        return self._map is not None

    @property
    def volume_sr_uuid_map(self):
        return self._map


class SourceMapTestCase(base.TestCase):

    def test_absent(self):
        self.assertIsNone(destination.source_map(None))
        self.assertIsNone(destination.source_map(Data()))

        class Stock(object):
            fields = {}
        self.assertIsNone(destination.source_map(Stock()))

    def test_present_is_a_copy(self):
        original = {'v': 'FA15E-D15C-v'}
        got = destination.source_map(Data(original))
        got['x'] = 'y'
        self.assertEqual({'v': 'FA15E-D15C-v'}, original)


class ValidateTestCase(base.TestCase):

    def setUp(self):
        super(ValidateTestCase, self).setUp()
        self.session = fakes.FakeSession()
        self.info = connection_info('vol-1')
        self.legacy = naming.legacy_sr_uuid('vol-1')
        self.uuid5 = naming.uuid5_sr_uuid(self.info['data'])

    def test_uuid5_only_reads_the_pbds_once(self):
        # the one read that finds SRs already holding the volume's target
        self.assertEqual({}, destination.validate(
            self.session, bdi(self.info), {'vol-1': self.uuid5}))
        self.assertEqual(['PBD.get_all_records'], self.session.methods())

    def test_legacy_accepted_when_absent(self):
        self.assertEqual({'vol-1': self.legacy}, destination.validate(
            self.session, bdi(self.info), {'vol-1': self.legacy}))
        self.assertEqual(['SR.get_all_records_where', 'PBD.get_all_records'],
                         self.session.methods())

    def _holder(self, sr_uuid, target='192.0.2.10', iqn=None,
                sr_type='iscsi'):
        self.session.add('SR', 'OpaqueRef:holder', uuid=sr_uuid,
                         type=sr_type)
        self.session.add('PBD', 'OpaqueRef:holder-pbd',
                         SR='OpaqueRef:holder', host='OpaqueRef:other',
                         device_config={
                             'target': target, 'port': '3260',
                             'targetIQN': iqn or
                             self.info['data']['target_iqn']})

    def test_uuid5_volume_whose_target_a_legacy_sr_holds_refused(self):
        # SR.py synchronise_new: the legacy SR shows every LUN of the
        # target, so the uuid5 SR's scan would fail (SR_BACKEND_FAILURE_40)
        self._holder('FA15E-D15C-vol-0')
        exc = self._refused({'vol-1': self.uuid5}, 'vol-1', self.uuid5,
                            'FA15E-D15C-vol-0', 'SR_BACKEND_FAILURE_40',
                            self.info['data']['target_iqn'],
                            'xe sr-forget uuid=FA15E-D15C-vol-0')
        self.assertIn('Nothing was changed', str(exc))
        self.assertEqual(['PBD.get_all_records', 'SR.get_record'],
                         self.session.methods())

    def test_legacy_volume_whose_target_another_legacy_sr_holds_refused(self):
        self._holder('FA15E-D15C-vol-0')
        self._refused({'vol-1': self.legacy}, self.legacy,
                      'FA15E-D15C-vol-0')

    def test_target_holders_of_other_targets_or_types_ignored(self):
        self._holder('FA15E-D15C-vol-0', iqn='iqn.elsewhere')
        self.assertEqual({}, destination.validate(
            self.session, bdi(self.info), {'vol-1': self.uuid5}))
        self.session.records['SR']['OpaqueRef:holder'].update(
            type='lvmoiscsi')
        self.session.records['PBD']['OpaqueRef:holder-pbd'][
            'device_config']['targetIQN'] = self.info['data']['target_iqn']
        self.assertEqual({}, destination.validate(
            self.session, bdi(self.info), {'vol-1': self.uuid5}))

    def test_volumes_own_sr_holding_the_target_accepted(self):
        self._holder(self.uuid5)
        self.assertEqual({}, destination.validate(
            self.session, bdi(self.info), {'vol-1': self.uuid5}))

    def test_volumes_own_sr_plugged_only_on_another_host_refused(self):
        # xapi_pbd.ml check_sharing_constraint: this host could not plug it
        self._holder(self.uuid5)
        self.session.records['PBD']['OpaqueRef:holder-pbd'][
            'currently_attached'] = True
        self._refused({'vol-1': self.uuid5}, self.uuid5, 'OpaqueRef:other',
                      'SR_NOT_SHARABLE', 'VM_REQUIRES_SR',
                      'Nothing was changed')
        # shared, or with a PBD on this host, it is usable here
        self.session.records['SR']['OpaqueRef:holder']['shared'] = True
        self.assertEqual({}, destination.validate(
            self.session, bdi(self.info), {'vol-1': self.uuid5}))
        self.session.records['SR']['OpaqueRef:holder']['shared'] = False
        self.session.add('PBD', 'OpaqueRef:here-pbd', SR='OpaqueRef:holder',
                         host='OpaqueRef:host', device_config=dict(
                             self.session.records['PBD'][
                                 'OpaqueRef:holder-pbd']['device_config']))
        self.assertEqual({}, destination.validate(
            self.session, bdi(self.info), {'vol-1': self.uuid5}))

    def _existing(self, target, iqn, host='OpaqueRef:host', sr_type='iscsi'):
        self.session.add('SR', 'OpaqueRef:sr', uuid=self.legacy,
                         type=sr_type)
        self.session.add('PBD', 'OpaqueRef:pbd', SR='OpaqueRef:sr',
                         host=host, device_config={
                             'target': target, 'targetIQN': iqn,
                             'port': '3260'})

    def test_existing_legacy_sr_with_same_target_accepted(self):
        self._existing('192.0.2.10', self.info['data']['target_iqn'])
        self.assertEqual({'vol-1': self.legacy}, destination.validate(
            self.session, bdi(self.info), {'vol-1': self.legacy}))
        self.assertEqual(['SR.get_all_records_where',
                          'PBD.get_all_records_where',
                          'PBD.get_all_records', 'SR.get_record'],
                         self.session.methods())

    def _refused(self, volume_sr_uuid_map, *needles, **kw):
        exc = self.assertRaises(destination.UntrustedSRUuid,
                                destination.validate, self.session,
                                kw.get('bdi', bdi(self.info)),
                                volume_sr_uuid_map)
        for needle in needles:
            self.assertIn(needle, str(exc))
        writes = [m for m in self.session.methods()
                  if not m.endswith(('get_all_records_where',
                                     'get_all_records', 'get_record'))]
        self.assertEqual([], writes)
        return exc

    def test_existing_legacy_sr_on_other_iqn_refused(self):
        self._existing('192.0.2.10', 'iqn.other-tenant')
        self._refused({'vol-1': self.legacy}, 'iqn.other-tenant',
                      self.legacy, 'vol-1', 'before anything was changed')

    def test_existing_legacy_sr_on_other_target_refused(self):
        self._existing('198.51.100.7', self.info['data']['target_iqn'])
        self._refused({'vol-1': self.legacy}, '198.51.100.7')

    def test_existing_legacy_sr_with_pbd_on_another_host_accepted(self):
        self._existing('192.0.2.10', self.info['data']['target_iqn'],
                       host='OpaqueRef:elsewhere-in-the-pool')
        self.assertEqual({'vol-1': self.legacy}, destination.validate(
            self.session, bdi(self.info), {'vol-1': self.legacy}))

    def test_existing_legacy_sr_without_pbd_refused(self):
        self.session.add('SR', 'OpaqueRef:sr', uuid=self.legacy,
                         type='iscsi')
        self._refused({'vol-1': self.legacy}, 'has no PBD')

    def test_existing_legacy_sr_of_other_type_refused(self):
        self._existing('192.0.2.10', self.info['data']['target_iqn'],
                       sr_type='nfs')
        self._refused({'vol-1': self.legacy}, "'nfs'")

    def test_uuid5_sr_of_the_legacy_volume_already_here_refused(self):
        self.session.add('SR', 'OpaqueRef:sr5', uuid=self.uuid5,
                         type='iscsi')
        self._refused({'vol-1': self.legacy}, self.uuid5,
                      'cannot arrive in place', 'Migrate the instance')
        self.assertEqual(['SR.get_all_records_where'],
                         self.session.methods())

    def test_foreign_uuid_refused(self):
        other = naming.legacy_sr_uuid('vol-2')
        self._refused({'vol-1': other}, other, 'vol-1', self.legacy,
                      self.uuid5, '192.0.2.10')
        self.assertEqual([], self.session.calls)

    def test_uuid5_of_other_target_refused(self):
        elsewhere = connection_info('vol-1', iqn='iqn.source-side')
        self._refused({'vol-1': naming.uuid5_sr_uuid(elsewhere['data'])},
                      'another target')

    def test_unknown_volume_refused(self):
        self._refused({'vol-1': self.uuid5, 'vol-9': 'FA15E-D15C-vol-9'},
                      'vol-9', 'not iSCSI volumes of this instance')

    def test_malformed_connection_data_refused(self):
        broken = copy.deepcopy(self.info)
        del broken['data']['target_portal']
        self._refused({'vol-1': self.legacy}, 'target_portal',
                      bdi=bdi(broken))


class StockSourceTargetHeldTestCase(base.TestCase):

    def test_uuid5_name_of_a_stock_source_meets_a_legacy_holder(self):
        session = fakes.FakeSession()
        info = connection_info('vol-1')
        self.assertIsNone(destination.stock_source_target_held_message(
            session, bdi(info)))
        session.add('SR', 'OpaqueRef:h', uuid='FA15E-D15C-vol-0',
                    type='iscsi')
        session.add('PBD', 'OpaqueRef:hp', SR='OpaqueRef:h',
                    device_config={'target': '192.0.2.10', 'port': '3260',
                                   'targetIQN': info['data']['target_iqn']})
        message = destination.stock_source_target_held_message(
            session, bdi(info))
        self.assertIn('FA15E-D15C-vol-0', message)
        self.assertIn(naming.uuid5_sr_uuid(info['data']), message)


class SamePoolTestCase(base.TestCase):
    """Inside a pool: xapi_vm_helpers.ml assert_can_see_SRs."""

    def setUp(self):
        super(SamePoolTestCase, self).setUp()
        self.session = fakes.FakeSession(host_ref='OpaqueRef:dest-host')
        self.info = connection_info('vol-1')
        self.uuid5 = naming.uuid5_sr_uuid(self.info['data'])
        self.session.add('SR', 'OpaqueRef:sr', uuid=self.uuid5,
                         type='iscsi', shared=False)

    def _pbd(self, host, attached=True):
        self.session.add('PBD', 'OpaqueRef:pbd-' + host, SR='OpaqueRef:sr',
                         host=host, currently_attached=attached)

    def test_sr_plugged_only_on_the_source_host_refused(self):
        self._pbd('OpaqueRef:source-host')
        message = destination.same_pool_message(self.session,
                                                bdi(self.info), None)
        for needle in ('vol-1', self.uuid5, 'VM_REQUIRES_SR',
                       'SR_NOT_SHARABLE', 'Nothing was changed',
                       'block migration'):
            self.assertIn(needle, message)
        self.assertEqual(['SR.get_all_records_where',
                          'PBD.get_all_records_where'],
                         self.session.methods())

    def test_sr_plugged_here_passes(self):
        self._pbd('OpaqueRef:source-host')
        self._pbd('OpaqueRef:dest-host')
        self.assertIsNone(destination.same_pool_message(
            self.session, bdi(self.info), None))

    def test_unplugged_pbd_here_does_not_count(self):
        self._pbd('OpaqueRef:dest-host', attached=False)
        self.assertIsNotNone(destination.same_pool_message(
            self.session, bdi(self.info), None))

    def test_sr_not_in_the_pool_passes(self):
        self.session.records['SR'].clear()
        self.assertIsNone(destination.same_pool_message(
            self.session, bdi(self.info), None))
        self.assertEqual(['SR.get_all_records_where'],
                         self.session.methods())

    def test_no_volumes_no_call(self):
        self.assertIsNone(destination.same_pool_message(
            self.session, {'block_device_mapping': []}, None))
        self.assertEqual([], self.session.calls)


class InjectTestCase(base.TestCase):

    def test_sr_connection_data_complete_device_config(self):
        info = connection_info('vol-1', auth_method='CHAP',
                               auth_username='user', auth_password='secret')
        data = info['data']
        snapshot = copy.deepcopy(data)
        legacy = naming.legacy_sr_uuid('vol-1')
        new = destination.sr_connection_data(data, legacy)
        self.assertEqual(snapshot, data)
        self.assertEqual(legacy, new['sr_uuid'])
        self.assertEqual(['target', 'port', 'targetIQN', 'chapuser',
                          'chappassword'], new['introduce_sr_keys'])
        self.assertEqual({'target': '192.0.2.10', 'port': '3260',
                          'targetIQN': data['target_iqn'],
                          'chapuser': 'user', 'chappassword': 'secret'},
                         {k: new[k] for k in new['introduce_sr_keys']})
        self.assertEqual('tempSR-vol-1', new['name_label'])
        self.assertEqual(1, new['target_lun'])

    def test_nova_parse_sr_info_gets_the_source_name(self):
        from nova.virt.xenapi import volume_utils
        data = connection_info('vol-1')['data']
        legacy = naming.legacy_sr_uuid('vol-1')
        new = destination.sr_connection_data(data, legacy)
        sr_uuid, label, params = volume_utils.parse_sr_info(new)
        self.assertEqual(legacy, sr_uuid)
        self.assertEqual('tempSR-vol-1', label)
        params.pop('name_description')
        self.assertEqual(naming.device_config(data), params)

    def test_inject_never_touches_caller(self):
        infos = [connection_info('vol-1'), connection_info('vol-2'),
                 {'driver_volume_type': 'rbd', 'data': {'name': 'x'}}]
        original = bdi(*infos)
        original['root_device_name'] = '/dev/xvda'
        snapshot = copy.deepcopy(original)
        legacy = naming.legacy_sr_uuid('vol-1')
        new = destination.inject(original, {'vol-1': legacy},
                                 destination.sr_connection_data)
        self.assertEqual(snapshot, original)
        mappings = new['block_device_mapping']
        self.assertEqual(legacy, mappings[0]['connection_info']['data'][
            'sr_uuid'])
        self.assertNotIn('sr_uuid', mappings[1]['connection_info']['data'])
        self.assertEqual('/dev/xvda', new['root_device_name'])
        for old, fresh in zip(original['block_device_mapping'], mappings):
            self.assertIsNot(old, fresh)
            self.assertIsNot(old['connection_info'], fresh['connection_info'])
        # nova pops name_label from the data it is given: the caller's
        # structure must not be affected.
        mappings[0]['connection_info']['data'].pop('name_label')
        mappings[1]['connection_info']['data']['x'] = 1
        self.assertEqual(snapshot, original)


class RollbackTestCase(base.TestCase):

    def setUp(self):
        super(RollbackTestCase, self).setUp()
        self.info = connection_info('vol-1')
        self.legacy = naming.legacy_sr_uuid('vol-1')
        self.uuid5 = naming.uuid5_sr_uuid(self.info['data'])

    def names(self, *args):
        return [name for name, _ in destination.rollback_srs(*args)]

    def test_names_follow_trusted_map(self):
        self.assertEqual([self.legacy], self.names(
            bdi(self.info), {'vol-1': self.legacy}, {self.legacy: 'ref'}))
        self.assertEqual([self.uuid5], self.names(bdi(self.info), {}, {}))
        config = destination.rollback_srs(bdi(self.info), {}, {})[0][1]
        self.assertEqual(naming.device_config(self.info['data']), config)

    def test_tampered_names_ignored(self):
        foreign = naming.legacy_sr_uuid('other-tenant')
        got = self.names(bdi(self.info), {'vol-1': foreign, 'x': foreign},
                         {foreign: 'ref'})
        self.assertEqual([self.uuid5], got)
        self.assertIn('Rollback ignores SR %s' % foreign, self.logger.output)

    def test_malformed_bdi_logged_not_raised(self):
        broken = copy.deepcopy(self.info)
        del broken['data']['target_iqn']
        self.assertEqual([], self.names(bdi(broken), {'vol-1': self.legacy},
                                        None))
        self.assertIn('target_iqn', self.logger.output)

    def _session(self, vbds, target='192.0.2.10'):
        session = fakes.FakeSession()
        session.add('SR', 'OpaqueRef:sr', uuid=self.uuid5,
                    VDIs=['OpaqueRef:vdi'], PBDs=['OpaqueRef:pbd'])
        session.add('PBD', 'OpaqueRef:pbd', device_config={
            'target': target, 'targetIQN': self.info['data']['target_iqn'],
            'port': '3260'})
        session.add('VDI', 'OpaqueRef:vdi', VBDs=vbds)
        return session

    def forget(self, session):
        return destination.forget_unused_sr(
            session, self.uuid5, naming.device_config(self.info['data']),
            policy=xapi_retry.Policy(interval=0))

    def test_forget_unused_sr_keeps_used_sr(self):
        session = self._session(['OpaqueRef:vbd'])
        outcome = self.forget(session)
        self.assertEqual(forget.KEPT, outcome.state)
        self.assertIn('a VBD still uses its VDI OpaqueRef:vdi',
                      outcome.reason)
        self.assertNotIn('SR.forget', session.methods())

    def test_forget_unused_sr_keeps_sr_of_another_target(self):
        session = self._session([], target='198.51.100.9')
        outcome = self.forget(session)
        self.assertEqual(forget.KEPT, outcome.state)
        self.assertNotIn('SR.forget', session.methods())
        self.assertIn('198.51.100.9', outcome.reason)

    def test_forget_unused_sr_forgets_idle_sr(self):
        session = self._session([])
        self.assertTrue(self.forget(session).gone)
        self.assertEqual(['PBD.unplug', 'SR.forget'],
                         session.methods()[-2:])
        self.assertTrue(self.forget(session).gone)


class StockSourceSharedSRTestCase(base.TestCase):

    def test_volumes_on_one_target_are_named(self):
        shared = 'iqn.2010-10.org.openstack:shared'
        msg = destination.stock_source_shared_sr_message(bdi(
            connection_info('vol-1', iqn=shared, lun=1),
            connection_info('vol-3'),
            connection_info('vol-2', iqn=shared, lun=2)))
        self.assertIn('volumes vol-1, vol-2 share one iSCSI target', msg)
        self.assertNotIn('vol-3', msg)
        self.assertIn('Install nova-xenapi-sr on the source', msg)

    def test_separate_targets_and_malformed_data_pass(self):
        self.assertIsNone(destination.stock_source_shared_sr_message(bdi(
            connection_info('vol-1'), connection_info('vol-2'))))
        broken = connection_info('vol-1')
        del broken['data']['target_iqn']
        self.assertIsNone(destination.stock_source_shared_sr_message(
            bdi(broken, broken)))


class StaleImportTestCase(base.TestCase):
    """A halted copy of the VM that a failed migrate_send left here."""

    class Session(fakes.FakeSession):
        def call_xenapi(self, method, *args):
            if method == 'VM.destroy':
                self.calls.append((method, args))
                del self.records['VM'][args[0]]
                return ''
            return super(StaleImportTestCase.Session, self).call_xenapi(
                method, *args)

    def test_only_halted_vms_of_the_instance_are_destroyed(self):
        session = self.Session()
        session.add('VM', 'OpaqueRef:stale', name_label='instance-1',
                    uuid='u-stale', power_state='Halted')
        session.add('VM', 'OpaqueRef:running', name_label='instance-1',
                    uuid='u-run', power_state='Running')
        session.add('VM', 'OpaqueRef:tpl', name_label='instance-1',
                    uuid='u-tpl', power_state='Halted', is_a_template=True)
        session.add('VM', 'OpaqueRef:other', name_label='instance-2',
                    uuid='u-other', power_state='Halted')
        self.assertEqual(['u-stale'], destination.destroy_stale_import(
            session, xapi_retry.Policy(interval=0), 'instance-1'))
        self.assertEqual(['OpaqueRef:other', 'OpaqueRef:running',
                          'OpaqueRef:tpl'], sorted(session.records['VM']))
        self.assertEqual(['VM.get_all_records_where', 'VM.destroy'],
                         session.methods())

    def test_nothing_there_costs_one_query(self):
        session = self.Session()
        self.assertEqual([], destination.destroy_stale_import(
            session, xapi_retry.Policy(interval=0), 'instance-1'))
        self.assertEqual(['VM.get_all_records_where'], session.methods())
