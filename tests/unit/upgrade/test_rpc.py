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

"""Wire format and nova's serializer semantics, in one process.

The registry of this process is stock nova's; the extension's 1.5 class
is registered only inside ``ObjectRegistryFixture``.
"""

import multiprocessing

from oslo_versionedobjects import exception as ovo_exc

from nova_xenapi_sr_tools import fixture
from nova_xenapi_sr_tools.upgrade import flow
from nova_xenapi_sr_tools.upgrade import rpc
from tests import base

MAP = {'vol-1': 'FA15E-D15C-vol-1'}


def _nova():
    import nova.objects
    nova.objects.register_all()
    from nova import context
    return nova.objects, context.get_admin_context()


def _conductor_backport(context, objprim, object_versions):
    """What a conductor node does with a backport request.

    Its dispatcher hydrates the object with the conductor's registry
    (failing there if that registry cannot read it), then
    ``ConductorNode.rpc_object_backport_versions`` answers.
    """
    node = flow.ConductorNode({'name': 'conductor-test', 'role': 'conductor',
                               'flavour': 'extension'})
    objinst = rpc.make_serializer(rpc.NoConductor()).deserialize_entity(
        context, objprim)
    return node.rpc_object_backport_versions(context, objinst,
                                             object_versions)


def _extension_primitive(test):
    """A 1.5 primitive, made with the extension registered temporarily."""
    _nova()  # nova's own objects first: the fixture restores to them
    with fixture.ObjectRegistryFixture(register_extension=True):
        objects, ctxt = _nova()
        obj = objects.XenapiLiveMigrateData(volume_sr_uuid_map=MAP,
                                            block_migration=True)
        return rpc.serialize(ctxt, obj)


class TestErrors(base.TestCase):

    def test_chain_follows_context(self):
        try:
            try:
                raise ValueError('inner')
            except ValueError:
                raise RuntimeError('outer')
        except RuntimeError as exc:
            chain = rpc.exception_chain(exc)
        self.assertEqual([{'type': 'RuntimeError', 'message': 'outer'},
                          {'type': 'ValueError', 'message': 'inner'}], chain)

    def test_remote_error_keeps_its_origin_when_passed_on(self):
        remote = rpc.RemoteError('MigrationError', 'boom', 'compute-a',
                                 [{'type': 'MigrationError',
                                   'message': 'boom'},
                                  {'type': 'Failure',
                                   'message': 'UUID_INVALID'}])
        data = rpc.error_to_dict(remote, 'compute-b')
        self.assertEqual('compute-a', data['origin'])
        again = rpc.RemoteError.from_dict(data)
        self.assertEqual(remote.chain, again.chain)
        self.assertIn('compute-a', str(again))

    def test_local_error(self):
        data = rpc.error_to_dict(KeyError('id'), 'compute-b')
        self.assertEqual('KeyError', data['type'])
        self.assertEqual('compute-b', data['origin'])
        self.assertIn('KeyError', data['traceback'])


class TestWire(base.TestCase):

    def test_channel_carries_json_text_only(self):
        left, right = multiprocessing.Pipe()
        self.addCleanup(left.close)
        self.addCleanup(right.close)
        rpc.Channel(left).send({'a': [1, 'b'], 'c': None})
        raw = right.recv_bytes()
        self.assertEqual(b'{"a": [1, "b"], "c": null}', raw)
        rpc.Channel(right).send({'x': 1})
        self.assertEqual({'x': 1}, rpc.Channel(left).recv())

    def test_request_and_reply(self):
        req = rpc.request('compute-a', 'conductor', 'ping', {'x': 1})
        ok = rpc.reply(req, result=2)
        self.assertEqual(('conductor', 'compute-a', 2),
                         (ok['src'], ok['dst'], ok['result']))
        bad = rpc.reply(req, error={'type': 'E'})
        self.assertNotIn('result', bad)
        self.assertEqual(req['id'], bad['id'])


class TestSerializerSemantics(base.TestCase):

    def setUp(self):
        super(TestSerializerSemantics, self).setUp()
        # A stock node's registry, whatever other tests of this process
        # imported (the extension driver registers 1.5 on import).
        objects, _ctxt = _nova()
        self.useFixture(fixture.ObjectRegistryFixture())
        from nova.objects import base as nova_base
        from nova.objects import migrate_data
        stock = migrate_data.XenapiLiveMigrateData
        nova_base.NovaObjectRegistry.obj_classes()[
            'XenapiLiveMigrateData'] = [stock]
        objects.XenapiLiveMigrateData = stock

    def test_stock_registry_asks_the_conductor(self):
        primitive = _extension_primitive(self)
        objects, ctxt = _nova()
        self.assertEqual('1.4', objects.XenapiLiveMigrateData.VERSION)
        asked = []

        def conductor(method, context=None, **kwargs):
            asked.append((method, kwargs['object_versions']
                          ['XenapiLiveMigrateData']))
            # What an extension conductor answers.
            with fixture.ObjectRegistryFixture(register_extension=True):
                return _conductor_backport(context, kwargs['objinst'],
                                           kwargs['object_versions'])

        serializer = rpc.make_serializer(rpc.ConductorProxy(conductor))
        obj = serializer.deserialize_entity(ctxt, primitive)
        self.assertEqual([('object_backport_versions', '1.4')], asked)
        self.assertEqual('1.4', obj.VERSION)
        self.assertTrue(obj.block_migration)
        self.assertNotIn('volume_sr_uuid_map', obj.obj_fields)

    def test_conductor_without_1_5_cannot_backport(self):
        primitive = _extension_primitive(self)
        _objects, ctxt = _nova()
        self.assertRaises(ovo_exc.IncompatibleObjectVersion,
                          _conductor_backport, ctxt, primitive,
                          {'XenapiLiveMigrateData': '1.4'})

    def test_no_conductor_fails_with_the_version_error(self):
        primitive = _extension_primitive(self)
        _objects, ctxt = _nova()
        serializer = rpc.make_serializer(rpc.NoConductor())
        error = self.assertRaises(ovo_exc.IncompatibleObjectVersion,
                                  serializer.deserialize_entity, ctxt,
                                  primitive)
        self.assertIn('Version 1.5 of XenapiLiveMigrateData', str(error))

    def test_backport_drops_the_map(self):
        primitive = _extension_primitive(self)
        with fixture.ObjectRegistryFixture(register_extension=True):
            ctxt = _nova()[1]
            old = _conductor_backport(ctxt, primitive,
                                      {'XenapiLiveMigrateData': '1.4'})
        self.assertEqual('1.4', old['nova_object.version'])
        self.assertNotIn('volume_sr_uuid_map', old['nova_object.data'])

    def test_context_round_trip(self):
        _objects, ctxt = _nova()
        again = rpc.context_from_primitive(rpc.context_to_primitive(ctxt))
        self.assertTrue(again.is_admin)
        self.assertIsNone(rpc.context_from_primitive(None))
