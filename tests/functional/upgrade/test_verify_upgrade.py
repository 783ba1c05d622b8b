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


"""``verify-upgrade`` end to end: nova 21.2.4's own services, for real.

The full matrix runs once per test process (one deployment per layout:
RabbitMQ, MariaDB, placement, nova-api, the scheduler, the conductor, two
nova-computes, rolled through the eight states; between two pools, then
between two hosts of one pool) and several tests read its JSON document.
The deliberately broken extensions run in one more deployment, one round
per driver. The command class is driven directly,
as the cliff App would.
"""

import json
import os
import subprocess
import sys

import fixtures

from nova_xenapi_sr_tools.upgrade import report
from nova_xenapi_sr_tools.upgrade import rolling
from nova_xenapi_sr_tools.upgrade import verdict
from tests import base

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
BROKEN = 'tests.functional.upgrade.broken_drivers.'

#: Seconds a whole deployment with its cases may take here.
FULL_MATRIX_TIMEOUT = 2400

#: The matrix as nova 21.2.4 and the extension really behave:
#: (conductor, source, destination) -> outcomes for uuid5, legacy, mixed.
EXPECTED = {
    ('stock', 'stock', 'stock'): ('migrated', 'failed_clean',
                                  'failed_clean'),
    ('stock', 'stock', 'extension'): ('refused', 'refused', 'refused'),
    ('stock', 'extension', 'extension'): ('refused', 'refused', 'refused'),
    ('stock', 'extension', 'stock'): ('migrated', 'refused', 'refused'),
    ('extension', 'extension', 'stock'): ('migrated', 'refused', 'refused'),
    ('extension', 'extension', 'extension'): ('migrated', 'migrated',
                                              'migrated'),
    ('extension', 'stock', 'extension'): ('migrated', 'failed_clean',
                                          'failed_clean'),
    ('extension', 'stock', 'stock'): ('migrated', 'failed_clean',
                                      'failed_clean'),
}

#: The same, inside one pool (VM.pool_migrate), for the same-pool uuid5,
#: legacy and mixed sets: an upgraded source refuses in its pre-check;
#: stock nova on both computes strips the running VM's volumes.
EXPECTED_SAME_POOL = {
    ('stock', 'stock', 'stock'): ('UNSAFE',) * 3,
    ('stock', 'stock', 'extension'): ('refused',) * 3,
    ('stock', 'extension', 'extension'): ('refused',) * 3,
    ('stock', 'extension', 'stock'): ('refused',) * 3,
    ('extension', 'extension', 'stock'): ('refused',) * 3,
    ('extension', 'extension', 'extension'): ('refused',) * 3,
    ('extension', 'stock', 'extension'): ('failed_clean',) * 3,
    ('extension', 'stock', 'stock'): ('UNSAFE',) * 3,
}


def run_command(*argv):
    """Run ``nova-xenapi-sr verify-upgrade argv`` as an operator does.

    A child process: the test process is eventlet-patched for the
    in-process nova of other classes (``tests/__init__.py``), and pifpaf
    and the services it starts must not run under that. Returns
    ``(status, stdout, stderr)``.
    """
    child = subprocess.run(
        [sys.executable, '-c',
         'import sys; from nova_xenapi_sr_tools import cli; '
         'sys.exit(cli.main(sys.argv[1:]))', 'verify-upgrade'] + list(argv),
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True, timeout=FULL_MATRIX_TIMEOUT)
    return child.returncode, child.stdout, child.stderr


def run_json(*argv):
    """:func:`run_command` with ``--format json``; the parsed document."""
    status, out, err = run_command('--format', 'json', *argv)
    try:
        return status, json.loads(out), err
    except ValueError:
        raise AssertionError('verify-upgrade exited %d without a JSON '
                             'document; its stderr:\n%s' % (status, err))


_FULL = []


def full_matrix():
    if not _FULL:
        _FULL.append(run_json('--debug-output'))
    return _FULL[0]


class TestFullMatrix(base.TestCase):

    def setUp(self):
        super(TestFullMatrix, self).setUp()
        self.useFixture(fixtures.Timeout(FULL_MATRIX_TIMEOUT, gentle=True))
        self.status, self.doc, self.stderr = full_matrix()
        self.cases = self.doc['cases']

    def by_key(self):
        return dict(((c['conductor'], c['source'], c['destination'],
                      c['volumes']), c) for c in self.cases)

    def layout(self, name):
        return [c for c in self.cases if c['layout'] == name]

    def outcomes(self, layout, sets):
        got = {}
        for case in self.layout(layout):
            key = (case['conductor'], case['source'], case['destination'])
            got.setdefault(key, {})[case['volumes']] = case['outcome']
        return dict((key, tuple(v[name] for name in sets))
                    for key, v in got.items())

    def test_no_case_broke_down(self):
        # A case the verification could not judge carries no nova record;
        # say which and why rather than fail on a missing key elsewhere.
        broken = ['%s/%s/%s %s: %s' % (c['conductor'], c['source'],
                                       c['destination'], c['volumes'],
                                       c['detail'])
                  for c in self.cases if 'nova' not in c]
        self.assertEqual([], broken)

    def test_48_cases_24_per_layout(self):
        self.assertEqual(48, len(self.cases))
        self.assertEqual(48, self.doc['summary']['cases'])
        self.assertEqual(24, len(self.layout('cross-pool')))
        self.assertEqual(24, len(self.layout('same-pool')))
        self.assertTrue(self.doc['summary']['complete'])

    def test_matrix(self):
        self.assertEqual(EXPECTED, self.outcomes(
            'cross-pool', ('uuid5', 'legacy', 'mixed')))

    def test_same_pool_matrix(self):
        self.assertEqual(EXPECTED_SAME_POOL, self.outcomes(
            'same-pool', ('same-pool-uuid5', 'same-pool-legacy',
                          'same-pool-mixed')))

    def test_same_pool_refusals_say_why_and_what_to_do(self):
        for case in self.layout('same-pool'):
            if case['source'] == 'extension':
                # refused by the upgraded source before anything changed
                self.assertEqual('extension-refused', case['signature'])
                self.assertIn('the extension on the source refused',
                              case['detail'])
                for needle in ('VM_REQUIRES_SR', 'SR_NOT_SHARABLE',
                               'block migration', 'nova migrate'):
                    self.assertIn(needle, case['detail'])
            elif case['destination'] == 'extension' and \
                    case['conductor'] == 'extension':
                # a stock source: the destination refuses in
                # pre_live_migration, before its first XAPI write
                self.assertIn('the extension on the destination refused',
                              case['detail'])
                self.assertEqual([], case['leftovers'])
            elif case['destination'] == 'stock':
                # stock nova on both computes: nova's recover path detaches
                # the running VM's volume
                self.assertEqual('same-pool-stock', case['signature'])
                self.assertIn('lost VBD of the VM', case['detail'])
                self.assertIn('install the extension on the source',
                              case['detail'])
            self.assertTrue(verdict.says_what_to_do(case['detail']),
                            case['detail'])

    def test_readme_shows_this_matrix(self):
        # README.rst's sample is this run's matrix, note numbers included.
        table = report.render_table(self.cases, self.doc['summary'])
        lines = table.splitlines()
        starts = [i for i, line in enumerate(lines)
                  if line.startswith('conductor ')]
        self.assertEqual(2, len(starts), table)
        with open(os.path.join(REPO_ROOT, 'README.rst')) as handle:
            readme = [line[4:] for line in handle.read().splitlines()]
        for start in starts:
            # the layout's title, a blank line, the matrix
            matrix = lines[start - 2:lines.index('', start)]
            self.assertIn(matrix[0], readme, table)
            first = readme.index(matrix[0])
            self.assertEqual(matrix, readme[first:first + len(matrix)])

    def test_all_extension_cases_ok(self):
        summary = self.doc['summary']
        # migrated between pools; refused by the extension inside one
        self.assertFalse(summary['all_extension_migrated'])
        self.assertTrue(summary['all_extension_ok'])
        self.assertEqual(3, summary['all_extension_refused_in_pool'])
        for case in self.layout('cross-pool'):
            if all(case[role] == 'extension' for role in
                   ('conductor', 'source', 'destination')):
                self.assertEqual('migrated', case['outcome'])

    def test_exit_status_follows_the_rule(self):
        summary = self.doc['summary']
        # UNSAFE only where stock nova on both computes is UNSAFE on its
        # own (inside one pool): stock nova 21's behaviour, not counted
        self.assertEqual(6, summary['unsafe'])
        self.assertEqual(6, summary['unsafe_before_upgrade'])
        for case in self.cases:
            if case['outcome'] == 'UNSAFE':
                self.assertEqual(('same-pool', 'stock', 'stock'),
                                 (case['layout'], case['source'],
                                  case['destination']))
        expected = 0 if (summary['unsafe'] ==
                         summary['unsafe_before_upgrade'] and
                         summary['all_extension_ok']) else 1
        self.assertEqual(0, expected)
        self.assertEqual(expected, self.status)
        self.assertEqual(expected, summary['exit_status'])

    def test_nothing_is_ever_copied(self):
        self.assertEqual([0] * 48, [case['copies'] for case in self.cases])

    def test_non_migrated_cases_say_what_to_do(self):
        for case in self.cases:
            if case['outcome'] == 'migrated':
                continue
            self.assertTrue(verdict.says_what_to_do(case['detail']),
                            case['detail'])

    def test_cases_ran_in_rolling_order(self):
        for layout in ('cross-pool', 'same-pool'):
            states = []
            for case in self.layout(layout):
                state = (case['conductor'], case['source'],
                         case['destination'])
                if not states or states[-1] != state:
                    states.append(state)
            self.assertEqual(list(rolling.STATE_ORDER), states)
            for before, after in zip(states, states[1:]):
                # one node restarted per step
                self.assertEqual(1, sum(a != b for a, b in zip(before,
                                                               after)))

    def test_nova_recorded_every_migration(self):
        for case in self.cases:
            self.assertIn('nova', case, case['detail'])
            nova = case['nova']
            self.assertIn('conductor_live_migrate_instance:Success' if
                          case['outcome'] == 'migrated' else
                          'conductor_live_migrate_instance',
                          ' '.join(nova['events']))
            if case['outcome'] == 'migrated':
                self.assertEqual('cross-pool', case['layout'])
                self.assertEqual('completed', nova['migration_status'])
                self.assertEqual('host-destination', nova['instance_host'])
                self.assertEqual('active', nova['vm_state'])
            else:
                self.assertEqual('host-source', nova['instance_host'])
                self.assertIn(nova['migration_status'], ('error', 'failed'))

    def test_stock_conductor_fails_with_the_real_messaging_timeout(self):
        for key, case in self.by_key().items():
            conductor, source, destination, _volumes = key
            if case['layout'] == 'same-pool' and source == 'extension':
                continue    # the upgraded source refuses first
            # The conductor reads an upgraded destination's answer; an
            # upgraded source with a stock destination sends 1.4 or
            # refuses by itself (extension-refused).
            if conductor == 'stock' and destination == 'extension':
                self.assertEqual('conductor-cannot-read',
                                 case.get('signature'), case['detail'])
                self.assertIn('MessagingTimeout', case['detail'])
                # the conductor's backport loop is seen and reported
                self.assertGreater(case['conductor_loop'], 0)
                self.assertIn('it recovers only when restarted',
                              case['detail'])
                self.assertIn('upgrade conductors first (run '
                              'nova-conductor-xenapi-sr)', case['detail'])
                # raised here, by the node that called the conductor (a
                # RemoteError carrying it), or turned by the conductor's
                # live-migrate task into "Timeout while checking if we can
                # live migrate to host" (nova/conductor/tasks/
                # live_migrate.py), a skipped host, when the scheduler
                # chose the destination
                self.assertTrue(any(
                    'MessagingTimeout' in (item['type'], item['message'])
                    or item['message'].startswith(
                        'Remote error: MessagingTimeout')
                    or 'Timeout while checking if we can live migrate' in
                    item['message']
                    for item in case['flow']['error']['chain']),
                    case['flow']['error'])

    def test_stock_source_with_legacy_sr_hits_bug_1566622(self):
        case = self.by_key()[('extension', 'stock', 'extension', 'legacy')]
        self.assertNotEqual('migrated', case['outcome'])
        self.assertIn('UUID_INVALID', case['detail'])
        self.assertIn('install the extension on the source',
                      case['detail'])
        self.assertEqual([], case['leftovers'])

    def test_the_destination_bystander_is_never_harmed(self):
        for case in self.cases:
            self.assertNotIn('another instance was harmed', case['detail'])

    def test_migrations_talk_to_both_pools(self):
        for case in self.cases:
            if case['outcome'] == 'migrated':
                self.assertGreater(case['xapi_calls']['source'], 0)
                self.assertGreater(case['xapi_calls']['destination'], 0)

    def test_services_are_reported_with_versions_and_logs(self):
        rows = dict((row['service'], row)
                    for row in self.doc['summary']['services'])
        self.assertIn('rabbitmq', rows)
        self.assertIn('mariadb', rows)
        self.assertEqual('21.2.4', rows['nova-api (api)']['version'])
        self.assertEqual('3.0.1',
                         rows['placement-api (placement)']['version'])
        self.assertTrue(rows['nova-api (api)']['log'].endswith(
            'logs/api.log'))
        self.assertEqual(['cases', 'install', 'start'],
                         sorted(self.doc['summary']['timings']))

    def test_progress_while_services_start_and_cases_run(self):
        self.assertIn('starting RabbitMQ and MariaDB (pifpaf)', self.stderr)
        self.assertIn('restarting conductor as extension', self.stderr)
        self.assertIn('layout cross-pool: 24 cases', self.stderr)
        self.assertIn('layout same-pool: 24 cases', self.stderr)
        self.assertIn('[48/48] conductor=', self.stderr)


class TestBrokenExtensions(base.TestCase):
    """nova's real flow must catch extensions that are wrong.

    One deployment for the class; each broken driver is one round of the
    three all-extension cases, the upgraded computes restarted with it.
    """

    DRIVERS = ('SkipsInjection', 'ForgetsIntroduceKeys',
               'MutatesBlockDeviceInfo', 'FailsPostAtDestination',
               'DiesInPreLiveMigration')
    #: Stock nova's driver presented as the extension (imports no 1.5).
    UNREGISTERED = 'tests.functional.upgrade.unregistered_driver.' \
        'NeverRegisters'
    _results = []

    def setUp(self):
        super(TestBrokenExtensions, self).setUp()
        self.useFixture(fixtures.Timeout(FULL_MATRIX_TIMEOUT, gentle=True))
        if not self._results:
            argv = ['--debug-output', '--layout', 'cross-pool',
                    '--conductor', 'extension', '--source', 'extension',
                    '--destination', 'extension']
            for driver in [BROKEN + name for name in self.DRIVERS] + [
                    self.UNREGISTERED]:
                argv.extend(['--extension-driver', driver])
            _status, doc, _err = run_json(*argv)
            self._results.extend(doc['cases'])
        self.results = dict(
            ((r['extension_driver'].rsplit('.', 1)[1], r['volumes']), r)
            for r in self._results)

    def outcomes(self, driver):
        return dict((volumes, self.results[(driver, volumes)]['outcome'])
                    for volumes in ('uuid5', 'legacy', 'mixed'))

    def test_skipping_the_destination_injection_is_caught(self):
        outcomes = self.outcomes('SkipsInjection')
        self.assertNotEqual('migrated', outcomes['legacy'])
        self.assertNotEqual('migrated', outcomes['mixed'])

    def test_forgetting_introduce_sr_keys_is_caught(self):
        legacy = self.results[('ForgetsIntroduceKeys', 'legacy')]
        self.assertEqual('UNSAFE', legacy['outcome'], legacy['detail'])
        self.assertNotEqual(
            'migrated', self.outcomes('ForgetsIntroduceKeys')['mixed'])

    def test_changing_block_device_info_in_pre_live_migration(self):
        # The hand-written model called this UNSAFE ("nova persists
        # connection_info from it"). nova 21 does not: the destination's
        # pre_live_migration gets a block_device_info built for the call
        # and saves the new attachments' connection_info before it. The
        # real flow migrates and nova's records carry nothing of it.
        for volumes, outcome in self.outcomes(
                'MutatesBlockDeviceInfo').items():
            case = self.results[('MutatesBlockDeviceInfo', volumes)]
            self.assertEqual('migrated', outcome, case['detail'])
            self.assertNotIn('touched_by_driver', case['detail'])

    def test_failing_post_at_destination_is_caught(self):
        for volumes, outcome in self.outcomes(
                'FailsPostAtDestination').items():
            case = self.results[('FailsPostAtDestination', volumes)]
            self.assertEqual('UNSAFE', outcome, case['detail'])

    def test_driver_that_does_not_register_1_5_is_caught(self):
        # Stock nova's driver behind the extension's name: legacy SRs
        # still hit nova bug 1566622, so the all-extension rule fails.
        outcomes = self.outcomes('NeverRegisters')
        self.assertNotEqual('migrated', outcomes['legacy'])

    def test_a_dying_compute_is_unsafe(self):
        for volumes, outcome in self.outcomes(
                'DiesInPreLiveMigration').items():
            case = self.results[('DiesInPreLiveMigration', volumes)]
            self.assertEqual('UNSAFE', outcome, case['detail'])


class TestShippedScenarios(base.TestCase):
    """The scenarios in etc/verify-upgrade/, with an upgraded conductor.

    Each shows a failure of stock nova 21 that the extension removes once
    the right computes run it, so the command exits 1.
    """

    def setUp(self):
        super(TestShippedScenarios, self).setUp()
        self.useFixture(fixtures.Timeout(FULL_MATRIX_TIMEOUT, gentle=True))

    def outcomes(self, name):
        path = os.path.join(REPO_ROOT, 'etc', 'verify-upgrade', name)
        status, doc, _err = run_json('--scenario', path,
                                     '--conductor', 'extension')
        self.assertEqual(1, status)
        return doc, dict(((c['source'], c['destination']), c)
                         for c in doc['cases'])

    def test_shared_target_scenario(self):
        doc, cases = self.outcomes('shared-target.json')
        self.assertEqual(
            {('stock', 'stock'): 'UNSAFE',
             ('stock', 'extension'): 'failed_clean',
             ('extension', 'stock'): 'migrated',
             ('extension', 'extension'): 'migrated'},
            dict((key, case['outcome']) for key, case in cases.items()))
        self.assertIn('HANDLE_INVALID', cases[('stock', 'stock')]['detail'])
