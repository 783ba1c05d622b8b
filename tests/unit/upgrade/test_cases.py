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

"""The case matrix and the per-case scenarios."""

import json
import os
import tempfile

from nova_xenapi_sr import naming
from nova_xenapi_sr_tools.mockxapi import pool as mock_pool
from nova_xenapi_sr_tools.mockxapi import scenario as mock_scenario
from nova_xenapi_sr_tools.upgrade import cases
from tests import base


class TestMatrix(base.TestCase):

    def test_24_distinct_cases(self):
        matrix = cases.matrix(cases.volume_sets())
        self.assertEqual(24, len(matrix))
        keys = set((c['conductor'], c['source'], c['destination'],
                    c['volumes']) for c in matrix)
        self.assertEqual(24, len(keys))
        self.assertEqual({'uuid5', 'legacy', 'mixed'},
                         set(c['volumes'] for c in matrix))

    def test_all_extension_cases(self):
        matrix = cases.matrix(cases.volume_sets())
        self.assertEqual(3, len([c for c in matrix
                                 if cases.is_all_extension(c)]))

    def test_select(self):
        matrix = cases.matrix(cases.volume_sets())
        picked = cases.select(matrix, conductor='stock',
                              volumes=['legacy', 'mixed'])
        self.assertEqual(8, len(picked))
        self.assertTrue(all(c['conductor'] == 'stock' for c in picked))


class TestDefaultScenario(base.TestCase):

    def sets(self):
        return dict((s.name, s) for s in cases.volume_sets())

    def styles(self, name):
        return [style for _vol, style, _dev in self.sets()[name]
                .volume_entries]

    def test_volume_sets(self):
        self.assertEqual(['uuid5', 'uuid5'], self.styles('uuid5'))
        self.assertEqual(['legacy', 'legacy'], self.styles('legacy'))
        self.assertEqual(['legacy', 'uuid5'], self.styles('mixed'))

    def _uuid5_names(self, vset):
        sc = mock_scenario.Scenario.from_dict(vset.case_scenario())
        return set(naming.uuid5_sr_uuid(sc.connection_info(vol)['data'])
                   for vol, _style, _dev in vset.volume_entries)

    def test_uuid5_volumes_have_targets_of_their_own(self):
        # The default sets vary only the naming style.
        self.assertEqual(2, len(self._uuid5_names(self.sets()['uuid5'])))

    def test_shipped_shared_target_scenario_shares_one_sr(self):
        path = os.path.join(os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
            'etc', 'verify-upgrade', 'shared-target.json')
        [vset] = cases.volume_sets(cases.load_scenario(path))
        self.assertEqual(1, len(self._uuid5_names(vset)))

    def test_case_scenario_has_its_instance_and_the_bystanders(self):
        vset = self.sets()['legacy']
        data = vset.case_scenario()
        self.assertEqual([(2, 'pool-source'), (4, 'pool-destination')],
                         [(i['instance_id'], i['pool'])
                          for i in data['instances']])
        for instance in data['instances']:
            self.assertNotIn('volume_set', instance)
            self.assertNotIn('bystander', instance)
        for volume in data['volumes']:
            self.assertNotIn('destination_portal', volume)
        self.assertNotIn('source_pool', data)
        # The mock accepts it as it is.
        sc = mock_scenario.Scenario.from_dict(data)
        self.assertEqual(2, len(sc.pools))
        self.assertEqual('instance-00000002', vset.vm_name)
        self.assertEqual(['instance-00000004'], vset.bystander_vm_names)

    def test_bystanders_are_not_volume_sets(self):
        self.assertEqual(['uuid5', 'legacy', 'mixed'],
                         [s.name for s in cases.volume_sets()])
        data = cases.default_scenario()
        data['instances'][3]['pool'] = 'pool-source'
        self.assertEqual(3, len(cases.volume_sets(data)))

    def test_shipped_other_destination_target_scenario(self):
        path = os.path.join(os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
            'etc', 'verify-upgrade', 'other-destination-target.json')
        [vset] = cases.volume_sets(cases.load_scenario(path))
        self.assertEqual(
            {'vol-moved-leg': ('192.0.2.20:3260',
                               'iqn.2010-10.org.openstack:'
                               'vol-moved-leg-dest', 1)},
            vset.destination_targets())
        for name in ('uuid5', 'legacy', 'mixed'):
            self.assertEqual({}, self.sets()[name].destination_targets())

    def test_destination_bystander_shares_the_mixed_uuid5_sr(self):
        sc = mock_scenario.Scenario.from_dict(
            self.sets()['mixed'].case_scenario())
        self.assertEqual(
            naming.uuid5_sr_uuid(sc.connection_info('vol-mix-u5')['data']),
            naming.uuid5_sr_uuid(
                sc.connection_info('vol-dst-neighbour')['data']))

    def test_shipped_source_neighbour_scenario(self):
        path = os.path.join(os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
            'etc', 'verify-upgrade', 'source-neighbour.json')
        [vset] = cases.volume_sets(cases.load_scenario(path))
        self.assertEqual(['instance-00000002'], vset.bystander_vm_names)
        sc = mock_scenario.Scenario.from_dict(vset.case_scenario())
        self.assertEqual(
            naming.uuid5_sr_uuid(sc.connection_info('vol-moving')['data']),
            naming.uuid5_sr_uuid(
                sc.connection_info('vol-neighbour')['data']))

    def test_shipped_target_held_scenario_builds(self):
        # Each volume set's case builds in the mock (scenario.build follows
        # xapi's rules and refuses what xapi could not reach), and on the
        # destination a legacy SR of a bystander already shows the
        # migrating volume's LUN: the target is held there.
        path = os.path.join(os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
            'etc', 'verify-upgrade', 'target-held.json')
        vsets = cases.volume_sets(cases.load_scenario(path))
        self.assertEqual(['uuid5-target-held-by-legacy',
                          'legacy-target-held-by-legacy'],
                         [v.name for v in vsets])
        for vset, volume, holder in zip(
                vsets, ('vol-held-u5', 'vol-held-leg'),
                ('vol-dst-legacy-holder', 'vol-dst-legacy-holder-2')):
            self.assertEqual(['instance-00000008', 'instance-00000009'],
                             vset.bystander_vm_names)
            sc = mock_scenario.Scenario.from_dict(vset.case_scenario())
            world = mock_pool.World()
            mock_scenario.build(world, sc)
            data = sc.connection_info(volume)['data']
            target = world.array.target(*naming.iscsi_target(data))
            lun = target.luns[int(data['target_lun'])]
            db = world.pools['pool-destination'].db
            holders = [db.get('SR', db.get('VDI', v)['SR'])['uuid']
                       for v in db.find('VDI', uuid=lun.vdi_uuid)]
            self.assertEqual([naming.legacy_sr_uuid(holder)], holders)
            source = world.pools['pool-source'].db
            vm = source.find('VM', name_label=vset.vm_name)
            self.assertEqual(1, len(vm))

    def test_hosts_and_pools(self):
        vset = self.sets()['mixed']
        self.assertEqual('host-source', vset.host('source'))
        self.assertEqual('host-destination', vset.host('destination'))
        self.assertEqual('pool-destination', vset.pool_name('destination'))
        self.assertEqual(('root', 'mock'), vset.credentials('source'))


class TestScenarioFiles(base.TestCase):

    def write(self, data):
        fd, path = tempfile.mkstemp(suffix='.json')
        with os.fdopen(fd, 'w') as handle:
            json.dump(data, handle)
        self.addCleanup(os.unlink, path)
        return path

    def test_mock_file_without_extra_keys(self):
        data = mock_scenario.Scenario.default().to_dict()
        sets = cases.volume_sets(cases.load_scenario(self.write(data)))
        self.assertEqual(['instance-1', 'instance-2'],
                         [s.name for s in sets])
        self.assertEqual('pool-a', sets[0].source_pool)
        self.assertEqual('pool-b', sets[0].destination_pool)

    def test_named_pools_and_sets(self):
        data = cases.default_scenario()
        data['source_pool'], data['destination_pool'] = (
            'pool-destination', 'pool-source')
        data['instances'][0]['pool'] = 'pool-destination'
        sets = cases.volume_sets(data)
        self.assertEqual(['uuid5'], [s.name for s in sets])

    def test_one_pool_is_an_error(self):
        data = cases.default_scenario()
        data['pools'] = data['pools'][:1]
        self.assertRaises(cases.ScenarioError, cases.volume_sets, data)

    def test_unknown_pool_is_an_error(self):
        data = dict(cases.default_scenario(), destination_pool='nope')
        self.assertRaises(cases.ScenarioError, cases.volume_sets, data)

    def test_no_instance_on_source_is_an_error(self):
        data = dict(cases.default_scenario(), instances=[])
        self.assertRaises(cases.ScenarioError, cases.volume_sets, data)

    def test_duplicate_set_names_are_an_error(self):
        data = cases.default_scenario()
        data['instances'][1]['volume_set'] = 'uuid5'
        self.assertRaises(cases.ScenarioError, cases.volume_sets, data)

    def test_not_a_scenario(self):
        path = self.write([1, 2])
        self.assertRaises(cases.ScenarioError, cases.load_scenario, path)
