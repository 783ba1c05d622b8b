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

"""XenapiLiveMigrateData 1.5: fingerprint, backports, and stock nova peers.

Assertions look inside ``['nova_object.data']``: the envelope alone says
nothing about which fields a receiver gets.
"""

import copy
import json
import os
import subprocess
import sys
import textwrap

import fixtures
from nova import context as nova_context
from nova import objects as nova_objects
from nova.objects import base as nova_base
from nova.objects import migrate_data as nova_migrate_data
from oslo_versionedobjects import fixture as ovo_fixture

from nova_xenapi_sr import objects as xs_objects
from nova_xenapi_sr.objects import migrate_data
from nova_xenapi_sr_tools import fixture as xs_fixture
from tests import base

#: Pinned fingerprints. A change here is an object version bump: add a
#: version history line, bump VERSION and add an obj_make_compatible test.
OBJECT_DATA = {
    'XenapiLiveMigrateData': '1.5-4651580429f3e8fa85aed6df57ae79c4',
}

#: nova 21's own class; the extension must never change it.
STOCK_OBJECT_DATA = {
    'XenapiLiveMigrateData': '1.4-7dc9417e921b2953faa6751f18785f3f',
}

DATA = 'nova_object.data'
VERSION = 'nova_object.version'

VOLUME_SR_UUID_MAP = {
    'vol-legacy': 'FA15E-D15C-vol-legacy',
    'vol-uuid5': 'd6f1a2b3-0c4e-5f6a-8b7c-9d0e1f2a3b4c',
}


def _normalised(value):
    """``value`` with every ``nova_object.changes`` list sorted.

    The changes list comes from a set, so its order differs between
    processes; what a receiver gets does not depend on it.
    """
    if isinstance(value, dict):
        return {k: (sorted(v) if k == 'nova_object.changes'
                    else _normalised(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return value


def _vif(port_id):
    vif = nova_migrate_data.VIFMigrateData(
        port_id=port_id, vnic_type='normal', vif_type='ovs',
        host='host-b')
    vif.vif_details = {'port_filter': True}
    vif.profile = {}
    return vif


def _stock_fields():
    """Every field a stock nova 21 node may set, with non-default values."""
    return dict(
        block_migration=False,
        is_volume_backed=True,
        destination_sr_ref='OpaqueRef:dest-sr',
        migrate_send_data={'host': 'OpaqueRef:host-b',
                           'SM': 'http://192.0.2.20/services/SM'},
        sr_uuid_map={'d6f1a2b3-0c4e-5f6a-8b7c-9d0e1f2a3b4c':
                     'OpaqueRef:sr-b'},
        kernel_file='',
        ramdisk_file='',
        vif_uuid_map={'net-1': 'OpaqueRef:net-b'},
        old_vol_attachment_ids={'vol-legacy': 'attach-1',
                                'vol-uuid5': 'attach-2'},
        wait_for_vif_plugged=True,
        vifs=[_vif('port-1'), _vif('port-2')],
    )


def _stock_primitive():
    """A 1.4 primitive exactly as a node running stock nova 21 sends it."""
    obj = nova_migrate_data.XenapiLiveMigrateData(**_stock_fields())
    return nova_base.NovaObjectSerializer().serialize_entity(None, obj)


def _manifest(version):
    """The version manifest a node with ``version`` of the object sends.

    nova's conductor backports with ``obj_to_primitive(target_version=...,
    version_manifest=...)``; without a manifest, oslo.versionedobjects has
    no rule for the ``vifs`` child objects.
    """
    return {'XenapiLiveMigrateData': version,
            'VIFMigrateData': nova_migrate_data.VIFMigrateData.VERSION}


def _backport(obj, version):
    """Backport as nova's ``ConductorManager.object_backport_versions``."""
    return obj.obj_to_primitive(target_version=version,
                                version_manifest=_manifest(version))


def _extension_object():
    return migrate_data.XenapiLiveMigrateData(
        volume_sr_uuid_map=dict(VOLUME_SR_UUID_MAP), **_stock_fields())


class TestFingerprints(base.TestCase):

    def test_fingerprint_pinned(self):
        checker = ovo_fixture.ObjectVersionChecker(
            {'XenapiLiveMigrateData': [migrate_data.XenapiLiveMigrateData]})
        expected, actual = checker.test_hashes(OBJECT_DATA)
        self.assertEqual(expected, actual,
                         'XenapiLiveMigrateData changed: bump its version')

    def test_stock_fingerprint_unchanged(self):
        checker = ovo_fixture.ObjectVersionChecker(
            {'XenapiLiveMigrateData':
             [nova_migrate_data.XenapiLiveMigrateData]})
        expected, actual = checker.test_hashes(STOCK_OBJECT_DATA)
        self.assertEqual(expected, actual)
        self.assertEqual('1.4',
                         nova_migrate_data.XenapiLiveMigrateData.VERSION)
        self.assertNotIn('volume_sr_uuid_map',
                         nova_migrate_data.XenapiLiveMigrateData.fields)

    def test_same_object_name_and_a_subclass(self):
        cls = migrate_data.XenapiLiveMigrateData
        self.assertEqual('XenapiLiveMigrateData', cls.obj_name())
        self.assertTrue(
            issubclass(cls, nova_migrate_data.XenapiLiveMigrateData))
        self.assertEqual(
            set(nova_migrate_data.XenapiLiveMigrateData.fields) |
            {'volume_sr_uuid_map'},
            set(cls.fields))


class TestObjMakeCompatible(base.TestCase):

    def test_1_5_keeps_the_map(self):
        primitive = _extension_object().obj_to_primitive()
        self.assertEqual('1.5', primitive[VERSION])
        self.assertEqual(VOLUME_SR_UUID_MAP,
                         primitive[DATA]['volume_sr_uuid_map'])

    def test_obj_make_compatible_1_4(self):
        obj = _extension_object()
        primitive = _backport(obj, '1.4')
        self.assertEqual('1.4', primitive[VERSION])
        self.assertNotIn('volume_sr_uuid_map', primitive[DATA])
        stock = _stock_primitive()
        self.assertEqual(_normalised(stock[DATA]),
                         _normalised(primitive[DATA]))
        # The object itself is untouched by backporting.
        self.assertEqual(VOLUME_SR_UUID_MAP, obj.volume_sr_uuid_map)

    def test_obj_make_compatible_keeps_nova_handling(self):
        obj = _extension_object()
        data = _backport(obj, '1.3')[DATA]
        self.assertNotIn('volume_sr_uuid_map', data)
        self.assertNotIn('vifs', data)
        self.assertTrue(data['wait_for_vif_plugged'])
        data = _backport(obj, '1.2')[DATA]
        self.assertNotIn('wait_for_vif_plugged', data)
        self.assertIn('old_vol_attachment_ids', data)
        data = _backport(obj, '1.0')[DATA]
        self.assertNotIn('old_vol_attachment_ids', data)
        self.assertNotIn('vif_uuid_map', data)
        self.assertEqual('OpaqueRef:dest-sr', data['destination_sr_ref'])

    def test_map_must_be_strings(self):
        obj = migrate_data.XenapiLiveMigrateData()
        self.assertRaises(ValueError, setattr, obj, 'volume_sr_uuid_map',
                          {'vol': None})
        self.assertRaises(ValueError, setattr, obj, 'volume_sr_uuid_map',
                          ['not', 'a', 'dict'])

    def test_map_unset_by_default(self):
        obj = migrate_data.XenapiLiveMigrateData()
        self.assertFalse(obj.obj_attr_is_set('volume_sr_uuid_map'))
        self.assertNotIn('volume_sr_uuid_map', obj.obj_to_primitive()[DATA])


class TestOnAnExtensionNode(base.TestCase):

    def setUp(self):
        super(TestOnAnExtensionNode, self).setUp()
        self.useFixture(xs_fixture.ObjectRegistryFixture(
            register_extension=True))
        self.ctxt = nova_context.get_admin_context()
        self.serializer = nova_base.NovaObjectSerializer()

    def test_nova_builds_the_1_5_class(self):
        self.assertIs(migrate_data.XenapiLiveMigrateData,
                      nova_objects.XenapiLiveMigrateData)
        self.assertEqual('1.5', nova_objects.XenapiLiveMigrateData().VERSION)

    def test_1_5_round_trip(self):
        primitive = self.serializer.serialize_entity(
            self.ctxt, _extension_object())
        primitive = json.loads(json.dumps(primitive))
        obj = self.serializer.deserialize_entity(self.ctxt, primitive)
        self.assertIsInstance(obj, migrate_data.XenapiLiveMigrateData)
        self.assertEqual('1.5', obj.VERSION)
        self.assertEqual(VOLUME_SR_UUID_MAP, obj.volume_sr_uuid_map)
        self.assertEqual(['port-1', 'port-2'],
                         [vif.port_id for vif in obj.vifs])

    def test_stock_1_4_primitive_goes_out_again_as_1_4(self):
        stock = _stock_primitive()
        self.assertEqual('1.4', stock[VERSION])
        received = json.loads(json.dumps(stock))
        obj = self.serializer.deserialize_entity(self.ctxt, received)
        # Both classes are registered; oslo.versionedobjects hydrates the
        # exact version match, nova's own 1.4 class, which cannot even hold
        # volume_sr_uuid_map. Receivers tell an old peer by this.
        self.assertIs(nova_migrate_data.XenapiLiveMigrateData, type(obj))
        self.assertEqual('1.4', obj.VERSION)
        self.assertNotIn('volume_sr_uuid_map', obj.fields)
        self.assertEqual({'vol-legacy': 'attach-1', 'vol-uuid5': 'attach-2'},
                         obj.old_vol_attachment_ids)
        self.assertTrue(obj.wait_for_vif_plugged)
        self.assertEqual(['port-1', 'port-2'],
                         [vif.port_id for vif in obj.vifs])

        sent = self.serializer.serialize_entity(self.ctxt, obj)
        self.assertEqual('1.4', sent[VERSION])
        self.assertNotIn('volume_sr_uuid_map', sent[DATA])
        self.assertEqual(_normalised(stock[DATA]), _normalised(sent[DATA]))
        # ...and stock nova's class reads it back with every field intact.
        back = nova_migrate_data.XenapiLiveMigrateData.obj_from_primitive(
            copy.deepcopy(sent))
        self.assertEqual(_stock_fields()['migrate_send_data'],
                         back.migrate_send_data)
        self.assertEqual(['port-1', 'port-2'],
                         [vif.port_id for vif in back.vifs])

    def test_stock_fixture_inside_an_extension_node(self):
        self.assertIs(migrate_data.XenapiLiveMigrateData,
                      nova_objects.XenapiLiveMigrateData)
        with xs_fixture.ObjectRegistryFixture(stock=True):
            self.assertIs(nova_migrate_data.XenapiLiveMigrateData,
                          nova_objects.XenapiLiveMigrateData)
            self.assertEqual(
                [nova_migrate_data.XenapiLiveMigrateData],
                nova_base.NovaObjectRegistry.obj_classes()[
                    'XenapiLiveMigrateData'])
        self.assertIs(migrate_data.XenapiLiveMigrateData,
                      nova_objects.XenapiLiveMigrateData)

    def test_stock_fixture_drops_extension_only_objects(self):
        extension_only = type(
            'XenapiSRTestOnlyObject', (nova_base.NovaObject,),
            {'VERSION': '1.0', 'fields': {},
             '__module__': 'nova_xenapi_sr.objects.test_only'})
        nova_base.NovaObjectRegistry.register(extension_only)
        registry = nova_base.NovaObjectRegistry.obj_classes()
        with xs_fixture.ObjectRegistryFixture(stock=True):
            self.assertNotIn('XenapiSRTestOnlyObject', registry)
            self.assertFalse(hasattr(nova_objects, 'XenapiSRTestOnlyObject'))
        self.assertEqual([extension_only], registry['XenapiSRTestOnlyObject'])
        self.assertIs(extension_only, nova_objects.XenapiSRTestOnlyObject)

    def test_registry_fixture_restores(self):
        registry = nova_base.NovaObjectRegistry.obj_classes()
        before = list(registry['XenapiLiveMigrateData'])
        attr_before = nova_objects.XenapiLiveMigrateData
        inner = xs_fixture.ObjectRegistryFixture()
        inner.setUp()

        newer = type('XenapiLiveMigrateData',
                     (nova_migrate_data.XenapiLiveMigrateData,),
                     {'VERSION': '1.99'})
        nova_base.NovaObjectRegistry.register(newer)
        brand_new = type('XenapiSRTestOnlyObject', (nova_base.NovaObject,),
                         {'VERSION': '1.0', 'fields': {}})
        nova_base.NovaObjectRegistry.register(brand_new)
        self.assertIs(newer, nova_objects.XenapiLiveMigrateData)
        self.assertIs(newer, registry['XenapiLiveMigrateData'][0])
        self.assertIs(brand_new, nova_objects.XenapiSRTestOnlyObject)

        inner.cleanUp()

        self.assertEqual(before, registry['XenapiLiveMigrateData'])
        self.assertIs(attr_before, nova_objects.XenapiLiveMigrateData)
        self.assertNotIn('XenapiSRTestOnlyObject', registry)
        self.assertFalse(hasattr(nova_objects, 'XenapiSRTestOnlyObject'))


class TestRegistration(base.TestCase):

    def setUp(self):
        super(TestRegistration, self).setUp()
        # Start from stock nova whatever earlier imports registered.
        self.useFixture(xs_fixture.ObjectRegistryFixture(stock=True))

    def test_stock_start(self):
        self.assertEqual(
            [nova_migrate_data.XenapiLiveMigrateData],
            nova_base.NovaObjectRegistry.obj_classes()[
                'XenapiLiveMigrateData'])
        self.assertIs(nova_migrate_data.XenapiLiveMigrateData,
                      nova_objects.XenapiLiveMigrateData)

    def test_register_all(self):
        xs_objects.register_all()
        self.assertIs(migrate_data.XenapiLiveMigrateData,
                      nova_objects.XenapiLiveMigrateData)
        self.assertEqual(
            [migrate_data.XenapiLiveMigrateData,
             nova_migrate_data.XenapiLiveMigrateData],
            nova_base.NovaObjectRegistry.obj_classes()[
                'XenapiLiveMigrateData'])

    def test_register_all_is_idempotent(self):
        xs_objects.register_all()
        xs_objects.register_all()
        self.assertEqual(
            2, len(nova_base.NovaObjectRegistry.obj_classes()[
                'XenapiLiveMigrateData']))
        self.assertIs(migrate_data.XenapiLiveMigrateData,
                      nova_objects.XenapiLiveMigrateData)


#: Runs in a separate interpreter that never imports nova_xenapi_sr: a
#: node running stock nova 21. It first prints the version manifest it
#: would send the conductor for a backport (one JSON line), then reads
#: {name: primitive} as JSON on stdin and prints what it made of each one.
_STOCK_NODE = textwrap.dedent('''
    import json
    import sys

    from nova import context
    from nova import objects
    from nova.objects import base
    from oslo_versionedobjects import base as ovo_base
    from oslo_versionedobjects import exception as ovo_exception

    objects.register_all()
    print(json.dumps(ovo_base.obj_tree_get_versions('XenapiLiveMigrateData')))
    sys.stdout.flush()


    class RecordingConductor(object):
        # Stands in for the conductor RPC API of a stock compute.
        def __init__(self):
            self.requests = []

        def object_backport_versions(self, ctxt, primitive, manifest):
            self.requests.append(
                [primitive['nova_object.version'], manifest])
            return None


    ctxt = context.get_admin_context()
    result = {}
    for name, primitive in json.load(sys.stdin).items():
        try:
            obj = base.NovaObject.obj_from_primitive(primitive, ctxt)
        except ovo_exception.IncompatibleObjectVersion as exc:
            serializer = base.NovaObjectSerializer()
            serializer._conductor = RecordingConductor()
            serializer.deserialize_entity(ctxt, primitive)
            result[name] = {'error': type(exc).__name__, 'message': str(exc),
                            'backport_requests':
                                serializer._conductor.requests}
        else:
            result[name] = {
                'class': '%s.%s' % (type(obj).__module__,
                                    type(obj).__name__),
                'version': obj.VERSION,
                'data': base.NovaObjectSerializer().serialize_entity(
                    ctxt, obj)['nova_object.data'],
            }
    result['extension_imported'] = any(
        m.startswith('nova_xenapi_sr') for m in sys.modules)
    json.dump(result, sys.stdout)
''')


class TestOnAStockNode(base.TestCase):
    """A stock nova 21 process reads what an extension node sends it."""

    def test_backported_accepted_unbackported_rejected(self):
        env = dict(os.environ, OS_NOVA_DISABLE_EVENTLET_PATCHING='1',
                   PYTHONWARNINGS='ignore')
        env.pop('PYTHONPATH', None)
        stderr = self.useFixture(fixtures.TempDir()).join('stderr')
        with open(stderr, 'w') as err:
            proc = subprocess.Popen(
                [sys.executable, '-c', _STOCK_NODE], cwd='/', env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                universal_newlines=True)
            self.addCleanup(proc.wait)
            self.addCleanup(proc.kill)
            manifest = json.loads(proc.stdout.readline() or 'null')
            self.assertIsNotNone(manifest, open(stderr).read())
            self.assertEqual('1.4', manifest['XenapiLiveMigrateData'])

            obj = _extension_object()
            unbackported = nova_base.NovaObjectSerializer().serialize_entity(
                None, obj)
            self.assertEqual('1.5', unbackported[VERSION])
            # What the conductor does for the stock node.
            backported = obj.obj_to_primitive(
                target_version=manifest['XenapiLiveMigrateData'],
                version_manifest=manifest)
            out, _ = proc.communicate(
                json.dumps({'backported': backported,
                            'unbackported': unbackported}), timeout=120)
        self.assertEqual(0, proc.returncode, open(stderr).read())
        result = json.loads(out)

        self.assertFalse(result['extension_imported'])
        accepted = result['backported']
        self.assertEqual(
            'nova.objects.migrate_data.XenapiLiveMigrateData',
            accepted['class'])
        self.assertEqual('1.4', accepted['version'])
        expected = dict(unbackported[DATA])
        del expected['volume_sr_uuid_map']
        self.assertEqual(_normalised(expected),
                         _normalised(accepted['data']))
        self.assertEqual(_normalised(_stock_primitive()[DATA]),
                         _normalised(accepted['data']))

        rejected = result['unbackported']
        self.assertEqual('IncompatibleObjectVersion', rejected['error'])
        self.assertIn('1.5', rejected['message'])
        # Through nova's serializer a stock compute asks the conductor to
        # backport, with the manifest it printed: the conductor must know
        # 1.5 to do that (nova-conductor-xenapi-sr).
        self.assertEqual([['1.5', manifest]], rejected['backport_requests'])
