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

"""Pieces of the flow that need nova but no XAPI and no process."""

import sys
from unittest import mock

from nova_xenapi_sr_tools import fixture
from nova_xenapi_sr_tools.upgrade import flow
from tests import base


def _stock_registry(test):
    import nova.objects
    from nova.objects import base as nova_base
    from nova.objects import migrate_data
    nova.objects.register_all()
    test.useFixture(fixture.ObjectRegistryFixture())
    stock = migrate_data.XenapiLiveMigrateData
    nova_base.NovaObjectRegistry.obj_classes()['XenapiLiveMigrateData'] = [
        stock]
    nova.objects.XenapiLiveMigrateData = stock


class TestStockGuard(base.TestCase):

    def test_pristine_stock_node_passes(self):
        _stock_registry(self)
        modules = dict((name, module) for name, module in sys.modules.items()
                       if not name.startswith(('nova_xenapi_sr.objects',
                                               'nova_xenapi_sr.virt')))
        with mock.patch.dict(sys.modules, modules, clear=True):
            flow.check_stock_registry()

    def test_registered_extension_object_fails(self):
        _stock_registry(self)
        self.useFixture(fixture.ObjectRegistryFixture(
            register_extension=True))
        error = self.assertRaises(RuntimeError, flow.check_stock_registry)
        self.assertIn('XenapiLiveMigrateData is 1.5', str(error))


class TestExtensionGuard(base.TestCase):

    def test_stock_registry_fails_loudly(self):
        _stock_registry(self)
        error = self.assertRaises(RuntimeError,
                                  flow.check_extension_registry, 'x.Driver')
        self.assertIn('x.Driver did not register XenapiLiveMigrateData 1.5 '
                      '(nova.objects has 1.4)', str(error))

    def test_registered_extension_passes(self):
        _stock_registry(self)
        self.useFixture(fixture.ObjectRegistryFixture(
            register_extension=True))
        flow.check_extension_registry('x.Driver')

    def test_extension_compute_does_not_register_for_its_driver(self):
        _stock_registry(self)
        with mock.patch('nova_xenapi_sr_tools.novaenv.prepare'), \
                mock.patch('nova_xenapi_sr.objects.register_all') as reg:
            flow._prepare_process({'role': 'compute',
                                   'flavour': 'extension'})
            reg.assert_not_called()
            flow._prepare_process({'role': 'conductor',
                                   'flavour': 'extension'})
            reg.assert_called_once_with()


class TestHelpers(base.TestCase):

    def test_cleanup_flags_follow_block_migration(self):
        _stock_registry(self)
        import nova.objects
        data = nova.objects.XenapiLiveMigrateData(block_migration=True)
        self.assertEqual((True, True), flow._cleanup_flags(data))
        data.block_migration = False
        self.assertEqual((False, False), flow._cleanup_flags(data))
        self.assertEqual((False, False), flow._cleanup_flags(None))

    def test_extension_driver_without_the_shim(self):
        with mock.patch('importlib.util.find_spec', return_value=None):
            self.assertEqual('nova_xenapi_sr.virt.driver.XenAPISRDriver',
                             flow.extension_driver_default())

    def test_extension_driver_with_the_shim(self):
        with mock.patch('importlib.util.find_spec',
                        return_value=object()):
            self.assertEqual('xenapi_sr.driver.XenAPISRDriver',
                             flow.extension_driver_default())

    def test_make_instance(self):
        instance = flow.make_instance({
            'id': 3, 'uuid': '6f0d7a5e-0000-4000-8000-000000000003',
            'host': 'host-source', 'root_device_name': '/dev/xvdb'})
        self.assertEqual('instance-00000003', instance.name)
        self.assertEqual('/dev/xvdb', instance.root_device_name)
        self.assertEqual('', instance.kernel_id)
        self.assertEqual('host-source', instance.host)
