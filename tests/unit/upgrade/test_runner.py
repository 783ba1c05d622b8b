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

"""The runner's bookkeeping across cases, with the cases faked."""

from unittest import mock

import fixtures

from nova_xenapi_sr_tools.upgrade import cases as cases_mod
from nova_xenapi_sr_tools.upgrade import runner as runner_mod
from nova_xenapi_sr_tools.upgrade import verdict
from tests import base


class TestDoNoHarmOrder(base.TestCase):

    def runner(self, outcomes):
        """A runner whose cases end as ``outcomes[(c, s, d, set)]``."""
        run = runner_mod.Runner(
            log_dir=self.useFixture(fixtures.TempDir()).path)
        run.nodes = dict((name, {}) for name in runner_mod.needed_nodes(
            run.planned))
        ran = []

        def run_case(case):
            key = (case['conductor'], case['source'], case['destination'],
                   case['volumes'])
            ran.append(key)
            result = dict(case)
            result.update(outcome=outcomes.get(key, verdict.MIGRATED),
                          detail='detail of %s' % (key,))
            return result

        run.run_case = mock.Mock(side_effect=run_case)
        return run, ran

    def test_all_stock_runs_first_and_judges_the_others(self):
        bad = ('extension', 'extension', 'stock', 'uuid5')
        run, ran = self.runner({bad: verdict.REFUSED})
        wanted = [c for c in run.cases() if c['volumes'] == 'uuid5']
        # The all-stock case last in the request: it still runs first.
        wanted.reverse()
        results = run.run(wanted)
        self.assertEqual(('stock', 'stock', 'stock', 'uuid5'), ran[0])
        by_key = dict(((r['conductor'], r['source'], r['destination'],
                        r['volumes']), r) for r in results)
        self.assertEqual(verdict.UNSAFE, by_key[bad]['outcome'])
        self.assertIn(verdict.DO_NO_HARM, by_key[bad]['detail'])

    def test_stock_conductor_and_unmigrated_sets_are_left_alone(self):
        outcomes = {('stock', 'extension', 'stock', 'uuid5'):
                    verdict.REFUSED,
                    ('stock', 'stock', 'stock', 'legacy'):
                    verdict.FAILED_CLEAN,
                    ('extension', 'extension', 'stock', 'legacy'):
                    verdict.REFUSED}
        run, _ran = self.runner(outcomes)
        results = run.run()
        self.assertEqual(24, len(results))
        for result in results:
            key = (result['conductor'], result['source'],
                   result['destination'], result['volumes'])
            self.assertEqual(outcomes.get(key, verdict.MIGRATED),
                             result['outcome'], key)

    def test_matrix_order_already_puts_all_stock_first(self):
        matrix = cases_mod.matrix(cases_mod.volume_sets())
        self.assertTrue(all(verdict.is_all_stock(c) for c in matrix[:3]))
