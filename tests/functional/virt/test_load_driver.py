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

"""nova loads XenAPISRDriver through the shim, as nova-compute does."""

import importlib
import os

import fixtures

from nova_xenapi_sr_tools import fixture as xs_fixture
from nova_xenapi_sr_tools.mockxapi import fixture
from nova_xenapi_sr_tools.mockxapi import Scenario
from nova_xenapi_sr_tools import novaenv
from tests import base

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


class LoadComputeDriverTestCase(base.TestCase):

    def setUp(self):
        super(LoadComputeDriverTestCase, self).setUp()
        novaenv.prepare()
        self.useFixture(xs_fixture.ObjectRegistryFixture())
        import nova.virt
        try:
            importlib.import_module('nova.virt.xenapi_sr.driver')
        except ImportError:
            # A development tree: pbr installs the shim into nova/virt on
            # a real node (and under tox); here, look for it in the repo.
            self.useFixture(fixtures.MonkeyPatch(
                'nova.virt.__path__',
                list(nova.virt.__path__) + [os.path.join(REPO, 'nova',
                                                         'virt')]))

    def test_load_compute_driver_after_rpc_init(self):
        import nova.conf
        import nova.objects
        from nova import rpc
        from nova.virt import driver as virt_driver
        from nova.virt import virtapi

        self.assertIsNotNone(rpc.TRANSPORT)     # as nova-compute, first
        sc = Scenario()
        sc.add_pool('pool-a', hosts=['host-a'])
        xapi = self.useFixture(fixture.MockXapiFixture(sc))
        for key, value in (('connection_url', xapi.urls['pool-a']),
                           ('connection_password', 'mock')):
            nova.conf.CONF.set_override(key, value, group='xenserver')
            self.addCleanup(nova.conf.CONF.clear_override, key,
                            group='xenserver')

        drv = virt_driver.load_compute_driver(
            virtapi.VirtAPI(), 'xenapi_sr.driver.XenAPISRDriver')

        from nova_xenapi_sr.virt.driver import XenAPISRDriver
        self.assertIsInstance(drv, XenAPISRDriver)
        self.assertEqual('1.5', nova.objects.XenapiLiveMigrateData.VERSION)
        # it really talked to the pool: nova's start-up sequence ran
        calls = [m for m, _ in xapi.pool('pool-a').calls()]
        self.assertIn('session.login_with_password', calls)
        self.assertIn('host.call_plugin', calls)
