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

"""The sample output in the documentation is what the commands print.

Each sample in ``doc/source/samples/`` is produced here by a real run of
the command against the mock XAPI serving :func:`sample_scenario`, and
compared with the file. After a deliberate change of the output, rewrite
the files with ``OS_WRITE_DOC_SAMPLES=1`` and review the diff.
"""

import io
import os

import fixtures
from oslo_config import cfg

from nova_xenapi_sr.cmd import status
from nova_xenapi_sr_tools import cli
from nova_xenapi_sr_tools.mockxapi import fixture
from nova_xenapi_sr_tools.mockxapi import Scenario
from tests import base
from tests.unit.cmd import test_status

SAMPLES = os.path.join(os.path.dirname(__file__), '..', '..', 'doc',
                       'source', 'samples')


def sample_scenario():
    """Two pools over one array, as the operations guide describes them.

    compute-a (pool-a): instance 1 with a legacy SR, instance 2 with two
    volumes behind one target (one uuid5 SR). compute-b (pool-b): instance
    3, whose uuid5 SR reaches the target of instance 1's legacy volume.
    """
    sc = Scenario()
    sc.add_pool('pool-a', hosts=['compute-a'])
    sc.add_pool('pool-b', hosts=['compute-b'])
    shared = ('192.0.2.10:3260', 'iqn.2010-10.org.openstack:shared')
    sc.add_volume('0a5e6b1c-legacy', shared[0], shared[1], 1)
    sc.add_volume('7f3d2a40-data', shared[0], shared[1], 2)
    sc.add_volume('9c1e4b77-logs', '192.0.2.20:3260',
                  'iqn.2010-10.org.openstack:logs', 1)
    sc.add_volume('d2b8f6e3-logs2', '192.0.2.20:3260',
                  'iqn.2010-10.org.openstack:logs', 2)
    sc.add_instance('pool-a', 1, volumes=[
        ('0a5e6b1c-legacy', 'legacy', '/dev/xvdb')])
    sc.add_instance('pool-a', 2, volumes=[
        ('9c1e4b77-logs', 'uuid5', '/dev/xvdb'),
        ('d2b8f6e3-logs2', 'uuid5', '/dev/xvdc')])
    sc.add_instance('pool-b', 3, volumes=[
        ('7f3d2a40-data', 'uuid5', '/dev/xvdb')])
    return sc


class TestDocSamples(base.TestCase):

    def setUp(self):
        super(TestDocSamples, self).setUp()
        self.fx = self.useFixture(fixture.MockXapiFixture(sample_scenario()))
        tmp = self.useFixture(fixtures.TempDir())
        self.configs = {}
        for pool, host in (('pool-a', 'compute-a'), ('pool-b', 'compute-b')):
            path = tmp.join('%s.conf' % host)
            with open(path, 'w') as f:
                f.write('[DEFAULT]\nhost = %s\ncompute_driver = %s\n'
                        '[xenserver]\nconnection_url = %s\n'
                        'connection_username = root\n'
                        'connection_password = mock\n'
                        % (host, status.EXTENSION_DRIVER,
                           self.fx.urls[pool]))
            self.configs[host] = path

    def compare(self, name, text):
        path = os.path.join(SAMPLES, name)
        if os.environ.get('OS_WRITE_DOC_SAMPLES'):
            with open(path, 'w') as f:
                f.write(text)
        with open(path) as f:
            self.assertEqual(f.read(), text,
                             'doc/source/samples/%s differs from the run; '
                             'rewrite it with OS_WRITE_DOC_SAMPLES=1' % name)

    def audit(self, *argv):
        stdout = io.StringIO()
        app = cli.NovaXenapiSRApp(stdout=stdout, stderr=io.StringIO())
        args = ['audit', '--no-progress']
        for host in ('compute-a', 'compute-b'):
            args += ['--nova-config', self.configs[host]]
        self.assertEqual(0, app.run(args + list(argv)))
        return stdout.getvalue()

    def test_audit_table(self):
        self.compare('audit-table.txt', self.audit(
            '-c', 'Pool', '-c', 'VM', '-c', 'Device', '-c', 'Style',
            '-c', 'Verdict', '-c', 'Blocked to'))

    def test_audit_yaml(self):
        self.compare('audit-yaml.txt', self.audit(
            '-f', 'yaml', '-c', 'VM', '-c', 'Device', '-c', 'SR',
            '-c', 'Target', '-c', 'Reason', '-c', 'Action'))

    def test_upgrade_check(self):
        conf = cfg.ConfigOpts()
        conf.register_opt(cfg.StrOpt('compute_driver'))
        conf.register_opt(cfg.StrOpt('host'))
        test_status.xenserver_opts(conf)
        out = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', out))
        rc = status.main(['--config-file', self.configs['compute-a'],
                          'upgrade', 'check'], conf=conf)
        self.assertEqual(0, rc, out.getvalue())
        self.compare('upgrade-check.txt', out.getvalue())
