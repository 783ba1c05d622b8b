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

"""The installed distribution: what pip put on the node.

tox installs the package from an sdist (no ``usedevelop``), so under
``tox -e py3`` these tests check the real install; from a source tree
without an install they are skipped.
"""

from importlib import metadata
import importlib.util
import os
import re
import sysconfig

from tests import base

DIST = 'nova-xenapi-sr'


class TestInstalledDistribution(base.TestCase):

    def setUp(self):
        super(TestInstalledDistribution, self).setUp()
        # Look in site-packages only: building the sdist leaves pbr's
        # nova_xenapi_sr.egg-info in the source tree, which is on sys.path.
        purelib = sysconfig.get_paths()['purelib']
        found = list(metadata.distributions(name=DIST, path=[purelib]))
        if not found:
            self.skipTest('%s is not installed in %s (tox installs it)' % (
                DIST, purelib))
        self.dist = found[0]
        self.files = {str(f).replace(os.sep, '/') for f in self.dist.files}

    def test_ships_the_driver_shim(self):
        self.assertIn('nova/virt/xenapi_sr/__init__.py', self.files)
        self.assertIn('nova/virt/xenapi_sr/driver.py', self.files)

    def test_does_not_overwrite_novas_own_files(self):
        ours_in_nova = sorted(f for f in self.files
                              if f.startswith('nova/') and
                              not f.startswith('nova/virt/xenapi_sr/'))
        self.assertEqual([], ours_in_nova)

    def test_shim_found_in_novas_namespace(self):
        spec = importlib.util.find_spec('nova.virt.xenapi_sr.driver')
        self.assertIsNotNone(spec)
        installed = os.path.realpath(str(self.dist.locate_file(
            'nova/virt/xenapi_sr/driver.py')))
        self.assertEqual(installed, os.path.realpath(spec.origin))

    def test_entry_points(self):
        found = {(ep.group, ep.name): ep.value
                 for ep in self.dist.entry_points}
        expected = {
            ('console_scripts', 'nova-conductor-xenapi-sr'):
                'nova_xenapi_sr.cmd.conductor:main',
            ('console_scripts', 'nova-xenapi-sr-status'):
                'nova_xenapi_sr.cmd.status:main',
            ('oslo.config.opts', 'nova_xenapi_sr'):
                'nova_xenapi_sr.opts:list_opts',
        }
        self.assertEqual(expected, found)
        for ep in self.dist.entry_points:
            self.assertTrue(callable(ep.load()), ep.name)

    def test_does_not_require_nova(self):
        names = [re.split(r'[^A-Za-z0-9._-]', req, 1)[0].lower()
                 for req in self.dist.requires or []]
        self.assertNotIn('nova', names)
        self.assertIn('oslo.versionedobjects', names)

    def test_python_requires(self):
        self.assertEqual('>=3.6', self.dist.metadata['Requires-Python'])
