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

"""Outcome classification, on hand-made XAPI snapshots."""

import copy

from nova_xenapi_sr_tools.upgrade import verdict
from tests import base

VM = 'instance-00000001'
CASE = {'conductor': 'extension', 'source': 'stock',
        'destination': 'extension', 'volumes': 'legacy'}
ALL_EXT = {'conductor': 'extension', 'source': 'extension',
           'destination': 'extension', 'volumes': 'legacy'}


def pool(prefix, vm=False, sr_uuid='FA15E-D15C-vol-1'):
    """A pool snapshot: local SR, optionally the VM on an iSCSI SR."""
    state = {'SR': {prefix + 'sr-local': {'uuid': prefix + 'local',
                                          'name_label': 'Local storage'}},
             'PBD': {prefix + 'pbd-local': {'SR': prefix + 'sr-local'}},
             'VDI': {}, 'VBD': {},
             'VM': {prefix + 'dom0': {'name_label': 'Control domain',
                                      'is_control_domain': True,
                                      'power_state': 'Running'}}}
    if vm:
        add_vm(state, prefix, sr_uuid)
    return state


def add_vm(state, prefix, sr_uuid='FA15E-D15C-vol-1'):
    state['SR'][prefix + 'sr-1'] = {'uuid': sr_uuid,
                                    'name_label': 'tempSR-vol-1'}
    state['PBD'][prefix + 'pbd-1'] = {'SR': prefix + 'sr-1'}
    state['VDI'][prefix + 'vdi-1'] = {'uuid': 'lun-1', 'SR': prefix + 'sr-1'}
    state['VM'][prefix + 'vm'] = {'name_label': VM, 'power_state': 'Running',
                                  'is_control_domain': False}
    state['VBD'][prefix + 'vbd-1'] = {'VM': prefix + 'vm',
                                      'VDI': prefix + 'vdi-1',
                                      'device': 'xvdb'}
    return state


def baseline():
    return {'source': pool('s-', vm=True), 'destination': pool('d-')}


def migrated_state(dest_sr_uuid='FA15E-D15C-vol-1'):
    return {'source': pool('s-'),
            'destination': pool('d-', vm=True, sr_uuid=dest_sr_uuid)}


def error(type_, message, origin, chain=None):
    return {'type': type_, 'message': message, 'origin': origin,
            'chain': chain or [{'type': type_, 'message': message}]}


DONE = {'phase': 'done', 'error': None}
UUID_INVALID = {'phase': 'migration', 'error': error(
    'MigrationError', 'Migration error: Migrate Send failed',
    'compute-stock-source',
    [{'type': 'MigrationError',
      'message': 'Migration error: Migrate Send failed'},
     {'type': 'Failure',
      'message': "['UUID_INVALID', 'SR', '3cca4135-aaaa']"}])}
CONDUCTOR = {'phase': 'precheck', 'error': error(
    'IncompatibleObjectVersion',
    'Version 1.5 of XenapiLiveMigrateData is not supported, supported '
    'version is 1.4', 'conductor-stock')}


class TestMigrated(base.TestCase):

    def test_clean_migration(self):
        found = verdict.classify(ALL_EXT, DONE, baseline(), migrated_state(),
                                 [], VM)
        self.assertEqual(verdict.MIGRATED, found.outcome)
        self.assertIn('FA15E-D15C-vol-1', found.detail)

    def test_a_copy_is_unsafe(self):
        found = verdict.classify(ALL_EXT, DONE, baseline(), migrated_state(),
                                 [{'vdi_uuid': 'lun-1'}], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertEqual(1, found.copies)
        self.assertIn('copied VDI lun-1', found.detail)

    def test_source_sr_not_forgotten_is_unsafe(self):
        after = migrated_state()
        after['source']['SR']['s-sr-1'] = {'uuid': 'FA15E-D15C-vol-1',
                                           'name_label': 'tempSR-vol-1'}
        found = verdict.classify(ALL_EXT, DONE, baseline(), after, [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('not forgotten', found.detail)

    def test_destination_sr_under_another_uuid_is_unsafe(self):
        found = verdict.classify(ALL_EXT, DONE, baseline(),
                                 migrated_state('3cca4135-aaaa'), [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('differ from the source SRs', found.detail)

    def test_vm_on_both_pools_is_unsafe(self):
        after = migrated_state()
        add_vm(after['source'], 's-')
        found = verdict.classify(ALL_EXT, DONE, baseline(), after, [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('source pool: VM %s present' % VM, found.detail)

    def test_extra_sr_on_destination_is_a_leftover(self):
        after = migrated_state()
        after['destination']['SR']['d-extra'] = {'uuid': 'extra',
                                                 'name_label': 'x'}
        found = verdict.classify(ALL_EXT, DONE, baseline(), after, [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertEqual(['destination pool: new SR extra (x)'],
                         found.leftovers)

    def test_vm_disk_without_sr_is_unsafe(self):
        after = migrated_state()
        del after['destination']['VDI']['d-vdi-1']
        found = verdict.classify(ALL_EXT, DONE, baseline(), after, [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('lost its VDI or SR', found.detail)

    def test_driver_changing_nova_data_is_unsafe(self):
        found = verdict.classify(
            ALL_EXT, DONE, baseline(), migrated_state(), [], VM,
            mutations=[('compute-extension-destination',
                        'pre_live_migration')])
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('compute-extension-destination changed the '
                      'block_device_info nova passed to pre_live_migration',
                      found.detail)

    def test_post_at_destination_failure_is_unsafe(self):
        flow = dict(DONE, post_error=error(
            'RuntimeError', 'broken', 'compute-extension-destination'))
        found = verdict.classify(ALL_EXT, flow, baseline(), migrated_state(),
                                 [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertEqual('post-at-destination-failed', found.signature)
        self.assertIn('post_live_migration_at_destination failed on the '
                      'extension destination (RuntimeError: broken)',
                      found.detail)
        self.assertIn('openstack server set --state active', found.detail)

    def test_post_at_destination_failure_keeps_other_problems(self):
        flow = dict(DONE, post_error=error(
            'RuntimeError', 'broken', 'compute-extension-destination'))
        found = verdict.classify(ALL_EXT, flow, baseline(), migrated_state(),
                                 [{'vdi_uuid': 'lun-1'}], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('copied VDI lun-1', found.detail)

    def test_phase_without_error_is_unsafe(self):
        found = verdict.classify(ALL_EXT, {'phase': 'migration',
                                           'error': None},
                                 baseline(), baseline(), [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)


class TestNetworks(base.TestCase):

    def with_networks(self, state, prefix, vif=False):
        state['network'] = {prefix + 'net-0': {'name_label': 'xenbr0'}}
        state['VIF'] = {}
        if vif:
            state['network'][prefix + 'net-vif'] = {'name_label': 'net-p1'}
            state['VIF'][prefix + 'vif'] = {'VM': prefix + 'vm',
                                            'network': prefix + 'net-vif'}
        return state

    def states(self):
        before = baseline()
        self.with_networks(before['source'], 's-')
        self.with_networks(before['destination'], 'd-')
        after = migrated_state()
        self.with_networks(after['source'], 's-')
        self.with_networks(after['destination'], 'd-', vif=True)
        return before, after

    def test_the_vms_network_on_the_destination_is_expected(self):
        before, after = self.states()
        found = verdict.classify(ALL_EXT, DONE, before, after, [], VM)
        self.assertEqual(verdict.MIGRATED, found.outcome)

    def test_other_new_network_is_a_leftover(self):
        before, after = self.states()
        after['destination']['network']['d-extra'] = {'name_label': 'x'}
        found = verdict.classify(ALL_EXT, DONE, before, after, [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertEqual(['destination pool: new network x'],
                         found.leftovers)

    def test_lost_source_network_is_unsafe(self):
        before, after = self.states()
        del after['source']['network']['s-net-0']
        found = verdict.classify(ALL_EXT, DONE, before, after, [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('source pool: lost network xenbr0', found.detail)

    def test_interim_network_left_after_rollback_is_unsafe(self):
        before = baseline()
        self.with_networks(before['source'], 's-')
        self.with_networks(before['destination'], 'd-')
        after = copy.deepcopy(before)
        after['destination']['network']['d-interim'] = {
            'name_label': 'net-p1'}
        found = verdict.classify(CASE, UUID_INVALID, before, after, [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertEqual(['destination pool: new network net-p1'],
                         found.leftovers)


class TestFailures(base.TestCase):

    def test_conductor_cannot_read_is_refused(self):
        case = dict(CASE, conductor='stock')
        found = verdict.classify(case, CONDUCTOR, baseline(), baseline(),
                                 [], VM)
        self.assertEqual(verdict.REFUSED, found.outcome)
        self.assertIn('upgrade conductors first (run '
                      'nova-conductor-xenapi-sr)', found.detail)
        self.assertEqual('conductor-cannot-read', found.signature)
        self.assertIn('MessagingTimeout', found.detail)
        self.assertIn('object_backport_versions', found.detail)

    def test_version_error_in_a_compute_is_not_the_conductor_signature(self):
        flow = copy.deepcopy(CONDUCTOR)
        flow['error']['origin'] = 'compute-stock-source'
        found = verdict.classify(CASE, flow, baseline(), baseline(), [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('no check recognises', found.detail)

    def test_refusal_that_changed_records_is_not_refused(self):
        after = baseline()
        after['destination']['PBD']['d-pbd-local']['currently_attached'] = \
            False
        found = verdict.classify(dict(CASE, conductor='stock'), CONDUCTOR,
                                 baseline(), after, [], VM)
        self.assertEqual(verdict.FAILED_CLEAN, found.outcome)
        self.assertIn('changed records', found.detail)

    def test_refusal_with_leftover_is_unsafe(self):
        after = baseline()
        add_vm(after['destination'], 'd-')
        del after['destination']['VM']['d-vm']
        found = verdict.classify(dict(CASE, conductor='stock'), CONDUCTOR,
                                 baseline(), after, [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('destination pool: new SR FA15E-D15C-vol-1',
                      found.detail)

    def test_uuid_invalid_with_clean_state_is_failed_clean(self):
        found = verdict.classify(CASE, UUID_INVALID, baseline(), baseline(),
                                 [], VM)
        self.assertEqual(verdict.FAILED_CLEAN, found.outcome)
        self.assertIn('UUID_INVALID', found.detail)
        self.assertIn('install the extension on the source', found.detail)
        self.assertNotIn('destination', found.detail.split('Fix:')[1])

    def test_failure_after_live_migration_began_says_reset_state(self):
        found = verdict.classify(CASE, UUID_INVALID, baseline(), baseline(),
                                 [], VM, live_migration_began=True)
        self.assertEqual(verdict.FAILED_CLEAN, found.outcome)
        self.assertIn('nova 21 set the migration to error and the instance '
                      'to ERROR', found.detail)
        self.assertIn("reset the instance's state (openstack server set "
                      "--state active <server>)", found.detail)

    def test_failure_before_live_migration_keeps_the_state(self):
        found = verdict.classify(CASE, UUID_INVALID, baseline(), baseline(),
                                 [], VM, live_migration_began=False)
        self.assertNotIn('openstack server set', found.detail)

    def test_uuid_invalid_all_stock_names_both_sides(self):
        case = dict(CASE, conductor='stock', destination='stock')
        found = verdict.classify(case, UUID_INVALID, baseline(), baseline(),
                                 [], VM)
        self.assertIn('install the extension on the source and the '
                      'destination', found.detail)

    def test_uuid_invalid_with_all_extension_is_reported_as_a_bug(self):
        found = verdict.classify(ALL_EXT, UUID_INVALID, baseline(),
                                 baseline(), [], VM)
        self.assertEqual(verdict.FAILED_CLEAN, found.outcome)
        self.assertIn('bug in the extension', found.detail)

    def test_leftover_pbd_after_failure_is_unsafe(self):
        after = baseline()
        after['destination']['PBD']['d-pbd-x'] = {'SR': 'd-sr-local'}
        found = verdict.classify(CASE, UUID_INVALID, baseline(), after, [],
                                 VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertEqual(['destination pool: new PBD of SR d-local '
                          '(Local storage)'], found.leftovers)

    def test_new_vdi_on_a_baseline_sr_is_not_a_leftover(self):
        # A scan of an SR shared with another instance lists the LUN.
        after = baseline()
        after['source']['VDI']['s-vdi-x'] = {'uuid': 'lun-x',
                                             'SR': 's-sr-1'}
        found = verdict.classify(CASE, UUID_INVALID, baseline(), after, [],
                                 VM)
        self.assertEqual(verdict.FAILED_CLEAN, found.outcome)
        # On a new SR it is one.
        after['destination']['SR']['d-new'] = {'uuid': 'n', 'name_label': 'x'}
        after['destination']['VDI']['d-vdi-x'] = {'uuid': 'lun-x',
                                                  'SR': 'd-new'}
        found = verdict.classify(CASE, UUID_INVALID, baseline(), after, [],
                                 VM)
        self.assertIn('destination pool: new VDI lun-x on SR n (x)',
                      found.leftovers)

    def test_lost_baseline_sr_is_unsafe(self):
        after = baseline()
        del after['source']['SR']['s-sr-1']
        found = verdict.classify(CASE, UUID_INVALID, baseline(), after, [],
                                 VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('source pool: lost SR FA15E-D15C-vol-1', found.detail)

    def test_unplugged_source_pbd_is_unsafe(self):
        before = baseline()
        before['source']['PBD']['s-pbd-1']['currently_attached'] = True
        after = copy.deepcopy(before)
        after['source']['PBD']['s-pbd-1']['currently_attached'] = False
        found = verdict.classify(CASE, UUID_INVALID, before, after, [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertEqual(['source pool: PBD of SR FA15E-D15C-vol-1 '
                          '(tempSR-vol-1) no longer attached'],
                         found.leftovers)

    def test_detached_or_lost_vbd_is_unsafe(self):
        before = baseline()
        before['source']['VBD']['s-vbd-1']['currently_attached'] = True
        detached = copy.deepcopy(before)
        detached['source']['VBD']['s-vbd-1']['currently_attached'] = False
        found = verdict.classify(CASE, UUID_INVALID, before, detached, [],
                                 VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('VBD of the VM, device xvdb no longer attached',
                      found.detail)
        lost = copy.deepcopy(before)
        del lost['source']['VBD']['s-vbd-1']
        found = verdict.classify(CASE, UUID_INVALID, before, lost, [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('lost VBD of the VM, device xvdb', found.detail)

    def test_vm_stopped_after_failure_is_unsafe(self):
        after = baseline()
        after['source']['VM']['s-vm']['power_state'] = 'Halted'
        found = verdict.classify(CASE, UUID_INVALID, baseline(), after, [],
                                 VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('expected one running', found.detail)

    def test_failure_after_the_vm_moved_is_unsafe(self):
        flow = {'phase': 'migration', 'error': error(
            'Failure', "['HANDLE_INVALID', 'SR', 'OpaqueRef:x']",
            'compute-stock-source')}
        found = verdict.classify(CASE, flow, baseline(), migrated_state(),
                                 [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertEqual('source-forgot-shared-sr-twice', found.signature)
        self.assertIn('runs on the destination pool although nova '
                      'recorded the migration as failed', found.detail)
        self.assertEqual([], found.leftovers)

    def test_unrecognised_error_is_unsafe_even_when_clean(self):
        flow = {'phase': 'migration', 'error': error(
            'KeyError', "'id'", 'compute-extension-destination')}
        found = verdict.classify(ALL_EXT, flow, baseline(), baseline(), [],
                                 VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn("KeyError on compute-extension-destination: 'id'",
                      found.detail)

    def test_extension_refusal_is_refused_with_its_message(self):
        flow = {'phase': 'precheck', 'error': error(
            'MigrationPreCheckError', 'Migration pre-check error: install '
            'nova-xenapi-sr on the destination', 'compute-extension-source')}
        case = dict(ALL_EXT, destination='stock')
        found = verdict.classify(case, flow, baseline(), baseline(), [], VM)
        self.assertEqual(verdict.REFUSED, found.outcome)
        self.assertIn('install nova-xenapi-sr on the destination',
                      found.detail)

    def test_stock_precheck_error_is_not_recognised(self):
        flow = {'phase': 'precheck', 'error': error(
            'MigrationPreCheckError', 'Migration pre-check error: '
            'Migrate Receive failed', 'compute-stock-destination')}
        case = dict(CASE, destination='stock')
        found = verdict.classify(case, flow, baseline(), baseline(), [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)

    def test_empty_extension_refusal_is_not_clear(self):
        flow = {'phase': 'precheck', 'error': error(
            'MigrationPreCheckError', '  ', 'compute-extension-source')}
        found = verdict.classify(ALL_EXT, flow, baseline(), baseline(), [],
                                 VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)

    def test_extension_refusal_without_remedy_is_unsafe(self):
        flow = {'phase': 'precheck', 'error': error(
            'MigrationPreCheckError', 'Migration pre-check error: found 2 '
            'VMs named x; cannot tell which SR its volumes use',
            'compute-extension-source')}
        found = verdict.classify(dict(ALL_EXT, destination='stock'), flow,
                                 baseline(), baseline(), [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('no check recognises', found.detail)

    def test_remedy_words(self):
        for text in ('Install X', 'upgrade the destination', 'then retry',
                     'fix it', 'detach the stale one', 'report a bug'):
            self.assertTrue(verdict.says_what_to_do(text), text)
        for text in ('', None, 'cannot tell which SR', 'refused'):
            self.assertFalse(verdict.says_what_to_do(text), text)

    def test_copy_on_failure_is_unsafe(self):
        found = verdict.classify(CASE, UUID_INVALID, baseline(), baseline(),
                                 [{'vdi_uuid': 'lun-1'}], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)


NEIGHBOUR = 'instance-00000009'


def with_neighbour(state, prefix):
    """A running VM ``NEIGHBOUR`` on the pool's SR ``sr-1``."""
    state['VDI'][prefix + 'vdi-n'] = {'uuid': 'lun-n', 'SR': prefix + 'sr-1'}
    state['VM'][prefix + 'vm-n'] = {'name_label': NEIGHBOUR,
                                    'power_state': 'Running',
                                    'is_control_domain': False}
    state['VBD'][prefix + 'vbd-n'] = {'VM': prefix + 'vm-n',
                                      'VDI': prefix + 'vdi-n',
                                      'device': 'xvdb',
                                      'currently_attached': True}
    return state


class TestBystanders(base.TestCase):

    def states(self):
        before = baseline()
        add_vm(before['destination'], 'd-')
        del before['destination']['VM']['d-vm']
        del before['destination']['VBD']['d-vbd-1']
        del before['destination']['VDI']['d-vdi-1']
        with_neighbour(before['destination'], 'd-')
        after = migrated_state()
        with_neighbour(after['destination'], 'd-')
        return before, after

    def test_neighbour_kept_everything(self):
        before, after = self.states()
        found = verdict.classify(ALL_EXT, DONE, before, after, [], VM,
                                 bystanders=[NEIGHBOUR])
        self.assertEqual(verdict.MIGRATED, found.outcome, found.detail)

    def test_neighbour_lost_its_sr(self):
        before, after = self.states()
        del after['destination']['SR']['d-sr-1']
        found = verdict.bystander_problems(before, after, [NEIGHBOUR])
        self.assertIn('destination pool: lost SR FA15E-D15C-vol-1 '
                      '(tempSR-vol-1) (of VM %s)' % NEIGHBOUR, found)

    def test_neighbour_lost_its_vm_or_vbd(self):
        before, after = self.states()
        del after['destination']['VBD']['d-vbd-n']
        found = verdict.classify(ALL_EXT, DONE, before, after, [], VM,
                                 bystanders=[NEIGHBOUR])
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('another instance was harmed', found.detail)
        self.assertIn('lost VBD of the VM, device xvdb (of VM %s)'
                      % NEIGHBOUR, found.detail)
        del after['destination']['VM']['d-vm-n']
        self.assertIn('destination pool: VM %s is gone' % NEIGHBOUR,
                      verdict.bystander_problems(before, after,
                                                 [NEIGHBOUR]))

    def test_neighbour_halted_or_detached(self):
        before, after = self.states()
        after['destination']['VM']['d-vm-n']['power_state'] = 'Halted'
        after['destination']['VBD']['d-vbd-n']['currently_attached'] = False
        problems = verdict.bystander_problems(before, after, [NEIGHBOUR])
        self.assertEqual(2, len(problems), problems)

    def test_source_keeps_an_sr_its_neighbour_uses(self):
        before = baseline()
        with_neighbour(before['source'], 's-')
        after = migrated_state()
        after['source']['SR']['s-sr-1'] = copy.deepcopy(
            before['source']['SR']['s-sr-1'])
        after['source']['PBD']['s-pbd-1'] = copy.deepcopy(
            before['source']['PBD']['s-pbd-1'])
        with_neighbour(after['source'], 's-')
        found = verdict.classify(ALL_EXT, DONE, before, after, [], VM,
                                 bystanders=[NEIGHBOUR])
        self.assertEqual(verdict.MIGRATED, found.outcome, found.detail)
        # Without the neighbour the SR had to go.
        del after['source']['VM']['s-vm-n']
        found = verdict.classify(ALL_EXT, DONE, before, after, [], VM)
        self.assertIn('not forgotten', found.detail)

    def test_failed_case_with_a_harmed_neighbour_is_unsafe(self):
        before = baseline()
        with_neighbour(before['source'], 's-')
        after = copy.deepcopy(before)
        after['source']['VM']['s-vm-n']['power_state'] = 'Halted'
        found = verdict.classify(CASE, UUID_INVALID, before, after, [], VM,
                                 bystanders=[NEIGHBOUR])
        self.assertEqual(verdict.UNSAFE, found.outcome)


class TestDoNoHarm(base.TestCase):

    def test_extension_conductor_case_not_migrated_is_unsafe(self):
        case = dict(ALL_EXT, destination='stock', volumes='uuid5')
        found = verdict.do_no_harm(case, verdict.REFUSED, 'install it',
                                   verdict.MIGRATED)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertEqual('do-no-harm', found.signature)
        self.assertIn('the extension broke a migration stock nova handles',
                      found.detail)
        self.assertIn('ended refused (install it)', found.detail)

    def test_rule_does_not_apply(self):
        case = dict(ALL_EXT, destination='stock', volumes='uuid5')
        # all-stock did not migrate, or is unknown (filtered run)
        for stock in (verdict.FAILED_CLEAN, verdict.UNSAFE, None):
            self.assertIsNone(verdict.do_no_harm(case, verdict.REFUSED, '',
                                                 stock))
        # this case migrated
        self.assertIsNone(verdict.do_no_harm(case, verdict.MIGRATED, '',
                                             verdict.MIGRATED))
        # a stock conductor: the rule starts once conductors are upgraded
        self.assertIsNone(verdict.do_no_harm(
            dict(case, conductor='stock'), verdict.REFUSED, '',
            verdict.MIGRATED))

    def test_unchecked_sets(self):
        stock = {'conductor': 'stock', 'source': 'stock',
                 'destination': 'stock', 'volumes': 'uuid5'}
        self.assertEqual([], verdict.unchecked_do_no_harm(
            [stock, dict(ALL_EXT, volumes='uuid5')]))
        self.assertEqual(['legacy'], verdict.unchecked_do_no_harm(
            [stock, ALL_EXT, dict(CASE, conductor='stock')]))


class TestExitStatus(base.TestCase):

    def test_zero_when_safe_and_all_extension_migrated(self):
        self.assertEqual(0, verdict.exit_status([
            (ALL_EXT, verdict.MIGRATED), (CASE, verdict.REFUSED),
            (CASE, verdict.FAILED_CLEAN)]))

    def test_unsafe_anywhere_fails(self):
        self.assertEqual(1, verdict.exit_status([
            (ALL_EXT, verdict.MIGRATED), (CASE, verdict.UNSAFE)]))

    def test_all_extension_not_migrated_fails(self):
        self.assertEqual(1, verdict.exit_status([
            (ALL_EXT, verdict.REFUSED)]))

    def test_extension_refusal_inside_one_pool_passes(self):
        inside = dict(ALL_EXT, layout='same-pool',
                      signature='extension-refused')
        self.assertEqual(0, verdict.exit_status([
            (inside, verdict.REFUSED)]))
        # not the extension's own refusal, or not refused, or between pools
        for case, outcome in (
                (dict(inside, signature='conductor-cannot-read'),
                 verdict.REFUSED),
                (inside, verdict.FAILED_CLEAN),
                (dict(inside, layout='cross-pool'), verdict.REFUSED)):
            self.assertEqual(1, verdict.exit_status([(case, outcome)]),
                             (case, outcome))


class TestSamePoolSignature(base.TestCase):
    """Stock nova 21's failures inside a pool, named with what to do."""

    def flow(self, code):
        return {'phase': 'migration', 'error': error(
            'Failure', "['%s', 'OpaqueRef:x']" % code, 'compute-source')}

    def test_both_codes_recognised_only_inside_a_pool(self):
        case = dict(CASE, source='stock', destination='stock',
                    layout='same-pool')
        for code in ('VM_REQUIRES_SR', 'SR_BACKEND_FAILURE_40'):
            found = verdict.recognise(case, self.flow(code)['error'])
            self.assertEqual('same-pool-stock', found[0])
            self.assertIn(code, found[1])
            self.assertIn('install the extension on the source', found[1])
            self.assertTrue(verdict.says_what_to_do(found[1]))
        self.assertIsNone(verdict.recognise(
            dict(case, layout='cross-pool'),
            self.flow('VM_REQUIRES_SR')['error']))

    def test_lost_volume_stays_unsafe(self):
        case = dict(CASE, source='stock', destination='stock',
                    layout='same-pool')
        after = baseline()
        del after['source']['VBD']['s-vbd-1']
        found = verdict.classify(case, self.flow('VM_REQUIRES_SR'),
                                 baseline(), after, [], VM)
        self.assertEqual(verdict.UNSAFE, found.outcome)
        self.assertIn('stock nova 21 cannot live-migrate volumes inside a '
                      'pool', found.detail)
        self.assertIn('lost VBD', found.detail)


class TestUnsafeBeforeUpgrade(base.TestCase):
    """Stock nova's own UNSAFE cases do not fail the upgrade's check."""

    STOCK = dict(CASE, conductor='stock', source='stock',
                 destination='stock', layout='same-pool')

    def test_stock_computes_as_unsafe_as_all_stock(self):
        ext_conductor = dict(self.STOCK, conductor='extension')
        verdicts = [(self.STOCK, verdict.UNSAFE),
                    (ext_conductor, verdict.UNSAFE),
                    (dict(ALL_EXT, layout='same-pool',
                          signature='extension-refused'), verdict.REFUSED)]
        self.assertEqual([self.STOCK, ext_conductor],
                         verdict.unsafe_before_upgrade(verdicts))
        self.assertEqual(0, verdict.exit_status(verdicts))

    def test_unsafe_with_an_upgraded_compute_counts(self):
        for changes in ({'source': 'extension'},
                        {'destination': 'extension'}):
            case = dict(self.STOCK, conductor='extension', **changes)
            verdicts = [(self.STOCK, verdict.UNSAFE),
                        (case, verdict.UNSAFE)]
            self.assertEqual([self.STOCK],
                             verdict.unsafe_before_upgrade(verdicts))
            self.assertEqual(1, verdict.exit_status(verdicts), changes)

    def test_unsafe_where_all_stock_was_safe_counts(self):
        ext_conductor = dict(self.STOCK, conductor='extension')
        for stock_outcome in (verdict.MIGRATED, verdict.FAILED_CLEAN):
            verdicts = [(self.STOCK, stock_outcome),
                        (ext_conductor, verdict.UNSAFE)]
            self.assertEqual([], verdict.unsafe_before_upgrade(verdicts))
            self.assertEqual(1, verdict.exit_status(verdicts))

    def test_without_the_all_stock_case_it_counts(self):
        ext_conductor = dict(self.STOCK, conductor='extension')
        self.assertEqual(1, verdict.exit_status(
            [(ext_conductor, verdict.UNSAFE)]))
        # another layout's or set's all-stock case is no witness
        self.assertEqual(1, verdict.exit_status(
            [(dict(self.STOCK, layout='cross-pool'), verdict.UNSAFE),
             (ext_conductor, verdict.UNSAFE)]))
