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

"""When a rollback is safe, from what the two pools said."""

from nova_xenapi_sr.virt import locate
from nova_xenapi_sr.virt import xapi_retry
from tests import base
from tests.unit.virt import fakes


class LocationTestCase(base.TestCase):

    def test_decisions(self):
        cases = [
            # on source, running on destination -> moved, safe to roll back
            (True, False, False, True),
            (True, None, False, True),
            (True, True, False, False),     # on both: never strip it
            (False, True, True, False),
            (False, False, True, False),    # left the source: moved
            (False, None, True, False),
            (None, True, True, False),
            (None, False, False, True),
            (None, None, False, False),     # nobody answered
        ]
        for on_source, on_dest, moved, safe in cases:
            where = locate.Location(on_source, on_dest, [])
            self.assertEqual(moved, where.moved, (on_source, on_dest))
            self.assertEqual(safe, where.safe_to_roll_back,
                             (on_source, on_dest))

    def test_source_waits_while_xapi_still_migrates(self):
        session = fakes.FakeSession()
        session.add('VM', 'OpaqueRef:vm', name_label='instance-1',
                    current_operations={'t': 'migrate_send'})
        slept = []

        def sleep(seconds):
            slept.append(seconds)
            if len(slept) == 2:     # xapi finishes: the VM leaves
                del session.records['VM']['OpaqueRef:vm']
        where = locate.locate(session, xapi_retry.Policy(interval=0),
                              'instance-1', None, timeout=30, sleep=sleep)
        self.assertEqual(2, len(slept))
        self.assertIs(False, where.on_source)
        self.assertIsNone(where.on_destination)
        self.assertTrue(where.moved)
        self.assertIn('destination: ', str(where))

    def test_templates_and_snapshots_do_not_count(self):
        session = fakes.FakeSession()
        session.add('VM', 'OpaqueRef:t', name_label='instance-1',
                    is_a_template=True)
        where = locate.locate(session, xapi_retry.Policy(interval=0),
                              'instance-1', None, timeout=0)
        self.assertIs(False, where.on_source)
