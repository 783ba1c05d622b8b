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

"""The one-pass reply writer: the standard marshaller's data, xapi's form.
"""

import datetime
import xmlrpc.client

from nova_xenapi_sr import audit
from nova_xenapi_sr_tools.mockxapi import pool as pool_mod
from nova_xenapi_sr_tools.mockxapi import reply
from tests import base

#: A reply as handlers return it (before ``wire``), of every type.
MIXED = {
    'Status': 'Success',
    'Value': {
        'OpaqueRef:1': {
            'uuid': 'b3c0', 'name_label': 'instance-<&>"\'\u00e9\u65e5',
            'empty': '', 'none': None, 'memory': 1 << 40, 'domid': -7,
            'zero': 0, 'is_a_template': False, 'is_control_domain': True,
            'other_config': {'nova_uuid': 'x', '': '', 'a&b': '<tag>'},
            'tags': ['a', 'b <c>'], 'VBDs': [], 'platform': {},
            'pair': ('t', 1, None), 'ratio': 0.1, 'huge': 1e300,
            'nested': [[], [{}], [{'k': ['v', {'deep': [True, 3]}]}]],
            'count': pool_mod.Int32(5), 'min': pool_mod.Int32(-2 ** 31),
            7: 'an int key', None: 'a None key',
            'when': xmlrpc.client.DateTime('20261202T07:00:00'),
            'stamp': datetime.datetime(2026, 12, 2, 7, 0, 1),
            'blob': xmlrpc.client.Binary(b'\x00\x01xapi'),
            'raw': b'\xffbytes', 'array': bytearray(b'ba'),
            'space': ' \t\n lines \n',
        },
    },
}


def standard(value):
    """What the mock sent before: the standard marshaller after wire."""
    return xmlrpc.client.dumps((pool_mod.wire(value),),
                               methodresponse=True).encode('utf-8')


class ResponseTest(base.TestCase):

    def test_same_data_as_the_standard_marshaller(self):
        data = reply.response(MIXED)
        self.assertEqual(xmlrpc.client.loads(standard(MIXED)),
                         xmlrpc.client.loads(data))
        self.assertNotEqual(standard(MIXED), data)   # another form

    def test_wire_rules_apply(self):
        [value], _ = xmlrpc.client.loads(reply.response(MIXED))
        rec = value['Value']['OpaqueRef:1']
        self.assertEqual(('1099511627776', '-7', '0', ''),
                         (rec['memory'], rec['domid'], rec['zero'],
                          rec['none']))
        self.assertEqual((5, ['t', '1', '']), (rec['count'], rec['pair']))
        self.assertEqual(('an int key', 'a None key'),
                         (rec['7'], rec['None']))

    def test_xapi_form(self):
        # ocaml-rpc xmlrpc.ml: bare strings, <i4>, no white space
        self.assertEqual(
            b'<?xml version="1.0"?><methodResponse><params><param>'
            b'<value><struct><member><name>a</name><value>x &amp; &lt;y'
            b'&gt; &quot;z&quot;</value></member><member><name>n</name>'
            b'<value>3</value></member><member><name>c</name><value><i4>'
            b'4</i4></value></member><member><name>b</name><value>'
            b'<array><data><value><boolean>1</boolean></value><value>'
            b'</value></data></array></value></member></struct></value>'
            b'</param></params></methodResponse>',
            reply.response({'a': 'x & <y> "z"', 'n': 3,
                            'c': pool_mod.Int32(4), 'b': [True, None]}))

    def test_unicode_is_utf8(self):
        data = reply.response('\u00e9\u65e5\U0001f600')
        self.assertIn('\u00e9\u65e5\U0001f600'.encode('utf-8'), data)
        self.assertEqual((('\u00e9\u65e5\U0001f600',), None),
                         xmlrpc.client.loads(data))

    def test_control_characters_are_dropped(self):
        # xmlrpc.ml encode: XML cannot carry them (the standard
        # marshaller sends them and the reply does not parse)
        data = reply.response({'k\x01': 'a\x00b\x08c\x0b\x0c\x1fd\te'})
        self.assertEqual((({'k': 'abcd\te'},), None),
                         xmlrpc.client.loads(data))

    def test_audit_decoder_reads_it(self):
        data = reply.response(MIXED)
        expected, _ = xmlrpc.client.loads(data)
        for block in (len(data), 5):
            decoder = audit._Decoder()
            for start in range(0, len(data), block):
                decoder.feed(data[start:start + block])
            self.assertEqual(expected, decoder.close())

    def test_unsupported_as_the_standard_marshaller(self):
        class Text(str):
            pass

        for value in (Text('x'), object(), {'k': [Text('x')]}):
            self.assertRaises(reply.Unsupported, reply.response, value)
            self.assertRaises(TypeError, standard, value)

    def test_int32_range(self):
        self.assertRaises(OverflowError, reply.response,
                          pool_mod.Int32(2 ** 31))
        self.assertRaises(OverflowError, standard, pool_mod.Int32(2 ** 31))


class StreamTest(base.TestCase):

    def pieces(self, value, piece_writes=None):
        sent = []
        reply.stream(value, lambda data, last: sent.append((data, last)),
                     piece_writes)
        return sent

    def test_small_reply_is_one_piece(self):
        [(data, last)] = self.pieces(MIXED)
        self.assertTrue(last)
        self.assertEqual(reply.response(MIXED), data)

    def test_pieces_add_up_to_the_reply(self):
        value = {'Status': 'Success',
                 'Value': {'OpaqueRef:%d' % i: {'name': 'vm-\u00e9%d' % i,
                                                'tags': ['a'] * 3}
                           for i in range(200)}}
        sent = self.pieces(value, piece_writes=16)
        self.assertGreater(len(sent), 10)
        self.assertEqual([False] * (len(sent) - 1) + [True],
                         [last for _, last in sent])
        data = b''.join(piece for piece, _ in sent)
        self.assertEqual(reply.response(value), data)
        self.assertEqual(xmlrpc.client.loads(standard(value)),
                         xmlrpc.client.loads(data))
        for piece, _ in sent:
            piece.decode('utf-8')    # no character is split

    def test_default_piece_size(self):
        self.useFixture(self.patch_piece_writes(4))
        value = [['x'] * 3 for _ in range(10)]
        self.assertGreater(len(self.pieces(value)), 1)

    def patch_piece_writes(self, count):
        import fixtures
        return fixtures.MockPatchObject(reply, 'PIECE_WRITES', count)
