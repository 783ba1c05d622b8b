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
    """The comparison ``tox -e node-install`` makes."""

    def test_freeze_names(self):
        self.assertEqual('oslo.config',
                         check_node_install._name('oslo.config==8.0.5'))
        self.assertEqual('nova-xenapi-sr', check_node_install._name(
            'nova_xenapi_sr @ file:///src/nova-xenapi-sr'))

    def test_only_our_package_may_change(self):
        before = {'oslo.utils': 'oslo.utils==4.1.2', 'six': 'six==1.16.0'}
        after = dict(before, **{'nova-xenapi-sr': 'nova-xenapi-sr==1.0'})
        self.assertEqual([], check_node_install.changes(before, after))
        after.update({'oslo.utils': 'oslo.utils==10.2.0',
                      'cliff': 'cliff==4.17.0'})
        del after['six']
        self.assertEqual(['cliff: - -> cliff==4.17.0',
                          'oslo.utils: oslo.utils==4.1.2 -> '
                          'oslo.utils==10.2.0',
                          'six: six==1.16.0 -> -'],
                         check_node_install.changes(before, after))
