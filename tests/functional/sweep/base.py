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

"""One in-process nova deployment per test class, set up for sweeps."""

from nova_xenapi_sr_tools.faultsweep import runner
from tests import base


class SweepTestCase(base.TestCase):
    """nova's real services over the mock XAPI, started for the class."""

    flavour = runner.EXTENSION
    max_concurrent_live_migrations = 1

    @classmethod
    def setUpClass(cls):
        super(SweepTestCase, cls).setUpClass()
        dep = runner.deployment(
            cls.flavour,
            max_concurrent_live_migrations=cls.max_concurrent_live_migrations)
        try:
            dep.setUp()
            runner.configure(dep)
        except Exception:
            dep.cleanUp()
            raise
        cls.deployment = dep

    @classmethod
    def tearDownClass(cls):
        cls.deployment.cleanUp()
        super(SweepTestCase, cls).tearDownClass()

    def setUp(self):
        super(SweepTestCase, self).setUp()
        self.dep = self.deployment
