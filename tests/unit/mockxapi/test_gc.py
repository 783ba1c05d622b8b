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

"""One pass of xapi's database GC (db_gc_util.ml)."""

import time

from nova_xenapi_sr_tools.mockxapi import gc
from nova_xenapi_sr_tools.mockxapi import model
from tests import base


def stamp(seconds_ago):
    return time.strftime('%Y%m%dT%H:%M:%SZ',
                         time.gmtime(time.time() - seconds_ago))


class SinglePassTest(base.TestCase):

    def setUp(self):
        super(SinglePassTest, self).setUp()
        self.db = model.Database()
        self.host = self.db.create('host')
        self.vm = self.db.create('VM')
        self.sr = self.db.create('SR')
        self.net = self.db.create('network')

    def test_connectors_pointing_at_nothing(self):
        db = self.db
        vdi = db.create('VDI', SR=self.sr)
        orphan_vdi = db.create('VDI', SR='OpaqueRef:gone-sr')
        ok_vbd = db.create('VBD', VM=self.vm, VDI=vdi)
        dead_vdi_vbd = db.create('VBD', VM=self.vm, VDI='OpaqueRef:gone')
        empty_vbd = db.create('VBD', VM=self.vm, VDI=model.NULL_REF,
                              empty=True)
        cd = db.create('VBD', VM=self.vm, VDI='OpaqueRef:gone', type='CD')
        dead_vm_vbd = db.create('VBD', VM='OpaqueRef:gone-vm', VDI=vdi)
        ok_vif = db.create('VIF', VM=self.vm, network=self.net)
        dead_vif = db.create('VIF', VM='OpaqueRef:gone-vm', network=self.net)
        ok_pbd = db.create('PBD', host=self.host, SR=self.sr)
        dead_pbd = db.create('PBD', host=self.host, SR='OpaqueRef:gone-sr')
        removed = gc.single_pass(db, time.time())
        # gc_VDIs, gc_VBDs, gc_VIFs, gc_PBDs
        self.assertEqual([orphan_vdi], removed['VDI'])
        self.assertEqual(sorted([dead_vdi_vbd, dead_vm_vbd]),
                         sorted(removed['VBD']))
        self.assertEqual([dead_vif], removed['VIF'])
        self.assertEqual([dead_pbd], removed['PBD'])
        for ref in (ok_vbd, empty_vbd, cd):
            self.assertTrue(db.has('VBD', ref))
        # a CD VBD of a live VM is emptied, not destroyed
        self.assertEqual((model.NULL_REF, True),
                         (db.get('VBD', cd)['VDI'], db.get('VBD', cd)[
                             'empty']))
        self.assertTrue(db.has('VIF', ok_vif))
        self.assertTrue(db.has('PBD', ok_pbd))

    def test_tasks_and_sessions_time_out(self):
        db = self.db
        done_old = db.create('task', status='success', created=stamp(7200),
                             finished=stamp(66 * 60))
        done_new = db.create('task', status='success', created=stamp(60),
                             finished=stamp(30))
        pending_old = db.create('task', status='pending',
                                created=stamp(25 * 3600))
        idle = db.create('session', last_active=stamp(25 * 3600))
        fresh = db.create('session', last_active=stamp(1))
        removed = gc.single_pass(db, time.time())
        self.assertEqual(sorted([done_old, pending_old]),
                         sorted(removed['task']))
        self.assertTrue(db.has('task', done_new))
        self.assertEqual([idle], removed['session'])
        self.assertTrue(db.has('session', fresh))

    def test_sessions_beyond_the_limit_per_originator(self):
        db = self.db
        refs = [db.create('session', originator='nova',
                          last_active=stamp(1000 - i))
                for i in range(gc.MAX_SESSIONS_PER_GROUP + 2)]
        removed = gc.single_pass(db, time.time())
        self.assertEqual(refs[:2], removed['session'])
