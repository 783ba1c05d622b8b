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

"""Test cases running nova 21's real services in this process.

:class:`NovaTestCase` starts one :class:`~nova_xenapi_sr_tools.inprocess.
Deployment` per test class (``setUpClass``): nova-api, conductor,
scheduler, placement and one nova-compute per node, their drivers given by
``drivers``. Each test starts a new case with ``self.dep.reset(scenario)``
(the mock's world and the Cinder fake are new; nova keeps running).
"""

import uuid

import testtools

from nova_xenapi_sr_tools import inprocess
from tests import base

# Loaded with the test modules, before any test parses nova's
# configuration (novaenv.prepare does).
inprocess.preload()

EXTENSION = inprocess.EXTENSION
STOCK = inprocess.STOCK

#: Volume names in the tests map to these UUIDs (nova's notifications
#: need Cinder volume ids to be UUIDs, as real Cinder's are).
_VOLUME_NS = uuid.UUID('5b0c0c59-8a65-4e0a-9d2a-3c5c2b3d0e01')


def volume_uuid(name):
    """The Cinder volume id of the test volume called ``name``."""
    return str(uuid.uuid5(_VOLUME_NS, name))


class NovaTestCase(base.TestCase):
    """nova's real services, started once for the class."""

    drivers = (EXTENSION, EXTENSION)
    nodes = inprocess.deployment.DEFAULT_NODES
    stock_registry = False
    #: nova's [DEFAULT] max_concurrent_live_migrations (0: unlimited)
    max_concurrent_live_migrations = 1

    @classmethod
    def setUpClass(cls):
        super(NovaTestCase, cls).setUpClass()
        dep = inprocess.Deployment(drivers=cls.drivers, nodes=cls.nodes,
                                   stock_registry=cls.stock_registry,
                                   max_concurrent_live_migrations=(
                                       cls.max_concurrent_live_migrations))
        dep.setUp()  # cleans up after itself if it fails
        cls.deployment = dep

    @classmethod
    def tearDownClass(cls):
        cls.deployment.cleanUp()
        super(NovaTestCase, cls).tearDownClass()

    def addCleanup(self, function, *args, **kwargs):
        # oslotest's addCleanup registers mock.patch.stopall first, which
        # would also stop the patches nova's own fixtures started for the
        # whole class (OpenStackSDKFixture's placement proxy: the next
        # test's migration then fails with MissingAuthPlugin). This case's
        # patches are fixtures that stop themselves.
        testtools.TestCase.addCleanup(self, function, *args, **kwargs)

    def setUp(self):
        super(NovaTestCase, self).setUp()
        self.dep = self.deployment

    def compute(self, host):
        return self.dep.computes[host]

    def retry_without_waiting(self):
        """The drivers' retry policies retry at once, for this test.

        For tests that count calls and attempts, not seconds.
        """
        for compute in self.dep.computes.values():
            policy = getattr(compute.driver, '_policy', None)
            if policy is not None:
                self.addCleanup(setattr, policy, 'interval',
                                policy.interval)
                policy.interval = 0

    def wrap_driver(self, host, name, wrapper):
        """Replace ``driver.<name>`` of ``host`` for this test only.

        ``wrapper(original)`` returns the replacement.
        """
        self._wrap(self.compute(host).driver, name, wrapper)

    def wrap_manager(self, host, name, wrapper):
        """Replace ``manager.<name>`` (an RPC endpoint) for this test."""
        self._wrap(self.compute(host).manager, name, wrapper)

    def _wrap(self, obj, name, wrapper):
        missing = object()
        saved = obj.__dict__.get(name, missing)
        setattr(obj, name, wrapper(getattr(obj, name)))

        def restore():
            if saved is missing:
                delattr(obj, name)
            else:
                setattr(obj, name, saved)
        self.addCleanup(restore)

    def log_problems(self):
        """This test's WARNING and ERROR log records, with tracebacks."""
        keep, records = False, []
        for line in self.logger.output.splitlines():
            head = line.split(' ', 1)[0]
            if head in ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'):
                keep = head in ('WARNING', 'ERROR', 'CRITICAL')
            if keep:
                records.append(line)
        return '\n'.join(records)
