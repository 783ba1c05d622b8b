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

"""The retry policy and the instrumented session, with a scripted fake."""

import errno
import http.client
import socket

from nova_xenapi_sr.virt import forget
from nova_xenapi_sr.virt import xapi_retry
from tests import base
from tests.unit.virt import fakes

URL = 'http://192.0.2.1'


class Scripted(object):
    """``call_xenapi`` / ``call_plugin`` raising scripted errors first."""

    XenAPI = fakes.XenAPI
    url = URL

    def __init__(self, errors=(), result='ok'):
        self.errors = list(errors)
        self.result = result
        self.calls = []

    def _next(self, what):
        self.calls.append(what)
        if self.errors:
            raise self.errors.pop(0)
        return self.result

    def call_xenapi(self, method, *args):
        return self._next(method)

    def call_plugin(self, plugin, fn, args):
        args['host_uuid'] = 'h'       # os-xenapi mutates its argument
        return self._next('%s/%s' % (plugin, fn))


class PolicyTestCase(base.TestCase):

    def setUp(self):
        super(PolicyTestCase, self).setUp()
        self.slept = []
        self.policy = xapi_retry.Policy(attempts=3, interval=0.5,
                                        sleep=self.slept.append)

    def session(self, *errors):
        return xapi_retry.instrument(Scripted(errors), self.policy)

    def test_reads_and_idempotent_calls_only(self):
        for method in ('SR.get_PBDs', 'VM.get_all_records_where',
                       'VDI.get_record', 'SR.scan', 'PBD.plug', 'PBD.unplug',
                       'VDI.remove_from_sm_config'):
            self.assertTrue(xapi_retry.is_retryable(method), method)
        for method in ('SR.introduce', 'SR.forget', 'PBD.create',
                       'VDI.introduce', 'VM.migrate_send', 'VBD.create',
                       'VDI.add_to_sm_config', 'get_PBDs'):
            self.assertFalse(xapi_retry.is_retryable(method), method)

    def test_transient_read_failure_retried_with_backoff_and_logged(self):
        session = self.session(
            fakes.Failure(['INTERNAL_ERROR', 'x']),
            http.client.RemoteDisconnected('gone'))
        self.assertEqual('ok', session.call_xenapi('SR.get_PBDs', 'r'))
        self.assertEqual(3, len(session.calls))
        self.assertEqual([0.5, 1.0], self.slept)
        self.assertIn('XAPI call SR.get_PBDs to %s failed (XAPI error '
                      'INTERNAL_ERROR x), attempt 1 of 3' % URL,
                      self.logger.output)
        self.assertIn('connection dropped (RemoteDisconnected: gone)), '
                      'attempt 2 of 3', self.logger.output)

    def test_network_destroy_is_retried_and_gone_means_done(self):
        self.assertTrue(xapi_retry.is_retryable('network.destroy'))
        # the first attempt was served, its reply lost; xapi's second
        # destroy of that network answers HANDLE_INVALID
        session = self.session(
            http.client.RemoteDisconnected('gone'),
            fakes.Failure(['HANDLE_INVALID', 'OpaqueRef:net']))
        self.assertEqual('', session.call_xenapi('network.destroy',
                                                 'OpaqueRef:net'))
        self.assertEqual(['network.destroy'] * 2, session.calls)
        self.assertIn('XAPI call network.destroy to %s: attempt 2 answers '
                      'XAPI error HANDLE_INVALID OpaqueRef:net: the object '
                      'is gone' % URL, self.logger.output)

    def test_transient_network_destroy_failure_is_retried(self):
        session = self.session(fakes.Failure(['INTERNAL_ERROR', 'x']))
        self.assertEqual('ok', session.call_xenapi('network.destroy', 'n'))
        self.assertEqual(2, len(session.calls))

    def test_network_destroy_of_a_bad_handle_still_fails(self):
        # HANDLE_INVALID on the first attempt: the caller's ref is wrong
        session = self.session(fakes.Failure(['HANDLE_INVALID', 'n']))
        self.assertRaises(fakes.Failure, session.call_xenapi,
                          'network.destroy', 'n')
        self.assertEqual(1, len(session.calls))

    def test_network_in_use_is_not_retried(self):
        session = self.session(fakes.Failure(['NETWORK_CONTAINS_VIF', 'v']))
        self.assertRaises(fakes.Failure, session.call_xenapi,
                          'network.destroy', 'n')
        self.assertEqual(1, len(session.calls))

    def test_other_destroys_treat_handle_invalid_as_an_error(self):
        session = self.session(fakes.Failure(['INTERNAL_ERROR', 'x']),
                               fakes.Failure(['HANDLE_INVALID', 'v']))
        self.assertFalse(xapi_retry.is_retryable('VIF.destroy'))
        self.assertRaises(fakes.Failure, xapi_retry.Policy(
            attempts=3, sleep=self.slept.append).run,
            lambda: session.call_xenapi('VIF.destroy', 'v'), 'VIF.destroy',
            URL, retry=True)

    def test_config_errors_of_sm_are_not_retried(self):
        session = self.session(fakes.Failure(['SR_BACKEND_FAILURE_68', '',
                                              'iSCSI login failed']))
        self.assertRaises(fakes.Failure, session.call_xenapi, 'PBD.plug',
                          'OpaqueRef:pbd')
        self.assertEqual(1, len(session.calls))

    def test_definitive_answers_are_not_retried(self):
        session = self.session(fakes.Failure(['UUID_INVALID', 'SR', 'u']))
        error = self.assertRaises(fakes.Failure, session.call_xenapi,
                                  'SR.get_by_uuid', 'u')
        self.assertEqual(['UUID_INVALID', 'SR', 'u'], error.details)
        self.assertEqual(1, len(session.calls))

    def test_writes_are_not_retried_but_named(self):
        session = self.session(socket.timeout('timed out'))
        error = self.assertRaises(xapi_retry.XapiCallError,
                                  session.call_xenapi, 'SR.introduce', 'u')
        self.assertEqual(1, len(session.calls))
        self.assertEqual('XAPI call SR.introduce to %s failed: timed out '
                         '(timed out)' % URL, str(error))
        self.assertIsInstance(error, OSError)

    def test_persistent_transport_error_named_with_errno(self):
        reset = ConnectionResetError(errno.ECONNRESET, 'reset')
        session = self.session(reset, reset, reset)
        error = self.assertRaises(xapi_retry.XapiConnectionError,
                                  session.call_xenapi, 'VM.get_record', 'r')
        self.assertEqual(errno.ECONNRESET, error.errno)
        self.assertEqual(3, error.attempts)
        self.assertIn('after 3 attempts', str(error))
        self.assertIs(reset, error.error)

    def test_failures_of_writes_stay_xenapi_failures(self):
        session = self.session(fakes.Failure(['SR_BACKEND_FAILURE_47']))
        self.assertRaises(fakes.Failure, session.call_xenapi, 'PBD.create',
                          {})

    def test_plugin_reads_retried_then_named(self):
        failure = fakes.Failure(['XENAPI_PLUGIN_FAILURE', 'host_data', 'E'])
        session = self.session(http.client.RemoteDisconnected('x'), failure)
        args = {}
        error = self.assertRaises(xapi_retry.XapiCallError,
                                  session.call_plugin, 'xenhost.py',
                                  'host_data', args)
        self.assertEqual({}, args)
        self.assertEqual(2, len(session.calls))
        self.assertIn('host.call_plugin xenhost.py host_data to %s' % URL,
                      str(error))
        self.assertEqual('XENAPI_PLUGIN_FAILURE', error.code)

    def test_other_plugins_are_not_retried(self):
        session = self.session(fakes.Failure(['XENAPI_PLUGIN_FAILURE']))
        self.assertRaises(fakes.Failure, session.call_plugin, 'xenhost.py',
                          'network_config', {})
        self.assertEqual(1, len(session.calls))

    def test_instrument_is_idempotent(self):
        session = self.session(fakes.Failure(['INTERNAL_ERROR']),
                               fakes.Failure(['INTERNAL_ERROR']))
        one = xapi_retry.Policy(attempts=1)
        xapi_retry.instrument(session, one)
        self.assertRaises(fakes.Failure, session.call_xenapi, 'SR.get_VDIs')
        self.assertEqual(1, len(session.calls))


class ForgetTestCase(base.TestCase):
    """forget_sr: a served forget whose answer was lost counts as done."""

    def test_retried_forget_that_was_served(self):
        session = fakes.FakeSession()
        session.add('SR', 'OpaqueRef:sr', PBDs=[])
        real = session.call_xenapi
        drops = [http.client.RemoteDisconnected('lost')]

        def call(method, *args):
            if method == 'SR.forget' and not drops:
                raise fakes.Failure(['HANDLE_INVALID', 'SR', args[0]])
            result = real(method, *args)
            if method == 'SR.forget':
                raise drops.pop()     # served, the answer lost
            return result
        session.call_xenapi = call
        outcome = forget.forget_sr(session, xapi_retry.Policy(interval=0),
                                   'OpaqueRef:sr')
        self.assertEqual(forget.GONE, outcome.state)

    def test_known_pbds_replace_the_read(self):
        session = fakes.FakeSession()
        session.add('SR', 'OpaqueRef:sr', PBDs=['OpaqueRef:pbd'])
        outcome = forget.forget_sr(session, xapi_retry.Policy(interval=0),
                                   'OpaqueRef:sr', pbds=['OpaqueRef:pbd'])
        self.assertEqual(forget.GONE, outcome.state)
        self.assertEqual(['PBD.unplug', 'SR.forget'], session.methods())

    def test_a_pbd_added_since_the_query_is_read_and_unplugged(self):
        session = fakes.FakeSession()
        session.add('SR', 'OpaqueRef:sr', PBDs=['OpaqueRef:old',
                                                'OpaqueRef:new'])
        real = session.call_xenapi
        unplugged = set()

        def call(method, *args):
            if method == 'PBD.unplug':
                unplugged.add(args[0])
            if method == 'SR.forget' and unplugged != {'OpaqueRef:old',
                                                       'OpaqueRef:new'}:
                session.calls.append((method, args))
                raise fakes.Failure(['SR_HAS_PBD', args[0]])
            return real(method, *args)
        session.call_xenapi = call
        outcome = forget.forget_sr(session, xapi_retry.Policy(interval=0),
                                   'OpaqueRef:sr', pbds=['OpaqueRef:old'])
        self.assertEqual(forget.GONE, outcome.state)
        self.assertEqual(['PBD.unplug', 'SR.forget', 'SR.get_PBDs',
                          'PBD.unplug', 'PBD.unplug', 'SR.forget'],
                         session.methods())

    def test_in_use_is_told_from_known_pbds_too(self):
        session = fakes.FakeSession()
        session.add('SR', 'OpaqueRef:sr', PBDs=['OpaqueRef:pbd'])
        real = session.call_xenapi

        def call(method, *args):
            if method == 'PBD.unplug':
                session.calls.append((method, args))
                raise fakes.Failure(['VDI_IN_USE', 'OpaqueRef:vdi'])
            return real(method, *args)
        session.call_xenapi = call
        outcome = forget.forget_sr(session, xapi_retry.Policy(interval=0),
                                   'OpaqueRef:sr', pbds=['OpaqueRef:pbd'])
        self.assertEqual(forget.IN_USE, outcome.state)
        self.assertEqual(['PBD.unplug'], session.methods())
