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

"""Fault and latency injection, through the PyPI SDK."""

import time
import xmlrpc.client

import XenAPI

from nova_xenapi_sr_tools.mockxapi import faults
from tests.functional.mockxapi import base


class FaultTest(base.MockXapiTestCase):

    def _count(self, method, pool='pool-a'):
        return [m for m, _ in self.srv.pool(pool).calls()].count(method)

    def test_failure_matching_arguments(self):
        error = ['SR_BACKEND_FAILURE_47', '', 'The SR is not available', '']
        self.srv.inject_fault('pool-a', 'SR.get_by_uuid', error=error,
                              match=['x'])
        self.assertFailure(['UUID_INVALID', 'SR', 'y'],
                           self.a.SR.get_by_uuid, 'y')
        self.assertFailure(error, self.a.SR.get_by_uuid, 'x')
        # times=1: the next call is served normally
        self.assertFailure(['UUID_INVALID', 'SR', 'x'],
                           self.a.SR.get_by_uuid, 'x')

    def test_failure_with_pattern_callable_and_forever(self):
        rule = self.srv.inject_fault(
            'pool-a', 'SR.*', error=['NOPE'], times=None,
            match=lambda args: args and args[0] == 'x')
        for _ in range(3):
            self.assertFailure(['NOPE'], self.a.SR.get_by_uuid, 'x')
        self.assertEqual(3, rule.fired)
        self.assertEqual(2, len(self.a.SR.get_all()))  # no args: no match
        self.srv.clear_faults('pool-a')
        self.assertFailure(['UUID_INVALID', 'SR', 'x'],
                           self.a.SR.get_by_uuid, 'x')

    def test_failure_after_n_calls(self):
        self.srv.inject_fault('pool-a', 'pool.get_all', error=['LATE'],
                              after=2)
        self.a.pool.get_all()
        self.a.pool.get_all()
        self.assertFailure(['LATE'], self.a.pool.get_all)
        self.a.pool.get_all()

    def test_faults_are_per_pool(self):
        self.srv.inject_fault('pool-a', 'pool.get_all', error=['A'])
        self.assertEqual(1, len(self.b.pool.get_all()))
        self.assertFailure(['A'], self.a.pool.get_all)

    def test_http500(self):
        self.srv.inject_fault('pool-a', 'host.get_all', kind='http500')
        exc = self.assertRaises(xmlrpc.client.ProtocolError,
                                self.a.host.get_all)
        self.assertEqual(500, exc.errcode)
        self.assertEqual(1, len(self.a.host.get_all()))

    def test_drop(self):
        # xmlrpc.client retries once on a dropped connection, so one drop
        # is absorbed (and served twice) ...
        self.srv.inject_fault('pool-a', 'host.get_all', kind='drop')
        self.assertEqual(1, len(self.a.host.get_all()))
        self.assertEqual(2, self._count('host.get_all'))
        # ... and two in a row reach the caller.
        self.srv.inject_fault('pool-a', 'host.get_all', kind='drop',
                              times=2)
        self.assertRaises(OSError, self.a.host.get_all)
        self.assertEqual(1, len(self.a.host.get_all()))

    def test_timeout_serves_the_call_and_loses_the_reply(self):
        before = len(self.a.network.get_all())
        # the SDK sends again once when the reply is lost: two lost
        # replies reach the caller, and both calls were served
        self.srv.inject_fault('pool-a', 'network.create', kind='timeout',
                              times=2)
        self.assertRaises(OSError, self.a.network.create,
                          {'name_label': 'lost', 'other_config': {}})
        self.assertEqual(before + 2, len(self.a.network.get_all()))
        self.assertEqual(2, self._count('network.create'))

    def test_malformed_envelope(self):
        self.srv.inject_fault('pool-a', 'host.get_all', kind='malformed')
        exc = self.assertRaises(xmlrpc.client.Fault, self.a.host.get_all)
        self.assertEqual(500, exc.faultCode)
        self.assertIn('Missing Value', exc.faultString)

    def test_session_expiry_after_n_calls_and_sdk_relogin(self):
        session = self.fx.session('pool-a')
        before = session._session
        self.srv.pool('pool-a').clear_calls()
        self.srv.inject_fault('pool-a', '*', kind='session_expiry', after=2)
        for _ in range(4):
            self.assertEqual(1, len(session.xenapi.host.get_all()))
        self.assertNotEqual(before, session._session)
        methods = [m for m, _ in self.srv.pool('pool-a').calls()]
        self.assertEqual(['host.get_all', 'host.get_all', 'host.get_all',
                          'session.login_with_password', 'host.get_all',
                          'host.get_all'], methods)
        raw = xmlrpc.client.ServerProxy(self.fx.urls['pool-a'])
        self.assertEqual(['SESSION_INVALID', before],
                         raw.host.get_all(before)['ErrorDescription'])

    def test_login_failure(self):
        self.srv.inject_fault('pool-b', 'session.login_with_password',
                              error=['HOST_IS_SLAVE', '192.0.2.1'])
        s = XenAPI.Session(self.fx.urls['pool-b'])
        exc = self.assertRaises(XenAPI.Failure, s.login_with_password,
                                'root', 'mock')
        self.assertEqual(['HOST_IS_SLAVE', '192.0.2.1'], exc.details)

    def test_bad_rules(self):
        self.assertRaises(ValueError, faults.FaultRule, 'x', kind='nope')
        self.assertRaises(ValueError, faults.FaultRule, 'x', kind='failure')


class LatencyTest(base.MockXapiTestCase):

    def _timed(self, func, *args):
        start = time.monotonic()
        func(*args)
        return time.monotonic() - start

    def test_latency_applies_to_named_method_only(self):
        latency = 0.5
        host = self.a.host.get_all()[0]
        self.srv.set_latency('pool-a', 'host.get_*', latency)
        self.assertGreaterEqual(self._timed(self.a.host.get_all), latency)
        self.assertGreaterEqual(self._timed(self.a.host.get_record, host),
                                latency)
        # another method, and the same method on another pool, are not
        # delayed
        self.assertLess(self._timed(self.a.pool.get_all), latency)
        self.assertLess(self._timed(self.b.host.get_all), latency)
        self.srv.set_latency('pool-a', 'host.get_*', 0)
        self.assertLess(self._timed(self.a.host.get_all), latency)

    def test_async_calls_use_the_method_latency(self):
        self.srv.set_latency('pool-a', 'network.create', 2)
        task = self.a.Async.network.create({'name_label': 'slow',
                                            'other_config': {}})
        # well below the latency, the task is still pending and nothing
        # has been created yet
        time.sleep(0.5)
        self.assertEqual('pending', self.a.task.get_status(task))
        self.assertEqual([], self.a.network.get_by_name_label('slow'))
        # xapi_task.ml cancel only marks the task; network.create has no
        # cancellation point, so it finishes as if never cancelled
        self.a.task.cancel(task)
        self.assertEqual('pending', self.a.task.get_status(task))
        self.assertEqual(['cancel'], list(
            self.a.task.get_current_operations(task).values()))
        for _ in range(100):
            if self.a.task.get_status(task) != 'pending':
                break
            time.sleep(0.1)
        self.assertEqual('success', self.a.task.get_status(task))
        self.assertEqual(1, len(self.a.network.get_by_name_label('slow')))
