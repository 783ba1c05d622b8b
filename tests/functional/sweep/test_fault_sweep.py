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

"""The fault sweep through nova's real services, on a sample of indexes.

What these tests cover (the full sweep is ``nova-xenapi-sr fault-sweep``):
with the neighbour halted (the case where nova's own error handlers used to
forget its SR), every fault kind at 3 call indexes per side drawn with seed
0; with the neighbour running, a XenAPI Failure at 3 indexes per side; a
second Failure at 2 indexes of each side's rollback after each first fault
(``VM.migrate_send`` on the source, ``SR.introduce`` on the destination);
and stock nova on the uuid5 volumes at 2 indexes per side. Every extension
case must end migrated or failed_clean.
"""

import fixtures

from nova_xenapi_sr_tools.faultsweep import judge
from nova_xenapi_sr_tools.faultsweep import layout
from nova_xenapi_sr_tools.faultsweep import runner
from tests.functional.sweep import base

#: Each test runs a dozen migrations through nova.
TIMEOUT = 600
CLEAN = (judge.MIGRATED, judge.FAILED_CLEAN)


class ExtensionSweepTestCase(base.SweepTestCase):

    def setUp(self):
        super(ExtensionSweepTestCase, self).setUp()
        self.useFixture(fixtures.Timeout(TIMEOUT, gentle=True))

    def sweep(self, **kwargs):
        kwargs.setdefault('seed', 0)
        sweep = runner.Sweep(self.dep, runner.EXTENSION, **kwargs)
        results = sweep.run()
        self.assertNotEqual([], results)
        dirty = ['%s: %s %s' % (r['case'].name, r['outcome'], r['detail'])
                 for r in results if r['outcome'] not in CLEAN]
        self.assertEqual([], dirty)
        return sweep, results

    def _halted(self, kind):
        sweep, results = self.sweep(neighbour_states=[layout.HALTED],
                                    kinds=[kind], second_kinds=(),
                                    sample=3)
        # the sample hit 3 calls on each side
        self.assertEqual(6, len(results))
        self.assertEqual(
            {'source', 'destination'},
            set(r['case'].fault.side for r in results))
        return results

    def test_halted_neighbour_failure(self):
        self._halted('failure')

    def test_halted_neighbour_drop(self):
        self._halted('drop')

    def test_halted_neighbour_timeout(self):
        self._halted('timeout')

    def test_halted_neighbour_session_invalid(self):
        self._halted('session_invalid')

    def test_running_neighbour_failure(self):
        self.sweep(neighbour_states=[layout.RUNNING], kinds=['failure'],
                   second_kinds=(), sample=3)

    def test_second_fault_during_rollback(self):
        sweep = runner.Sweep(self.dep, runner.EXTENSION,
                             neighbour_states=[layout.HALTED], kinds=(),
                             second_kinds=['failure'], sample=2, seed=0)
        results = sweep.run()
        firsts = set((r['case'].first.side, r['case'].first.method)
                     for r in results)
        self.assertEqual(set(runner.FIRSTS), firsts)
        dirty = ['%s: %s %s' % (r['case'].name, r['outcome'], r['detail'])
                 for r in results if r['outcome'] not in CLEAN]
        self.assertEqual([], dirty)
        # a first fault that is not retried rolls the migration back
        self.assertIn(judge.FAILED_CLEAN,
                      [r['outcome'] for r in results])

    def test_clean_migration_calls_are_deterministic(self):
        sweep = runner.Sweep(self.dep, runner.EXTENSION)
        sweep.warm_up()
        first = sweep.clean(layout.HALTED)
        self.assertEqual(first, sweep.clean(layout.HALTED))
        self.assertIn('VM.migrate_send', first['source'])
        self.assertIn('SR.introduce', first['destination'])


class StockSweepTestCase(base.SweepTestCase):
    """Stock nova on both computes, the uuid5 volumes only."""

    flavour = runner.STOCK

    def setUp(self):
        super(StockSweepTestCase, self).setUp()
        self.useFixture(fixtures.Timeout(TIMEOUT, gentle=True))

    def test_stock_sample(self):
        sweep = runner.Sweep(self.dep, runner.STOCK,
                             neighbour_states=[layout.HALTED],
                             kinds=['failure'], second_kinds=(), sample=2,
                             seed=0)
        results = sweep.run()
        self.assertEqual(4, len(results))
        # the stock instance has no legacy volume: no legacy SR was used
        for calls in sweep.clean_calls.values():
            self.assertIn('VM.migrate_send', calls['source'])
        for result in results:
            self.assertIn(result['outcome'], judge.OUTCOMES)
            self.assertNotEqual(judge.NOT_REACHED, result['outcome'])
