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

"""Base test case, on oslotest's ``BaseTestCase``.

From oslotest: a per-test timeout (``OS_TEST_TIMEOUT`` seconds, else
:attr:`TestCase.DEFAULT_TIMEOUT`; 0 disables it), stdout and stderr
captured when ``OS_STDOUT_CAPTURE`` / ``OS_STDERR_CAPTURE`` are true, a
private ``TMPDIR`` and ``HOME`` per test, and ``mock.patch.stopall``.

Logs: ``self.logger`` is a ``fixtures.FakeLogger`` at DEBUG level, so a
test can assert on what was logged. With ``OS_LOG_CAPTURE`` true (tox
sets it) the log records go only there; otherwise they also reach the
handlers already configured, so they show while a test runs.
"""

import logging
import os

import fixtures
from oslotest import base

_TRUE = ('1', 'true', 'yes', 'on')


class TestCase(base.BaseTestCase):
    """Base class of every nova-xenapi-sr test."""

    #: Seconds a test may run when ``OS_TEST_TIMEOUT`` is not set;
    #: functional tests talk to real servers.
    DEFAULT_TIMEOUT = 120

    def setUp(self):
        super(TestCase, self).setUp()
        self.useFixture(fixtures.EnvironmentVariable(
            'OS_NOVA_DISABLE_EVENTLET_PATCHING', '1'))

    def _fake_logs(self):
        capture = os.environ.get('OS_LOG_CAPTURE', '').lower() in _TRUE
        self.logger = self.useFixture(fixtures.FakeLogger(
            level=logging.DEBUG, nuke_handlers=capture,
            format='%(levelname)s %(name)s %(message)s'))
        self.log_fixture = self.logger
