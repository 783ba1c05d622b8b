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

"""iSCSI device_config checks against the array, without a server."""

import json
import os
import subprocess
import sys

from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import pool
from nova_xenapi_sr_tools.mockxapi import storage
from tests import base

IQN = 'iqn.2010-10.org.openstack:t'


class IscsiTargetTest(base.TestCase):

    def setUp(self):
        super(IscsiTargetTest, self).setUp()
        self.world = pool.World()
        self.world.array.add_lun('192.0.2.10', 3260, IQN, 1)
        self.world.array.add_lun('192.0.2.20', 3261, IQN, 1,
                                 chap=('u', 'p'))

    def code(self, **config):
        exc = self.assertRaises(errors.XapiError, storage.iscsi_target,
                                self.world, config)
        return int(exc.code.rsplit('_', 1)[1])

    def test_codes(self):
        self.assertEqual(95, self.code(targetIQN=IQN))
        self.assertEqual(96, self.code(target='192.0.2.10'))
        for port in ('0', '65536', 'x', '3260,1', '-1'):
            self.assertEqual(142, self.code(target='192.0.2.10', port=port,
                                            targetIQN=IQN))
        self.assertEqual(141, self.code(target='192.0.2.11', targetIQN=IQN))
        self.assertEqual(68, self.code(target='192.0.2.10',
                                       targetIQN='iqn.other'))
        self.assertEqual(68, self.code(target='192.0.2.20', port='3261',
                                       targetIQN=IQN))
        self.assertEqual(68, self.code(target='192.0.2.20', port='3261',
                                       targetIQN=IQN, chapuser='u',
                                       chappassword='wrong'))

    def test_ok(self):
        target = storage.iscsi_target(self.world, {
            'target': '192.0.2.10', 'targetIQN': IQN})
        self.assertEqual(3260, target.port)
        target = storage.iscsi_target(self.world, {
            'target': '192.0.2.20', 'port': '3261', 'targetIQN': IQN,
            'chapuser': 'u', 'chappassword': 'p'})
        self.assertEqual(('u', 'p'), target.chap)

    def test_backend_failure_shape(self):
        # xs_errors.py XenError: number and description from
        # XE_SR_ERRORCODES.xml, " [opterr=...]" appended; sm_exec.ml:
        # SR_BACKEND_FAILURE_<n> ["", message, stderr]
        exc = errors.sm_error('ConfigTargetMissing')
        self.assertEqual(['SR_BACKEND_FAILURE_95', '',
                          'The request is missing the target parameter',
                          ''], exc.description)
        exc = errors.sm_error('SRScan', 'boom')
        self.assertEqual(['SR_BACKEND_FAILURE_40', '',
                          'The SR scan failed  [opterr=boom]', ''],
                         exc.description)
        self.assertEqual(46, errors.SM_ERRORS['VDIUnavailable'][0])

    def test_check_order_follows_base_iscsi_load(self):
        # BaseISCSI.py load: the port (142) is checked before the target
        # IQN (96)
        exc = self.assertRaises(errors.XapiError, storage.iscsi_target,
                                self.world, {'target': '192.0.2.10',
                                             'port': 'x'})
        self.assertEqual('SR_BACKEND_FAILURE_142', exc.code)

    def test_features(self):
        self.assertFalse(storage.supports('iscsi', 'VDI_MIRROR'))
        self.assertTrue(storage.supports('lvmoiscsi', 'VDI_SNAPSHOT',
                                         'VDI_MIRROR', 'VDI_MIRROR_IN'))
        self.assertFalse(storage.supports('nope', 'VDI_MIRROR'))


class DispatchTest(base.TestCase):
    """``Pool.handle`` in process: order of checks and envelopes."""

    def setUp(self):
        super(DispatchTest, self).setUp()
        from nova_xenapi_sr_tools.mockxapi import scenario
        from nova_xenapi_sr_tools.mockxapi import service  # noqa: F401
        self.world = pool.World()
        sc = scenario.Scenario()
        sc.add_pool('p', hosts=['h'])
        scenario.build(self.world, sc)
        self.pool = self.world.pools['p']
        self.session = self.pool.handle('session.login_with_password',
                                        ['root', 'mock']).value

    def desc(self, method, *args):
        out = self.pool.handle(method, [self.session] + list(args))
        return out.envelope()

    def test_order_unknown_before_arity_before_session(self):
        self.assertEqual(['MESSAGE_METHOD_UNKNOWN', 'X.y'], self.pool.handle(
            'X.y', ['bad-session']).envelope()['ErrorDescription'])
        self.assertEqual('MESSAGE_PARAMETER_COUNT_MISMATCH', self.pool.handle(
            'SR.get_record', ['bad-session']).envelope()[
                'ErrorDescription'][0])
        self.assertEqual(['SESSION_INVALID', 'bad-session'], self.pool.handle(
            'SR.get_record', ['bad-session', 'x']).envelope()[
                'ErrorDescription'])

    def test_fault_indexes_count_client_calls_only(self):
        # xapi's own entries (a migrate_send's import on the destination)
        # are in the call log but never reach the fault rules.
        from nova_xenapi_sr_tools.mockxapi import faults
        self.pool.clear_calls()
        self.desc('pool.get_all')
        rule = self.pool.injector.add_fault(faults.FaultRule(
            '*', 'failure', ['X', 'injected'], None, 1, 1))
        self.pool._log('/import_metadata', ('dry_run=false',))
        self.assertEqual('Success', self.desc('host.get_all')['Status'])
        self.assertEqual('Failure', self.desc('SR.get_all')['Status'])
        self.assertTrue(rule.fired)
        self.assertEqual(['pool.get_all', '/import_metadata', 'host.get_all',
                          'SR.get_all'],
                         [m for m, _ in self.pool.calls()])
        self.assertEqual(['pool.get_all', 'host.get_all', 'SR.get_all'],
                         [m for m, _ in self.pool.api_calls()])

    def test_envelopes(self):
        ok = self.desc('pool.get_all')
        self.assertEqual('Success', ok['Status'])
        self.assertEqual(1, len(ok['Value']))
        self.assertEqual({'Status': 'Success', 'Value': ''},
                         self.desc('session.logout'))

    def test_wire_values(self):
        self.assertEqual({'a': ['1', '', True]},
                         pool.wire({'a': (1, None, True)}))

    def test_handler_bug_is_internal_error_not_success(self):
        from nova_xenapi_sr_tools.mockxapi import api

        def broken(ctx):
            raise RuntimeError('boom')
        api.message('Test.broken', 0)(broken)
        self.addCleanup(api._REGISTRY.pop, 'Test.broken')
        out = self.desc('Test.broken')
        self.assertEqual(['INTERNAL_ERROR', 'RuntimeError: boom'],
                         out['ErrorDescription'])


#: Run by :class:`ArrayThreadSafetyTest` in a child process: LUNs come and
#: go in one OS thread while another scans a raw and an LVM SR on them.
#: Prints ``{"scans": n, "churns": n, "vdis": n, "lvs": n}`` as JSON.
_CHURN_SCRIPT = """
import json, sys, threading, time
from nova_xenapi_sr_tools.mockxapi import pool, scenario, storage
IQN = %r
# switch threads as often as the interpreter can, so that a reader not
# protected by the array lock meets a change mid-iteration
sys.setswitchinterval(1e-6)
world = pool.World()
sc = scenario.Scenario()
sc.add_pool('p', hosts=['h'])
scenario.build(world, sc)
p = world.pools['p']
db = p.db
for lun in range(1, 301):
    last = world.array.add_lun('192.0.2.10', 3260, IQN, lun)
last.lvs['0d5b3c1e-5b7e-4e55-9d7b-3f0c1a2b4c5d'] = 1024
config = {'target': '192.0.2.10', 'targetIQN': IQN}
sr = db.create('SR', type='iscsi', name_label='s')
db.create('PBD', host=p.master, SR=sr, currently_attached=True,
          device_config=config)
# lvmoiscsi: LVHDoISCSISR.py load looks the SCSIid up among the LUNs
# (Python code walking the target's LUN list as they change)
lvm = db.create('SR', type='lvmoiscsi', name_label='l')
db.create('PBD', host=p.master, SR=lvm, currently_attached=True,
          device_config=dict(config, SCSIid=last.scsi_id))
stop = threading.Event()
churns = [0]

def churn():
    while not stop.is_set():
        world.array.add_lun('192.0.2.10', 3260, IQN, 1000)
        world.array.remove_lun('192.0.2.10', 3260, IQN, 1000)
        churns[0] += 1

thread = threading.Thread(target=churn)
thread.start()
scans = 0
try:
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        with world.lock:
            storage.scan(world, db, sr)
            storage.scan(world, db, lvm)
        scans += 1
finally:
    stop.set()
    thread.join()
with world.lock:
    storage.scan(world, db, sr)
    storage.scan(world, db, lvm)
    print(json.dumps({'scans': scans, 'churns': churns[0],
                      'vdis': len(db.find('VDI', SR=sr)),
                      'lvs': len(db.find('VDI', SR=lvm))}))
"""


class ArrayThreadSafetyTest(base.TestCase):
    """LUNs added and removed while SR.scan walks the target."""

    def test_scan_while_luns_come_and_go(self):
        # The race needs preemptive threads: the mock-xapi command serves
        # on OS threads, while this test process is eventlet-patched
        # (tests/__init__.py), where a green thread that never yields runs
        # until the test's timeout kills it, possibly between its
        # add_lun and remove_lun. So the race runs in an unpatched child.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in sys.path if p))
        env.pop('OS_NOVA_DISABLE_EVENTLET_PATCHING', None)
        child = subprocess.run(
            [sys.executable, '-c', _CHURN_SCRIPT % IQN], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
            universal_newlines=True)
        self.assertEqual(0, child.returncode, child.stderr)
        result = json.loads(child.stdout.strip().splitlines()[-1])
        self.assertGreater(result['scans'], 0)
        self.assertGreater(result['churns'], 0)
        self.assertEqual(300, result['vdis'])
        self.assertEqual(1, result['lvs'])
