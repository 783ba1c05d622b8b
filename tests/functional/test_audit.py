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

"""``nova-xenapi-sr audit`` against the mock XAPI over XML-RPC (binds port
80 on loopback addresses, so it runs as root)."""

import io
import json
import re
import socket

import fixtures

from nova_xenapi_sr import audit
from nova_xenapi_sr_tools import cli
from nova_xenapi_sr_tools.mockxapi import api
from nova_xenapi_sr_tools.mockxapi import fixture
from nova_xenapi_sr_tools.mockxapi import Scenario
from tests import base

PORTAL = '192.0.2.10:3260'
IQN = 'iqn.2010-10.org.openstack:target-1'


def scenario(extra_instances=0):
    sc = Scenario()
    sc.add_pool('pool-a', hosts=['host-a', 'host-a2'])
    sc.add_pool('pool-b', hosts=['host-b'])
    for lun in (1, 2):
        sc.add_volume('vol-%d' % lun, PORTAL, IQN, lun)
    sc.add_instance('pool-a', 1, volumes=[('vol-1', 'legacy', '/dev/xvdb')])
    sc.add_instance('pool-b', 2, volumes=[('vol-2', 'uuid5', '/dev/xvdb')])
    for index in range(extra_instances):
        volume = 'extra-%d' % index
        sc.add_volume(volume, '192.0.2.%d:3260' % (50 + index % 100),
                      'iqn.2010-10.org.openstack:%s' % volume, 1)
        sc.add_instance('pool-a', 100 + index,
                        volumes=[(volume, 'uuid5', '/dev/xvdb')])
    return sc


class AuditTestCase(base.TestCase):

    def start(self, sc):
        self.fx = self.useFixture(fixture.MockXapiFixture(sc))
        self.useFixture(fixtures.EnvironmentVariable(audit.PASSWORD_ENV,
                                                     'mock'))
        return self.fx

    def run_cli(self, *argv):
        stdout, stderr = io.StringIO(), io.StringIO()
        app = cli.NovaXenapiSRApp(stdout=stdout, stderr=stderr)
        rc = app.run(['audit', '--no-progress'] + list(argv))
        return rc, stdout.getvalue(), stderr.getvalue()

    def urls(self, *pools):
        args = []
        for name in pools:
            args += ['--url', self.fx.urls[name]]
        return args


class TestAudit(AuditTestCase):

    def test_json_two_pools(self):
        self.start(scenario())
        rc, out, err = self.run_cli(*self.urls('pool-a', 'pool-b') +
                                    ['-f', 'json'])
        self.assertEqual(0, rc, err)
        rows = {row['VM']: row for row in json.loads(out)}
        self.assertEqual({'instance-00000001', 'instance-00000002'},
                         set(rows))
        one, two = rows['instance-00000001'], rows['instance-00000002']
        self.assertEqual(audit.BOTH_ENDS, one['Verdict'])
        self.assertEqual('legacy', one['Style'])
        self.assertEqual('vol-1', one['Volume'])
        label_b = self.fx.urls['pool-b'].split('//')[1]
        label_a = self.fx.urls['pool-a'].split('//')[1]
        # pool-b reaches the target through a uuid5 SR, pool-a through a
        # legacy one: neither instance can be live-migrated to the other.
        self.assertEqual(label_b, one['Blocked to'])
        self.assertEqual(label_a, two['Blocked to'])
        self.assertEqual(audit.STOCK, two['Verdict'])
        self.assertIn('already reaches target %s %s' % (PORTAL, IQN),
                      one['Reason'])

    def test_columns_sort_and_value_format(self):
        self.start(scenario())
        rc, out, err = self.run_cli(*self.urls('pool-a', 'pool-b') + [
            '-f', 'value', '-c', 'VM', '-c', 'Style',
            '--sort-column', 'Style'])
        self.assertEqual(0, rc, err)
        self.assertEqual(['instance-00000001 legacy',
                          'instance-00000002 uuid5'], out.splitlines())
        rc, out, err = self.run_cli(*self.urls('pool-a', 'pool-b') + [
            '-f', 'csv', '-c', 'VM', '--sort-column', 'VM',
            '--sort-descending'])
        self.assertEqual(['"VM"', '"instance-00000002"',
                          '"instance-00000001"'], out.splitlines())

    def test_table_and_yaml(self):
        self.start(scenario())
        rc, out, err = self.run_cli(*self.urls('pool-a') + [
            '-c', 'VM', '-c', 'Verdict'])
        self.assertEqual(0, rc, err)
        self.assertIn('| instance-00000001 | %s |' % audit.BOTH_ENDS, out)
        rc, out, err = self.run_cli(*self.urls('pool-a') + ['-f', 'yaml'])
        self.assertEqual(0, rc, err)
        self.assertIn('Style: legacy', out)

    def test_read_only_and_constant_calls(self):
        fx = self.start(scenario(extra_instances=60))
        rc, out, err = self.run_cli(*self.urls('pool-a') + ['-f', 'json'])
        self.assertEqual(0, rc, err)
        self.assertEqual(61, len(json.loads(out)))
        calls = fx.calls('pool-a')
        self.assertEqual(['session.login_with_password', 'event.from',
                          'session.logout'], [m for m, _ in calls])
        self.assertEqual((['host', 'VM', 'VBD', 'SR', 'PBD'], '', 0.0),
                         calls[1][1])
        for method, _ in calls:
            self.assertTrue(api.read_only(method), method)

    def test_call_count_does_not_grow(self):
        counts = []
        for extra in (0, 40):
            fx = fixture.MockXapiFixture(scenario(extra))
            self.useFixture(fx)
            state = audit.fetch(fx.urls['pool-a'], 'root', 'mock')
            self.assertEqual(1 + extra, len(audit.audit([state])))
            counts.append(len(fx.calls('pool-a')))
        self.assertEqual([3, 3], counts)

    def test_nova_config(self):
        fx = self.start(scenario())
        tmp = self.useFixture(fixtures.TempDir())
        paths = []
        for pool in ('pool-a', 'pool-b'):
            path = tmp.join('%s.conf' % pool)
            with open(path, 'w') as f:
                f.write('[DEFAULT]\ncompute_driver = xenapi.XenAPIDriver\n'
                        '[xenserver]\nconnection_url = %s\n'
                        'connection_username = root\n'
                        'connection_password = mock\n' % fx.urls[pool])
            paths += ['--nova-config', path]
        self.useFixture(fixtures.EnvironmentVariable(audit.PASSWORD_ENV))
        rc, out, err = self.run_cli(*paths + ['-f', 'json'])
        self.assertEqual(0, rc, err)
        self.assertEqual(2, len(json.loads(out)))

    def test_password_file(self):
        fx = self.start(scenario())
        self.useFixture(fixtures.EnvironmentVariable(audit.PASSWORD_ENV))
        path = self.useFixture(fixtures.TempDir()).join('pw')
        with open(path, 'w') as f:
            f.write('mock\n')
        rc, out, err = self.run_cli('--url', fx.urls['pool-a'],
                                    '--password-file', path, '-f', 'json')
        self.assertEqual(0, rc, err)
        self.assertEqual('***', fx.calls('pool-a')[0][1][1])

    def audit_stderr(self, tty, sc=None):
        """What an audit of pool-a writes on stderr, a terminal or not."""
        fx = self.start(sc or scenario())
        stderr = io.StringIO()
        stderr.isatty = lambda: tty
        app = cli.NovaXenapiSRApp(stdout=io.StringIO(), stderr=stderr)
        self.assertEqual(0, app.run(['audit', '--url', fx.urls['pool-a'],
                                     '-f', 'json']))
        return stderr.getvalue()

    def test_progress_on_a_terminal(self):
        stderr = self.audit_stderr(tty=True)
        label = self.fx.urls['pool-a'].split('//')[1]
        lines = stderr.split('\r\033[K')
        self.assertEqual('auditing %s: reading host, VM, VBD, SR, PBD '
                         '(event.from)' % label, lines[1])
        self.assertRegex(lines[-2], r'^auditing %s: read \d+ (bytes|KiB)$'
                         % label)
        self.assertTrue(stderr.endswith('\r\033[K'))

    def test_progress_shows_the_bytes_received(self):
        # a reply of many pieces (the mock streams it): the bytes so far
        stderr = self.audit_stderr(tty=True, sc=scenario(600))
        units = {'bytes': 1, 'KiB': 1024, 'MiB': 1024 * 1024}
        received = [float(size) * units[unit] for size, unit in re.findall(
            r'\(event\.from\), ([\d.]+) (bytes|KiB|MiB) received', stderr)]
        self.assertTrue(received, stderr)
        self.assertEqual(sorted(received), received)
        self.assertRegex(stderr, r'read [\d.]+ (KiB|MiB)\r\033\[K$')

    def test_no_progress_off_a_terminal(self):
        stderr = self.audit_stderr(tty=False)
        self.assertNotIn('auditing', stderr)
        self.assertNotIn('\r', stderr)


class TestErrors(AuditTestCase):
    """Each error is one line on stderr and a non-zero exit."""

    def assertError(self, expected, *argv):
        rc, out, err = self.run_cli(*argv)
        self.assertNotEqual(0, rc)
        lines = [line for line in err.splitlines() if line.strip()]
        self.assertEqual(1, len(lines), err)
        self.assertIn(expected, lines[0])
        return lines[0]

    def test_unreachable(self):
        self.start(scenario())
        sock = socket.socket()
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
        sock.close()   # nothing listens there now
        self.assertError('Cannot reach XAPI at http://127.0.0.1:%d' % port,
                         '--url', 'http://127.0.0.1:%d' % port)

    def test_not_xapi(self):
        self.start(scenario())
        self.assertError('Cannot use XAPI URL ftp://x', '--url', 'ftp://x')

    def test_bad_credentials(self):
        fx = self.start(scenario())
        self.useFixture(fixtures.EnvironmentVariable(audit.PASSWORD_ENV,
                                                     'wrong'))
        self.assertError('refused user root and its password',
                         '--url', fx.urls['pool-a'])

    def test_no_password(self):
        fx = self.start(scenario())
        self.useFixture(fixtures.EnvironmentVariable(audit.PASSWORD_ENV))
        self.assertError('No XAPI password', '--url', fx.urls['pool-a'])

    def test_pool_member(self):
        fx = self.start(scenario())
        url = fx.server.member_url('pool-a', 'host-a2')
        with fx.server.world.lock:
            db = fx.pool('pool-a').db
            master = db.get('host', fx.pool('pool-a').master)['address']
        line = self.assertError('is a member of a pool whose master is %s'
                                % master, '--url', url)
        self.assertIn('--url http://%s' % master, line)

    def _set_api(self, fx, minor, major='2'):
        pool = fx.pool('pool-a')
        with fx.server.world.lock:
            rec = pool.db.get('host', pool.master)
            rec['API_version_major'] = major
            rec['API_version_minor'] = minor

    def test_too_old(self):
        fx = self.start(scenario())
        self._set_api(fx, '3')
        self.assertError('runs XAPI API 2.3, older than 2.5',
                         '--url', fx.urls['pool-a'])

    def test_xapi_without_event_from(self):
        fx = self.start(scenario())
        fx.server.inject_fault('pool-a', 'event.from', error=[
            'MESSAGE_METHOD_UNKNOWN', 'event.from'])
        line = self.assertError('does not know event.from',
                                '--url', fx.urls['pool-a'])
        self.assertIn('older than XenServer 7.0', line)
        self.assertEqual('session.logout', fx.calls('pool-a')[-1][0])

    def test_too_new(self):
        fx = self.start(scenario())
        self._set_api(fx, '0', major='3')
        self.assertError('runs XAPI API 3.0, newer than 2.21',
                         '--url', fx.urls['pool-a'])
        # The session it opened is closed again.
        self.assertEqual('session.logout', fx.calls('pool-a')[-1][0])

    def test_nothing_to_audit(self):
        self.assertError('Nothing to audit')
