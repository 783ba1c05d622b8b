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

from unittest import mock

from nova import objects as nova_objects
from nova.objects import base as nova_base
from nova.objects import migrate_data as nova_migrate_data

from nova_xenapi_sr.cmd import conductor
from nova_xenapi_sr.objects import migrate_data
from nova_xenapi_sr_tools import fixture as xs_fixture
from tests import base


class TestConductorMain(base.TestCase):

    def setUp(self):
        super(TestConductorMain, self).setUp()
        # Start from a stock nova conductor, whatever earlier imports in
        # this process registered; the fixture puts everything back.
        self.useFixture(xs_fixture.ObjectRegistryFixture(stock=True))
        self.assertEqual('1.4', nova_objects.XenapiLiveMigrateData.VERSION)

    @mock.patch('nova.cmd.conductor.main')
    def test_registers_before_delegating(self, nova_main):
        seen = {}

        def fake_main():
            cls = nova_objects.XenapiLiveMigrateData
            seen['class'] = cls
            seen['version'] = cls.VERSION
            seen['registered'] = list(
                nova_base.NovaObjectRegistry.obj_classes()[
                    'XenapiLiveMigrateData'])
            return 'nova-main-result'

        nova_main.side_effect = fake_main

        self.assertEqual('nova-main-result', conductor.main())

        nova_main.assert_called_once_with()
        self.assertEqual('1.5', seen['version'])
        self.assertIs(migrate_data.XenapiLiveMigrateData, seen['class'])
        # nova's own 1.4 class stays registered: 1.4 primitives from stock
        # computes still hydrate.
        self.assertEqual([migrate_data.XenapiLiveMigrateData,
                          nova_migrate_data.XenapiLiveMigrateData],
                         seen['registered'])

    @mock.patch('nova.cmd.conductor.main')
    @mock.patch('nova_xenapi_sr.objects.register_all')
    def test_call_order(self, register_all, nova_main):
        calls = mock.Mock()
        calls.attach_mock(register_all, 'register_all')
        calls.attach_mock(nova_main, 'nova_main')

        conductor.main()

        self.assertEqual([mock.call.register_all(), mock.call.nova_main()],
                         calls.mock_calls)

    @mock.patch('nova.cmd.conductor.main')
    @mock.patch('nova_xenapi_sr.objects.register_all',
                side_effect=ImportError('no nova objects'))
    def test_does_not_start_unregistered(self, register_all, nova_main):
        self.assertRaises(ImportError, conductor.main)
        nova_main.assert_not_called()
