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

"""Base test case in oslotest's manner, on testtools.

What it honours, as oslotest's ``BaseTestCase`` does: a per-test timeout
(``OS_TEST_TIMEOUT`` seconds, else :attr:`TestCase.DEFAULT_TIMEOUT`; 0
disables it), stdout and stderr captured when ``OS_STDOUT_CAPTURE`` /
``OS_STDERR_CAPTURE`` are true, and logs captured in ``self.logger`` (a
``fixtures.FakeLogger`` at DEBUG level, so a test can assert on what was
logged); with ``OS_LOG_CAPTURE`` true (tox sets it) the records go only
there, otherwise they also reach the handlers already configured.

It is not oslotest's class itself: that one stops every active
``mock.patch`` after each test (``mock.patch.stopall``), which would also
stop the patches nova's functional-test fixtures start once per test
class for the in-process nova services.
"""

import logging
import os

import fixtures
import testtools

_TRUE = ('1', 'true', 'yes', 'on')


def _env_true(name):
    return os.environ.get(name, '').lower() in _TRUE


class TestCase(testtools.TestCase):
    """Base class of every nova-xenapi-sr test."""

    #: Seconds a test may run when ``OS_TEST_TIMEOUT`` is not set;
    #: functional tests talk to real servers.
    DEFAULT_TIMEOUT = 120

    def setUp(self):
        super(TestCase, self).setUp()
        try:
            timeout = int(os.environ.get('OS_TEST_TIMEOUT',
                                         self.DEFAULT_TIMEOUT))
        except ValueError:
            timeout = self.DEFAULT_TIMEOUT
        if timeout > 0:
            self.useFixture(fixtures.Timeout(timeout, gentle=True))
        for name, stream in (('OS_STDOUT_CAPTURE', 'stdout'),
                             ('OS_STDERR_CAPTURE', 'stderr')):
            if _env_true(name):
                captured = self.useFixture(fixtures.StringStream(stream))
                self.useFixture(fixtures.MonkeyPatch('sys.' + stream,
                                                     captured.stream))
        self.logger = self.useFixture(fixtures.FakeLogger(
            level=logging.DEBUG, nuke_handlers=_env_true('OS_LOG_CAPTURE'),
            format='%(levelname)s %(name)s %(message)s'))
        self.log_fixture = self.logger
        self.useFixture(fixtures.EnvironmentVariable(
            'OS_NOVA_DISABLE_EVENTLET_PATCHING', '1'))
