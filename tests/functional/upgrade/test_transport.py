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

"""Node processes and nova's serializer semantics between them.

Real processes (multiprocessing 'spawn'), each with its own registry; no
XAPI needed. One set of nodes is shared by the tests of this module
because starting them imports nova in each (seconds).
"""

import os
import tempfile

from nova_xenapi_sr_tools.upgrade import node
from nova_xenapi_sr_tools.upgrade import rpc
from tests import base

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))

_BUS = None


def _bus():
    """Start the nodes once for this module (stopped at interpreter exit)."""
    global _BUS
    if _BUS is None:
        logs = tempfile.mkdtemp(prefix='verify-upgrade-transport-')
        specs = []
        for name, role, flavour in (
                ('conductor-stock', 'conductor', 'stock'),
                ('conductor-extension', 'conductor', 'extension'),
                ('compute-stock', 'compute', 'stock'),
                ('compute-stock-2', 'compute', 'stock'),
                ('compute-extension', 'compute', 'extension')):
            specs.append({'name': name, 'role': role, 'flavour': flavour,
                          'sys_path': [REPO_ROOT],
                          'conductor': 'conductor-extension',
                          'log_path': os.path.join(logs, name + '.log')})
        bus = node.Bus(call_timeout=60)
        bus.start(specs)
        import atexit
        atexit.register(bus.close)
        _BUS = bus
    return _BUS


MAP = {'vol-1': 'FA15E-D15C-vol-1'}


class TestNodeRegistries(base.TestCase):

    def setUp(self):
        super(TestNodeRegistries, self).setUp()
        self.bus = _bus()
        for name in ('compute-stock', 'compute-stock-2', 'compute-extension'):
            self.bus.call(name, 'use_conductor', name='conductor-extension')

    def test_stock_node_never_imports_the_extension(self):
        for name in ('conductor-stock', 'compute-stock'):
            info = self.bus.call(name, 'node_info')
            self.assertEqual('1.4', info['XenapiLiveMigrateData'])
            self.assertNotIn('nova_xenapi_sr.objects',
                             info['extension_modules'])
            self.assertNotIn('nova_xenapi_sr.virt', info['extension_modules'])

    def test_extension_nodes_know_1_5(self):
        for name in ('conductor-extension', 'compute-extension'):
            info = self.bus.call(name, 'node_info')
            self.assertEqual('1.5', info['XenapiLiveMigrateData'])

    def test_nodes_are_separate_processes(self):
        pids = set(self.bus.call(name, 'node_info')['pid']
                   for name in self.bus.nodes)
        self.assertEqual(len(self.bus.nodes), len(pids))
        self.assertNotIn(os.getpid(), pids)

    def test_extension_object_travels_as_1_5_primitive(self):
        obj = self.bus.call('compute-extension', 'build_migrate_data',
                            fields={'volume_sr_uuid_map': MAP})
        # What went over the wire is a primitive at the class version.
        self.assertEqual('1.5', obj['nova_object.version'])
        self.assertEqual(MAP, obj['nova_object.data']['volume_sr_uuid_map'])

    def test_stock_compute_gets_backport_from_extension_conductor(self):
        self.bus.call('conductor-extension', 'take_trace')
        # The extension compute sends its 1.5 object to the stock compute.
        probe = self.bus.call(
            'compute-extension', 'send_built', target='compute-stock',
            fields={'volume_sr_uuid_map': MAP, 'block_migration': True})
        self.assertEqual('1.4', probe['version'])
        self.assertNotIn('volume_sr_uuid_map', probe['fields'])
        self.assertIn('block_migration', probe['fields'])
        trace = self.bus.call('conductor-extension', 'take_trace')
        self.assertEqual(
            [{'node': 'conductor-extension',
              'step': 'object_backport_versions',
              'object': 'XenapiLiveMigrateData', 'received': '1.5',
              'target': '1.4'}], trace)

    def test_stock_conductor_cannot_backport_1_5(self):
        self.bus.call('compute-stock', 'use_conductor',
                      name='conductor-stock')
        error = self.assertRaises(
            rpc.RemoteError, self.bus.call, 'compute-extension',
            'send_built', target='compute-stock',
            fields={'volume_sr_uuid_map': MAP})
        self.assertEqual('IncompatibleObjectVersion', error.exc_type)
        self.assertEqual('conductor-stock', error.origin)
        self.assertIn('Version 1.5 of XenapiLiveMigrateData is not '
                      'supported', error.message)

    def test_stock_conductor_cannot_read_a_1_5_reply(self):
        error = self.assertRaises(
            rpc.RemoteError, self.bus.call, 'conductor-stock', 'forward',
            target='compute-extension', target_method='build_migrate_data',
            args={'fields': {'volume_sr_uuid_map': MAP}})
        self.assertEqual('IncompatibleObjectVersion', error.exc_type)
        self.assertEqual('conductor-stock', error.origin)

    def test_object_from_stock_node_keeps_1_4_when_passed_on(self):
        # stock -> extension -> stock: the extension node read a 1.4
        # primitive and sends it on at 1.4, readable without a backport.
        self.bus.call('compute-stock-2', 'use_conductor',
                      name='conductor-stock')
        probe = self.bus.call(
            'compute-stock', 'send_built', target='compute-extension',
            fields={'block_migration': True}, then='compute-stock-2')
        self.assertEqual('1.4', probe['version'])

    def test_extension_conductor_reads_1_5(self):
        result = self.bus.call(
            'conductor-extension', 'forward', target='compute-extension',
            target_method='build_migrate_data',
            args={'fields': {'volume_sr_uuid_map': MAP}})
        self.assertEqual('1.5', result['nova_object.version'])
