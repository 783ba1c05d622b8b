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

"""Scenarios: builder, file format, default, and the state they build."""

import json
import os
import tempfile

from nova_xenapi_sr import naming
from nova_xenapi_sr_tools.mockxapi import array
from nova_xenapi_sr_tools.mockxapi import pool
from nova_xenapi_sr_tools.mockxapi import Scenario
from nova_xenapi_sr_tools.mockxapi import scenario as scenario_mod
from nova_xenapi_sr_tools.mockxapi import storage
from tests import base

PORTAL = '192.0.2.10:3260'
IQN = 'iqn.2010-10.org.openstack:t'


def build(sc):
    world = pool.World()
    scenario_mod.build(world, sc)
    return world


class ScenarioBuilderTest(base.TestCase):

    def test_add_volume_returns_cinder_connection_info(self):
        sc = Scenario()
        ci = sc.add_volume('vol-1', PORTAL, IQN, 3, chap=('u', 'p'))
        self.assertEqual('iscsi', ci['driver_volume_type'])
        data = ci['data']
        self.assertEqual(('vol-1', PORTAL, IQN, 3),
                         (data['volume_id'], data['target_portal'],
                          data['target_iqn'], data['target_lun']))
        self.assertEqual(('CHAP', 'u', 'p'), (data['auth_method'],
                                              data['auth_username'],
                                              data['auth_password']))
        # a fresh dict every time
        ci['data']['target_lun'] = 99
        self.assertEqual(3, sc.connection_info('vol-1')['data']['target_lun'])

    def test_errors(self):
        sc = Scenario()
        sc.add_pool('p')
        self.assertRaises(ValueError, sc.add_pool, 'p')
        sc.add_volume('v', PORTAL, IQN, 1)
        self.assertRaises(ValueError, sc.add_volume, 'v', PORTAL, IQN, 2)
        self.assertRaises(ValueError, sc.add_instance, 'nope', 1)
        self.assertRaises(ValueError, sc.add_instance, 'p', 1,
                          volumes=[('v', 'weird', '/dev/xvdb')])
        self.assertRaises(ValueError, sc.add_instance, 'p', 1,
                          volumes=[('nope', 'legacy', '/dev/xvdb')])

    def test_round_trip_through_json_and_yaml(self):
        sc = Scenario.default()
        tmp = tempfile.mkdtemp()
        self.addCleanup(__import__('shutil').rmtree, tmp)
        path = os.path.join(tmp, 's.json')
        sc.dump(path)
        self.assertEqual(sc.to_dict(), Scenario.load(path).to_dict())
        import yaml
        ypath = os.path.join(tmp, 's.yaml')
        with open(ypath, 'w') as f:
            f.write(yaml.safe_dump(json.loads(open(path).read())))
        self.assertEqual(sc.to_dict(), Scenario.load(ypath).to_dict())

    def test_minimal_file(self):
        sc = Scenario.from_dict({
            'pools': [{'name': 'p', 'hosts': ['h']}],
            'volumes': [{'id': 'v', 'portal': PORTAL, 'iqn': IQN,
                         'lun': 1}],
            'instances': [{'pool': 'p', 'instance_id': 7,
                           'volumes': [['v', 'legacy', '/dev/xvdb']]}]})
        self.assertEqual('root', sc.pools[0]['user'])
        self.assertEqual('iscsi', sc.instances[0]['volumes'][0][3])


class DefaultScenarioTest(base.TestCase):

    def test_documented_content(self):
        sc = Scenario.default()
        self.assertEqual([('pool-a', ['host-a'], 'root', 'mock'),
                          ('pool-b', ['host-b'], 'root', 'mock')],
                         [(p['name'], p['hosts'], p['user'], p['password'])
                          for p in sc.pools])
        styles = sorted(v[1] for i in sc.instances for v in i['volumes'])
        self.assertEqual(['legacy', 'uuid5'], styles)

    def test_built_state(self):
        world = build(Scenario.default())
        db = world.pools['pool-a'].db
        srs = {db.get('SR', r)['uuid']: db.get('SR', r)
               for r in db.refs('SR')}
        self.assertIn(naming.legacy_sr_uuid('vol-legacy'), srs)
        uuid5 = naming.uuid5_sr_uuid(Scenario.default().connection_info(
            'vol-uuid5')['data'])
        self.assertIn(uuid5, srs)
        self.assertEqual('tempSR-%s' % uuid5, srs[uuid5]['name_label'])
        self.assertEqual('tempSR-vol-legacy', srs[naming.legacy_sr_uuid(
            'vol-legacy')]['name_label'])
        vms = {db.get('VM', r)['name_label']: r for r in db.refs('VM')}
        self.assertIn('instance-00000001', vms)
        self.assertIn('instance-00000002', vms)
        vbd = db.field('VM', vms['instance-00000001'], 'VBDs')[0]
        vbd_rec = db.get('VBD', vbd)
        self.assertEqual({'osvol': 'True'}, vbd_rec['other_config'])
        self.assertEqual('1', vbd_rec['userdevice'])
        self.assertTrue(vbd_rec['currently_attached'])
        vdi = db.get('VDI', vbd_rec['VDI'])
        lun = world.array.target('192.0.2.10', 3260,
                                 'iqn.2010-10.org.openstack:'
                                 'mock-target-legacy').luns[1]
        self.assertEqual(array.vdi_uuid(lun.serial), vdi['uuid'])
        self.assertEqual('1', vdi['sm_config']['LUNid'])
        # RawISCSISR.py ISCSIVDI.load: scanned raw iSCSI VDIs are managed;
        # LUNperVDI.py _query: location is the uuid
        self.assertTrue(vdi['managed'])
        self.assertEqual(vdi['uuid'], vdi['location'])
        pbd = db.field('SR', vdi['SR'], 'PBDs')[0]
        self.assertTrue(db.get('PBD', pbd)['currently_attached'])
        self.assertEqual({'target': '192.0.2.10', 'port': '3260',
                          'targetIQN': 'iqn.2010-10.org.openstack:'
                                       'mock-target-legacy'},
                         db.get('PBD', pbd)['device_config'])
        # nothing of pool-a's VMs on pool-b
        dbb = world.pools['pool-b'].db
        self.assertEqual(['Control domain on host: host-b'],
                         [dbb.get('VM', r)['name_label']
                          for r in dbb.refs('VM')])

    def test_uuid5_sr_shared_by_luns_of_one_target(self):
        sc = Scenario()
        sc.add_pool('p', hosts=['h'])
        sc.add_volume('v1', PORTAL, IQN, 1)
        sc.add_volume('v2', PORTAL, IQN, 2)
        sc.add_volume('v3', PORTAL, IQN + '-own', 3)
        sc.add_instance('p', 1, volumes=[('v1', 'uuid5', '/dev/xvdb'),
                                         ('v2', 'uuid5', '/dev/xvdc'),
                                         ('v3', 'legacy', '/dev/xvdd')])
        db = build(sc).pools['p'].db
        iscsi = [db.get('SR', r) for r in db.refs('SR')
                 if db.get('SR', r)['type'] == 'iscsi']
        self.assertEqual(2, len(iscsi))
        self.assertEqual(2, len(db.find('PBD', currently_attached=True)) - 1)

    def test_legacy_and_uuid5_sr_on_one_target_refused(self):
        # SR.py synchronise_new -> VDI.db_introduce: the VDI uuid is taken
        # by the other SR of the pool, SRCommand.py run -> SRScan (40); the
        # builder refuses the state instead of building it
        sc = Scenario()
        sc.add_pool('p', hosts=['h'])
        sc.add_volume('v1', PORTAL, IQN, 1)
        sc.add_volume('v3', PORTAL, IQN, 3)
        sc.add_instance('p', 1, volumes=[('v1', 'uuid5', '/dev/xvdb'),
                                         ('v3', 'legacy', '/dev/xvdd')])
        exc = self.assertRaises(ValueError, build, sc)
        self.assertIn('SR_BACKEND_FAILURE_40', str(exc))
        self.assertIn(naming.legacy_sr_uuid('v3'), str(exc))
        self.assertIn('own target', str(exc))

    def test_vdi_uuids_unique_per_pool(self):
        # one LUN through two SRs of one pool cannot be built: xapi would
        # hold its VDI in one SR only
        sc = Scenario()
        sc.add_pool('p', hosts=['h'])
        sc.add_volume('v2', PORTAL, IQN, 2)
        sc.add_instance('p', 1, volumes=[('v2', 'uuid5', '/dev/xvdc'),
                                         ('v2', 'legacy', '/dev/xvdd')])
        self.assertRaises(ValueError, build, sc)
        # the same volume on two VMs through the same SR is one VDI
        sc = Scenario()
        sc.add_pool('p', hosts=['h'])
        sc.add_volume('v2', PORTAL, IQN, 2)
        sc.add_instance('p', 1, volumes=[('v2', 'uuid5', '/dev/xvdb')])
        sc.add_instance('p', 2, volumes=[('v2', 'uuid5', '/dev/xvdb')])
        db = build(sc).pools['p'].db
        vdis = [r for r in db.refs('VDI') if db.get('VDI', r)['sm_config']]
        self.assertEqual(1, len(vdis))
        self.assertEqual(2, len(db.find('VBD', VDI=vdis[0])))

    def test_chap_password_is_a_secret(self):
        sc = Scenario()
        sc.add_pool('p', hosts=['h'])
        sc.add_volume('v1', PORTAL, IQN, 1, chap=('u', 'pw'))
        sc.add_instance('p', 1, volumes=[('v1', 'legacy', '/dev/xvdb')])
        db = build(sc).pools['p'].db
        config = [db.get('PBD', r)['device_config'] for r in db.refs('PBD')
                  if 'target' in db.get('PBD', r)['device_config']][0]
        self.assertNotIn('chappassword', config)
        secret = db.get('secret', db.by_uuid(
            'secret', config['chappassword_secret']))
        self.assertEqual('pw', secret['value'])
        for ref in db.refs('SR'):
            self.assertNotIn('chappassword', db.get('SR', ref)['sm_config'])

    def test_local_storage_per_host(self):
        """xapi_pbd.ml check_sharing_constraint: one local SR per host.

        Each host's "Local storage" SR is unshared and plugged on that
        host only; the pool's default, suspend-image and crash-dump SR
        is the master's (dbsync_master.ml leaves them to the install).
        """
        sc = Scenario()
        sc.add_pool('p', hosts=['h1', 'h2', 'h3'])
        world = build(sc)
        db = world.pools['p'].db
        local = {}
        for sr in db.find('SR', name_label='Local storage'):
            rec = db.get('SR', sr)
            self.assertEqual(('ext', False), (rec['type'], rec['shared']))
            pbds = db.find('PBD', SR=sr)
            self.assertEqual(1, len(pbds))
            host = db.get('PBD', pbds[0])['host']
            self.assertNotIn(host, local)
            local[host] = sr
            self.assertEqual(sr, db.get('host', host)['suspend_image_sr'])
        self.assertEqual(sorted(db.refs('host')), sorted(local))
        for pbd in db.refs('PBD'):
            storage.check_sharing_constraint(db, db.get('PBD', pbd))
        pool_rec = db.get('pool', db.refs('pool')[0])
        master = world.pools['p'].master
        self.assertEqual([local[master]] * 3,
                         [pool_rec['default_SR'], pool_rec['suspend_image_SR'],
                          pool_rec['crash_dump_SR']])

    def test_pool_basics(self):
        world = build(Scenario.default())
        for p in world.pools.values():
            db = p.db
            pool_rec = db.get('pool', db.refs('pool')[0])
            self.assertEqual(p.master, pool_rec['master'])
            self.assertEqual('ext', db.get('SR', pool_rec['default_SR'])[
                'type'])
            host = db.get('host', p.master)
            self.assertEqual('XCP', host['software_version'][
                'platform_name'])
            pifs = db.find('PIF', host=p.master, management=True)
            self.assertEqual(1, len(pifs))
            dom0 = db.find('VM', domid='0', resident_on=p.master)
            self.assertEqual(1, len(dom0))


class AddSRTest(base.TestCase):

    def test_sr_without_vm(self):
        sc = Scenario()
        sc.add_pool('p', hosts=['h1', 'h2'])
        sc.add_volume('v1', PORTAL, IQN, 1)
        sc.add_sr('p', 'v1', 'legacy', plugged=False)
        sc.add_sr('p', 'v1', sr_uuid='not-the-right-one', host='h2')
        sc = Scenario.from_dict(json.loads(json.dumps(sc.to_dict())))
        world = build(sc)
        db = world.pools['p'].db
        by_uuid = {db.get('SR', r)['uuid']: r for r in db.refs('SR')}
        legacy = by_uuid[naming.legacy_sr_uuid('v1')]
        pbd = db.get('PBD', db.field('SR', legacy, 'PBDs')[0])
        self.assertFalse(pbd['currently_attached'])
        wrong = by_uuid['not-the-right-one']
        pbd = db.get('PBD', db.field('SR', wrong, 'PBDs')[0])
        self.assertTrue(pbd['currently_attached'])
        self.assertEqual('h2', db.get('host', pbd['host'])['name_label'])
        self.assertEqual('192.0.2.10', pbd['device_config']['target'])
        # scanned: it shows every LUN of the target
        self.assertEqual(
            [world.array.target('192.0.2.10', 3260, IQN).luns[1].vdi_uuid],
            [db.get('VDI', r)['uuid'] for r in db.field('SR', wrong,
                                                        'VDIs')])
        self.assertEqual([], db.field('SR', legacy, 'VDIs'))

    def test_instances_on_two_hosts_cannot_share_the_uuid5_sr(self):
        # xapi_pbd.ml check_sharing_constraint: nova's SRs are unshared, so
        # the second host cannot plug the SR the first one has plugged
        sc = Scenario()
        sc.add_pool('p', hosts=['h1', 'h2'])
        sc.add_volume('v1', PORTAL, IQN, 1)
        sc.add_volume('v2', PORTAL, IQN, 2)
        sc.add_instance('p', 1, volumes=[('v1', 'uuid5', '/dev/xvdb')],
                        host='h1')
        sc.add_instance('p', 2, volumes=[('v2', 'uuid5', '/dev/xvdb')],
                        host='h2')
        exc = self.assertRaises(ValueError, build, sc)
        self.assertIn('SR_NOT_SHARABLE', str(exc))
        self.assertIn('host h2', str(exc))

    def test_instances_on_two_hosts_with_own_targets(self):
        sc = Scenario()
        sc.add_pool('p', hosts=['h1', 'h2'])
        sc.add_volume('v1', PORTAL, IQN, 1)
        sc.add_volume('v2', PORTAL, IQN + '-2', 1)
        sc.add_instance('p', 1, volumes=[('v1', 'uuid5', '/dev/xvdb')],
                        host='h1')
        sc.add_instance('p', 2, volumes=[('v2', 'legacy', '/dev/xvdb')],
                        host='h2')
        world = build(sc)
        db = world.pools['p'].db
        for name, host in (('instance-00000001', 'h1'),
                           ('instance-00000002', 'h2')):
            vm = db.find('VM', name_label=name)[0]
            vdi = db.get('VBD', db.find('VBD', VM=vm)[0])['VDI']
            pbd = db.get('PBD', db.find('PBD', SR=db.get('VDI', vdi)['SR'])[0])
            self.assertEqual(host, db.get('host', pbd['host'])['name_label'])

    def test_vifs_on_nova_interim_networks(self):
        # vif.py create_vif_interim_network: "net-<port>", so nova's
        # network cleanup on the source (delete_network_and_bridge) runs
        sc = Scenario()
        sc.add_pool('p', hosts=['h'])
        sc.add_instance('p', 1, vifs=[{'id': 'port-1'}])
        db = build(sc).pools['p'].db
        vif = db.get('VIF', db.refs('VIF')[0])
        net = db.get('network', vif['network'])
        self.assertEqual('net-port-1', net['name_label'])
        self.assertNotEqual('xenbr0', net['bridge'])
        self.assertEqual({'assume_network_is_shared': 'true'},
                         net['other_config'])
