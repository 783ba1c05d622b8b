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

"""When a case's live migration counts as finished (no service started)."""

import fixtures
from unittest import mock

from nova_xenapi_sr_tools.upgrade import deployment
from tests import base


class FakeAPI(object):
    """nova-api's answers, one list of events per poll."""

    def __init__(self, polls, status='error'):
        self.polls = list(polls)
        self.status = status
        self.seen = 0

    def get(self, path):
        if '/os-instance-actions/' in path:
            events = self.polls[min(self.seen, len(self.polls) - 1)]
            self.seen += 1
            return {'instanceAction': {'events': events}}
        if path.startswith('/os-migrations'):
            return {'migrations': [{'id': 1, 'status': self.status}]}
        return {'server': {'status': 'ACTIVE'}}


def event(name, finished=True):
    return {'event': name, 'finish_time': 'now' if finished else None}


FAILED_AFTER_PRE = [event('compute_check_can_live_migrate_destination'),
                    event('compute_pre_live_migration'),
                    event('compute_live_migration')]


class WaitActionTestCase(base.TestCase):

    def setUp(self):
        super(WaitActionTestCase, self).setUp()
        self.useFixture(fixtures.MockPatchObject(deployment.time, 'sleep'))
        self.clock = [0.0]
        self.useFixture(fixtures.MockPatch(
            'nova_xenapi_sr_tools.upgrade.deployment.time.monotonic',
            side_effect=self.tick))

    def tick(self):
        self.clock[0] += 0.5
        return self.clock[0]

    def wait(self, api, **kwargs):
        dep = mock.Mock(api=api)
        return deployment.Deployment.wait_action(dep, 'server', 'req',
                                                 **kwargs)

    def test_waits_for_the_destinations_rollback_cast(self):
        # the source set the migration's status before it cast the
        # destination's rollback: settled-looking polls come first
        rollback = event(deployment.ROLLBACK_EVENT, finished=False)
        api = FakeAPI([FAILED_AFTER_PRE, FAILED_AFTER_PRE,
                       FAILED_AFTER_PRE + [rollback],
                       FAILED_AFTER_PRE + [event(deployment.ROLLBACK_EVENT)]])
        action = self.wait(api)
        self.assertEqual(4, api.seen)
        self.assertIn(deployment.ROLLBACK_EVENT,
                      [e['event'] for e in action['events']])

    def test_gives_up_on_a_rollback_that_never_comes(self):
        api = FakeAPI([FAILED_AFTER_PRE])
        action = self.wait(api)
        self.assertEqual(FAILED_AFTER_PRE, action['events'])
        # about ROLLBACK_GRACE seconds of polls, not the whole timeout
        self.assertLess(api.seen, deployment.ROLLBACK_GRACE * 2)
        self.assertGreater(api.seen, deployment.ROLLBACK_GRACE / 2)

    def test_no_rollback_expected(self):
        cases = [
            # refused in the pre-check: the destination prepared nothing
            (FakeAPI([[event('compute_check_can_live_migrate_source')]]),
             {}),
            # migrated
            (FakeAPI([FAILED_AFTER_PRE], status='completed'), {}),
            # inside one pool nova never rolls the destination back
            (FakeAPI([FAILED_AFTER_PRE]), {'block_migration': False}),
        ]
        for api, kwargs in cases:
            self.wait(api, **kwargs)
            self.assertEqual(1, api.seen, kwargs)
