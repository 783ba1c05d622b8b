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

"""Test fixtures: a running mock XAPI, in the style of
``oslo_versionedobjects.fixture``.

::

    class MyTest(testtools.TestCase):
        def setUp(self):
            super().setUp()
            self.xapi = self.useFixture(MockXapiFixture(scenario))
            url = self.xapi.urls['pool-a']
            self.xapi.server.pool('pool-a').calls()

The server stops (and every connection to it is cut) at clean-up.
"""

import fixtures

from nova_xenapi_sr_tools.mockxapi import scenario as scenario_mod
from nova_xenapi_sr_tools.mockxapi import service


class MockXapiFixture(fixtures.Fixture):
    """Serve ``scenario`` (default: ``Scenario.default()``) for a test.

    Attributes after set-up: ``server`` (the :class:`MockXapi`), ``urls``
    (pool name -> URL), ``scenario``. ``gc_interval``: seconds between
    database GC passes (default xapi's 30; 0: only ``server.run_gc()``).
    """

    def __init__(self, scenario=None, listen=None, gc_interval=None):
        super(MockXapiFixture, self).__init__()
        self.scenario = scenario or scenario_mod.Scenario.default()
        self.listen = listen
        self.gc_interval = gc_interval
        self.server = None

    def _setUp(self):
        kwargs = {}
        if self.gc_interval is not None:
            kwargs['gc_interval'] = self.gc_interval
        self.server = service.MockXapi(self.scenario, listen=self.listen,
                                       **kwargs)
        self.server.start()
        self.addCleanup(self.server.stop)

    @property
    def urls(self):
        return self.server.urls

    def pool(self, name):
        return self.server.pool(name)

    def calls(self, pool):
        """The call log of ``pool``: ``[(method, args)]``."""
        return self.server.pool(pool).calls()

    def inspect(self, pool):
        """The state view of ``pool`` (see ``Pool.inspect``)."""
        return self.server.pool(pool).inspect()

    def session(self, pool, user='root', password='mock'):
        """A logged-in PyPI ``XenAPI.Session`` to ``pool``.

        It is logged out at clean-up.
        """
        import XenAPI
        session = XenAPI.Session(self.urls[pool])
        session.login_with_password(user, password, '2.1', 'test')

        def logout():
            try:
                session.xenapi.session.logout()
            except Exception:
                pass
        self.addCleanup(logout)
        return session
