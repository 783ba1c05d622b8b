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

"""Shared set-up for the mock XAPI's functional tests (PyPI SDK)."""

import XenAPI

from nova_xenapi_sr_tools.mockxapi import fixture
from nova_xenapi_sr_tools.mockxapi import Scenario
from tests import base

PORTAL = '192.0.2.10:3260'
IQN = 'iqn.2010-10.org.openstack:target-1'
CHAP_PORTAL = '192.0.2.20:3260'
CHAP_IQN = 'iqn.2010-10.org.openstack:chap-target'


def two_pools(**pool_kwargs):
    """Two pools, four LUNs and one VM.

    pool-a/host-a and pool-b/host-b, three LUNs behind one target and a
    CHAP LUN; instance 1 on pool-a with vol-1 on a uuid5 SR.
    """
    sc = Scenario()
    sc.add_pool('pool-a', hosts=['host-a'], **pool_kwargs)
    sc.add_pool('pool-b', hosts=['host-b'], **pool_kwargs)
    sc.add_volume('vol-1', PORTAL, IQN, 1)
    sc.add_volume('vol-2', PORTAL, IQN, 2)
    sc.add_volume('vol-3', PORTAL, IQN, 3)
    sc.add_volume('vol-chap', CHAP_PORTAL, CHAP_IQN, 1,
                  chap=('chapuser', 's3cret'))
    sc.add_instance('pool-a', 1, volumes=[('vol-1', 'uuid5', '/dev/xvdb')])
    return sc


class MockXapiTestCase(base.TestCase):
    """Starts ``scenario()`` and logs an SDK session into each pool."""

    def scenario(self):
        return two_pools()

    def setUp(self):
        super(MockXapiTestCase, self).setUp()
        self.sc = self.scenario()
        self.fx = self.useFixture(fixture.MockXapiFixture(self.sc))
        self.srv = self.fx.server
        self.a = self.fx.session('pool-a').xenapi
        self.b = self.fx.session('pool-b').xenapi

    def assertFailure(self, expected, func, *args):
        """Assert ``func(*args)`` raises ``XenAPI.Failure``.

        Its details must be exactly ``expected``.
        """
        exc = self.assertRaises(XenAPI.Failure, func, *args)
        self.assertEqual(list(expected), exc.details)
        return exc

    def iscsi_sr(self, xenapi, connection_data, sr_uuid=None,
                 sr_type='iscsi', plug=True, host=None):
        """Introduce an SR the way nova does; return ``(sr, pbd)``."""
        from nova_xenapi_sr import naming
        sr_uuid = sr_uuid or naming.uuid5_sr_uuid(connection_data)
        config = naming.device_config(connection_data)
        sr = xenapi.SR.introduce(sr_uuid, 'tempSR-%s' % sr_uuid, '',
                                 sr_type, '', False, dict(config))
        host = host or xenapi.host.get_all()[0]
        pbd = xenapi.PBD.create({'host': host, 'SR': sr,
                                 'device_config': config})
        if plug:
            xenapi.PBD.plug(pbd)
        return sr, pbd

    def data(self, volume_id):
        return self.sc.connection_info(volume_id)['data']
