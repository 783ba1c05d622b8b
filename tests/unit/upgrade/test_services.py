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


"""The service supervisor: process groups, crashes, signals."""

import fcntl
import os
import signal
import sys
import time
from unittest import mock

import eventlet
import fixtures

from nova_xenapi_sr_tools.upgrade import services
from tests import base

SLEEPER = [sys.executable, '-c',
           'import subprocess, sys, time; '
           'subprocess.Popen([sys.executable, "-c", '
           '"import time; time.sleep(120)"]); '
           'print("ready", flush=True); time.sleep(120)']


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead: only its parent has not reaped it yet.
    with open('/proc/%d/stat' % pid) as handle:
        return handle.read().rsplit(')', 1)[1].split()[0] != 'Z'


def _group_members(pgid):
    members = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry) as handle:
                    fields = handle.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != 'Z':
                members.append(int(entry))
    return members


class TestSupervisor(base.TestCase):

    def setUp(self):
        super(TestSupervisor, self).setUp()
        self.log_dir = self.useFixture(
            fixtures.TempDir()).path
        self.supervisor = services.Supervisor(self.log_dir)
        self.addCleanup(self.supervisor.close)

    def _start(self, name='sleeper'):
        process = self.supervisor.start(name, SLEEPER)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if len(_group_members(process.pid)) >= 2:
                return process
            time.sleep(0.1)
        self.fail('the sleeper did not start its child')

    def test_stop_ends_the_whole_process_group(self):
        process = self._start()
        pid = process.pid
        self.assertEqual(2, len(_group_members(pid)))
        self.supervisor.stop('sleeper')
        self.assertEqual([], _group_members(pid))
        self.assertFalse(_alive(pid))

    def test_check_reports_a_crashed_service_with_its_log(self):
        process = self._start()
        os.kill(process.pid, signal.SIGKILL)
        process.popen.wait(10)
        error = self.assertRaises(services.ServiceError,
                                  self.supervisor.check)
        self.assertIn('sleeper stopped', str(error))
        self.assertIn(process.log_path, str(error))
        self.assertIn('ready', str(error))

    def test_run_reports_a_failed_command(self):
        error = self.assertRaises(
            services.ServiceError, self.supervisor.run, 'fails',
            [sys.executable, '-c',
             'print("broken here"); raise SystemExit(3)'])
        self.assertIn('exit status 3', str(error))
        self.assertIn('broken here', str(error))
        self.assertNotIn('fails', self.supervisor.processes)

    def test_close_stops_everything(self):
        pids = [self._start(name).pid for name in ('a', 'b')]
        self.supervisor.close()
        for pid in pids:
            self.assertEqual([], _group_members(pid))


class TestSignals(base.TestCase):

    def test_sigterm_becomes_interrupted(self):
        with services.exit_on_signals():
            error = self.assertRaises(services.Interrupted, os.kill,
                                      os.getpid(), signal.SIGTERM)
            # the handler runs at the next bytecode after kill()
        self.assertEqual(signal.SIGTERM, error.signum)
        self.assertIs(signal.getsignal(signal.SIGTERM), signal.SIG_DFL)


class TestPackages(base.TestCase):

    def test_missing_packages_without_root_is_a_clear_error(self):
        self.useFixture(fixtures.MockPatch(
            'nova_xenapi_sr_tools.upgrade.services.missing_packages',
            return_value=['rabbitmq-server']))
        self.useFixture(fixtures.MockPatch(
            'os.geteuid', return_value=1000))
        error = self.assertRaises(services.ServiceError,
                                  services.ensure_packages)
        self.assertIn('apt-get install rabbitmq-server', str(error))

    def test_nothing_to_install(self):
        self.useFixture(fixtures.MockPatch(
            'nova_xenapi_sr_tools.upgrade.services.missing_packages',
            return_value=[]))
        said = []
        self.assertEqual([], services.ensure_packages(say=said.append))
        self.assertEqual([], said)

    def test_concurrent_runs_install_once(self):
        # Two runs find the package missing at once; the first to get the
        # lock installs it, the other finds it there and installs nothing.
        installed = []
        state = {'missing': ['mariadb-server']}
        self.useFixture(fixtures.MockPatch(
            'nova_xenapi_sr_tools.upgrade.services.missing_packages',
            side_effect=lambda: list(state['missing'])))
        self.useFixture(fixtures.MockPatch('os.geteuid', return_value=0))
        self.useFixture(fixtures.MockPatch('shutil.which',
                                           return_value='/usr/bin/apt-get'))
        lock_path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'lock')
        self.useFixture(fixtures.MockPatch(
            'nova_xenapi_sr_tools.upgrade.services.APT_LOCK', lock_path))

        def apt_get(command, **kwargs):
            if command[1] == 'install':
                installed.append(command[-1])
                state['missing'] = []
            return mock.Mock(returncode=0, stdout='')
        self.useFixture(fixtures.MockPatch(
            'nova_xenapi_sr_tools.upgrade.services.subprocess.run',
            side_effect=apt_get))
        results = []
        # OS threads: flock blocks its thread, and this test process runs
        # on eventlet (tests/__init__.py), whose green threads share one.
        threading = eventlet.patcher.original('threading')
        with open(lock_path, 'w') as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            runs = [threading.Thread(target=lambda: results.append(
                services.ensure_packages())) for _ in range(2)]
            for run in runs:
                run.start()
            time.sleep(0.5)  # both now wait for the lock
            self.assertEqual([], results)
            fcntl.flock(held, fcntl.LOCK_UN)
            for run in runs:
                run.join(10)
        self.assertEqual([[], ['mariadb-server']], sorted(results))
        self.assertEqual(['mariadb-server'], installed)
