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

"""The sweep's table, page and saved results (no nova, no XAPI)."""

import os
import tempfile

from nova_xenapi_sr_tools.faultsweep import cmd
from nova_xenapi_sr_tools.faultsweep import report
from nova_xenapi_sr_tools.faultsweep import runner
from tests import base


def result(flavour, side, index, method, kind, outcome, before,
           first=None):
    case = runner.Case(flavour, 'Halted',
                       runner.Fault(side, index, method, kind), first=first)
    case.seconds = 1.0
    return {'case': case, 'outcome': outcome, 'detail': outcome + ' why',
            'calls_before': before}


class ReportTest(base.TestCase):

    def results(self):
        # the extension makes one PBD.plug more before the stock one's
        # first: the rows pair the n-th call of a method, not the index
        return [
            result('extension', 'destination', 5, 'PBD.plug', 'failure',
                   'migrated', ['SR.introduce', 'PBD.plug']),
            result('stock', 'destination', 2, 'PBD.plug', 'failure',
                   'UNSAFE', ['SR.introduce', 'PBD.plug']),
            result('extension', 'source', 0, 'VM.get_by_name_label',
                   'drop', 'failed_clean', []),
            result('extension', 'destination', 3, 'SR.scan', 'failure',
                   'failed_clean', ['x'] * 3,
                   first=runner.Fault('source', 9, 'VM.migrate_send',
                                      'failure')),
        ]

    def test_rows_pair_flavours_by_occurrence(self):
        rows = report.rows(self.results())
        self.assertEqual(3, len(rows))
        plug = rows[0]
        self.assertEqual(('halted', '-', 'destination', 'PBD.plug #2',
                          'failure', 'migrated', 'UNSAFE'), plug[:7])
        self.assertEqual('-', rows[1][6])  # stock has no such case
        self.assertEqual('source VM.migrate_send (failure)', rows[2][1])

    def test_totals(self):
        self.assertEqual(
            ['extension: 3 cases: 1 migrated, 2 failed_clean',
             'stock: 1 cases: 1 UNSAFE'],
            report.totals_text(self.results()))

    def test_page(self):
        page = report.rst_page(
            self.results(), [{'command': 'nova-xenapi-sr fault-sweep',
                              'seconds': 12.0, 'cases': 4}],
            'nova-xenapi-sr fault-sweep')
        self.assertIn('    nova-xenapi-sr fault-sweep\n', page)
        self.assertIn('12 s for 4 cases', page)
        self.assertIn('* stock: 1 cases: 1 UNSAFE', page)
        self.assertIn('UNSAFE cases', page)
        self.assertIn('``PBD.plug #2``', page)

    def test_save_and_load(self):
        path = os.path.join(tempfile.mkdtemp(), 'results.jsonl')
        self.addCleanup(os.unlink, path)
        meta = {'command': 'c', 'seconds': 1.0, 'cases': 4}
        cmd._save(path, self.results(), meta)
        loaded, got = cmd._load(path)
        self.assertEqual(meta, got)
        self.assertEqual(report.rows(self.results()), report.rows(loaded))

    def test_load_garbage_says_what_to_do(self):
        path = os.path.join(tempfile.mkdtemp(), 'bad.jsonl')
        self.addCleanup(os.unlink, path)
        with open(path, 'w') as f:
            f.write('not json\n')
        exc = self.assertRaises(cmd.SweepError, cmd._load, path)
        self.assertIn('written by --save', str(exc))

    def test_unknown_kind_is_refused(self):
        self.assertRaises(ValueError, runner.Sweep, None, 'extension',
                          kinds=['nope'])
