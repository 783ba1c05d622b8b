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

import configparser
import os
from unittest import mock

import fixtures
from oslo_config import cfg
from oslo_config import fixture as config_fixture
from oslo_config import generator

from nova_xenapi_sr import opts
from tests import base


class TestOpts(base.TestCase):

    def setUp(self):
        super(TestOpts, self).setUp()
        self.conf = cfg.ConfigOpts()
        opts.register_opts(self.conf)
        self.fixture = self.useFixture(config_fixture.Config(self.conf))

    def test_defaults(self):
        self.conf([], project='nova')
        self.assertTrue(self.conf.xenapi_sr.refuse_unsafe_destination)

    def _load(self, text):
        path = self.useFixture(fixtures.TempDir()).join('nova.conf')
        with open(path, 'w') as f:
            f.write(text)
        self.conf(['--config-file', path], project='nova')

    def test_set_from_a_config_file(self):
        self._load('[xenapi_sr]\nrefuse_unsafe_destination = false\n')
        self.assertFalse(self.conf.xenapi_sr.refuse_unsafe_destination)

    def test_rejects_a_non_boolean(self):
        self._load('[xenapi_sr]\nrefuse_unsafe_destination = maybe\n')
        self.assertRaises(cfg.ConfigFileValueError, getattr,
                          self.conf.xenapi_sr, 'refuse_unsafe_destination')

    def test_register_twice_is_harmless(self):
        opts.register_opts(self.conf)
        self.conf([], project='nova')
        self.assertTrue(self.conf.xenapi_sr.refuse_unsafe_destination)

    def test_list_opts(self):
        listed = opts.list_opts()
        self.assertEqual(1, len(listed))
        group, options = listed[0]
        self.assertEqual('xenapi_sr', group.name)
        self.assertEqual(['refuse_unsafe_destination', 'xapi_retry_attempts',
                          'xapi_retry_interval', 'migration_locate_timeout'],
                         [o.name for o in options])
        for option in options:
            self.assertGreater(len(option.help.strip()), 40, option.name)

    def test_generator_documents_the_options(self):
        out = os.path.join(self.useFixture(
            fixtures.TempDir()).path, 'sample.conf')
        conf = cfg.ConfigOpts()
        generator.register_cli_opts(conf)
        conf(['--namespace', 'nova_xenapi_sr', '--output-file', out])
        # The entry point exists only once the package is installed; load
        # list_opts() as stevedore would.
        with mock.patch.object(generator, '_get_raw_opts_loaders',
                               return_value=[('nova_xenapi_sr',
                                              opts.list_opts)]):
            generator.generate(conf)
        with open(out) as f:
            sample = f.read()
        self.assertIn('[xenapi_sr]', sample)
        self.assertIn('#refuse_unsafe_destination = true', sample)
        self.assertIn('UUID_INVALID', sample)

    def test_entry_point_declared(self):
        setup_cfg = os.path.join(os.path.dirname(__file__), '..', '..',
                                 'setup.cfg')
        parser = configparser.ConfigParser()
        self.assertEqual([setup_cfg], parser.read(setup_cfg))
        entry_points = parser.get('entry_points', 'oslo.config.opts')
        self.assertIn('nova_xenapi_sr = nova_xenapi_sr.opts:list_opts',
                      entry_points)
