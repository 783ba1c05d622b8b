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

"""A pool member's endpoint answers a login as xapi on a member does."""

import XenAPI

from nova_xenapi_sr_tools.mockxapi import Scenario
from tests.functional.mockxapi import base


class MemberTest(base.MockXapiTestCase):

    def scenario(self):
        sc = Scenario()
        sc.add_pool('pool-a', hosts=['host-a', 'host-a2'])
        sc.add_pool('pool-b', hosts=['host-b'])
        return sc

    def test_login_names_the_master(self):
        url = self.srv.member_url('pool-a', 'host-a2')
        self.assertEqual(url, self.srv.member_url('pool-a', 'host-a2'))
        master = self.a.host.get_address(self.a.pool.get_master(
            self.a.pool.get_all()[0]))
        session = XenAPI.Session(url)
        exc = self.assertRaises(XenAPI.Failure, session.login_with_password,
                                'root', 'mock')
        self.assertEqual(['HOST_IS_SLAVE', master], exc.details)
        member = [srv for key, srv in self.srv._servers.items()
                  if key == ('pool-a', 'host-a2')][0].pool
        self.assertEqual([('session.login_with_password',
                           ('root', '***'))], member.calls())
        # The master's own pool saw nothing of it.
        self.assertNotIn('host-a2', str(self.fx.calls('pool-a')))

    def test_only_member_hosts(self):
        self.assertRaises(ValueError, self.srv.member_url, 'pool-a',
                          'host-a')
        self.assertRaises(ValueError, self.srv.member_url, 'pool-b',
                          'host-a2')

    def test_stops_with_the_service(self):
        url = self.srv.member_url('pool-a', 'host-a2')
        self.srv.stop()
        self.assertEqual({}, self.srv.member_urls)
        self.assertRaises(OSError, XenAPI.Session(url).login_with_password,
                          'root', 'mock')
