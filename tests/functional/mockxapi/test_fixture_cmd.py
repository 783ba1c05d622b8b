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

"""The fixture and the ``mock-xapi`` command."""

import json
import os
import signal
import subprocess
import sys
import tempfile

import XenAPI

from nova_xenapi_sr_tools.mockxapi import fixture
from nova_xenapi_sr_tools.mockxapi import Scenario
from tests import base


class FixtureTest(base.TestCase):

    def test_serves_then_stops(self):
        fx = fixture.MockXapiFixture()
        fx.setUp()
        url = fx.urls['pool-a']
        self.assertRegex(url, r'^http://127\.\d+\.\d+\.\d+$')
        self.assertNotEqual(url, fx.urls['pool-b'])
        session = fx.session('pool-a')
        self.assertEqual(1, len(session.xenapi.pool.get_all()))
        self.assertIn('pool.get_all',
                      [m for m, _ in fx.pool('pool-a').calls()])
        fx.cleanUp()
        self.assertRaises(OSError, session.xenapi.pool.get_all)

    def test_listen_elsewhere(self):
        fx = self.useFixture(fixture.MockXapiFixture(
            listen={'pool-b': ('127.0.0.1', 0)}))
        self.assertRegex(fx.urls['pool-b'], r'^http://127\.0\.0\.1:\d+$')
        self.assertEqual(1, len(fx.session('pool-b').xenapi.host.get_all()))

    def test_many_servers_do_not_collide(self):
        fixtures_ = [self.useFixture(fixture.MockXapiFixture())
                     for _ in range(5)]
        urls = [u for fx in fixtures_ for u in fx.urls.values()]
        self.assertEqual(len(urls), len(set(urls)))


class CommandTest(base.TestCase):

    def _run(self, *args, **kwargs):
        env = dict(os.environ, OS_NOVA_DISABLE_EVENTLET_PATCHING='1',
                   PYTHONPATH=os.getcwd())
        command = kwargs.get('command') or [
            sys.executable, '-m', 'nova_xenapi_sr_tools.mockxapi.cmd']
        proc = subprocess.Popen(
            command + list(args), stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=env, universal_newlines=True)
        self.addCleanup(proc.wait)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        line = proc.stdout.readline()
        return proc, json.loads(line)

    def test_prints_json_line_and_serves_until_interrupted(self):
        proc, out = self._run()
        pools = {p['name']: p['url'] for p in out['pools']}
        self.assertEqual(['pool-a', 'pool-b'], sorted(pools))
        self.assertRegex(pools['pool-a'], r'^http://127\.\d+\.\d+\.\d+$')
        session = XenAPI.Session(pools['pool-a'])
        session.login_with_password('root', 'mock')
        names = [r['name_label'] for r in
                 session.xenapi.VM.get_all_records().values()]
        self.assertIn('instance-00000001', names)
        proc.send_signal(signal.SIGINT)
        self.assertEqual(0, proc.wait(timeout=30))

    def test_scenario_file_and_listen(self):
        sc = Scenario()
        sc.add_pool('only', hosts=['h1'], password='pw')
        tmp = tempfile.mkdtemp()
        self.addCleanup(__import__('shutil').rmtree, tmp)
        path = os.path.join(tmp, 'scenario.yaml')
        import yaml
        with open(path, 'w') as f:
            yaml.safe_dump(sc.to_dict(), f)
        proc, out = self._run('--scenario', path, '--listen',
                              'only=127.0.0.1:0')
        self.assertEqual('only', out['pools'][0]['name'])
        url = out['pools'][0]['url']
        self.assertRegex(url, r'^http://127\.0\.0\.1:\d+$')
        session = XenAPI.Session(url)
        session.login_with_password('root', 'pw')
        self.assertEqual(['h1'], [session.xenapi.host.get_name_label(h)
                                  for h in session.xenapi.host.get_all()])
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(0, proc.wait(timeout=30))

    def test_runs_under_the_nova_xenapi_sr_app(self):
        # What `nova-xenapi-sr mock-xapi` runs once the entry point is
        # installed; here the command is registered by hand.
        code = ('import sys\n'
                'from cliff import commandmanager\n'
                'from nova_xenapi_sr_tools import cli as main\n'
                'from nova_xenapi_sr_tools.mockxapi import cmd\n'
                'cm = commandmanager.CommandManager("nova_xenapi_sr.none")\n'
                'cm.add_command("mock-xapi", cmd.MockXapiCommand)\n'
                'sys.exit(main.NovaXenapiSRApp(command_manager=cm).run('
                'sys.argv[1:]))\n')
        proc, out = self._run('mock-xapi', '--listen', '127.0.0.1:0',
                              command=[sys.executable, '-c', code])
        urls = [p['url'] for p in out['pools']]
        self.assertRegex(urls[0], r'^http://127\.0\.0\.1:\d+$')
        self.assertRegex(urls[1], r'^http://127\.\d+\.\d+\.\d+$')
        session = XenAPI.Session(urls[1])
        session.login_with_password('root', 'mock')
        proc.send_signal(signal.SIGINT)
        self.assertEqual(0, proc.wait(timeout=30))
