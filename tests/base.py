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

"""Base test case: every test gets a timeout, captured logs and a clean
configuration, so the tests themselves stay short."""

import os

import fixtures
import testtools

#: Seconds a single test may run; functional tests talk to real servers.
DEFAULT_TIMEOUT = int(os.environ.get('OS_TEST_TIMEOUT', '120'))


class TestCase(testtools.TestCase):
    """Base class of every nova-xenapi-sr test."""

    def setUp(self):
        super(TestCase, self).setUp()
        self.useFixture(fixtures.Timeout(DEFAULT_TIMEOUT, gentle=True))
        self.logger = self.useFixture(
            fixtures.FakeLogger(level='DEBUG', format='%(levelname)s '
                                '%(name)s %(message)s'))
        self.useFixture(fixtures.EnvironmentVariable(
            'OS_NOVA_DISABLE_EVENTLET_PATCHING', '1'))
