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

"""``--listen`` parsing of the mock-xapi command."""

from nova_xenapi_sr_tools.mockxapi import cmd
from tests import base

POOLS = ['pool-a', 'pool-b']


class ParseListenTest(base.TestCase):

    def test_named_and_positional(self):
        self.assertEqual({}, cmd.parse_listen([], POOLS))
        self.assertEqual({'pool-b': ('127.0.0.1', 8080),
                          'pool-a': ('127.0.0.2', 80)},
                         cmd.parse_listen(['pool-b=127.0.0.1:8080',
                                           '127.0.0.2'], POOLS))
        self.assertEqual({'pool-a': ('127.0.0.1', 0),
                          'pool-b': ('127.0.0.1', 0)},
                         cmd.parse_listen(['127.0.0.1:0', '127.0.0.1:0'],
                                          POOLS))

    def test_errors(self):
        self.assertRaises(ValueError, cmd.parse_listen, ['nope=1.2.3.4'],
                          POOLS)
        self.assertRaises(ValueError, cmd.parse_listen, ['1.2.3.4:x'],
                          POOLS)
        self.assertRaises(ValueError, cmd.parse_listen, ['a', 'b', 'c'],
                          POOLS)
