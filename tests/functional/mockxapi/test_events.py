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

"""``event.from`` from the beginning, and large replies on the wire,
through the PyPI SDK and raw HTTP."""

import http.client
import threading
import time
from urllib.parse import urlparse
import xmlrpc.client

import fixtures
import XenAPI

from nova_xenapi_sr_tools.mockxapi import api
from nova_xenapi_sr_tools.mockxapi import events
from nova_xenapi_sr_tools.mockxapi import reply
from tests.functional.mockxapi import base

START = '00000000000000000000,00000000000000000000'


class EventFromTest(base.MockXapiTestCase):

    def event_from(self, classes, token='', timeout=0.0, xenapi=None):
        return getattr((xenapi or self.a).event, 'from')(classes, token,
                                                         timeout)

    def test_from_the_beginning_every_record(self):
        classes = ['host', 'VM', 'VBD', 'SR', 'PBD']
        result = self.event_from(classes)
        self.assertEqual({'events', 'valid_ref_counts', 'token'},
                         set(result))
        got = {cls.lower(): {} for cls in classes}
        for event in result['events']:
            self.assertEqual(('add', '0.0'), (event['operation'],
                                              event['timestamp']))
            got[event['class']][event['ref']] = event['snapshot']
        for cls in classes:
            self.assertEqual(getattr(self.a, cls).get_all_records(),
                             got[cls.lower()], cls)
        count = len(result['events'])
        self.assertEqual([str(i) for i in range(1, count + 1)],
                         [event['id'] for event in result['events']])
        self.assertEqual('%020d,%020d' % (count, 0), result['token'])
        # datamodel table order, then ascending refs
        order = [event['class'] for event in result['events']]
        self.assertEqual(['vm', 'host', 'sr', 'vbd', 'pbd'],
                         sorted(set(order), key=order.index))
        vms = [event['ref'] for event in result['events']
               if event['class'] == 'vm']
        self.assertEqual(sorted(vms), vms)

    def test_class_names_are_case_insensitive(self):
        refs = sorted(self.a.VM.get_all())
        for name in ('vm', 'Vm', 'VM'):
            result = self.event_from([name])
            self.assertEqual(refs, [e['ref'] for e in result['events']])
            self.assertEqual({'vm'}, {e['class'] for e in result['events']})

    def test_star_is_every_class_with_events(self):
        result = self.event_from(['*'])
        classes = {e['class'] for e in result['events']}
        self.assertTrue({'pool', 'host', 'vm', 'sr', 'vdi', 'pbd', 'sm',
                         'network', 'pif'} <= classes, classes)
        # xapi's datamodel: sessions and secrets make no events
        self.assertEqual(set(), classes & {'session', 'secret'})
        self.assertEqual(classes, {c.lower() for c in events.EVENT_CLASSES
                                   if result['valid_ref_counts'][
                                       c.lower()]})

    def test_one_object(self):
        [vm] = self.a.VM.get_by_name_label('instance-00000001')
        result = self.event_from(['VM/%s' % vm, 'pool'])
        self.assertEqual([('pool', self.a.pool.get_all()[0]), ('vm', vm)],
                         [(e['class'], e['ref']) for e in result['events']])

    def test_valid_ref_counts_are_int32_for_every_table(self):
        counts = self.event_from(['VM'])['valid_ref_counts']
        self.assertEqual(len(self.a.VM.get_all()), counts['vm'])
        self.assertIs(int, type(counts['vm']))
        self.assertGreaterEqual(counts['session'], 1)   # this one
        self.assertIn('secret', counts)
        url = urlparse(self.fx.urls['pool-a'])
        session = self.fx.session('pool-a')._session
        conn = http.client.HTTPConnection(url.hostname, url.port or 80,
                                          timeout=10)
        conn.request('POST', '/', body=xmlrpc.client.dumps(
            (session, ['VM'], '', 0.0), 'event.from'))
        data = conn.getresponse().read()
        conn.close()
        self.assertIn(b'<member><name>vm</name><value><i4>%d</i4></value>'
                      % counts['vm'], data)

    def test_unknown_class_waits_for_the_timeout(self):
        started = time.monotonic()
        result = self.event_from(['nosuchclass'], timeout=0.3)
        self.assertGreaterEqual(time.monotonic() - started, 0.3)
        self.assertEqual(([], START), (result['events'], result['token']))

    def test_a_new_object_ends_the_wait(self):
        self.assertEqual([], self.a.task.get_all())
        creator = self.fx.session('pool-a').xenapi

        def create():
            time.sleep(0.2)
            creator.task.create('label', 'description')

        thread = threading.Thread(target=create)
        thread.start()
        self.addCleanup(thread.join)
        started = time.monotonic()
        result = self.event_from(['task'], timeout=30.0)
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual([('task', 'label')],
                         [(e['class'], e['snapshot']['name_label'])
                          for e in result['events']])

    def test_timeout_types(self):
        # float_of_rpc: a double, an int or a string of a float
        for timeout in (0, '0.0', 0.0):
            self.event_from(['pool'], timeout=timeout)
        self.assertFailure(['FIELD_TYPE_ERROR', 'timeout'],
                           getattr(self.a.event, 'from'), ['pool'], '',
                           'soon')
        self.assertFailure(['FIELD_TYPE_ERROR', 'classes'],
                           getattr(self.a.event, 'from'), 'pool', '', 0.0)
        self.assertFailure(['MESSAGE_PARAMETER_COUNT_MISMATCH',
                            'event.from', '3', '2'],
                           getattr(self.a.event, 'from'), ['pool'], '')

    def test_tokens(self):
        for token in ('0,0', START, '-0,0x0'):
            self.assertTrue(self.event_from(['pool'], token)['events'])
        for token in ('x', '1,2,3', ',', 'deadbeef'):
            self.assertFailure(['EVENT_FROM_TOKEN_PARSE_FAILURE', token],
                               self.event_from, ['pool'], token)
        token = self.event_from(['VM'])['token']
        exc = self.assertRaises(XenAPI.Failure, self.event_from, ['VM'],
                                token)
        self.assertEqual('NOT_IMPLEMENTED', exc.details[0])
        self.assertIn('from the beginning ("") only', exc.details[1])

    def test_logged_and_read_only(self):
        self.fx.pool('pool-a').clear_calls()
        self.event_from(['VM', 'SR'], timeout=0.0)
        self.assertEqual([('event.from', (['VM', 'SR'], '', 0.0))],
                         self.fx.calls('pool-a'))
        self.assertTrue(api.read_only('event.from'))

    def test_latency_applies(self):
        self.srv.set_latency('pool-a', 'event.from', 0.3)
        started = time.monotonic()
        self.event_from(['pool'])
        self.assertGreaterEqual(time.monotonic() - started, 0.3)


class LargeReplyTest(base.MockXapiTestCase):
    """A reply of several pieces goes out chunked, a small one in one."""

    def connect(self):
        url = urlparse(self.fx.urls['pool-a'])
        conn = http.client.HTTPConnection(url.hostname, url.port or 80,
                                          timeout=10)
        self.addCleanup(conn.close)
        return conn

    def post(self, conn, method, *params):
        session = self.fx.session('pool-a')._session
        conn.request('POST', '/', body=xmlrpc.client.dumps(
            (session,) + params, method))
        response = conn.getresponse()
        return response, response.read()

    def test_small_reply_has_a_length(self):
        response, data = self.post(self.connect(), 'pool.get_all')
        self.assertEqual(str(len(data)), response.getheader(
            'Content-Length'))
        self.assertIsNone(response.getheader('Transfer-Encoding'))

    def test_large_reply_is_chunked_and_whole(self):
        self.useFixture(fixtures.MockPatchObject(reply, 'PIECE_WRITES', 8))
        conn = self.connect()
        response, data = self.post(conn, 'event.from', ['*'], '', 0.0)
        self.assertEqual('chunked', response.getheader('Transfer-Encoding'))
        self.assertIsNone(response.getheader('Content-Length'))
        [value], _ = xmlrpc.client.loads(data)
        self.assertEqual('Success', value['Status'])
        self.assertEqual(self.a.VM.get_all_records(), {
            e['ref']: e['snapshot'] for e in value['Value']['events']
            if e['class'] == 'vm'})
        # keep-alive: the connection serves the next call
        response, data = self.post(conn, 'pool.get_all')
        self.assertEqual(self.a.pool.get_all(),
                         xmlrpc.client.loads(data)[0][0]['Value'])
