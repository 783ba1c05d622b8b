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

"""The node package's requirements fit nova 21's environment.

``tox -e node-install`` installs the package into nova 21.2.4's pinned set
and checks that no library changes; this checks the same promise against
what an Ussuri deployment has: every lower bound in requirements.txt is met
by the version OpenStack Ussuri's upper constraints name.
"""

import os
from unittest import mock

import fixtures
from packaging import requirements as pkg_requirements
from packaging import utils as pkg_utils

from tests import base
from tests import check_node_install

TOP = os.path.join(os.path.dirname(__file__), '..', '..')

#: The Python 3 versions in OpenStack Ussuri's final upper constraints
#: (openstack/requirements, tag ussuri-eol, upper-constraints.txt) of the
#: libraries the node package requires: what a nova 21 node runs.
USSURI = {
    'pbr': '5.4.5',
    'os-xenapi': '0.3.4',
    'oslo-config': '8.0.5',
    'oslo-log': '4.1.3',
    'oslo-upgradecheck': '1.0.1',
    'oslo-utils': '4.1.2',
    'oslo-versionedobjects': '2.0.2',
}

#: Test and operator tooling that must never be a node requirement.
NOT_ON_NODES = {'cliff', 'cmd2', 'fixtures', 'pyyaml', 'xenapi', 'nova'}


def node_requirements():
    result = []
    with open(os.path.join(TOP, 'requirements.txt')) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                result.append(pkg_requirements.Requirement(line))
    return result


class TestNodeRequirements(base.TestCase):

    def test_lower_bounds_met_by_ussuri(self):
        reqs = node_requirements()
        self.assertEqual(sorted(USSURI),
                         sorted(pkg_utils.canonicalize_name(r.name)
                                for r in reqs))
        for req in reqs:
            version = USSURI[pkg_utils.canonicalize_name(req.name)]
            self.assertTrue(req.specifier.contains(version),
                            '%s: Ussuri has %s' % (req, version))

    def test_no_tooling(self):
        names = {pkg_utils.canonicalize_name(r.name)
                 for r in node_requirements()}
        self.assertEqual(set(), names & NOT_ON_NODES)

    def test_check_catches_a_bound_above_ussuri(self):
        # The comparison above can fail: a bound above Ussuri's version.
        req = pkg_requirements.Requirement('oslo.utils>=4.2.0')
        self.assertFalse(req.specifier.contains(USSURI['oslo-utils']))


def _names(path):
    names = set()
    with open(os.path.join(TOP, path)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                names.add(pkg_utils.canonicalize_name(
                    pkg_requirements.Requirement(line).name))
    return names


class TestToolsRequirements(base.TestCase):
    """Every third-party requirement of the tools is a test requirement.

    tox installs the tools distribution with --no-deps.
    """

    def test_tools_requirements_are_test_requirements(self):
        tools = _names(os.path.join('tools', 'requirements.txt'))
        provided = (_names('test-requirements.txt') |
                    _names('requirements.txt') | {'nova-xenapi-sr'})
        self.assertEqual(set(), tools - provided)


class TestNodeInstallCheck(base.TestCase):
    """The comparisons ``tox -e node-install`` makes."""

    def test_freeze_names(self):
        self.assertEqual('oslo-config',
                         check_node_install._name('oslo.config==8.0.5'))
        self.assertEqual('nova-xenapi-sr', check_node_install._name(
            'nova_xenapi_sr @ file:///src/nova-xenapi-sr'))
        self.assertEqual('sqlalchemy',
                         check_node_install._name('SQLAlchemy==1.4.54'))

    def test_only_our_package_may_change(self):
        before = {'oslo-utils': 'oslo.utils==4.1.2', 'six': 'six==1.16.0'}
        after = dict(before, **{'nova-xenapi-sr': 'nova-xenapi-sr==1.0'})
        self.assertEqual([], check_node_install.changes(before, after))
        after.update({'oslo-utils': 'oslo.utils==10.2.0',
                      'cliff': 'cliff==4.17.0'})
        del after['six']
        self.assertEqual(['cliff: - -> cliff==4.17.0',
                          'oslo-utils: oslo.utils==4.1.2 -> '
                          'oslo.utils==10.2.0',
                          'six: six==1.16.0 -> -'],
                         check_node_install.changes(before, after))

    @staticmethod
    def _report(*installs):
        return {'install': [{'metadata': {'name': name, 'version': version}}
                            for name, version in installs]}

    def test_dry_run_that_installs_only_ours_passes(self):
        before = {'oslo-db': 'oslo.db==15.1.0'}
        self.assertEqual([], check_node_install.planned_changes(
            self._report(('nova-xenapi-sr', '1.0')), before))
        self.assertEqual([], check_node_install.planned_changes({}, before))

    def test_dry_run_that_upgrades_a_nova_library_fails(self):
        # What pip reports when a node requirement asks for oslo.db>=16.
        before = {'oslo-db': 'oslo.db==15.1.0',
                  'sqlalchemy': 'SQLAlchemy==1.4.54'}
        report = self._report(('nova-xenapi-sr', '1.0'),
                              ('SQLAlchemy', '2.1.9'), ('oslo.db', '18.1.1'),
                              ('cliff', '4.17.0'))
        self.assertEqual(
            ['cliff: - -> cliff==4.17.0',
             'oslo-db: oslo.db==15.1.0 -> oslo.db==18.1.1',
             'sqlalchemy: SQLAlchemy==1.4.54 -> SQLAlchemy==2.1.9'],
            check_node_install.planned_changes(report, before))

    def test_pins(self):
        path = self.useFixture(fixtures.TempDir()).join('c.txt')
        with open(path, 'w') as f:
            f.write('# comment\noslo.db==15.1.0\nSQLAlchemy==1.4.54 # x\n'
                    '-c other.txt\nsix>=1\n')
        self.assertEqual({'oslo-db': '15.1.0', 'sqlalchemy': '1.4.54'},
                         check_node_install.read_pins(path))

    def test_pristine_baseline(self):
        before = {'nova': 'nova==21.2.4', 'oslo-db': 'oslo.db==15.1.0',
                  'pip': 'pip==26.3'}
        pins = {'nova': '21.2.4', 'oslo-db': '15.1.0'}
        self.assertEqual([], check_node_install.baseline_problems(
            before, pins, set(before)))

    def test_baseline_left_changed_by_an_earlier_install(self):
        before = {'nova': 'nova==21.2.4', 'oslo-db': 'oslo.db==18.1.1',
                  'cliff': 'cliff==4.17.0',
                  'nova-xenapi-sr': 'nova-xenapi-sr==1.0'}
        pins = {'nova': '21.2.4', 'oslo-db': '15.1.0', 'cliff': '4.17.0'}
        self.assertEqual(
            ['nova requires six, which is not installed',
             'cliff==4.17.0 is not one of nova\'s libraries',
             'oslo.db==18.1.1 is not the pinned 15.1.0'],
            check_node_install.baseline_problems(
                before, pins, {'nova', 'oslo-db'},
                [('nova', 'six')]))

    def test_closure_of_this_environment(self):
        # The tox environment running this has nova and its libraries.
        needed, missing = check_node_install.requirement_closure(
            ['nova', 'not-a-distribution-here'])
        self.assertIn('nova', needed)
        self.assertIn('oslo-config', needed)
        self.assertNotIn('hacking', needed)
        self.assertEqual([('the environment', 'not-a-distribution-here')],
                         missing)


class TestNodeInstallRun(base.TestCase):
    """The steps of ``check_node_install.main``, pip replaced."""

    BEFORE = {'nova': 'nova==21.2.4', 'oslo-db': 'oslo.db==15.1.0',
              'pip': 'pip==26.3'}

    def setUp(self):
        super(TestNodeInstallRun, self).setUp()
        tmp = self.useFixture(fixtures.TempDir())
        self.constraints = tmp.join('constraints.txt')
        with open(self.constraints, 'w') as f:
            f.write('nova==21.2.4\noslo.db==15.1.0\n')
        self.pip = mock.Mock()
        self.freeze = mock.Mock(return_value=dict(self.BEFORE))
        self.report = {'install': [{'metadata': {
            'name': 'nova-xenapi-sr', 'version': '1.0'}}]}
        for name, value in [
                ('_pip', self.pip), ('freeze', self.freeze),
                ('requirement_closure', mock.Mock(
                    return_value=(set(self.BEFORE), []))),
                ('build_wheel', mock.Mock(return_value='/w/ours.whl')),
                ('dry_run', mock.Mock(side_effect=lambda *a: self.report))]:
            self.useFixture(fixtures.MockPatchObject(check_node_install,
                                                     name, value))
        self.useFixture(fixtures.MockPatch(
            'shutil.which',
            side_effect=lambda script, path=None:
                script in check_node_install.NODE_COMMANDS))

    def _main(self):
        return check_node_install.main(['check', '/src', self.constraints])

    def test_clean_install_is_uninstalled_again(self):
        after = dict(self.BEFORE, **{'nova-xenapi-sr': 'nova-xenapi-sr==1'})
        self.freeze.side_effect = [dict(self.BEFORE), after]
        self.assertEqual(0, self._main())
        self.assertEqual(
            [mock.call('install', '--quiet', '/w/ours.whl'),
             mock.call('uninstall', '--quiet', '--yes', 'nova-xenapi-sr')],
            self.pip.call_args_list)

    def test_planned_change_fails_before_installing(self):
        self.report['install'].append(
            {'metadata': {'name': 'oslo.db', 'version': '18.1.1'}})
        self.assertEqual(1, self._main())
        self.assertEqual([], self.pip.call_args_list)

    def test_change_seen_after_install_fails_and_uninstalls(self):
        after = dict(self.BEFORE, **{'nova-xenapi-sr': 'nova-xenapi-sr==1',
                                     'oslo-db': 'oslo.db==18.1.1'})
        self.freeze.side_effect = [dict(self.BEFORE), after]
        self.assertEqual(1, self._main())
        self.assertEqual(
            mock.call('uninstall', '--quiet', '--yes', 'nova-xenapi-sr'),
            self.pip.call_args_list[-1])

    def test_leftover_is_uninstalled_first(self):
        leftover = dict(self.BEFORE, **{'nova-xenapi-sr': 'nova-xenapi-sr==0'})
        after = dict(self.BEFORE, **{'nova-xenapi-sr': 'nova-xenapi-sr==1'})
        self.freeze.side_effect = [leftover, dict(self.BEFORE), after]
        self.assertEqual(0, self._main())
        self.assertEqual(
            mock.call('uninstall', '--quiet', '--yes', 'nova-xenapi-sr'),
            self.pip.call_args_list[0])

    def test_environment_off_the_pins_is_refused(self):
        self.freeze.return_value = dict(self.BEFORE,
                                        **{'oslo-db': 'oslo.db==18.1.1'})
        self.assertEqual(2, self._main())
        self.assertEqual([], self.pip.call_args_list)


class TestCIRunsTheReadmeCommand(base.TestCase):
    """``.ci/run`` runs the command README.rst gives, node-install too."""

    @staticmethod
    def _commands(path):
        with open(os.path.join(TOP, path)) as f:
            return [line.strip() for line in f
                    if 'python3 -m tox' in line]

    def test_same_command(self):
        readme = self._commands('README.rst')
        ci = self._commands(os.path.join('.ci', 'run'))
        self.assertEqual(1, len(ci))
        self.assertIn(ci[0], readme)
        envs = ci[0].split('-e', 1)[1].split()[0].split(',')
        for env in ('pep8', 'py3', 'docs', 'node-install'):
            self.assertIn(env, envs)
