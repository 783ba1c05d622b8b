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

"""Faults and latency injected per method (and arguments).

A rule matches a method name (exact, or an ``fnmatch`` pattern such as
``'SR.*'`` or ``'*'``) and optionally the call's arguments (session ref
excluded): ``match`` is either a callable ``f(args) -> bool`` or a sequence
compared with the leading arguments. A rule skips its first ``after``
matching calls, then fires ``times`` times (``times=None``: forever).

Kinds:

``failure``
    a normal XAPI failure reply with ``error`` as ErrorDescription.
``http500``
    an HTTP 500 response (the SDK raises ``xmlrpc.client.ProtocolError``).
``drop``
    the connection is closed without any response.
``malformed``
    a well-formed XML-RPC response whose struct has ``Status: Success`` but
    no ``Value`` (the SDK raises ``Fault(500, 'Missing Value ...')``).
``session_expiry``
    the calling session is destroyed before the call is served, so the
    call answers ``SESSION_INVALID [ref]`` (the SDK logs in again). With
    ``after=N`` the session expires after N matching calls.
``timeout``
    the call is served (its effects happen), then its reply is lost: the
    connection is closed without a response, as when the client gives up
    waiting (the caller cannot tell whether the call happened).

By call index: ``FaultRule('*', kind, after=N)`` fires at the pool's call
number N (0-based, counted from when the rule is added; logins count),
which is the index of that call in :meth:`Pool.calls` when the log was
cleared as the rule was added.
"""

import fnmatch
import threading

KINDS = ('failure', 'http500', 'drop', 'malformed', 'session_expiry',
         'timeout')


class FaultRule(object):
    def __init__(self, method, kind='failure', error=None, match=None,
                 times=1, after=0):
        if kind not in KINDS:
            raise ValueError('unknown fault kind %r (one of %s)' %
                             (kind, ', '.join(KINDS)))
        if kind == 'failure' and not error:
            raise ValueError('a failure fault needs error=[code, ...]')
        self.method = method
        self.kind = kind
        self.error = [str(e) for e in (error or [])]
        self.match = match
        self.times = times
        self.after = after
        self.fired = 0
        self.seen = 0

    def matches(self, method, args):
        if not (method == self.method or
                fnmatch.fnmatchcase(method, self.method)):
            return False
        if self.match is None:
            return True
        if callable(self.match):
            return bool(self.match(list(args)))
        wanted = list(self.match)
        return list(args[:len(wanted)]) == wanted

    @property
    def exhausted(self):
        return self.times is not None and self.fired >= self.times


class Injector(object):
    """Thread-safe fault and latency rules of one pool."""

    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []
        self._latency = {}

    def add_fault(self, rule):
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self):
        with self._lock:
            self._rules = []
            self._latency = {}

    def pick(self, method, args):
        """Return the rule that fires for this call, or None."""
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or not rule.matches(method, args):
                    continue
                rule.seen += 1
                if rule.seen <= rule.after:
                    continue
                rule.fired += 1
                return rule
        return None

    def set_latency(self, method, seconds):
        with self._lock:
            if seconds:
                self._latency[method] = float(seconds)
            else:
                self._latency.pop(method, None)

    def latency(self, method):
        with self._lock:
            if method in self._latency:
                return self._latency[method]
            for pattern, seconds in self._latency.items():
                if fnmatch.fnmatchcase(method, pattern):
                    return seconds
        return 0.0
