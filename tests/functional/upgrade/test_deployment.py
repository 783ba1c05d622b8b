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


"""Nothing of a verification run survives its runner.

A runner process starts a real deployment (RabbitMQ and MariaDB through
pifpaf, the mock XAPI, the fakes, nova-manage against the database) and is
sent SIGTERM or SIGINT while nova's databases are being set up. Every
process the run started carries the run's marker in its environment
(:data:`deployment.RUN_MARKER`); none may be left, Erlang's ``epmd``
included, and the run's directory must be gone.
"""

import os
import signal
import subprocess
import sys
import time

from nova_xenapi_sr_tools.upgrade import deployment
from tests import base

RUNNER = '''
import sys
from nova_xenapi_sr_tools.mockxapi import Scenario
from nova_xenapi_sr_tools.upgrade import cases, deployment, services

vset = cases.volume_sets()[0]
scenario = Scenario.from_dict(vset.case_scenario())
def say(line):
    print(line, flush=True)
with services.exit_on_signals():
    dep = deployment.Deployment(
        scenario, {'host-source': 'pool-source',
                   'host-destination': 'pool-destination'}, say=say)
    print('workspace ' + dep.workspace.path, flush=True)
    with dep:
        pass
'''


def processes_of(marker):
    """PIDs of live processes whose environment carries ``marker``."""
    needle = ('%s=%s' % (deployment.RUN_MARKER, marker)).encode()
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/environ' % entry, 'rb') as handle:
                environ = handle.read().split(b'\0')
            with open('/proc/%s/stat' % entry) as handle:
                state = handle.read().rsplit(')', 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ and state != 'Z':
            found.append(int(entry))
    return found


class TestNothingSurvives(base.TestCase):

    def _interrupt_while_setting_up(self, signum):
        runner = subprocess.Popen(
            [sys.executable, '-c', RUNNER], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, universal_newlines=True)
        self.addCleanup(runner.kill)
        workspace = None
        lines = []
        for line in runner.stdout:
            lines.append(line)
            if line.startswith('workspace '):
                workspace = line.split(' ', 1)[1].strip()
            if 'setting up the nova and placement databases' in line:
                break
        self.assertIsNotNone(workspace, ''.join(lines))
        # The broker, the database and a nova-manage run now.
        time.sleep(3)
        running = processes_of(workspace)
        self.assertGreaterEqual(len(running), 3, ''.join(lines))
        runner.send_signal(signum)
        output, _ = runner.communicate(timeout=90)
        self.assertNotEqual(0, runner.returncode)
        deadline = time.monotonic() + 10
        while processes_of(workspace) and time.monotonic() < deadline:
            time.sleep(0.5)
        self.assertEqual([], processes_of(workspace),
                         ''.join(lines) + output)
        self.assertFalse(os.path.exists(workspace))

    def test_sigterm(self):
        self._interrupt_while_setting_up(signal.SIGTERM)

    def test_sigint(self):
        self._interrupt_while_setting_up(signal.SIGINT)
