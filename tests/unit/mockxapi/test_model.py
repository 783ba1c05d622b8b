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

"""Records, refs, the method table and arity, without a server."""

from nova_xenapi_sr_tools.mockxapi import api
from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import model
from nova_xenapi_sr_tools.mockxapi import service  # noqa: F401 (registers)
from tests import base


class DatabaseTest(base.TestCase):

    def setUp(self):
        super(DatabaseTest, self).setUp()
        self.db = model.Database()

    def test_refs_are_opaque_and_unique(self):
        refs = {self.db.create('network') for _ in range(100)}
        self.assertEqual(100, len(refs))
        self.assertTrue(all(r.startswith('OpaqueRef:') for r in refs))
        self.assertNotIn(model.NULL_REF, refs)
        other = model.Database()
        self.assertEqual(set(), refs & {other.create('network')})

    def test_every_record_has_every_field(self):
        ref = self.db.create('VDI', name_label='x')
        rec = self.db.export('VDI', ref)
        self.assertEqual(model.fields_of('VDI'), set(rec))
        self.assertEqual('0', rec['virtual_size'])
        self.assertRaises(ValueError, self.db.create, 'VDI', bogus=1)

    def test_backrefs_are_computed(self):
        sr = self.db.create('SR')
        vdi1 = self.db.create('VDI', SR=sr)
        vdi2 = self.db.create('VDI', SR=sr)
        self.assertEqual([vdi1, vdi2], self.db.field('SR', sr, 'VDIs'))
        self.db.destroy('VDI', vdi1)
        self.assertEqual([vdi2], self.db.export('SR', sr)['VDIs'])

    def test_exports_are_copies(self):
        ref = self.db.create('VM', other_config={'a': 'b'})
        rec = self.db.export('VM', ref)
        rec['other_config']['a'] = 'changed'
        self.assertEqual('b', self.db.get('VM', ref)['other_config']['a'])

    def test_bulk_exports_are_deep_copies(self):
        ref = self.db.create('VM', other_config={'a': 'b'},
                             tags=['t'], platform={'x': {'nested': ['v']}})
        rec = self.db.export_all('VM')[ref]
        rec['other_config']['a'] = 'changed'
        rec['tags'].append('more')
        rec['platform']['x']['nested'].append('w')
        live = self.db.get('VM', ref)
        self.assertEqual(({'a': 'b'}, ['t'], {'x': {'nested': ['v']}}),
                         (live['other_config'], live['tags'],
                          live['platform']))

    def test_copy_value(self):
        import collections
        value = {'l': [{'d': 'e'}], 'o': collections.OrderedDict(k=[1]),
                 't': ('a', ['b']), 's': 'x', 'i': 1, 'n': None}
        copied = model.copy_value(value)
        self.assertEqual(value, copied)
        self.assertIsNot(value['l'][0], copied['l'][0])
        # other containers go through copy.deepcopy
        self.assertIsNot(value['o']['k'], copied['o']['k'])
        self.assertIsNot(value['t'][1], copied['t'][1])

    def test_lookup_errors(self):
        exc = self.assertRaises(errors.XapiError, self.db.get, 'VM', 'x')
        self.assertEqual(['HANDLE_INVALID', 'VM', 'x'], exc.description)
        exc = self.assertRaises(errors.XapiError, self.db.by_uuid, 'SR', 'u')
        self.assertEqual(['UUID_INVALID', 'SR', 'u'], exc.description)


class MethodTableTest(base.TestCase):

    def test_unknown(self):
        for name in ('VM.nope', 'vm.get_all', 'VM', 'VM.', 'VM.set_domid',
                     'VM.add_to_name_label', 'Nope.get_all'):
            exc = self.assertRaises(errors.XapiError, api.resolve, name)
            self.assertEqual([errors.MESSAGE_METHOD_UNKNOWN, name],
                             exc.description)

    def test_generic_and_specific(self):
        self.assertEqual(1, api.resolve('VM.get_record').min_args)
        self.assertEqual(2, api.resolve('VDI.remove_from_sm_config').max_args)
        msg = api.resolve('VM.migrate_send')
        self.assertEqual((6, 8), (msg.min_args, msg.max_args))
        self.assertIn('SR.introduce', api.registered())

    def test_read_only(self):
        for method in ('session.login_with_password', 'session.logout',
                       'VM.get_all_records', 'SR.get_all_records_where',
                       'session.get_this_host', 'event.from'):
            self.assertTrue(api.read_only(method), method)
        for method in ('VM.set_name_label', 'SR.forget', 'PBD.plug',
                       'event.inject', 'Nope.get_all', 'VM.migrate_send',
                       'host.call_plugin'):
            self.assertFalse(api.read_only(method), method)

    def test_arity_counts_exclude_session(self):
        """gen_server.ml: arity with and without defaults.

        gen_server.ml: defaults make a :: b :: default_args, so past the
        mandatory count anything goes (the mock drops what it does not
        model); a mismatch names the mandatory count.
        """
        msg = api.resolve('VDI.introduce')
        self.assertEqual(['x'] * 9, api.check_arity(msg, ['x'] * 9))
        self.assertEqual(['x'] * 11, api.check_arity(msg, ['x'] * 11))
        self.assertEqual(['x'] * 11, api.check_arity(msg, ['x'] * 14))
        exc = self.assertRaises(errors.XapiError, api.check_arity, msg,
                                ['x'] * 8)
        self.assertEqual(['MESSAGE_PARAMETER_COUNT_MISMATCH',
                          'VDI.introduce', '9', '8'], exc.description)
        exact = api.resolve('SR.scan')
        exc = self.assertRaises(errors.XapiError, api.check_arity, exact,
                                ['x'] * 2)
        self.assertEqual(['MESSAGE_PARAMETER_COUNT_MISMATCH', 'SR.scan',
                          '1', '2'], exc.description)
