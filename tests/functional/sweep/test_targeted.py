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

"""Single fault-sweep cases, injected by method, through nova's services.

The fault sweep's layout (:mod:`nova_xenapi_sr_tools.faultsweep.layout`)
and verdict (:mod:`~nova_xenapi_sr_tools.faultsweep.judge`), the extension
on both computes, nova 21.2.4's real services; each fault is a mock XAPI
fault rule on one method of one pool.

* a Failure at the source's ``VM.migrate_send``, then one at the
  destination's ``network.destroy`` in the rollback (the sampled sweep's
  one UNSAFE case: nova's per-port interim network was left);
* a cold volume connector cache (a freshly started nova-compute): the
  source reads its host stats (the ``host_data`` plugin, ``SR.scan``) only
  after ``VM.migrate_send``, and a failure there must not cost the moved
  VM anything.
"""

import fixtures

from nova_xenapi_sr_tools.faultsweep import judge
from nova_xenapi_sr_tools.faultsweep import layout
from nova_xenapi_sr_tools.faultsweep import runner
from tests.functional.sweep import base

TIMEOUT = 300
FAILURE = ['INTERNAL_ERROR', 'injected by the test']
PLUGIN_FAILURE = ['XENAPI_PLUGIN_FAILURE', 'host_data', 'Exception',
                  'injected by the test']


def plugin_fn(name):
    """Fault match for ``host.call_plugin`` of one dom0 plugin function."""
    return lambda args: len(args) > 2 and args[2] == name


class TargetedCaseTestCase(base.SweepTestCase):

    def setUp(self):
        super(TargetedCaseTestCase, self).setUp()
        self.useFixture(fixtures.Timeout(TIMEOUT, gentle=True))

    def run_case(self, faults, neighbour=layout.RUNNING, cold_cache=False):
        """Migrate with ``faults`` (``(side, method, rule kwargs)``).

        :returns: ``(outcome, detail, server, calls per side)``; the
            state before the migration is ``self.baseline``.
        """
        dep = self.dep
        server = layout.start_case(dep, neighbour, cold_cache=cold_cache)
        baseline = self.baseline = judge.snapshot(dep)
        rules = [dep.xapi.inject_fault(layout.SIDES[side], method, **kwargs)
                 for side, method, kwargs in faults]
        dep.live_migrate(server, host=layout.DEST_HOST)
        for rule in rules:
            self.assertTrue(rule.fired, 'the fault on %s did not fire'
                            % rule.method)
        outcome, detail = judge.judge(
            dep, server, baseline, bystanders=[layout.neighbour_name(dep)])
        calls = {side: [m for m, _ in dep.xapi.pool(pool).calls()]
                 for side, pool in layout.SIDES.items()}
        return outcome, detail, server, calls

    def networks(self, side, view=None):
        if view is None:
            view = self.dep.xapi.pool(layout.SIDES[side]).inspect()
        return sorted(rec['name_label'] for rec in view['network'].values())

    def vm_pools(self, server):
        return [pool for pool, _ in
                self.dep.xapi.find_vm(self.dep.vm_name(server))]

    # -- task 1: a second fault at network.destroy ------------------------
    def test_failed_network_destroy_during_the_rollback(self):
        outcome, detail, server, calls = self.run_case([
            ('source', 'VM.migrate_send', {'error': FAILURE}),
            ('destination', 'network.destroy', {'error': FAILURE})])
        self.assertEqual(judge.FAILED_CLEAN, outcome, detail)
        # nova's interim network net-<port> is gone again
        self.assertEqual(
            self.networks('destination', self.baseline['destination']),
            self.networks('destination'))
        self.assertEqual([], [n for n in self.networks('destination')
                              if n.startswith('net-')])
        self.assertEqual(2, calls['destination'].count('network.destroy'))
        self.assertIn('XAPI call network.destroy to %s failed (XAPI error '
                      'INTERNAL_ERROR injected by the test), attempt 1'
                      % self.dep.xapi.urls[layout.DEST_POOL],
                      self.logger.output)
        self.assertEqual([layout.SOURCE_POOL], self.vm_pools(server))

    def test_lost_network_destroy_reply_during_the_rollback(self):
        # served, reply lost, the SDK's resend dropped: the retry meets
        # the destroyed network (HANDLE_INVALID) and takes it as done
        outcome, detail, server, calls = self.run_case([
            ('source', 'VM.migrate_send', {'error': FAILURE}),
            ('destination', 'network.destroy', {'kind': 'timeout'}),
            ('destination', 'network.destroy', {'kind': 'drop'})])
        self.assertEqual(judge.FAILED_CLEAN, outcome, detail)
        self.assertEqual([], [n for n in self.networks('destination')
                              if n.startswith('net-')])
        self.assertIn('HANDLE_INVALID', self.logger.output)
        self.assertIn('the object is gone', self.logger.output)

    # -- task 2: a cold connector cache ------------------------------------
    def test_cold_cache_reads_host_data_after_migrate_send(self):
        # what the cold-cache sweep relies on
        outcome, detail, server, calls = self.run_case([], cold_cache=True)
        self.assertEqual(judge.MIGRATED, outcome, detail)
        source = calls['source']
        self.assertIn('host.call_plugin', source[
            source.index('VM.migrate_send'):])
        self.assertIn('SR.scan', source[source.index('VM.migrate_send'):])

    def _assert_moved_and_whole(self, outcome, detail, server):
        self.assertEqual(judge.MIGRATED, outcome, detail)
        self.assertEqual([layout.DEST_POOL], self.vm_pools(server))
        instance = self.dep.instance(server)
        self.assertEqual(layout.DEST_HOST, instance.host)
        self.assertEqual('active', instance.vm_state)
        view = self.dep.xapi.pool(layout.DEST_POOL).inspect()
        vm = [r for r in view['VM'].values()
              if r['name_label'] == self.dep.vm_name(server)][0]
        volumes = [v for v in vm['VBDs'] if view['VBD'][v]['VDI'] in
                   view['VDI'] and view['SR'][view['VDI'][view['VBD'][v][
                       'VDI']]['SR']]['type'] == 'iscsi']
        self.assertEqual(len(layout.migrating_volumes()), len(volumes))
        self.assertEqual([], view['dangling_VBDs'])

    def test_cold_cache_host_data_failure_after_migrate_send(self):
        # a plugin failure is an answer (not retried); the source's first
        # host_data call comes after VM.migrate_send
        outcome, detail, server, calls = self.run_case([
            ('source', 'host.call_plugin', {
                'error': PLUGIN_FAILURE, 'times': None,
                'match': plugin_fn('host_data')})], cold_cache=True)
        self._assert_moved_and_whole(outcome, detail, server)
        self.assertIn('took the iSCSI IQN and the hostname from its host '
                      'record', self.logger.output)

    def test_cold_cache_scan_failure_after_migrate_send(self):
        outcome, detail, server, calls = self.run_case([
            ('source', 'SR.scan', {
                'error': ['SR_BACKEND_FAILURE_47', '', 'injected'],
                'times': None})], cold_cache=True)
        source_calls = calls['source']
        self.assertGreater(source_calls.index('SR.scan'),
                           source_calls.index('VM.migrate_send'))
        self._assert_moved_and_whole(outcome, detail, server)

    def test_sweep_runs_matching_cases_with_a_cold_cache(self):
        sweep = runner.Sweep(
            self.dep, runner.EXTENSION, neighbour_states=[layout.RUNNING],
            kinds=['failure'], second_kinds=(), cold_cache=True,
            match=['*/source#*:host.call_plugin:failure'])
        results = sweep.run()
        clean = sweep.clean_calls[layout.RUNNING]['source']
        self.assertIn('host.call_plugin',
                      clean[clean.index('VM.migrate_send'):])
        self.assertEqual(clean.count('host.call_plugin'), len(results))
        for result in results:
            self.assertEqual('host.call_plugin', result['case'].fault.method)
            self.assertIn(result['outcome'],
                          (judge.MIGRATED, judge.FAILED_CLEAN),
                          result['detail'])
