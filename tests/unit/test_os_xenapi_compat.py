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

"""Tests for the os-xenapi Python 3 plugin (de)serialization fix."""

import pickle
from unittest import mock
import xmlrpc.client

from os_xenapi.client import session as os_session

from nova_xenapi_sr import os_xenapi_compat
from tests import base


class CompatTest(base.TestCase):

    def setUp(self):
        super(CompatTest, self).setUp()
        # another test in this process may have applied the fix for good
        if os_xenapi_compat.revert():
            self.addCleanup(os_xenapi_compat.apply)
        else:
            self.addCleanup(os_xenapi_compat.revert)
        self.original = os_xenapi_compat.original()

    def test_dumps_is_a_protocol0_string(self):
        text = os_xenapi_compat.dumps({'args': ('a',), 'kwargs': {'k': 1}})
        self.assertIsInstance(text, str)
        self.assertEqual({'args': ('a',), 'kwargs': {'k': 1}},
                         pickle.loads(text.encode('latin-1')))
        # protocol 0 has no PROTO opcode
        self.assertFalse(text.startswith('\x80'))

    def test_loads_python2_dom0_reply(self):
        # what a Python 2 dom0 plugin returns for pickle.dumps('2.1')
        self.assertEqual('2.1', os_xenapi_compat.loads("S'2.1'\np0\n."))
        self.assertEqual(u'caf\xe9', os_xenapi_compat.loads(
            "S'caf\\xc3\\xa9'\np0\n."))

    def test_loads_other_forms(self):
        value = {'a': [1, 'b']}
        self.assertEqual(value, os_xenapi_compat.loads(
            os_xenapi_compat.dumps(value)))
        self.assertEqual(value, os_xenapi_compat.loads(pickle.dumps(value)))
        self.assertEqual(value, os_xenapi_compat.loads(
            xmlrpc.client.Binary(pickle.dumps(value))))
        self.assertEqual(u'\xe9t\xe9', os_xenapi_compat.loads(
            os_xenapi_compat.dumps(u'\xe9t\xe9')))

    def test_apply_is_idempotent(self):
        self.assertFalse(os_xenapi_compat.is_applied())
        self.assertTrue(os_xenapi_compat.apply())
        self.assertTrue(os_xenapi_compat.is_applied())
        self.assertFalse(os_xenapi_compat.apply())
        self.assertIs(os_xenapi_compat.call_plugin_serialized,
                      os_session.XenAPISession.__dict__[
                          'call_plugin_serialized'])

    def _session(self, reply):
        session = mock.Mock(spec=['call_plugin'])
        session.call_plugin.return_value = reply
        return session

    def test_fixed_method_sends_string_and_reads_string(self):
        session = self._session("S'2.1'\np0\n.")
        os_xenapi_compat.apply()
        method = os_session.XenAPISession.call_plugin_serialized
        self.assertEqual('2.1', method(session, 'dom0_plugin_version.py',
                                       'get_version', 'x', k='v'))
        plugin, fn, params = session.call_plugin.call_args[0]
        self.assertEqual(('dom0_plugin_version.py', 'get_version'),
                         (plugin, fn))
        self.assertIsInstance(params['params'], str)
        self.assertEqual({'args': ('x',), 'kwargs': {'k': 'v'}},
                         pickle.loads(params['params'].encode('latin-1')))

    def test_unfixed_method_fails_on_python3(self):
        # the bug being fixed: bytes out, str in
        session = self._session("S'2.1'\np0\n.")
        self.assertRaises(TypeError, self.original, session,
                          'dom0_plugin_version.py', 'get_version')
        params = session.call_plugin.call_args[0][2]
        self.assertIsInstance(params['params'], bytes)

    def test_revert(self):
        os_xenapi_compat.apply()
        self.assertTrue(os_xenapi_compat.revert())
        self.assertFalse(os_xenapi_compat.is_applied())
        self.assertFalse(os_xenapi_compat.revert())
        self.assertIs(self.original, os_session.XenAPISession.__dict__[
            'call_plugin_serialized'])

    def test_imports_nothing_of_the_extension(self):
        import os
        import subprocess
        import sys
        code = ('import sys; from nova_xenapi_sr import os_xenapi_compat; '
                'os_xenapi_compat.apply(); print(sorted(m for m in '
                'sys.modules if m.startswith("nova_xenapi_sr")))')
        out = subprocess.check_output(
            [sys.executable, '-c', code], env=dict(
                os.environ, OS_NOVA_DISABLE_EVENTLET_PATCHING='1'),
            stderr=subprocess.DEVNULL, universal_newlines=True)
        self.assertEqual(
            "['nova_xenapi_sr', 'nova_xenapi_sr.os_xenapi_compat']",
            out.strip())
