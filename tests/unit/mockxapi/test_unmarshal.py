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

"""How xapi's dispatcher reads arguments and records, without a server."""

import xmlrpc.client

from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import unmarshal
from tests import base


class UnmarshalTest(base.TestCase):

    def failure(self, kind, value):
        exc = self.assertRaises(errors.XapiError, unmarshal.check, kind,
                                value)
        self.assertEqual(errors.INTERNAL_ERROR, exc.code)
        return exc.params[0]

    def test_rpclib_texts(self):
        """rpc.ml to_string and the *_of_rpc failures, as Printexc shows."""
        self.assertEqual('Failure("Expected string, got \'I(5)\'")',
                         self.failure('string', 5))
        self.assertEqual('Failure("Expected bool, got \'S(true)\'")',
                         self.failure('bool', 'true'))
        self.assertEqual('Failure("Expected int64, got \'F(1.5)\'")',
                         self.failure('int', 1.5))
        self.assertEqual('Failure("Int64.of_string")',
                         self.failure('int', '1.5'))
        self.assertEqual(
            'Failure("Expecting Rpc.Dict, but found \'[S(a);B(false)]\'")',
            self.failure('smap', ['a', False]))
        self.assertEqual('Failure("Expected string, got \'I(1)\'")',
                         self.failure('smap', {'k': 1}))
        self.assertEqual('Failure("Expecting Rpc.Enum, but found \'S(a)\'")',
                         self.failure('set', 'a'))
        self.assertEqual('Failure("Unknown tag/contents")',
                         self.failure(('enum', ('RO', 'RW')), 'XX'))
        self.assertEqual(
            'Failure("Expected string, got \'{a:S(b);n:N}\'")',
            self.failure('string', {'a': 'b', 'n': None}))

    def test_printexc_escapes_like_string_escaped(self):
        """Printf %S (String.escaped): quotes, controls, bytes >= 127."""
        text = self.failure('string', xmlrpc.client.Binary(
            b'\x80\x03"\\\n\x7f'))
        self.assertEqual(
            'Failure("Expected string, got \'B64(\\128\\003\\"\\\\\\n'
            '\\127)\'")', text)
        # non-ASCII text travels as UTF-8 bytes
        self.assertEqual('Failure("Expected bool, got \'S(\\195\\169)\'")',
                         self.failure('bool', '\u00e9'))

    def test_accepted_values(self):
        """rpc.ml int64_of_rpc takes an Int or a String; enums ignore case."""
        self.assertEqual('5', unmarshal.check('int', 5))
        self.assertEqual('0x1f', unmarshal.check('int', '0x1f'))
        self.assertEqual(31, unmarshal.ocaml_int('0x1f'))
        self.assertEqual(100, unmarshal.ocaml_int('0100'))
        self.assertEqual(-1500, unmarshal.ocaml_int('-1_500'))
        self.assertEqual('rw', unmarshal.check(('enum', ('RO', 'RW')), 'rw'))
        self.assertEqual(['a'], unmarshal.check('set', ['a']))

    def test_constructor_records(self):
        """gen_server.ml from_ctor_record, server_helpers.ml my_assoc."""
        exc = self.assertRaises(errors.XapiError, unmarshal.record, 'PBD',
                                [])
        self.assertEqual(['INTERNAL_ERROR', 'Failure("bad __structure")'],
                         exc.description)
        # the first missing field in datamodel.ml order
        exc = self.assertRaises(errors.XapiError, unmarshal.record, 'VIF',
                                {'device': '0'})
        self.assertEqual(
            ['INTERNAL_ERROR',
             'Server_helpers.Dispatcher_FieldNotFound("network")'],
            exc.description)
        # a field of the wrong type before a later missing one
        exc = self.assertRaises(errors.XapiError, unmarshal.record, 'VIF',
                                {'device': 0})
        self.assertEqual(
            ['INTERNAL_ERROR', 'Failure("Expected string, got \'I(0)\'")'],
            exc.description)
        # defaults may be left out; other keys are kept for the handler
        record = unmarshal.record('secret', {'value': 'v', 'extra': 1})
        self.assertEqual({'value': 'v', 'extra': 1}, record)
