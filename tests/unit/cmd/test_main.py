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
import importlib
import io
import os
from unittest import mock

from cliff import command
from cliff import commandmanager

from nova_xenapi_sr_tools import cli as main
from tests import base

TOP = os.path.join(os.path.dirname(__file__), '..', '..', '..')
#: The node package's and the tools distribution's setup.cfg.
SETUP_CFGS = (os.path.join(TOP, 'setup.cfg'),
              os.path.join(TOP, 'tools', 'setup.cfg'))


class Echo(command.Command):
    """Echo the words given, for the test."""

    def get_parser(self, prog_name):
        parser = super(Echo, self).get_parser(prog_name)
        parser.add_argument('words', nargs='*')
        return parser

    def take_action(self, parsed_args):
        self.app.stdout.write(' '.join(parsed_args.words) + '\n')
        return 3 if 'fail' in parsed_args.words else 0


def _entry_points(group, setup_cfg):
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    result = {}
    for line in parser.get('entry_points', group).strip().splitlines():
        name, target = (part.strip() for part in line.split('=', 1))
        result[name] = target
    return result


class TestApp(base.TestCase):

    def _app(self):
        manager = commandmanager.CommandManager('nova_xenapi_sr.test-none')
        manager.add_command('echo', Echo)
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        return main.NovaXenapiSRApp(command_manager=manager,
                                    stdout=self.stdout, stderr=self.stderr)

    def test_runs_a_command(self):
        self.assertEqual(0, self._app().run(['echo', 'hello', 'world']))
        self.assertEqual('hello world\n', self.stdout.getvalue())

    def test_command_exit_code(self):
        self.assertEqual(3, self._app().run(['echo', 'fail']))

    def test_unknown_command_fails(self):
        self.assertNotEqual(0, self._app().run(['no-such-command']))

    def test_no_arguments_prints_help(self):
        app = self._app()
        with mock.patch.object(app, 'interact') as interact:
            rc = app.run([])
        interact.assert_not_called()
        self.assertEqual(0, rc)
        self.assertIn('echo', self.stdout.getvalue())
        self.assertIn('nova bug 1566622', self.stdout.getvalue())

    def test_version_option(self):
        app = self._app()
        with mock.patch('sys.stdout', self.stdout):
            self.assertEqual(0, app.run(['--version']))
        self.assertIn(main.version_string(), self.stdout.getvalue())

    def test_bad_option_fails(self):
        app = self._app()
        with mock.patch('sys.stderr', self.stderr):
            self.assertEqual(2, app.run(['--no-such-option']))

    def test_default_namespace(self):
        app = main.NovaXenapiSRApp()
        self.assertEqual('nova_xenapi_sr.cli',
                         app.command_manager.namespace)

    @mock.patch('pbr.version.VersionInfo')
    def test_version_from_pbr(self, version_info):
        version_info.return_value.version_string.return_value = '1.2.3'
        self.assertEqual('1.2.3', main.version_string())
        version_info.assert_called_once_with('nova-xenapi-sr-tools')

    @mock.patch('pbr.version.VersionInfo', side_effect=Exception('no'))
    def test_version_when_not_installed(self, version_info):
        self.assertEqual('unknown', main.version_string())

    @mock.patch.object(main.NovaXenapiSRApp, 'run', return_value=5)
    def test_main_passes_argv(self, run):
        self.assertEqual(5, main.main(['verify-upgrade', '--help']))
        run.assert_called_once_with(['verify-upgrade', '--help'])


class TestEntryPoints(base.TestCase):

    def _resolve(self, target):
        module_name, _, attr = target.partition(':')
        return getattr(importlib.import_module(module_name), attr)

    def test_console_scripts(self):
        node, tools = (_entry_points('console_scripts', cfg)
                       for cfg in SETUP_CFGS)
        self.assertEqual({'nova-conductor-xenapi-sr', 'nova-xenapi-sr-status'},
                         set(node))
        self.assertEqual({'nova-xenapi-sr'}, set(tools))
        for name, target in list(node.items()) + list(tools.items()):
            self.assertTrue(callable(self._resolve(target)), name)

    def test_cli_commands_are_cliff_commands(self):
        commands = _entry_points(main.COMMAND_NAMESPACE, SETUP_CFGS[1])
        self.assertEqual({'audit', 'fault-sweep', 'mock-xapi',
                          'verify-upgrade'},
                         set(commands))
        for name, target in sorted(commands.items()):
            cls = self._resolve(target)
            self.assertTrue(issubclass(cls, command.Command), name)
