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

"""``nova-xenapi-sr-status upgrade check`` counts the legacy-SR volumes of
its host by reading the mock XAPI (port 80 on loopback: runs as root)."""

from oslo_config import cfg
from oslo_upgradecheck import upgradecheck

from nova_xenapi_sr.cmd import status
from nova_xenapi_sr import naming
from nova_xenapi_sr_tools.mockxapi import api
from nova_xenapi_sr_tools.mockxapi import fixture
from nova_xenapi_sr_tools.mockxapi import Scenario
from tests import base
from tests.unit.cmd import test_status

Code = upgradecheck.Code
PORTAL = '192.0.2.10:3260'
IQN = 'iqn.2010-10.org.openstack:target-1'


class TestLegacyVolumes(base.TestCase):

    def check(self, sc, password='mock', prepare=None):
        fx = self.useFixture(fixture.MockXapiFixture(sc))
        if prepare is not None:
            prepare(fx)
        conf = cfg.ConfigOpts()
        conf.register_opt(cfg.StrOpt('compute_driver'))
        test_status.xenserver_opts(conf)
        conf([])
        conf.set_override('compute_driver', status.EXTENSION_DRIVER)
        conf.set_override('connection_url', fx.urls['pool-a'],
                          group='xenserver')
        conf.set_override('connection_password', password,
                          group='xenserver')
        return fx, status.Checks(conf)._check_legacy_volumes()

    def scenario(self):
        sc = Scenario()
        sc.add_pool('pool-a', hosts=['host-a', 'host-a2'])
        # One target per legacy volume: xapi keeps a LUN in one SR per
        # pool, so SRs of one target cannot have both namings here
        # (the mock's SR.scan answers SR_BACKEND_FAILURE_40).
        for lun in (1, 2, 3, 4):
            sc.add_volume('vol-%d' % lun, PORTAL,
                          IQN if lun == 2 else '%s-%d' % (IQN, lun), lun)
        sc.add_instance('pool-a', 1, volumes=[
            ('vol-1', 'legacy', '/dev/xvdb'), ('vol-2', 'uuid5', '/dev/xvdc')])
        sc.add_instance('pool-a', 2, volumes=[('vol-3', 'legacy',
                                               '/dev/xvdb')])
        # On the other host of the pool: not counted here.
        sc.add_instance('pool-a', 3, host='host-a2',
                        volumes=[('vol-4', 'legacy', '/dev/xvdb')])
        return sc

    def test_counts_this_hosts_legacy_volumes(self):
        fx, result = self.check(self.scenario())
        self.assertEqual(Code.SUCCESS, result.code)
        self.assertEqual('Legacy SRs hold 2 of the 3 volumes attached on '
                         'this host (they live-migrate only between '
                         'computes that both run nova-xenapi-sr).',
                         result.details)
        calls = [method for method, _ in fx.calls('pool-a')]
        self.assertEqual(['session.login_with_password',
                          'session.get_this_host', 'event.from',
                          'session.logout'], calls)
        for method in calls:
            self.assertTrue(api.read_only(method), method)

    def test_none_legacy(self):
        sc = Scenario()
        sc.add_pool('pool-a', hosts=['host-a'])
        sc.add_volume('vol-1', PORTAL, IQN, 1)
        sc.add_instance('pool-a', 1, volumes=[('vol-1', 'uuid5',
                                               '/dev/xvdb')])
        _, result = self.check(sc)
        self.assertEqual((Code.SUCCESS, 'Legacy SRs hold 0 of the 1 '
                          'volumes attached on this host.'),
                         (result.code, result.details))

    def test_a_volume_that_cannot_migrate_anywhere(self):
        sc = self.scenario()
        sc.add_volume('vol-5', '192.0.2.40:3260', 'iqn.x:5', 1)
        wrong = naming.target_sr_uuid('192.0.2.99', '3260', 'iqn.other')
        sc.add_sr('pool-a', 'vol-5', sr_uuid=wrong)

        def attach_through_wrong_sr(fx):
            # Attach vol-5's LUN to instance 1 through an SR named by uuid5
            # of another target than the one it points at.
            with fx.server.world.lock:
                db = fx.pool('pool-a').db
                sr = db.find('SR', uuid=wrong)[0]
                vm = db.find('VM', name_label='instance-00000001')[0]
                vdi = db.create('VDI', SR=sr, name_label='LUN1')
                db.create('VBD', VM=vm, VDI=vdi, userdevice='3',
                          device='xvdd', currently_attached=True,
                          other_config={'osvol': 'True'})

        _, result = self.check(sc, prepare=attach_through_wrong_sr)
        self.assertEqual(Code.WARNING, result.code)
        self.assertIn('1 cannot be live-migrated anywhere: instance ',
                      result.details)
        self.assertIn('volume xvdd on SR %s' % wrong, result.details)
        self.assertIn('nova-xenapi-sr audit', result.details)

    def test_bad_password(self):
        _, result = self.check(self.scenario(), password='wrong')
        self.assertEqual(Code.FAILURE, result.code)
        self.assertIn('refused user root', result.details)
