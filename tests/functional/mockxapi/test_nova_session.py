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

"""nova 21's own client (os-xenapi's ``XenAPISession``) against the mock."""

from os_xenapi.client import session as os_session
from os_xenapi.client import XenAPI as OsXenAPI

from nova_xenapi_sr import os_xenapi_compat
from nova_xenapi_sr_tools.mockxapi import plugins
from tests.functional.mockxapi import base

LOGIN = ['session.login_with_password', 'pool.get_all', 'pool.get_master',
         'host.get_API_version_major', 'host.get_API_version_minor']


class NovaSessionTest(base.MockXapiTestCase):

    def setUp(self):
        super(NovaSessionTest, self).setUp()
        if os_xenapi_compat.revert():
            self.addCleanup(os_xenapi_compat.apply)
        else:
            self.addCleanup(os_xenapi_compat.revert)

    def _session(self, pool='pool-a'):
        return os_session.XenAPISession(self.fx.urls[pool], 'root', 'mock',
                                        originator='nova')

    def test_start_up_sequence(self):
        os_xenapi_compat.apply()
        self.srv.pool('pool-a').clear_calls()
        session = self._session()
        calls = self.srv.pool('pool-a').calls()
        self.assertEqual(LOGIN * 5 + [
            'session.get_this_host', 'host.get_uuid',
            'host.get_software_version', 'host.call_plugin',
            'host.get_software_version'], [m for m, _ in calls])
        self.assertEqual(('root', '***', '2.1', 'nova'), calls[0][1])
        plugin_call = calls[-2][1]
        self.assertEqual(('dom0_plugin_version.py', 'get_version'),
                         plugin_call[1:3])
        self.assertIsInstance(plugin_call[3]['params'], str)
        self.assertEqual(self.a.host.get_all()[0], session.host_ref)
        self.assertEqual((2, 1, 0), session.platform_version)
        self.assertTrue(session.is_xsm_sr_check_relaxed())

    def test_unfixed_client_cannot_start(self):
        """rpc.ml string_of_rpc: os-xenapi 0.3.4's base64 pickle.

        rpc.ml string_of_rpc, where gen_server.ml unmarshals
        host.call_plugin's (string -> string) args map.

        os-xenapi 0.3.4 as shipped sends a base64 pickle: xapi's
        dispatcher cannot read it as a string, and exnHelper.ml answers
        INTERNAL_ERROR with the Failure's text (the pickle's bytes
        escaped as OCaml's String.escaped does).
        """
        exc = self.assertRaises(OsXenAPI.Failure, self._session)
        self.assertEqual('INTERNAL_ERROR', exc.details[0])
        self.assertTrue(exc.details[1].startswith(
            'Failure("Expected string, got \'B64(\\128'), exc.details[1])
        self.assertTrue(exc.details[1].endswith(')\'")'), exc.details[1])

    def test_serialized_plugin_round_trip(self):
        os_xenapi_compat.apply()
        session = self._session('pool-b')
        self.assertEqual(plugins.PLUGIN_VERSION,
                         session.call_plugin_serialized(
                             'dom0_plugin_version.py', 'get_version'))
        session.call_plugin_serialized(
            'xenhost.py', 'network_config',
            {'cmd': 'brctl_add_br', 'args': {'bridge_name': 'qbr1'}})
        self.assertEqual([('brctl_add_br', {'bridge_name': 'qbr1'})],
                         self.srv.pool('pool-b').network_commands)
        self.assertIn('qbr1', self.srv.pool('pool-b').net_devices)

    def test_plugin_errors(self):
        """xapi_plugins.ml find_plugin; XenAPIPlugin.py dispatch.

        xapi_plugins.ml find_plugin: XENAPI_MISSING_PLUGIN [plugin];
        XenAPIPlugin.py dispatch: UNKNOWN_XENAPI_PLUGIN_FUNCTION [fn], and
        XENAPI_PLUGIN_FAILURE [fn, class, message] for an exception in the
        plugin (os-xenapi's utils.py _handle_serialization unpickling).
        """
        os_xenapi_compat.apply()
        session = self._session()
        exc = self.assertRaises(OsXenAPI.Failure, session.call_plugin,
                                'nope.py', 'x', {})
        self.assertEqual(['XENAPI_MISSING_PLUGIN', 'nope.py'], exc.details)
        exc = self.assertRaises(OsXenAPI.Failure, session.call_plugin,
                                'xenhost.py', 'nope', {})
        self.assertEqual(['UNKNOWN_XENAPI_PLUGIN_FUNCTION', 'nope'],
                         exc.details)
        exc = self.assertRaises(OsXenAPI.Failure, session.call_plugin,
                                'xenhost.py', 'network_config', {})
        self.assertEqual(['XENAPI_PLUGIN_FAILURE', 'network_config',
                          'KeyError', "'params'"], exc.details)
        exc = self.assertRaises(
            OsXenAPI.Failure, session.call_plugin, 'xenstore.py',
            'read_record', {'dom_id': '5', 'path': 'nope'})
        self.assertEqual(['XENAPI_PLUGIN_FAILURE', 'read_record',
                          'XenstoreError'], exc.details[:3])

    def test_xenstore_plugin(self):
        os_xenapi_compat.apply()
        session = self._session()
        args = {'dom_id': '5', 'path': 'attr/x', 'ignore_missing_path':
                'True'}
        self.assertEqual('"None"', session.call_plugin(
            'xenstore.py', 'read_record', dict(args)))
        session.call_plugin('xenstore.py', 'write_record',
                            {'dom_id': '5', 'path': 'attr/x', 'value': '1'})
        self.assertEqual('"1"', session.call_plugin(
            'xenstore.py', 'read_record', dict(args)))

    def test_host_data_plugin(self):
        import json
        os_xenapi_compat.apply()
        session = self._session()
        data = json.loads(session.call_plugin('xenhost.py', 'host_data',
                                              {}))
        self.assertEqual('host-a', data['host_hostname'])
        self.assertIn('iscsi_iqn', data['host_other-config'])
        self.assertIn('socket_count', data['host_cpu_info'])
