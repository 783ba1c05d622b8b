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

"""``verify-upgrade`` end to end: node processes, mock XAPI, real nova.

The full matrix runs once per test process (about 1.5 minutes on two
cores) and several tests read its JSON document. The command class is
driven directly, as the cliff App would.
"""

import io
import json
import os

import fixtures

from nova_xenapi_sr_tools.upgrade import cmd
from tests import base

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
BROKEN = 'tests.functional.upgrade.broken_drivers.'

#: Seconds the full matrix may take here (CI machines are slow).
FULL_MATRIX_TIMEOUT = 900

#: The matrix as nova 21.2.4 and the extension behave today:
#: (conductor, source, destination) -> outcomes for uuid5, legacy, mixed.
#: The UNSAFE mixed cells: the set's legacy volume reaches the destination
#: behind another portal/IQN (Cinder's attachment for that host). A stock
#: source fails VM.migrate_send (UUID_INVALID) and nova rolls back; the
#: destination's rollback rebuilds block_device_info from the mappings,
#: which nova has already reset to the source's connection_info, so it
#: derives the uuid5 SR name of the source's target and leaves behind the
#: SR (and PBD) it introduced for its own target. Stock nova 21 does that
#: on a stock destination; the extension's destination, which behaves like
#: stock nova when the source sends no SR map, does it too (a driver bug).
EXPECTED = {
    ('stock', 'stock', 'stock'): ('migrated', 'failed_clean',
                                  'failed_clean'),
    ('stock', 'stock', 'extension'): ('refused', 'refused', 'refused'),
    ('stock', 'extension', 'stock'): ('migrated', 'refused', 'refused'),
    ('stock', 'extension', 'extension'): ('refused', 'refused', 'refused'),
    ('extension', 'stock', 'stock'): ('migrated', 'failed_clean',
                                      'failed_clean'),
    ('extension', 'stock', 'extension'): ('migrated', 'failed_clean',
                                          'failed_clean'),
    ('extension', 'extension', 'stock'): ('migrated', 'refused', 'refused'),
    ('extension', 'extension', 'extension'): ('migrated', 'migrated',
                                              'migrated'),
}

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SHARED_TARGET = os.path.join(REPO, 'etc', 'verify-upgrade',
                             'shared-target.json')
OTHER_TARGET = os.path.join(REPO, 'etc', 'verify-upgrade',
                            'other-destination-target.json')
SOURCE_NEIGHBOUR = os.path.join(REPO, 'etc', 'verify-upgrade',
                                'source-neighbour.json')


class TtyStringIO(io.StringIO):
    def isatty(self):
        return True


class FakeApp(object):
    def __init__(self, tty=False):
        self.stdout = io.StringIO()
        self.stderr = TtyStringIO() if tty else io.StringIO()


def run_command(*argv, **kwargs):
    """Run verify-upgrade with ``argv``; return (status, stdout, stderr)."""
    app = FakeApp(tty=kwargs.get('tty', False))
    command = cmd.VerifyUpgrade(app, None)
    parsed = command.get_parser('nova-xenapi-sr verify-upgrade').parse_args(
        list(argv))
    status = command.run(parsed)
    return status, app.stdout.getvalue(), app.stderr.getvalue()


_FULL = []


def full_matrix():
    if not _FULL:
        status, out, err = run_command('--format', 'json',
                                       '--debug-output')
        _FULL.append((status, json.loads(out), err))
    return _FULL[0]


class TestFullMatrix(base.TestCase):

    def setUp(self):
        super(TestFullMatrix, self).setUp()
        self.useFixture(fixtures.Timeout(FULL_MATRIX_TIMEOUT, gentle=True))
        self.status, self.doc, self.stderr = full_matrix()
        self.cases = self.doc['cases']

    def test_24_cases(self):
        self.assertEqual(24, len(self.cases))
        self.assertEqual(24, self.doc['summary']['cases'])
        self.assertTrue(self.doc['summary']['complete'])

    def test_matrix(self):
        got = {}
        for case in self.cases:
            key = (case['conductor'], case['source'], case['destination'])
            got.setdefault(key, {})[case['volumes']] = case['outcome']
        got = dict((key, (v['uuid5'], v['legacy'], v['mixed']))
                   for key, v in got.items())
        self.assertEqual(EXPECTED, got)

    def test_all_extension_cases_migrated(self):
        self.assertTrue(self.doc['summary']['all_extension_migrated'])

    def test_exit_status_follows_the_rule(self):
        summary = self.doc['summary']
        expected = 0 if (summary['unsafe'] == 0 and
                         summary['all_extension_migrated']) else 1
        self.assertEqual(expected, self.status)
        self.assertEqual(expected, summary['exit_status'])

    def test_nothing_is_ever_copied(self):
        self.assertEqual([0] * 24, [case['copies'] for case in self.cases])

    def test_non_migrated_cases_say_what_to_do(self):
        for case in self.cases:
            if case['outcome'] == 'migrated':
                continue
            self.assertTrue(case['detail'])
            self.assertTrue(any(word in case['detail'] for word in
                                ('upgrade', 'install', 'Install',
                                 'Do not')), case['detail'])

    def test_stock_conductor_cannot_read_1_5(self):
        for case in self.cases:
            if case['conductor'] == 'stock' and 'extension' in (
                    case['source'], case['destination']) and \
                    case['outcome'] == 'refused' and \
                    case['signature'] == 'conductor-cannot-read':
                self.assertIn('upgrade conductors first (run '
                              'nova-conductor-xenapi-sr)', case['detail'])
                self.assertIn('MessagingTimeout', case['detail'])
        stock_ext_ext = [c for c in self.cases if
                         (c['conductor'], c['source'], c['destination']) ==
                         ('stock', 'extension', 'extension')]
        self.assertEqual(['conductor-cannot-read'] * 3,
                         [c['signature'] for c in stock_ext_ext])

    def test_stock_source_with_legacy_sr_hits_bug_1566622(self):
        case = [c for c in self.cases if
                (c['conductor'], c['source'], c['destination'],
                 c['volumes']) == ('extension', 'stock', 'extension',
                                   'legacy')][0]
        self.assertEqual('failed_clean', case['outcome'])
        self.assertIn('UUID_INVALID', case['detail'])
        self.assertIn('install the extension on the source',
                      case['detail'])
        # VM.migrate_send failed inside the source's live_migration: nova
        # put the instance in ERROR although nothing changed.
        self.assertIn('openstack server set --state active',
                      case['detail'])
        self.assertEqual([], case['leftovers'])

    def test_the_destination_bystander_is_never_harmed(self):
        # instance-00000004 uses the uuid5 SR the mixed set needs on the
        # destination; no case may take it away.
        for case in self.cases:
            self.assertNotIn('another instance was harmed', case['detail'])
        mixed = [c for c in self.cases if c['volumes'] == 'mixed' and
                 c['outcome'] == 'migrated']
        self.assertEqual(1, len(mixed))

    def test_extension_source_refuses_a_stock_destination(self):
        case = [c for c in self.cases if
                (c['conductor'], c['source'], c['destination'],
                 c['volumes']) == ('extension', 'extension', 'stock',
                                   'legacy')][0]
        self.assertEqual('refused', case['outcome'])
        self.assertIn('the extension on the source refused',
                      case['detail'])
        # Pool addresses change per case; notes name the pools.
        self.assertNotIn('http://127.', case['detail'])

    def test_migrations_talk_to_both_pools(self):
        for case in self.cases:
            if case['outcome'] == 'migrated':
                self.assertGreater(case['xapi_calls']['source'], 0)
                self.assertGreater(case['xapi_calls']['destination'], 0)

    def test_nodes_loaded_the_expected_drivers(self):
        for case in self.cases:
            for role in ('source', 'destination'):
                driver = case['drivers'][role]['driver_class']
                if case[role] == 'stock':
                    self.assertEqual(
                        'nova.virt.xenapi.driver.XenAPIDriver', driver)
                else:
                    self.assertEqual(
                        'nova_xenapi_sr.virt.driver.XenAPISRDriver', driver)

    def test_objects_crossed_as_the_right_versions(self):
        # A stock source always got its migrate data backported or built
        # at 1.4; an extension destination sends 1.5.
        stock_received = []
        extension_built = []
        for case in self.cases:
            for entry in case['trace']:
                if entry['step'] == 'received dest_check_data' and \
                        case['source'] == 'stock':
                    stock_received.append(entry['version'])
                if entry['step'] == 'check_can_live_migrate_destination' \
                        and case['destination'] == 'extension':
                    extension_built.append(entry['version'])
        # Every extension destination builds the object (12 cases); a
        # stock source reads it whenever the conductor could pass it on:
        # an extension conductor (6 cases) or a stock destination with a
        # stock conductor (3 cases).
        self.assertEqual(['1.5'] * 12, extension_built)
        self.assertGreaterEqual(len(stock_received), 9)
        self.assertEqual({'1.4'}, set(stock_received))

    def test_no_progress_lines_without_a_terminal(self):
        self.assertEqual('', self.stderr)

    def test_stock_nodes_stayed_stock(self):
        for case in self.cases:
            ends = [entry for entry in case['trace']
                    if entry['step'] == 'teardown']
            self.assertEqual(2, len(ends))
            for entry in ends:
                flavour = entry['node'].split('-')[1]
                self.assertEqual(flavour == 'extension',
                                 entry['extension_objects_loaded'])
                self.assertEqual('1.5' if flavour == 'extension' else '1.4',
                                 entry['registry'])


class TestBrokenExtensions(base.TestCase):
    """The verification must catch extensions that are wrong."""

    def setUp(self):
        super(TestBrokenExtensions, self).setUp()
        self.useFixture(fixtures.Timeout(FULL_MATRIX_TIMEOUT, gentle=True))

    def run_all_extension(self, driver):
        status, out, _err = run_command(
            '--format', 'json', '--conductor', 'extension', '--source',
            'extension', '--destination', 'extension',
            '--extension-driver', BROKEN + driver)
        return status, json.loads(out)

    def assert_caught(self, driver, status, doc):
        self.assertNotEqual(0, status)
        self.assertEqual(BROKEN + driver,
                         doc['summary']['extension_driver'])
        self.assertFalse(doc['summary']['all_extension_migrated'])
        outcomes = dict((c['volumes'], c['outcome']) for c in doc['cases'])
        self.assertNotEqual('migrated', outcomes['legacy'])
        self.assertNotEqual('migrated', outcomes['mixed'])

    def test_skipping_the_destination_injection_is_caught(self):
        status, doc = self.run_all_extension('SkipsInjection')
        self.assert_caught('SkipsInjection', status, doc)

    def test_changing_nova_block_device_info_is_caught(self):
        status, doc = self.run_all_extension('MutatesBlockDeviceInfo')
        self.assertEqual(1, status)
        self.assertEqual(['UNSAFE'] * 3,
                         [c['outcome'] for c in doc['cases']])
        for case in doc['cases']:
            self.assertIn('the VM moved, BUT: the driver on '
                          'compute-extension-destination changed the '
                          'block_device_info nova passed to '
                          'pre_live_migration', case['detail'])

    def test_a_dying_node_is_unsafe_and_the_run_goes_on(self):
        status, out, _err = run_command(
            '--format', 'json', '--conductor', 'extension', '--source',
            'extension', '--destination', 'extension', '--volumes', 'legacy',
            '--volumes', 'mixed', '--extension-driver',
            BROKEN + 'DiesInPreLiveMigration')
        doc = json.loads(out)
        self.assertEqual(1, status)
        self.assertEqual(['UNSAFE', 'UNSAFE'],
                         [c['outcome'] for c in doc['cases']])
        for case in doc['cases']:
            self.assertIn('node compute-extension-destination died',
                          case['detail'])

    def test_failing_post_at_destination_is_caught(self):
        # The VM moves and XAPI looks migrated; nova set the instance to
        # ERROR on the destination, so the case must not be "migrated".
        status, out, _err = run_command(
            '--format', 'json', '--conductor', 'extension', '--source',
            'extension', '--destination', 'extension', '--volumes', 'uuid5',
            '--extension-driver', BROKEN + 'FailsPostAtDestination')
        doc = json.loads(out)
        self.assertEqual(1, status)
        self.assertEqual(['UNSAFE'], [c['outcome'] for c in doc['cases']])
        detail = doc['cases'][0]['detail']
        self.assertIn('post_live_migration_at_destination failed', detail)
        self.assertIn('broken on purpose after the move', detail)
        self.assertIn('openstack server set --state active', detail)

    def test_refusing_what_stock_nova_migrates_is_caught(self):
        # Its refusal is well worded, but stock nova migrates uuid5-only
        # instances: with an extension conductor that is harm done.
        status, out, _err = run_command(
            '--format', 'json', '--destination', 'stock', '--volumes',
            'uuid5', '--extension-driver',
            BROKEN + 'RefusesEveryStockDestination')
        doc = json.loads(out)
        self.assertEqual(1, status)
        outcomes = dict(((c['conductor'], c['source']), c)
                        for c in doc['cases'])
        self.assertEqual('migrated', outcomes[('stock', 'stock')]['outcome'])
        harmed = outcomes[('extension', 'extension')]
        self.assertEqual('UNSAFE', harmed['outcome'])
        self.assertIn('the extension broke a migration stock nova handles',
                      harmed['detail'])
        self.assertIn('install nova-xenapi-sr on the destination',
                      harmed['detail'])
        # A stock conductor: the rule does not apply (DESIGN 2.7).
        self.assertEqual('refused',
                         outcomes[('stock', 'extension')]['outcome'])
        self.assertEqual([], doc['summary']['do_no_harm_unchecked'])

    def test_driver_that_does_not_register_1_5_is_caught(self):
        # Stock nova's driver migrates uuid5 SRs; as "the extension" it
        # must still fail, because nothing made the 1.5 object nova's.
        status, out, _err = run_command(
            '--format', 'json', '--conductor', 'extension', '--source',
            'extension', '--destination', 'extension', '--volumes', 'uuid5',
            '--extension-driver',
            'tests.functional.upgrade.unregistered_driver.NeverRegisters')
        doc = json.loads(out)
        self.assertEqual(1, status)
        self.assertEqual(['UNSAFE'], [c['outcome'] for c in doc['cases']])
        self.assertIn('did not register XenapiLiveMigrateData 1.5 '
                      '(nova.objects has 1.4)', doc['cases'][0]['detail'])

    def test_forgetting_introduce_sr_keys_is_caught(self):
        status, doc = self.run_all_extension('ForgetsIntroduceKeys')
        self.assert_caught('ForgetsIntroduceKeys', status, doc)
        legacy = [c for c in doc['cases'] if c['volumes'] == 'legacy'][0]
        self.assertEqual('UNSAFE', legacy['outcome'])
        self.assertIn('SR_BACKEND_FAILURE_95', legacy['detail'])


class TestSubset(base.TestCase):

    def setUp(self):
        super(TestSubset, self).setUp()
        self.useFixture(fixtures.Timeout(FULL_MATRIX_TIMEOUT, gentle=True))

    def test_table_for_a_partial_run_on_a_terminal(self):
        status, out, err = run_command(
            '--conductor', 'extension', '--source', 'stock',
            '--destination', 'stock', '--volumes', 'legacy', tty=True)
        self.assertEqual(0, status)
        self.assertIn('extension  stock   stock       | failed_clean [1]',
                      out)
        self.assertIn('[1] the source asked its pool', out)
        self.assertIn('Partial run', out)
        # Progress goes to the terminal, one line per case.
        self.assertIn('node processes ready', err)
        self.assertIn('[ 1/1] conductor=extension source=stock', err)
        self.assertNotIn('[ 1/1]', out)

    def scenario_outcomes(self, path):
        """Run a shipped scenario with an upgraded conductor.

        Every shipped scenario shows a stock nova 21 failure, so the
        command must exit 1; returns the JSON document and the cases by
        ``(source, destination)``.
        """
        status, out, _err = run_command('--scenario', path, '--format',
                                        'json', '--conductor', 'extension')
        doc = json.loads(out)
        self.assertEqual(1, status)
        return doc, dict(((c['source'], c['destination']), c)
                         for c in doc['cases'])

    def test_other_destination_target_scenario(self):
        # The destination reaches the legacy volume through another
        # target. A stock source fails (bug 1566622) and nova hands the
        # destination's rollback the source's connection data: stock nova
        # there leaves its own SR behind, the extension does not.
        doc, outcomes = self.scenario_outcomes(OTHER_TARGET)
        self.assertEqual(
            {('stock', 'stock'): 'UNSAFE',
             ('stock', 'extension'): 'failed_clean',
             ('extension', 'stock'): 'refused',
             ('extension', 'extension'): 'migrated'},
            {key: case['outcome'] for key, case in outcomes.items()})
        self.assertTrue(any(
            item.startswith('destination pool: new SR')
            for item in outcomes[('stock', 'stock')]['leftovers']),
            outcomes[('stock', 'stock')]['leftovers'])
        self.assertEqual([], outcomes[('stock', 'extension')]['leftovers'])

    def test_shared_target_scenario(self):
        # Two volumes behind one target share one uuid5 SR. Stock nova 21
        # on the source forgets that SR once per volume after the move and
        # rolls back an instance that runs on the destination: UNSAFE with
        # stock computes, which the extension cannot change; an extension
        # destination refuses such a stock source up front; an extension
        # source migrates.
        doc, outcomes = self.scenario_outcomes(SHARED_TARGET)
        self.assertEqual(
            {('stock', 'stock'): 'UNSAFE',
             ('stock', 'extension'): 'failed_clean',
             ('extension', 'stock'): 'migrated',
             ('extension', 'extension'): 'migrated'},
            {key: case['outcome'] for key, case in outcomes.items()})
        self.assertIn('Install nova-xenapi-sr on the source compute',
                      outcomes[('stock', 'extension')]['detail'])
        self.assertIn('HANDLE_INVALID',
                      outcomes[('stock', 'stock')]['detail'])
        self.assertEqual(1, doc['summary']['unsafe_with_stock_computes'])

    def test_source_neighbour_scenario(self):
        # Another instance on the source uses the uuid5 SR of the
        # migrating volume. The extension's source keeps that SR; stock
        # nova 21's source tries to forget it after the move, XAPI refuses
        # (SR_HAS_PBD) and nova rolls back an instance that already runs
        # on the destination.
        doc, outcomes = self.scenario_outcomes(SOURCE_NEIGHBOUR)
        self.assertEqual(
            {('stock', 'stock'): 'UNSAFE',
             ('stock', 'extension'): 'UNSAFE',
             ('extension', 'stock'): 'migrated',
             ('extension', 'extension'): 'migrated'},
            {key: case['outcome'] for key, case in outcomes.items()})
        for key in (('stock', 'stock'), ('stock', 'extension')):
            self.assertIn('SR_HAS_PBD', outcomes[key]['detail'])
            self.assertIn('the VM now runs on the destination pool',
                          outcomes[key]['detail'])
        self.assertEqual(['uuid5-neighbour'],
                         doc['summary']['do_no_harm_unchecked'])
