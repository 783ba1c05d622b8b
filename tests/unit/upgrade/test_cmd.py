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

"""The command's argument handling (no service is started here)."""

import io
import json

import fixtures
from unittest import mock
import yaml

from nova_xenapi_sr_tools.upgrade import cmd
from nova_xenapi_sr_tools.upgrade import rolling
from tests import base


class FakeApp(object):
    def __init__(self):
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()


class TestVerifyUpgradeArguments(base.TestCase):

    def setUp(self):
        super(TestVerifyUpgradeArguments, self).setUp()
        # Nothing here may start a service.
        self.runner = self.useFixture(fixtures.MockPatchObject(
            rolling, 'RollingRunner')).mock
        self.instance = self.runner.return_value
        self.instance.deployment.describe.return_value = [
            {'service': 'nova-api (api)', 'version': '21.2.4',
             'where': 'controller', 'log': '/tmp/x/logs/api.log'}]
        self.instance.deployment.timings = {'install': 0.0, 'start': 1.0,
                                            'cases': 2.0}

    def run_command(self, *argv):
        app = FakeApp()
        command = cmd.VerifyUpgrade(app, None)
        parsed = command.get_parser('verify-upgrade').parse_args(list(argv))
        status = command.run(parsed)
        return status, app.stdout.getvalue(), app.stderr.getvalue()

    def test_print_scenario(self):
        status, out, _err = self.run_command('--print-scenario')
        self.assertEqual(0, status)
        data = json.loads(out)
        self.assertEqual(['uuid5', 'legacy', 'mixed', None],
                         [i.get('volume_set') for i in data['instances']])
        self.assertTrue(data['instances'][3]['bystander'])
        self.runner.assert_not_called()

    def test_unknown_volume_set(self):
        status, out, err = self.run_command('--volumes', 'nope')
        self.assertEqual(cmd.EXIT_ERROR, status)
        self.assertIn('no volume set nope (have: uuid5, legacy, mixed, '
                      'same-pool-uuid5, same-pool-legacy, same-pool-mixed)',
                      err)
        self.assertEqual('', out)
        self.runner.assert_not_called()

    def test_bad_scenario_file(self):
        path = self.useFixture(fixtures.TempDir()).join('s.json')
        with open(path, 'w') as handle:
            json.dump({'pools': [{'name': 'only-one'}]}, handle)
        status, _out, err = self.run_command('--scenario', path)
        self.assertEqual(cmd.EXIT_ERROR, status)
        self.assertIn('needs two pools', err)

    def test_missing_scenario_file(self):
        status, _out, err = self.run_command('--scenario', '/nonexistent')
        self.assertEqual(cmd.EXIT_ERROR, status)
        self.assertIn('cannot use the scenario', err)

    def test_filters_select_cases(self):
        instance = self.instance
        instance.run.return_value = []
        self.run_command('--conductor', 'extension', '--source', 'stock',
                         '--volumes', 'legacy')
        cases = self.runner.call_args[1]['cases']
        self.assertEqual(
            [{'conductor': 'extension', 'source': 'stock',
              'destination': destination, 'volumes': 'legacy',
              'layout': 'cross-pool'}
             for destination in ('stock', 'extension')], cases)
        instance.run.assert_called_once_with(progress=mock.ANY)

    def test_both_layouts_by_default_one_deployment_each(self):
        def run(progress):
            case = self.runner.call_args[1]['cases'][0]
            return [dict(case, outcome='migrated', detail='migrated',
                         copies=0, leftovers=[], xapi_calls={},
                         wall_time=1.0)]
        self.instance.run.side_effect = run
        status, out, err = self.run_command('--format', 'json',
                                            '--conductor', 'stock')
        self.assertEqual(2, self.runner.call_count)
        first, second = [call[1] for call in self.runner.call_args_list]
        self.assertNotEqual(first['scenario']['source_pool'],
                            first['scenario']['destination_pool'])
        self.assertEqual(second['scenario']['source_pool'],
                         second['scenario']['destination_pool'])
        self.assertEqual({'same-pool-uuid5', 'same-pool-legacy',
                          'same-pool-mixed'},
                         set(c['volumes'] for c in second['cases']))
        doc = json.loads(out)
        self.assertEqual(['cross-pool', 'same-pool'],
                         [c['layout'] for c in doc['cases']])
        self.assertIn('layout same-pool: 12 cases', err)
        self.assertEqual({'install': 0.0, 'start': 2.0, 'cases': 4.0},
                         doc['summary']['timings'])

    def test_layout_picks_one(self):
        self.instance.run.return_value = []
        self.run_command('--layout', 'same-pool')
        self.assertEqual(1, self.runner.call_count)
        self.assertEqual(24, len(self.runner.call_args[1]['cases']))
        status, out, _err = self.run_command('--layout', 'same-pool',
                                             '--print-scenario')
        self.assertEqual('host-source-2',
                         json.loads(out)['destination_host'])

    def test_layout_and_scenario_conflict(self):
        path = self.useFixture(fixtures.TempDir()).join('s.json')
        with open(path, 'w') as handle:
            json.dump({'pools': [{'name': 'a'}, {'name': 'b'}]}, handle)
        status, _out, err = self.run_command('--scenario', path,
                                             '--layout', 'same-pool')
        self.assertEqual(cmd.EXIT_ERROR, status)
        self.assertIn('--scenario replaces them', err)
        self.runner.assert_not_called()

    def test_extension_driver_is_passed_on(self):
        self.instance.run.return_value = []
        self.run_command('--extension-driver', 'x.y.Z')
        self.assertEqual(['x.y.Z'],
                         self.runner.call_args[1]['extension_drivers'])

    def test_extension_drivers_run_in_rounds(self):
        self.instance.run.return_value = []
        self.run_command('--extension-driver', 'x.y.Z',
                         '--extension-driver', 'a.b.C')
        self.assertEqual(['x.y.Z', 'a.b.C'],
                         self.runner.call_args[1]['extension_drivers'])

    def test_runner_failure_is_exit_2(self):
        self.runner.side_effect = OSError('port 80: permission denied')
        status, out, err = self.run_command()
        self.assertEqual(cmd.EXIT_ERROR, status)
        self.assertIn('could not run: port 80: permission denied', err)
        self.assertEqual('', out)

    def test_json_result_and_exit_status(self):
        instance = self.instance
        case = {'conductor': 'extension', 'source': 'extension',
                'destination': 'extension', 'volumes': 'uuid5',
                'outcome': 'migrated', 'detail': 'migrated', 'copies': 0,
                'leftovers': [], 'xapi_calls': {}, 'wall_time': 1.0}
        instance.run.return_value = [case]
        status, out, _err = self.run_command('--format', 'json',
                                             '--volumes', 'uuid5',
                                             '--conductor', 'extension',
                                             '--source', 'extension',
                                             '--destination', 'extension',
                                             '--extension-driver', 'a.B')
        doc = json.loads(out)
        self.assertEqual(0, status)
        self.assertEqual('a.B', doc['summary']['extension_driver'])
        self.assertEqual('nova-api (api)',
                         doc['summary']['services'][0]['service'])
        self.assertEqual({'install': 0.0, 'start': 1.0, 'cases': 2.0},
                         doc['summary']['timings'])
        self.assertFalse(doc['summary']['complete'])

    def test_interrupt_is_reported_and_exits_128_plus_signal(self):
        from nova_xenapi_sr_tools.upgrade import services
        self.instance.run.side_effect = services.Interrupted(15)
        status, out, err = self.run_command('--volumes', 'uuid5')
        self.assertEqual(128 + 15, status)
        self.assertIn('interrupted (signal 15); every service was stopped',
                      err)
        self.instance.__exit__.assert_called_once_with(
            services.Interrupted, mock.ANY, mock.ANY)

    def test_table_lists_the_services_and_the_time_split(self):
        self.instance.run.return_value = [{
            'conductor': 'stock', 'source': 'stock',
            'destination': 'stock', 'volumes': 'uuid5',
            'outcome': 'migrated', 'detail': 'migrated', 'copies': 0,
            'leftovers': [], 'xapi_calls': {}, 'wall_time': 1.0}]
        status, out, _err = self.run_command('--volumes', 'uuid5')
        self.assertIn('nova-api (api)', out)
        self.assertIn('starting services 1.0 s', out)
        self.assertIn('logs removed; keep them with --keep-logs', out)

    def test_case_list_through_a_cliff_formatter(self):
        self.instance.run.return_value = [{
            'conductor': 'stock', 'source': 'stock',
            'destination': 'extension', 'volumes': 'uuid5',
            'outcome': 'refused', 'detail': 'upgrade conductors first',
            'signature': 'conductor-cannot-read', 'copies': 0,
            'leftovers': [], 'xapi_calls': {}, 'wall_time': 1.0}]
        status, out, _err = self.run_command(
            '--volumes', 'uuid5', '-f', 'csv', '-c', 'destination', '-c',
            'outcome', '-c', 'signature')
        self.assertEqual(0, status)
        self.assertEqual(['"destination","outcome","signature"',
                          '"extension","refused","conductor-cannot-read"'],
                         out.split())

    def test_case_list_as_value(self):
        self.instance.run.return_value = [{
            'conductor': 'extension', 'source': 'extension',
            'destination': 'extension', 'volumes': 'uuid5',
            'outcome': 'migrated', 'detail': 'migrated', 'copies': 0,
            'leftovers': [], 'xapi_calls': {}, 'wall_time': 1.0}]
        status, out, _err = self.run_command(
            '--volumes', 'uuid5', '-f', 'value', '-c', 'outcome')
        self.assertEqual('migrated\n', out)


class TestVerifyUpgradeFormatters(base.TestCase):
    """-f and -c: the case list through cliff's formatters; else the matrix.

    The runner is replaced: no service is started.
    """

    CASES = [
        {'conductor': 'stock', 'source': 'stock', 'destination': 'extension',
         'volumes': 'uuid5', 'outcome': 'refused',
         'detail': 'upgrade conductors first',
         'signature': 'conductor-cannot-read', 'copies': 0,
         'leftovers': [], 'xapi_calls': {}, 'wall_time': 1.5},
        {'conductor': 'extension', 'source': 'extension',
         'destination': 'extension', 'volumes': 'uuid5',
         'outcome': 'migrated', 'detail': 'migrated', 'signature': None,
         'copies': 0, 'leftovers': [], 'xapi_calls': {}, 'wall_time': 2.5},
    ]

    def setUp(self):
        super(TestVerifyUpgradeFormatters, self).setUp()
        self.runner = self.useFixture(fixtures.MockPatchObject(
            rolling, 'RollingRunner')).mock
        instance = self.runner.return_value
        instance.deployment.describe.return_value = []
        instance.deployment.timings = {}
        instance.run.return_value = [dict(case) for case in self.CASES]

    def run_command(self, *argv):
        app = FakeApp()
        command = cmd.VerifyUpgrade(app, None)
        parsed = command.get_parser('verify-upgrade').parse_args(
            ['--volumes', 'uuid5'] + list(argv))
        status = command.run(parsed)
        return status, app.stdout.getvalue()

    def test_formatters_offered(self):
        command = cmd.VerifyUpgrade(FakeApp(), None)
        parser = command.get_parser('verify-upgrade')
        for name in ('table', 'json', 'yaml', 'csv', 'value'):
            self.assertEqual(name, parser.parse_args(
                ['-f', name]).list_formatter)

    def test_json(self):
        status, out = self.run_command('-f', 'json')
        self.assertEqual(0, status)     # no case UNSAFE
        rows = json.loads(out)
        self.assertEqual(list(cmd.LIST_COLUMNS), list(rows[0]))
        self.assertEqual(['refused', 'migrated'],
                         [row['outcome'] for row in rows])
        self.assertEqual('conductor-cannot-read', rows[0]['signature'])
        self.assertEqual(2.5, rows[1]['wall_time'])

    def test_yaml_with_columns(self):
        _status, out = self.run_command('-f', 'yaml', '-c', 'source',
                                        '-c', 'outcome')
        self.assertEqual([{'source': 'stock', 'outcome': 'refused'},
                          {'source': 'extension', 'outcome': 'migrated'}],
                         yaml.safe_load(out))

    def test_table_is_the_case_list(self):
        _status, out = self.run_command('-f', 'table', '-c', 'conductor',
                                        '-c', 'outcome')
        lines = [line for line in out.splitlines()
                 if line.startswith('|')]
        self.assertEqual([['conductor', 'outcome'], ['stock', 'refused'],
                          ['extension', 'migrated']],
                         [[cell.strip() for cell in
                           line.strip('|').split('|')]
                          for line in lines])
        self.assertNotIn('Notes:', out)

    def test_columns_without_a_formatter_give_a_table(self):
        _status, out = self.run_command('-c', 'outcome')
        self.assertIn('| outcome  |', out)
        self.assertIn('| refused  |', out)
        self.assertNotIn('Notes:', out)

    def test_default_is_the_matrix_for_people(self):
        _status, out = self.run_command()
        self.assertIn('nova-xenapi-sr rolling-upgrade verification: 2 '
                      'cases', out)
        self.assertIn('refused [1]', out)
        self.assertIn('[1] upgrade conductors first', out)
        self.assertIn('Summary: ', out)

    def test_unknown_column_is_refused(self):
        command = cmd.VerifyUpgrade(FakeApp(), None)
        parser = command.get_parser('verify-upgrade')
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', io.StringIO()))
        self.assertRaises(SystemExit, parser.parse_args,
                          ['-f', 'json', '-c', 'nope'])
