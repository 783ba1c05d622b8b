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

"""novaenv: running real nova 21 XenAPI driver code in a process."""

import os
import subprocess
import sys

from nova_xenapi_sr_tools import novaenv
from tests import base


class NovaEnvTest(base.TestCase):

    def setUp(self):
        super(NovaEnvTest, self).setUp()
        novaenv.prepare()

    def test_prepare_is_idempotent_and_sets_up_nova(self):
        novaenv.prepare()
        import nova.conf
        from nova import objects
        from nova import rpc
        from nova_xenapi_sr import os_xenapi_compat
        self.assertIsNotNone(rpc.TRANSPORT)
        self.assertTrue(hasattr(objects, 'XenapiLiveMigrateData'))
        self.assertEqual('br-int',
                         nova.conf.CONF.xenserver.ovs_integration_bridge)
        self.assertTrue(os_xenapi_compat.is_applied())
        import socket
        self.assertIsNotNone(socket.getdefaulttimeout())

    def test_prepare_refuses_patched_eventlet_setting(self):
        code = ('from nova_xenapi_sr_tools import novaenv\n'
                'try:\n    novaenv.prepare()\n'
                'except novaenv.NovaEnvError as e:\n    print("refused")\n'
                'import sys; print(sorted(m for m in sys.modules '
                'if m.startswith("nova_xenapi_sr")))\n')
        env = {k: v for k, v in os.environ.items()
               if k != 'OS_NOVA_DISABLE_EVENTLET_PATCHING'}
        env['PYTHONPATH'] = os.getcwd()
        out = subprocess.check_output([sys.executable, '-c', code], env=env,
                                      stderr=subprocess.DEVNULL,
                                      universal_newlines=True)
        self.assertEqual(['refused', "['nova_xenapi_sr_tools', "
                          "'nova_xenapi_sr_tools.novaenv']"],
                         out.strip().splitlines())

    def test_prepare_does_not_import_the_extension(self):
        code = ('from nova_xenapi_sr_tools import novaenv; '
                'novaenv.prepare(); '
                'import sys; print(sorted(m for m in sys.modules '
                'if m.startswith("nova_xenapi_sr")))')
        env = dict(os.environ, OS_NOVA_DISABLE_EVENTLET_PATCHING='1',
                   PYTHONPATH=os.getcwd())
        out = subprocess.check_output([sys.executable, '-c', code], env=env,
                                      stderr=subprocess.DEVNULL,
                                      universal_newlines=True)
        self.assertEqual("['nova_xenapi_sr', "
                         "'nova_xenapi_sr.os_xenapi_compat', "
                         "'nova_xenapi_sr_tools', "
                         "'nova_xenapi_sr_tools.novaenv']", out.strip())

    def test_make_instance(self):
        inst = novaenv.make_instance(
            10, 'a8c1f1f0-0000-4000-8000-00000000000a', 'host-a')
        self.assertEqual('instance-0000000a', inst.name)
        self.assertEqual('', inst.kernel_id)
        self.assertEqual('', inst['ramdisk_id'])
        self.assertEqual('host-a', inst.host)
