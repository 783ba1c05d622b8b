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

import threading

from nova_xenapi_sr.virt import claims
from tests import base


class SRClaimsTestCase(base.TestCase):

    def setUp(self):
        super(SRClaimsTestCase, self).setUp()
        self.claims = claims.SRClaims()
        self.forgotten = []

    def forget(self, sr_uuid):
        def call():
            self.forgotten.append(sr_uuid)
            return True
        return call

    def test_unclaimed_and_own_srs_are_forgotten(self):
        self.assertTrue(self.claims.forget_unless_held(
            'a', 'sr-1', self.forget('sr-1')))
        self.claims.claim('a', [('sr-2', {})])
        self.assertTrue(self.claims.forget_unless_held(
            'a', 'sr-2', self.forget('sr-2')))
        self.assertEqual(['sr-1', 'sr-2'], self.forgotten)

    def test_sr_held_by_another_migration_is_kept(self):
        self.claims.claim('a', [('sr-1', {}), ('sr-2', {})])
        self.claims.claim('b', [('sr-1', {})])
        self.assertFalse(self.claims.forget_unless_held(
            'a', 'sr-1', self.forget('sr-1')))
        self.assertEqual([], self.forgotten)
        self.claims.release('b')
        self.assertEqual({'a'}, self.claims.holders('sr-1'))
        self.assertTrue(self.claims.forget_unless_held(
            'a', 'sr-1', self.forget('sr-1')))

    def test_claims_keep_what_the_sr_points_at(self):
        config = {'target': '192.0.2.10', 'targetIQN': 'iqn.x'}
        self.claims.claim('a', [('sr-1', config), ('sr-1', {})])
        got = self.claims.srs_of('a')
        self.assertEqual([('sr-1', config)], got)
        got[0][1]['target'] = 'changed'
        self.assertEqual([('sr-1', config)], self.claims.srs_of('a'))
        self.assertEqual([], self.claims.srs_of('b'))

    def test_release_drops_empty_entries(self):
        self.claims.claim('a', [('sr-1', {})])
        self.claims.release('a')
        self.assertEqual([], self.claims.srs_of('a'))
        self.claims.release('never-claimed')
        self.assertEqual(set(), self.claims.holders('sr-1'))
        self.assertEqual({}, self.claims._holders)

    def test_claim_waits_for_a_forget_in_progress(self):
        inside = threading.Event()
        proceed = threading.Event()
        order = []

        def slow_forget():
            inside.set()
            proceed.wait(10)
            order.append('forgot')
            return True

        worker = threading.Thread(target=self.claims.forget_unless_held,
                                  args=('a', 'sr-1', slow_forget))
        worker.start()
        self.assertTrue(inside.wait(10))
        claimer = threading.Thread(
            target=lambda: (self.claims.claim('b', [('sr-1', {})]),
                            order.append('claimed')))
        claimer.start()
        # The claim must block while the forget holds the lock.
        claimer.join(0.2)
        self.assertTrue(claimer.is_alive())
        self.assertEqual([], order)
        proceed.set()
        worker.join(10)
        claimer.join(10)
        self.assertEqual(['forgot', 'claimed'], order)

    def test_existing_srs_and_knowing_a_migration(self):
        self.assertFalse(self.claims.knows('a'))
        self.claims.claim('a', [('sr-1', {}), ('sr-2', {})])
        self.assertTrue(self.claims.knows('a'))
        self.claims.note_existing('a', {'sr-2': ['OpaqueRef:vdi']})
        got = self.claims.existing('a')
        self.assertEqual({'sr-2': ['OpaqueRef:vdi']}, got)
        got['sr-2'].append('changed')     # a copy
        self.assertEqual({'sr-2': ['OpaqueRef:vdi']},
                         self.claims.existing('a'))
        self.assertEqual({}, self.claims.existing('b'))
        self.claims.release('a')
        self.assertFalse(self.claims.knows('a'))
        self.assertEqual({}, self.claims.existing('a'))

    def test_a_new_instance_knows_nothing(self):
        # What a nova-compute restart does to the claims.
        self.claims.claim('a', [('sr-1', {})])
        self.assertFalse(claims.SRClaims().knows('a'))
