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

"""The wire protocol: envelope, logins, sessions, arity, errors, tasks,
where-expressions and concurrent clients, through the PyPI SDK."""

import threading
import time
import xmlrpc.client

import XenAPI

from tests.functional.mockxapi import base


class EnvelopeTest(base.MockXapiTestCase):

    def _raw(self, pool, path=''):
        return xmlrpc.client.ServerProxy(self.fx.urls[pool] + path)

    def test_success_envelope_and_int64_as_strings(self):
        raw = self._raw('pool-a', '/')
        login = raw.session.login_with_password('root', 'mock')
        self.assertEqual('Success', login['Status'])
        session = login['Value']
        self.assertTrue(session.startswith('OpaqueRef:'))
        host = raw.session.get_this_host(session, session)['Value']
        reply = raw.host.get_API_version_major(session, host)
        self.assertEqual({'Status': 'Success', 'Value': '2'}, reply)
        vm = raw.VM.get_all_records_where(session, 'field "domid" = "0"')
        record = list(vm['Value'].values())[0]
        self.assertEqual('0', record['domid'])
        self.assertIs(True, record['is_control_domain'])

    def test_failure_envelope_is_not_a_fault(self):
        raw = self._raw('pool-a', '/RPC2')
        session = raw.session.login_with_password('root', 'mock')['Value']
        reply = raw.SR.get_by_uuid(session, 'nope')
        self.assertEqual({'Status': 'Failure',
                          'ErrorDescription': ['UUID_INVALID', 'SR',
                                               'nope']}, reply)

    def test_void_result_is_empty_string(self):
        raw = self._raw('pool-a')
        session = raw.session.login_with_password('root', 'mock')['Value']
        task = raw.task.create(session, 'l', 'd')['Value']
        self.assertEqual({'Status': 'Success', 'Value': ''},
                         raw.task.destroy(session, task))

    def test_garbage_request_is_http_400(self):
        import http.client
        from urllib.parse import urlparse
        url = urlparse(self.fx.urls['pool-a'])
        conn = http.client.HTTPConnection(url.hostname, url.port or 80,
                                          timeout=10)
        conn.request('POST', '/', body=b'not xml')
        self.assertEqual(400, conn.getresponse().status)
        conn.close()


class LoginTest(base.MockXapiTestCase):

    def test_login_forms(self):
        url = self.fx.urls['pool-a']
        for args in (('root', 'mock'), ('root', 'mock', '2.1'),
                     ('root', 'mock', '2.1', 'nova')):
            s = XenAPI.Session(url)
            s.login_with_password(*args)
            self.assertEqual(1, len(s.xenapi.pool.get_all()))
        s = XenAPI.Session(url)
        s.slave_local_login_with_password('root', 'mock')
        self.assertEqual(1, len(s.xenapi.host.get_all()))
        self.assertIn(('session.login_with_password',
                       ('root', '***', '2.1', 'nova')),
                      self.srv.pool('pool-a').calls())

    def test_bad_credentials(self):
        s = XenAPI.Session(self.fx.urls['pool-a'])
        exc = self.assertRaises(XenAPI.Failure, s.login_with_password,
                                'root', 'wrong')
        self.assertEqual(['SESSION_AUTHENTICATION_FAILED', 'root',
                          'Authentication failure'], exc.details)

    def test_login_arity(self):
        raw = xmlrpc.client.ServerProxy(self.fx.urls['pool-a'])
        reply = raw.session.login_with_password('root')
        self.assertEqual(['MESSAGE_PARAMETER_COUNT_MISMATCH',
                          'session.login_with_password', '2', '1'],
                         reply['ErrorDescription'])
        reply = raw.session.slave_local_login_with_password('root', 'mock',
                                                            'x')
        self.assertEqual(['MESSAGE_PARAMETER_COUNT_MISMATCH',
                          'session.slave_local_login_with_password', '2',
                          '3'], reply['ErrorDescription'])

    def test_local_sessions_are_not_database_sessions(self):
        """xapi_local_session.ml; xapi_session.ml logout, local_logout.

        slave_local_login_with_password makes a session outside the
        database: it is valid for calls, but has no record; local_logout
        ends only local sessions, logout only database ones.
        """
        raw = xmlrpc.client.ServerProxy(self.fx.urls['pool-a'])
        local = raw.session.slave_local_login_with_password(
            'root', 'mock')['Value']
        normal = raw.session.login_with_password('root', 'mock')['Value']
        self.assertEqual('Success', raw.pool.get_all(local)['Status'])
        self.assertEqual(['HANDLE_INVALID', 'session', local],
                         raw.session.get_this_host(local, local)[
                             'ErrorDescription'])
        raw.session.local_logout(normal)
        self.assertEqual('Success', raw.pool.get_all(normal)['Status'])
        raw.session.logout(local)
        self.assertEqual('Success', raw.pool.get_all(local)['Status'])
        raw.session.local_logout(local)
        self.assertEqual(['SESSION_INVALID', local],
                         raw.pool.get_all(local)['ErrorDescription'])

    def test_session_invalid_after_logout_and_sdk_relogin(self):
        raw = xmlrpc.client.ServerProxy(self.fx.urls['pool-a'])
        session = raw.session.login_with_password('root', 'mock')['Value']
        raw.session.logout(session)
        self.assertEqual(['SESSION_INVALID', session],
                         raw.pool.get_all(session)['ErrorDescription'])
        # The SDK logs in again on SESSION_INVALID and retries.
        s = XenAPI.Session(self.fx.urls['pool-a'])
        s.login_with_password('root', 'mock', '2.1', 'test')
        old = s._session
        self.srv.pool('pool-a').expire_session(old)
        self.assertEqual(1, len(s.xenapi.pool.get_all()))
        self.assertNotEqual(old, s._session)

    def test_sessions_are_per_pool(self):
        raw_b = xmlrpc.client.ServerProxy(self.fx.urls['pool-b'])
        s = XenAPI.Session(self.fx.urls['pool-a'])
        s.login_with_password('root', 'mock')
        self.assertEqual(['SESSION_INVALID', s._session],
                         raw_b.pool.get_all(s._session)['ErrorDescription'])


class MessageRulesTest(base.MockXapiTestCase):

    def test_unknown_method(self):
        self.assertFailure(['MESSAGE_METHOD_UNKNOWN', 'VM.frobnicate'],
                           self.a.VM.frobnicate, 'x')
        # class names are case-sensitive
        self.assertFailure(['MESSAGE_METHOD_UNKNOWN', 'vm.get_all'],
                           self.a.vm.get_all)
        self.assertFailure(['MESSAGE_METHOD_UNKNOWN', 'Nothing.get_all'],
                           getattr(self.a, 'Nothing').get_all)
        # read-only fields have no setter
        self.assertFailure(['MESSAGE_METHOD_UNKNOWN', 'VM.set_domid'],
                           self.a.VM.set_domid, 'x', '1')

    def test_parameter_count_mismatch(self):
        self.assertFailure(['MESSAGE_PARAMETER_COUNT_MISMATCH',
                            'SR.get_record', '1', '2'],
                           self.a.SR.get_record, 'x', 'y')
        self.assertFailure(['MESSAGE_PARAMETER_COUNT_MISMATCH',
                            'SR.introduce', '6', '5'],
                           self.a.SR.introduce, 'u', 'l', 'd', 'iscsi', '')
        self.assertFailure(['MESSAGE_PARAMETER_COUNT_MISMATCH',
                            'VM.migrate_send', '6', '5'],
                           self.a.VM.migrate_send, 'a', {}, True, {}, {})
        self.assertFailure(['MESSAGE_PARAMETER_COUNT_MISMATCH',
                            'VDI.introduce', '9', '8'],
                           self.a.VDI.introduce, *['x'] * 8)

    def test_defaulted_parameters_take_any_count_beyond(self):
        """gen_server.ml: a message with defaults matches a :: b :: rest.

        So too many arguments are no mismatch (the ones past the
        datamodel's are never read), and a mismatch names the count of
        mandatory parameters (count_mandatory_message_parameters).
        """
        sr = self.a.SR.introduce('u-many', 'l', '', 'ext', '', False, {},
                                 'extra', 'more')
        self.assertEqual('u-many', self.a.SR.get_uuid(sr))
        self.assertFailure(['MESSAGE_PARAMETER_COUNT_MISMATCH',
                            'SR.get_record', '1', '2'],
                           self.a.SR.get_record, sr, 'extra')
        # the login's version and originator have defaults too
        raw = xmlrpc.client.ServerProxy(self.fx.urls['pool-a'])
        login = raw.session.login_with_password('root', 'mock', '2.1',
                                                'test', 'extra')
        self.assertEqual('Success', login['Status'])

    def test_no_arguments_at_all(self):
        """gen_server.ml: received is the count less the session: -1."""
        raw = xmlrpc.client.ServerProxy(self.fx.urls['pool-a'])
        self.assertEqual(['MESSAGE_PARAMETER_COUNT_MISMATCH', 'pool.get_all',
                          '0', '-1'],
                         raw.pool.get_all()['ErrorDescription'])
        self.assertEqual(['MESSAGE_PARAMETER_COUNT_MISMATCH', 'SR.scan',
                          '1', '-1'],
                         getattr(raw, 'Async.SR.scan')()['ErrorDescription'])

    def test_wrong_types_fail_before_the_session_check(self):
        """gen_server.ml: arguments are unmarshalled before the session.

        gen_server.ml unmarshals every argument (rpclib rpc.ml
        string_of_rpc and friends) before Session_check.check; the
        failure is no API error, so exnHelper.ml answers INTERNAL_ERROR
        with Printexc's text of the Failure.
        """
        raw = xmlrpc.client.ServerProxy(self.fx.urls['pool-a'])
        self.assertEqual(
            ['INTERNAL_ERROR', 'Failure("Expected string, got \'I(5)\'")'],
            raw.VM.get_record('bad-session', 5)['ErrorDescription'])
        self.assertEqual(
            ['INTERNAL_ERROR', 'Failure("Expected bool, got \'S(no)\'")'],
            raw.SR.introduce('bad-session', 'u', 'l', '', 'ext', '',
                             'no')['ErrorDescription'])
        self.assertEqual(
            ['INTERNAL_ERROR',
             'Failure("Expecting Rpc.Dict, but found \'[S(a)]\'")'],
            raw.SR.introduce('bad-session', 'u', 'l', '', 'ext', '', False,
                             ['a'])['ErrorDescription'])
        self.assertEqual(['SESSION_INVALID', 'bad-session'],
                         raw.VM.get_record('bad-session', 'x')[
                             'ErrorDescription'])

    def test_constructor_records(self):
        """gen_server.ml from_ctor_record, server_helpers.ml my_assoc.

        A record that is not a struct fails "bad __structure"; a
        constructor field without a default that is missing is
        Dispatcher_FieldNotFound, in datamodel.ml field order; both come
        before the session check.
        """
        raw = xmlrpc.client.ServerProxy(self.fx.urls['pool-a'])
        self.assertEqual(['INTERNAL_ERROR', 'Failure("bad __structure")'],
                         raw.network.create('bad-session', 'n')[
                             'ErrorDescription'])
        self.assertEqual(
            ['INTERNAL_ERROR',
             'Server_helpers.Dispatcher_FieldNotFound("other_config")'],
            raw.network.create('bad-session', {'name_label': 'n'})[
                'ErrorDescription'])
        self.assertFailure(
            ['INTERNAL_ERROR',
             'Server_helpers.Dispatcher_FieldNotFound("bootable")'],
            self.a.VBD.create, {'VM': 'x', 'VDI': 'y', 'userdevice': '1'})
        self.assertFailure(
            ['INTERNAL_ERROR',
             'Server_helpers.Dispatcher_FieldNotFound("device_config")'],
            self.a.PBD.create, {'host': 'x', 'SR': 'y'})
        self.assertFailure(
            ['INTERNAL_ERROR',
             'Server_helpers.Dispatcher_FieldNotFound("value")'],
            self.a.secret.create, {'other_config': {}})
        # only the constructor's fields are read: a read-only one given
        # in the record is ignored
        net = self.a.network.create({'name_label': 'n', 'other_config': {},
                                     'VIFs': ['OpaqueRef:x'],
                                     'uuid': 'mine'})
        self.assertEqual([], self.a.network.get_VIFs(net))
        self.assertNotEqual('mine', self.a.network.get_uuid(net))

    def test_handle_and_uuid_invalid(self):
        self.assertFailure(['HANDLE_INVALID', 'VM', 'OpaqueRef:nope'],
                           self.a.VM.get_record, 'OpaqueRef:nope')
        self.assertFailure(['HANDLE_INVALID', 'SR', 'OpaqueRef:NULL'],
                           self.a.SR.get_type, 'OpaqueRef:NULL')
        self.assertFailure(['UUID_INVALID', 'VDI', 'nope'],
                           self.a.VDI.get_by_uuid, 'nope')

    def test_refs_unique_across_pools(self):
        refs_a = set(self.a.network.get_all()) | set(self.a.host.get_all())
        refs_b = set(self.b.network.get_all()) | set(self.b.host.get_all())
        self.assertEqual(set(), refs_a & refs_b)
        vm = self.a.VM.get_by_name_label('instance-00000001')[0]
        self.assertFailure(['HANDLE_INVALID', 'VM', vm],
                           self.b.VM.get_record, vm)

    def test_generic_getters_setters_and_maps(self):
        vm = self.a.VM.get_by_name_label('instance-00000001')[0]
        record = self.a.VM.get_record(vm)
        self.assertEqual(record['VBDs'], self.a.VM.get_VBDs(vm))
        self.assertEqual(record['uuid'], self.a.VM.get_uuid(vm))
        self.assertEqual(vm, self.a.VM.get_by_uuid(record['uuid']))
        self.a.VM.set_name_description(vm, 'hello')
        self.assertEqual('hello', self.a.VM.get_name_description(vm))
        self.a.VM.add_to_other_config(vm, 'k', 'v')
        # db_cache_impl.ml process_structured_field AddMapLegacy: a key
        # that is there, even with this value, is Duplicate_key
        for value in ('w', 'v'):
            self.assertFailure(['MAP_DUPLICATE_KEY', 'VM', 'other_config',
                                vm, 'k'], self.a.VM.add_to_other_config,
                               vm, 'k', value)
        # db_cache_types.ml add_to_map: Empty_key_in_map
        self.assertFailure(['INTERNAL_ERROR', 'Db_exn.Empty_key_in_map'],
                           self.a.VM.add_to_other_config, vm, '', 'v')
        self.assertEqual('v', self.a.VM.get_other_config(vm)['k'])
        self.a.VM.remove_from_other_config(vm, 'k')
        self.assertNotIn('k', self.a.VM.get_other_config(vm))
        # remove_from_map: a missing key is no error
        self.a.VM.remove_from_other_config(vm, 'k')
        # the setter's value is unmarshalled (rpc.ml string_of_rpc)
        self.assertFailure(['INTERNAL_ERROR',
                            'Failure("Expected string, got \'{a:S(b)}\'")'],
                           self.a.VM.set_name_label, vm, {'a': 'b'})
        # an int64 field takes an XML-RPC int or a decimal string
        self.a.VM.set_VCPUs_max(vm, 4)
        self.assertEqual('4', self.a.VM.get_VCPUs_max(vm))
        self.assertFailure(['INTERNAL_ERROR', 'Failure("Int64.of_string")'],
                           self.a.VM.set_VCPUs_max, vm, 'four')

    def test_host_as_nova_sees_it(self):
        host = self.a.host.get_all()[0]
        version = self.a.host.get_software_version(host)
        self.assertEqual('XCP', version['platform_name'])
        self.assertEqual('2.1.0', version['platform_version'])
        self.assertIn('iscsi_iqn', self.a.host.get_other_config(host))
        dom0 = self.a.VM.get_all_records_where('field "domid"="0"')
        self.assertEqual([host], [r['resident_on'] for r in dom0.values()])
        pifs = self.a.PIF.get_all_records_where(
            'field "management" = "true" and field "host" = "%s"' % host)
        self.assertEqual(1, len(pifs))
        self.assertTrue(list(pifs.values())[0]['IP'])
        pool = self.a.pool.get_all()[0]
        self.assertEqual('ext', self.a.SR.get_type(
            self.a.pool.get_default_SR(pool)))
        self.assertEqual(host, self.a.pool.get_master(pool))


class WhereTest(base.MockXapiTestCase):

    def test_grammar_through_sdk(self):
        names = lambda recs: sorted(r['name_label'] for r in recs.values())  # noqa
        where = self.a.VM.get_all_records_where
        self.assertEqual(['instance-00000001'], names(where(
            'field "is_control_domain" = "false"')))
        self.assertEqual(['Control domain on host: host-a',
                          'instance-00000001'], names(where(
                              'field "domid"="0" or not (field "domid" = '
                              '"0")')))
        # and/or share one precedence and associate to the left:
        # (true or true) and false == false; true or (true and false) would
        # be true.
        self.assertEqual([], names(where('true or true and false')))
        self.assertEqual(['Control domain on host: host-a',
                          'instance-00000001'], names(where(
                              'true or (true and false)')))
        self.assertEqual(['instance-00000001'], names(where(
            '"instance-00000001" = field "name__label"')))
        # not binds loosest: not (domid = 0 or true) matches nothing
        self.assertEqual([], names(where('not field "domid" = "0" or true')))

    def test_database_field_names(self):
        # namespaced fields go by their database names (name__label, as
        # nova's network_utils and vm_utils spell it); the API spelling is
        # an unknown field there
        where = self.a.VM.get_all_records_where
        self.assertEqual(1, len(where(
            'field "name__label" = "instance-00000001"')))
        self.assertFailure(['INTERNAL_ERROR', 'missing field', 'name_label',
                            ''], where,
                           'field "name_label" = "instance-00000001"')
        self.assertEqual(1, len(where(
            'field "VCPUs__max" = "1" and field "is_control_domain" = '
            '"false"')))
        exc = self.assertRaises(XenAPI.Failure, where,
                                'field "domid" <> "0"')
        self.assertEqual('INVALID_VALUE', exc.details[0])

    def test_syntax_error_is_invalid_value(self):
        exc = self.assertRaises(XenAPI.Failure,
                                self.a.VM.get_all_records_where,
                                'field "domid" = ')
        self.assertEqual('INVALID_VALUE', exc.details[0])
        self.assertEqual('field "domid" = ', exc.details[1])

    def test_unknown_field_is_internal_error(self):
        # as xapi's database reports it (Row.find)
        self.assertFailure(['INTERNAL_ERROR', 'missing field', 'bogus', ''],
                           self.a.SR.get_all_records_where,
                           'field "bogus" = "1"')
        # no row read, no error
        self.assertEqual({}, self.a.PGPU.get_all_records_where(
            'field "bogus" = "1"'))


class TaskTest(base.MockXapiTestCase):

    def _wait(self, task):
        for _ in range(200):
            status = self.a.task.get_status(task)
            if status != 'pending':
                return status
            time.sleep(0.05)
        self.fail('task %s still pending' % task)

    def test_async_success(self):
        task = self.a.Async.network.create({'name_label': 'async',
                                            'other_config': {}})
        self.assertTrue(task.startswith('OpaqueRef:'))
        self.assertEqual('success', self._wait(task))
        net = self.a.network.get_by_name_label('async')[0]
        self.assertEqual('<value>%s</value>' % net,
                         self.a.task.get_result(task))
        self.a.task.destroy(task)
        self.assertFailure(['HANDLE_INVALID', 'task', task],
                           self.a.task.get_status, task)

    def test_destroy_of_a_pending_task_only_marks_it(self):
        """xapi_task.ml destroy; db_gc_util.ml timeout_tasks.

        A pending task is marked (current_operations "task" -> destroy)
        and stays; the GC destroys it once it has completed.
        """
        created = self.a.task.create('mine', 'd')
        self.a.task.destroy(created)
        self.assertEqual({'task': 'destroy'},
                         self.a.task.get_current_operations(created))
        self.assertEqual('pending', self.a.task.get_status(created))
        self.srv.set_latency('pool-a', 'network.create', 1)
        task = self.a.Async.network.create({'name_label': 'slow',
                                            'other_config': {}})
        self.a.task.destroy(task)
        self.assertEqual('success', self._wait(task))
        self.assertEqual({'task': 'destroy'},
                         self.a.task.get_current_operations(task))
        removed = self.srv.run_gc('pool-a')['pool-a']['task']
        self.assertEqual([task], removed)
        self.assertEqual('pending', self.a.task.get_status(created))

    def test_async_failure(self):
        task = self.a.Async.SR.scan('OpaqueRef:nope')
        self.assertEqual('failure', self._wait(task))
        self.assertEqual(['HANDLE_INVALID', 'SR', 'OpaqueRef:nope'],
                         self.a.task.get_error_info(task))

    def test_async_checks_method_and_arity_first(self):
        self.assertFailure(['MESSAGE_METHOD_UNKNOWN', 'SR.nothing'],
                           self.a.Async.SR.nothing)
        self.assertFailure(['MESSAGE_PARAMETER_COUNT_MISMATCH',
                            'SR.scan', '1', '0'], self.a.Async.SR.scan)
        self.assertFailure(['MESSAGE_PARAMETER_COUNT_MISMATCH',
                            'SR.get_by_uuid', '1', '0'],
                           self.a.Async.SR.get_by_uuid)

    def test_accessors_have_no_async_mode(self):
        # xapi generates Async forms for messages only; field getters and
        # setters and the class-wide get_* answer (server_helpers
        # do_dispatch) with a "Fault" failure and make no task
        vm = self.a.VM.get_by_name_label('instance-00000001')[0]
        sr_uuid = self.a.SR.get_uuid(self.a.SR.get_all()[0])
        host = self.a.host.get_all()[0]
        calls = [('SR.get_by_uuid', sr_uuid), ('VM.get_record', vm),
                 ('VM.get_all',), ('VM.get_all_records',),
                 ('VM.get_all_records_where', 'true'),
                 ('VM.get_by_name_label', 'x'), ('VM.get_name_label', vm),
                 ('VM.get_VBDs', vm), ('VM.set_name_description', vm, 'd'),
                 ('VM.add_to_other_config', vm, 'k', 'v'),
                 ('VM.remove_from_other_config', vm, 'k'),
                 ('host.get_software_version', host),
                 ('VM.get_allowed_VIF_devices', vm)]
        tasks = self.a.task.get_all()
        for method, *args in calls:
            cls, name = method.split('.')
            call = getattr(getattr(self.a.Async, cls), name)
            self.assertFailure(['Fault', 'No async mode for this operation '
                                '(rpc: %s)' % method], call, *args)
        self.assertEqual(tasks, self.a.task.get_all())
        self.assertEqual('', self.a.VM.get_name_description(vm))
        self.assertNotIn('k', self.a.VM.get_other_config(vm))


class ConcurrencyTest(base.MockXapiTestCase):

    def test_concurrent_clients(self):
        url = self.fx.urls['pool-a']
        self.srv.pool('pool-a').clear_calls()
        errors = []
        per_thread = 50

        def client():
            try:
                s = XenAPI.Session(url)
                s.login_with_password('root', 'mock')
                for _ in range(per_thread):
                    host = s.xenapi.host.get_all()[0]
                    s.xenapi.host.get_record(host)
                    net = s.xenapi.network.create({'name_label': 'n',
                                                   'other_config': {}})
                    s.xenapi.network.destroy(net)
                s.xenapi.session.logout()
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual([], errors)
        calls = self.srv.pool('pool-a').calls()
        self.assertEqual(8 * per_thread,
                         [m for m, _ in calls].count('network.create'))
        self.assertEqual(1, len(self.a.network.get_all()))
