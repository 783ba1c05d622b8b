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

"""Table and JSON output, from hand-made results."""

import json

from nova_xenapi_sr_tools.upgrade import cases
from nova_xenapi_sr_tools.upgrade import report
from tests import base


def results():
    out = []
    for case in cases.matrix(cases.volume_sets()):
        result = dict(case, layout='cross-pool', outcome='migrated',
                      detail='migrated', copies=0,
                      leftovers=[], xapi_calls={'source': 40,
                                                'destination': 50},
                      wall_time=1.5, trace=[{'step': 'x'}])
        if case['conductor'] == 'stock' and case['source'] == 'extension':
            result.update(outcome='refused',
                          detail='upgrade conductors first')
        if case['source'] == 'stock' and case['volumes'] == 'legacy':
            result.update(outcome='failed_clean',
                          detail='install the extension on the source')
        out.append(result)
    out[0].update(outcome='UNSAFE', detail='a leftover',
                  leftovers=['destination pool: new SR x'])
    return out


class TestSummary(base.TestCase):

    def test_counts_and_exit_status(self):
        summary = report.summarize(results(), wall_time=12.345)
        self.assertEqual(24, summary['cases'])
        self.assertEqual(1, summary['UNSAFE'])
        self.assertEqual(1, summary['unsafe'])
        # the all-stock uuid5 case itself: stock nova's own
        self.assertEqual(1, summary['unsafe_before_upgrade'])
        self.assertEqual(6, summary['refused'])
        self.assertEqual(4, summary['failed_clean'])
        self.assertEqual(13, summary['migrated'])
        self.assertEqual(3, summary['all_extension_cases'])
        self.assertTrue(summary['all_extension_migrated'])
        self.assertEqual(0, summary['exit_status'])
        self.assertEqual(12.3, summary['wall_time'])

    def test_exit_zero_without_unsafe(self):
        data = results()
        data[0].update(outcome='failed_clean', detail='fine')
        self.assertEqual(0, report.summarize(data)['exit_status'])

    def test_all_extension_refused_fails(self):
        data = [r for r in results() if r['source'] == 'extension']
        data[-1]['outcome'] = 'refused'
        summary = report.summarize(data)
        self.assertFalse(summary['all_extension_migrated'])
        self.assertEqual(1, summary['exit_status'])

    def _same_pool(self, **changes):
        """Results of both layouts; the same-pool ones refused."""
        data = [r for r in results() if r['conductor'] == 'extension']
        data[0].update(outcome='failed_clean', detail='fine')
        same = []
        for result in data:
            result = dict(result, layout='same-pool',
                          volumes='same-pool-' + result['volumes'],
                          outcome='refused', signature='extension-refused',
                          detail='Migrate it cold (nova migrate).')
            result.update(changes)
            same.append(result)
        return data + same

    def test_extension_refusal_inside_one_pool_is_ok(self):
        summary = report.summarize(self._same_pool())
        self.assertEqual(0, summary['exit_status'])
        self.assertFalse(summary['all_extension_migrated'])
        self.assertTrue(summary['all_extension_ok'])
        self.assertEqual(3, summary['all_extension_refused_in_pool'])
        text = report.render_table(self._same_pool(), summary)
        self.assertIn('All-extension cases migrated: yes, except 3 refused '
                      'by the extension inside one pool', text)

    def test_refusal_inside_one_pool_needs_the_extensions_signature(self):
        # nova's or XAPI's own failure there is not the extension's clean
        # refusal: not ok
        for changes in ({'signature': 'conductor-cannot-read'},
                        {'outcome': 'failed_clean'}):
            summary = report.summarize(self._same_pool(**changes))
            self.assertFalse(summary['all_extension_ok'], changes)
            self.assertEqual(1, summary['exit_status'], changes)

    def test_extension_refusal_between_pools_is_not_ok(self):
        data = [r for r in results() if r['conductor'] == 'extension']
        data[0].update(outcome='failed_clean', detail='fine')
        ext = [r for r in data if cases.is_all_extension(r)][0]
        ext.update(outcome='refused', signature='extension-refused')
        summary = report.summarize(data)
        self.assertFalse(summary['all_extension_ok'])
        self.assertEqual(1, summary['exit_status'])

    def test_no_all_extension_case_is_not_all_migrated(self):
        data = [r for r in results() if r['conductor'] == 'stock']
        self.assertFalse(report.summarize(data)['all_extension_migrated'])


class TestJson(base.TestCase):

    def test_document_shape(self):
        data = results()
        doc = json.loads(report.render_json(data, report.summarize(data)))
        self.assertEqual(24, len(doc['cases']))
        self.assertEqual(
            ['layout', 'conductor', 'source', 'destination', 'volumes',
             'outcome',
             'detail', 'copies', 'leftovers', 'xapi_calls', 'wall_time',
             'extension_driver'],
            list(doc['cases'][0]))
        self.assertEqual({'stock', 'extension'},
                         set(c['conductor'] for c in doc['cases']))
        self.assertEqual(['destination pool: new SR x'],
                         doc['cases'][0]['leftovers'])
        self.assertEqual(0, doc['summary']['exit_status'])
        self.assertEqual(1, doc['summary']['unsafe_before_upgrade'])

    def test_debug_adds_trace(self):
        data = results()
        doc = json.loads(report.render_json(data, report.summarize(data),
                                            debug=True))
        self.assertEqual([{'step': 'x'}], doc['cases'][0]['trace'])
        self.assertNotIn('flow', doc['cases'][0])


class TestTable(base.TestCase):

    def setUp(self):
        super(TestTable, self).setUp()
        data = results()
        self.text = report.render_table(data, report.summarize(
            data, wall_time=80.0))
        self.lines = self.text.splitlines()

    def test_one_row_per_node_mix(self):
        header = [line for line in self.lines
                  if line.startswith('conductor')][0]
        self.assertEqual(['conductor', 'source', 'destination', '|',
                          'uuid5', 'legacy', 'mixed'], header.split())
        rows = [line.split() for line in self.lines
                if line.split()[:1] in (['stock'], ['extension'])]
        self.assertEqual(8, len(rows))
        self.assertEqual(['extension', 'extension', 'extension', '|',
                          'migrated', 'migrated', 'migrated'], rows[-1])
        self.assertEqual(['stock', 'stock', 'stock', '|', 'UNSAFE', '[1]',
                          'failed_clean', '[2]', 'migrated'], rows[0])

    def test_identical_details_share_a_note(self):
        self.assertEqual(1, self.text.count('upgrade conductors first'))
        self.assertIn('[3] upgrade conductors first', self.text)
        self.assertEqual(3, len([line for line in self.lines
                                 if line.startswith('[')]))

    def test_summary_lines(self):
        self.assertIn('Summary: 13 migrated, 6 refused, 4 failed_clean, '
                      '1 UNSAFE.', self.text)
        self.assertIn('All-extension cases migrated: yes. Unsafe cases: 1 '
                      '(1 of them with stock nova on both computes',
                      self.text)
        self.assertIn('not counted by the exit status', self.text)
        self.assertIn('Exit status: 0 (safe to proceed)', self.text)
        self.assertNotIn('Partial run', self.text)

    def test_unsafe_with_an_upgraded_compute_is_not_safe(self):
        data = results()
        data[3].update(outcome='UNSAFE', detail='lost SR')
        text = report.render_table(data, report.summarize(data))
        self.assertIn('Unsafe cases: 2 (1 of them with stock nova', text)
        self.assertIn('Exit status: 1 (not safe: see the notes)', text)

    def test_partial_run_is_said(self):
        data = results()[:3]
        text = report.render_table(data, report.summarize(data,
                                                          complete=False))
        self.assertIn('Partial run', text)

    def test_do_no_harm_applied_on_a_full_run(self):
        summary = report.summarize(results())
        self.assertEqual([], summary['do_no_harm_unchecked'])
        text = report.render_table(results(), summary)
        self.assertNotIn('Do-no-harm rule not applied', text)

    def test_do_no_harm_unchecked_without_the_all_stock_case(self):
        data = [r for r in results() if r['conductor'] == 'extension']
        summary = report.summarize(data, complete=False)
        self.assertEqual(['legacy', 'mixed', 'uuid5'],
                         summary['do_no_harm_unchecked'])
        text = report.render_table(data, summary, width=200)
        self.assertIn('Do-no-harm rule not applied to volume set(s) legacy, '
                      'mixed, uuid5: their all-stock case did not run', text)

    def test_long_notes_wrap(self):
        data = results()
        data[0]['detail'] = 'word ' * 60
        text = report.render_table(data, report.summarize(data), width=60)
        self.assertTrue(all(len(line) <= 60 for line in text.splitlines()
                            if line.startswith(('[', '    '))))

    def test_progress_line(self):
        line = report.progress_line(3, 24, results()[1])
        self.assertIn('[ 3/24]', line)
        self.assertIn('volumes=legacy', line)
        self.assertIn('failed_clean (1.5s)', line)

    def test_one_matrix_per_layout_with_shared_notes(self):
        between_pools = [r for r in results()
                         if r['conductor'] == 'extension']
        data = between_pools + [
            dict(result, layout='same-pool',
                 volumes='same-pool-' + result['volumes'])
            for result in between_pools]
        text = report.render_table(data, report.summarize(data), width=200)
        lines = text.splitlines()
        between = lines.index(report.LAYOUT_TITLES['cross-pool'])
        inside = lines.index(report.LAYOUT_TITLES['same-pool'])
        self.assertLess(between, inside)
        self.assertTrue(lines[between + 2].startswith('conductor '))
        self.assertIn('same-pool-uuid5', lines[inside + 2])
        self.assertNotIn('same-pool-uuid5', lines[between + 2])
        # one detail, one note number, whichever matrix shows it
        self.assertEqual(1, len([line for line in lines
                                 if line.startswith('[1] ')]))
        self.assertIn('failed_clean [1]', lines[inside + 4])
