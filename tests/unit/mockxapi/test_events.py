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

"""``event.from``'s tokens, subscriptions and classes, without a server."""

from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import events
from nova_xenapi_sr_tools.mockxapi import model
from tests import base


class TokenTest(base.TestCase):

    def test_int64_as_ocaml_reads_it(self):
        for text, value in (('0', 0), ('-0', 0), ('+12', 12), ('007', 7),
                            ('1_000', 1000), ('0x1F', 31), ('0XF_f', 255),
                            ('0o17', 15), ('0b101', 5), ('0u42', 42),
                            ('-0x10', -16),
                            ('9223372036854775807', 2 ** 63 - 1),
                            ('-9223372036854775808', -2 ** 63),
                            ('0xffffffffffffffff', -1)):
            self.assertEqual(value, events._int64(text), text)

    def test_int64_failures(self):
        for text in ('', '-', '_1', '0x', '1a', ' 1', '1 ', '1.0', '0x_f',
                     '9223372036854775808', '0x10000000000000000', '0b2',
                     '0o8', '--1', 'x'):
            self.assertRaises(ValueError, events._int64, text)

    def test_parse_token(self):
        self.assertEqual((0, 0), events.parse_token(''))
        self.assertEqual((6, 2), events.parse_token(
            events.token_string(6, 2)))
        self.assertEqual('00000000000000000006,00000000000000000002',
                         events.token_string(6, 2))
        for token in ('x', '1', '1,2,3', ',', '1,', ',1', ' ', '0,0 '):
            exc = self.assertRaises(errors.XapiError, events.parse_token,
                                    token)
            self.assertEqual(['EVENT_FROM_TOKEN_PARSE_FAILURE', token],
                             exc.description)


class SubscriptionTest(base.TestCase):

    def test_forms(self):
        self.assertEqual(('all',), events.parse_subscription('*'))
        self.assertEqual(('class', 'vm'), events.parse_subscription('VM'))
        self.assertEqual(('object', 'vm', 'OpaqueRef:a/b'),
                         events.parse_subscription('Vm/OpaqueRef:a/b'))
        self.assertEqual(('class', 'nosuch'),
                         events.parse_subscription('NoSuch'))

    def test_matches(self):
        subs = [events.parse_subscription(s) for s in ('host', 'VM/r1')]
        self.assertTrue(events._table_matches(subs, 'HOST'))
        self.assertTrue(events._table_matches(subs, 'vm'))
        self.assertFalse(events._table_matches(subs, 'SR'))
        self.assertTrue(events._object_matches(subs, 'VM', 'r1'))
        self.assertFalse(events._object_matches(subs, 'VM', 'r2'))
        self.assertTrue(events._object_matches(subs, 'host', 'any'))
        self.assertTrue(events._object_matches([('all',)], 'SR', 'x'))

    def test_event_classes_are_the_mocks_classes(self):
        # every mock class but the two without events in xapi's datamodel
        self.assertEqual(set(model.SCHEMA) - {'session', 'secret'},
                         set(events.EVENT_CLASSES))
        self.assertEqual(len(events.EVENT_CLASSES),
                         len(set(events.EVENT_CLASSES)))


class EventsTest(base.TestCase):

    def test_add_events_in_table_then_ref_order(self):
        db = model.Database()
        srs = sorted(db.create('SR') for _ in range(3))
        host = db.create('host')
        vdi = db.create('VDI', SR=srs[0])
        result = events._events(db, [events.parse_subscription(s)
                                     for s in ('SR', 'host', 'VDI')])
        # datamodel order: host before SR before VDI
        self.assertEqual([('host', host)] + [('sr', r) for r in srs] +
                         [('vdi', vdi)],
                         [(e['class'], e['ref']) for e in result])
        self.assertEqual([str(i) for i in range(1, 6)],
                         [e['id'] for e in result])
        self.assertEqual({'add'}, {e['operation'] for e in result})
        self.assertEqual({'0.0'}, {e['timestamp'] for e in result})
        self.assertEqual(db.export('SR', srs[0]), result[1]['snapshot'])
        self.assertEqual([vdi], result[1]['snapshot']['VDIs'])

    def test_valid_ref_counts_cover_every_table(self):
        db = model.Database()
        db.create('VM')
        db.create('session')
        counts = events._valid_ref_counts(db)
        self.assertEqual({c.lower() for c in model.SCHEMA}, set(counts))
        self.assertEqual((1, 1, 0), (counts['vm'], counts['session'],
                                     counts['gpu_group']))
