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

"""A small in-memory stand-in for a XenAPI session, for unit tests only.

Functional tests use the real mock XAPI over XML-RPC; these unit tests need
only the few record queries the source and destination logic makes, and a
call log to count them.
"""

import re

_CLAUSE = re.compile(r'^field "([A-Za-z_]+)" = "([^"]*)"$')


class Failure(Exception):
    def __init__(self, details):
        super(Failure, self).__init__(details)
        self.details = details


class XenAPI(object):
    Failure = Failure


class FakeSession(object):
    """Records keyed by class, then ref, with a call log.

    Answers ``*.get_all_records_where`` for the ``or``-joined equality
    expressions our code builds, ``get_all_records``, ``get_record`` and
    field getters.
    """

    XenAPI = XenAPI

    def __init__(self, records=None, host_ref='OpaqueRef:host'):
        self.records = records or {}
        self.host_ref = host_ref
        self.calls = []

    def add(self, cls, ref, **fields):
        self.records.setdefault(cls, {})[ref] = fields
        return ref

    def _match(self, expression):
        clauses = []
        for part in expression.split(' or '):
            found = _CLAUSE.match(part.strip())
            if not found:
                raise AssertionError('unexpected expression %r' % expression)
            clauses.append(found.groups())
        return clauses

    def call_xenapi(self, method, *args):
        self.calls.append((method, args))
        cls, _, message = method.partition('.')
        table = self.records.get(cls, {})
        if message == 'get_all_records_where':
            clauses = self._match(args[0])
            # XAPI's database names name_label "name__label".
            return {ref: dict(rec) for ref, rec in table.items()
                    if any(rec.get(f.replace('__', '_')) == v
                           for f, v in clauses)}
        if message == 'get_all_records':
            return {ref: dict(rec) for ref, rec in table.items()}
        if message == 'get_record':
            if args[0] not in table:
                raise Failure(['HANDLE_INVALID', cls, args[0]])
            return dict(table[args[0]])
        if message == 'get_by_name_label':
            return [ref for ref, rec in table.items()
                    if rec.get('name_label') == args[0]]
        if message == 'get_by_uuid':
            for ref, rec in table.items():
                if rec.get('uuid') == args[0]:
                    return ref
            raise Failure(['UUID_INVALID', cls, args[0]])
        if message.startswith('get_'):
            field = message[len('get_'):]
            if args[0] not in table:
                raise Failure(['HANDLE_INVALID', cls, args[0]])
            return table[args[0]][field]
        if message == 'forget':
            del table[args[0]]
            return ''
        if message == 'unplug':
            return ''
        raise AssertionError('unexpected call %s%r' % (method, args))

    def methods(self):
        return [method for method, _ in self.calls]
