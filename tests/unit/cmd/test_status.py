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

import io
import json
import socket
import sys
from unittest import mock

import fixtures
from nova.objects import migrate_data as nova_migrate_data
from oslo_config import cfg
from oslo_upgradecheck import upgradecheck

from nova_xenapi_sr.cmd import status
from nova_xenapi_sr_tools import fixture as xs_fixture
from tests import base

Code = upgradecheck.Code


class TestChecks(base.TestCase):

    def setUp(self):
        super(TestChecks, self).setUp()
        self.conf = cfg.ConfigOpts()
        self.conf.register_opt(cfg.StrOpt('compute_driver'))
        self.conf([])
        self.checks = status.Checks(self.conf)

    def _driver(self, value):
        self.conf.set_override('compute_driver', value)
        return self.checks._check_compute_driver()

    def test_extension_driver(self):
        self.assertEqual(Code.SUCCESS,
                         self._driver(status.EXTENSION_DRIVER).code)

    def test_stock_driver_warns(self):
        for value in status.STOCK_DRIVERS:
            result = self._driver(value)
            self.assertEqual(Code.WARNING, result.code)
            self.assertIn(status.EXTENSION_DRIVER, result.details)

    def test_other_or_no_driver(self):
        for value in ('libvirt.LibvirtDriver', None):
            result = self._driver(value)
            self.assertEqual(Code.SUCCESS, result.code)
            self.assertIn('nova-conductor-xenapi-sr', result.details)

    def test_nova_object_version(self):
        self.assertEqual(Code.SUCCESS,
                         self.checks._check_nova_object().code)

    def test_wrong_nova(self):
        with mock.patch.object(nova_migrate_data.XenapiLiveMigrateData,
                               'VERSION', '1.7'):
            result = self.checks._check_nova_object()
        self.assertEqual(Code.FAILURE, result.code)
        self.assertIn('1.7', result.details)
        self.assertIn('nova 21', result.details)

    def test_shim_missing(self):
        with mock.patch.object(status, 'SHIM_MODULE',
                               'nova.virt.no_such_shim.driver'):
            result = self.checks._check_driver_shim()
        self.assertEqual(Code.FAILURE, result.code)
        self.assertIn('editable', result.details)

    def test_shim_without_the_class(self):
        with mock.patch.object(status, 'SHIM_MODULE', 'json'):
            result = self.checks._check_driver_shim()
        self.assertEqual(Code.FAILURE, result.code)

    def test_shim_present(self):
        fake = mock.Mock(spec=['XenAPISRDriver'])
        with mock.patch('importlib.import_module', return_value=fake) as imp:
            result = self.checks._check_driver_shim()
        imp.assert_called_once_with('nova.virt.xenapi_sr.driver')
        self.assertEqual(Code.SUCCESS, result.code)


def closed_port_url():
    """An http URL on 127.0.0.1 where nothing listens."""
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return 'http://127.0.0.1:%d' % port


def xenserver_opts(conf):
    """Register the ``[xenserver]`` options the check reads, as nova's."""
    conf.register_opts([cfg.StrOpt('connection_url'),
                        cfg.StrOpt('connection_username', default='root'),
                        cfg.StrOpt('connection_password', secret=True)],
                       group='xenserver')


class TestLegacyVolumesCheck(base.TestCase):
    """What the check says without a XAPI to read.

    The counts are tested in tests.functional.test_status.
    """

    def _check(self, driver, url=None, register=True):
        conf = cfg.ConfigOpts()
        conf.register_opt(cfg.StrOpt('compute_driver'))
        if register:
            xenserver_opts(conf)
        conf([])
        conf.set_override('compute_driver', driver)
        if url:
            conf.set_override('connection_url', url, group='xenserver')
        return status.Checks(conf)._check_legacy_volumes()

    def test_not_a_xenapi_compute(self):
        result = self._check('libvirt.LibvirtDriver', register=False)
        self.assertEqual(Code.SUCCESS, result.code)
        self.assertIn('Not a XenAPI compute', result.details)

    def test_no_connection_url(self):
        for register in (True, False):
            result = self._check(status.EXTENSION_DRIVER, register=register)
            self.assertEqual(Code.FAILURE, result.code)
            self.assertIn('[xenserver] connection_url is not set',
                          result.details)

    def test_unreachable(self):
        url = closed_port_url()
        result = self._check('xenapi.XenAPIDriver', url)
        self.assertEqual(Code.FAILURE, result.code)
        self.assertIn('Cannot reach XAPI at %s' % url, result.details)
        self.assertNotIn('\n', result.details)


class TestMain(base.TestCase):

    def _main(self, driver):
        conf = cfg.ConfigOpts()
        conf.register_opt(cfg.StrOpt('compute_driver'))
        xenserver_opts(conf)
        path = self.useFixture(fixtures.TempDir()).join('nova.conf')
        with open(path, 'w') as f:
            f.write('[DEFAULT]\ncompute_driver = %s\n'
                    '[xenserver]\nconnection_url = %s\n'
                    % (driver, closed_port_url()))
        out = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', out))
        # The shim is installed into nova's namespace only by pip; from a
        # source tree, check the module it re-exports.
        self.useFixture(xs_fixture.ObjectRegistryFixture())
        with mock.patch.object(status, 'SHIM_MODULE',
                               'nova_xenapi_sr.virt.driver'):
            rc = status.main(['--config-file', path, 'upgrade', 'check',
                              '--json'], conf=conf)
        return rc, json.loads(out.getvalue())

    def test_stock_compute_warns(self):
        rc, output = self._main('xenapi.XenAPIDriver')
        # FAILURE: nothing listens at its connection_url.
        self.assertEqual(Code.FAILURE, rc)
        results = {c['check']: c['result'] for c in output['checks']}
        self.assertEqual(Code.WARNING, results['compute_driver'])
        self.assertEqual(Code.SUCCESS,
                         results['nova XenapiLiveMigrateData version'])

    def test_extension_compute(self):
        rc, output = self._main(status.EXTENSION_DRIVER)
        results = {c['check']: c['result'] for c in output['checks']}
        self.assertEqual({'nova XenapiLiveMigrateData version': Code.SUCCESS,
                          'Compute driver shim': Code.SUCCESS,
                          'compute_driver': Code.SUCCESS,
                          # nothing listens at its connection_url
                          'Volumes on legacy SRs': Code.FAILURE}, results)
        self.assertEqual(Code.FAILURE, rc)

    def test_nova_cannot_be_imported(self):
        out = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', out))
        path = self.useFixture(fixtures.TempDir()).join('empty.conf')
        open(path, 'w').close()
        # Only this one entry: patch.dict(sys.modules) would also drop, on
        # exit, every module imported meanwhile, and a later import would
        # make second copies of them (keystoneauth's plugin registry among
        # them) under the tests that follow in this process.
        saved = sys.modules.get('nova.conf')
        sys.modules['nova.conf'] = None
        try:
            rc = status.main(['--config-file', path, 'upgrade', 'check',
                              '--json'])
        finally:
            sys.modules['nova.conf'] = saved
        self.assertEqual(Code.FAILURE, rc)
        [check] = json.loads(out.getvalue())['checks']
        self.assertEqual(('nova', Code.FAILURE),
                         (check['check'], check['result']))
        self.assertIn('nova cannot be imported', check['details'])
        self.assertIn('nova.conf', check['details'])
