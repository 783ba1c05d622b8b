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

"""Node processes and the bus between them.

Every nova node of the verification (a conductor or a compute) is its own
Python process, started with multiprocessing's ``spawn`` context, so it has
its own interpreter and its own object registry: a stock node never
imports the extension and knows ``XenapiLiveMigrateData`` 1.4 only.

The processes are started once per run (importing nova takes seconds) and
reused for every case. They exchange JSON text only, through the harness
process, which routes messages like a message broker would (the
:class:`Bus`). Calls are synchronous and re-entrant: while a node waits
for the answer to its call it serves the requests that reach it, so a
conductor waiting for a destination can answer that destination's
backport request, as a real conductor service would.

Messages::

    {"kind": "request", "id", "src", "dst", "method", "context", "args"}
    {"kind": "reply", "id", "src", "dst", "result" | "error"}
    {"kind": "hello", "node", "info" | "error"}     (once, at start-up)
"""

import contextlib
import json
import logging
import multiprocessing
from multiprocessing import connection as mp_connection
import os
import signal
import sys
import time

from nova_xenapi_sr_tools.upgrade import rpc

#: Bus address of the harness itself.
HARNESS = 'harness'

#: Seconds a node may take to import nova and report ready.
START_TIMEOUT = 180


class NodeError(Exception):
    """A node process failed to start, died, or did not answer in time."""


class Endpoint(object):
    """The node side of the bus: serves requests, makes calls.

    :param name: this node's bus address.
    :param channel: an :class:`rpc.Channel` to the harness.
    :param handler: object whose ``rpc_<method>(context, **args)`` methods
        serve requests.
    :param serializer: the ``NovaObjectSerializer`` this node deserializes
        with (see :mod:`rpc`); set later by the handler if None.
    """

    def __init__(self, name, channel, handler, serializer=None):
        self.name = name
        self.channel = channel
        self.handler = handler
        self.serializer = serializer

    def serve(self):
        """Serve requests until the harness asks this node to stop."""
        while True:
            try:
                message = self.channel.recv()
            except EOFError:
                return
            if message.get('kind') != rpc.REQUEST:
                continue
            if message['method'] == 'stop':
                self.channel.send(rpc.reply(message, result=None))
                return
            self._dispatch(message)

    def _stop_now(self, message):
        """``stop`` while this node waits for a reply: leave at once."""
        try:
            self.channel.send(rpc.reply(message, result=None))
        finally:
            _leave()

    def call(self, dst, method, context=None, raw=False, **kwargs):
        """Call ``method`` on node ``dst`` and return its result.

        Arguments are serialized with nova's serializer; the result is
        deserialized with this node's serializer (``raw=True``: returned as
        primitives). A failure in the other node is raised as
        :class:`rpc.RemoteError`.
        """
        message = rpc.request(self.name, dst, method,
                              rpc.serialize(context, kwargs),
                              rpc.context_to_primitive(context))
        self.channel.send(message)
        while True:
            incoming = self.channel.recv()
            if incoming.get('kind') == rpc.REQUEST:
                if incoming.get('method') == 'stop':
                    self._stop_now(incoming)
                self._dispatch(incoming)
                continue
            if (incoming.get('kind') != rpc.REPLY or
                    incoming.get('id') != message['id']):
                continue
            if 'error' in incoming:
                raise rpc.RemoteError.from_dict(incoming['error'])
            if raw:
                return incoming['result']
            return self.serializer.deserialize_entity(context,
                                                      incoming['result'])

    def _dispatch(self, message):
        context = None
        try:
            context = rpc.context_from_primitive(message.get('context'))
            args = self.serializer.deserialize_entity(
                context, message.get('args') or {})
            method = getattr(self.handler, 'rpc_' + message['method'], None)
            if method is None:
                raise AttributeError('node %s has no method %s' %
                                     (self.name, message['method']))
            result = method(context, **args)
            out = rpc.reply(message, result=rpc.serialize(context, result))
        except Exception as exc:
            out = rpc.reply(message, error=rpc.error_to_dict(exc, self.name))
        try:
            self.channel.send(out)
        except (TypeError, ValueError) as exc:
            # A result JSON cannot carry: the caller gets the error.
            self.channel.send(rpc.reply(
                message, error=rpc.error_to_dict(exc, self.name)))


def node_main(spec_text, connection):
    """Entry point of a node process (runs in the spawned interpreter).

    ``spec_text`` is JSON: ``{"name", "role": "conductor"|"compute",
    "flavour": "stock"|"extension", "sys_path": [...], "log_path",
    "extension_driver", "conductor"}``.
    """
    spec = json.loads(spec_text)
    for path in reversed(spec.get('sys_path') or []):
        if path not in sys.path:
            sys.path.insert(0, path)
    os.environ.setdefault('OS_NOVA_DISABLE_EVENTLET_PATCHING', '1')
    _redirect_output(spec.get('log_path'))
    channel = rpc.Channel(connection)
    try:
        # Imported here: flow imports nova, which a harness need not load.
        from nova_xenapi_sr_tools.upgrade import flow
        handler = flow.build_node(spec)
        endpoint = Endpoint(spec['name'], channel, handler)
        handler.attach(endpoint)
    except BaseException as exc:  # report, whatever went wrong
        channel.send({'kind': 'hello', 'node': spec['name'],
                      'error': rpc.error_to_dict(exc, spec['name'])})
        return
    channel.send({'kind': 'hello', 'node': spec['name'],
                  'info': handler.info()})
    endpoint.serve()
    _leave()


def _leave():
    """End this node process.

    Without the interpreter's clean-up (nova's libraries spend seconds in
    it); nothing but the log needs flushing.
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _redirect_output(log_path):
    """Send this process's stdout/stderr (warnings, nova's logs) to a file.

    A node must not write on the operator's terminal: the table and the
    JSON document are the command's output.
    """
    target = log_path or os.devnull
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


@contextlib.contextmanager
def _no_main_reimport():
    """Keep ``spawn`` from re-running the parent's main module in a node.

    ``spawn`` imports the parent's ``__main__`` (the console script, a test
    runner, a benchmark script) in every child. The console script imports
    the command line package, and a stock node must not import the
    extension through it; the node needs nothing from it.
    """
    main = sys.modules.get('__main__')
    saved = {}
    if main is not None:
        saved = dict((attr, main.__dict__[attr])
                     for attr in ('__file__', '__spec__')
                     if attr in main.__dict__)
        main.__dict__.pop('__file__', None)
        main.__spec__ = None
    try:
        yield
    finally:
        if main is not None:
            main.__dict__.pop('__spec__', None)
            main.__dict__.update(saved)


class NodeHandle(object):
    """The harness's view of one node process."""

    def __init__(self, name, spec, process, channel):
        self.name = name
        self.spec = spec
        self.process = process
        self.channel = channel
        self.info = None

    def log_tail(self, limit=4000):
        path = self.spec.get('log_path')
        if not path or not os.path.exists(path):
            return ''
        with open(path, 'rb') as log:
            log.seek(0, os.SEEK_END)
            size = log.tell()
            log.seek(max(0, size - limit))
            return log.read().decode('utf-8', 'replace')


class Bus(object):
    """Starts node processes and routes messages between them.

    Use as a context manager; :meth:`call` sends a request from the harness
    and routes every message until its reply arrives.
    """

    def __init__(self, call_timeout=300):
        self.nodes = {}
        self.call_timeout = call_timeout
        self._context = multiprocessing.get_context('spawn')

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def start(self, specs, timeout=START_TIMEOUT):
        """Start one process per spec (all at once) and wait until ready.

        :returns: ``{name: info}`` as each node reported it.
        :raises NodeError: a node failed to start; all are stopped.
        """
        with _no_main_reimport():
            for spec in specs:
                parent_end, child_end = self._context.Pipe()
                process = self._context.Process(
                    target=node_main, name='nova-node-%s' % spec['name'],
                    args=(json.dumps(spec), child_end), daemon=True)
                process.start()
                child_end.close()
                self.nodes[spec['name']] = NodeHandle(
                    spec['name'], spec, process, rpc.Channel(parent_end))
        deadline = time.monotonic() + timeout
        waiting = set(spec['name'] for spec in specs)
        try:
            while waiting:
                message, handle = self._next(deadline, waiting)
                if message.get('kind') != 'hello':
                    continue
                waiting.discard(handle.name)
                if 'error' in message:
                    error = message['error']
                    raise NodeError('node %s failed to start: %s: %s\n%s' % (
                        handle.name, error['type'], error['message'],
                        error.get('traceback', '')))
                handle.info = message['info']
        except Exception:
            self.close()
            raise
        return dict((name, self.nodes[name].info) for name in self.nodes)

    def call(self, dst, method, timeout=None, **kwargs):
        """Call ``method`` on node ``dst`` with JSON-able ``kwargs``.

        :returns: the decoded result (primitives).
        :raises rpc.RemoteError: the node raised.
        :raises NodeError: a node died or the call timed out.
        """
        message = rpc.request(HARNESS, dst, method, kwargs)
        self._route(message)
        deadline = time.monotonic() + (timeout or self.call_timeout)
        while True:
            incoming, _handle = self._next(deadline)
            if incoming.get('dst') == HARNESS:
                if (incoming.get('kind') == rpc.REPLY and
                        incoming.get('id') == message['id']):
                    if 'error' in incoming:
                        raise rpc.RemoteError.from_dict(incoming['error'])
                    return incoming.get('result')
                continue
            self._route(incoming)

    def _route(self, message):
        handle = self.nodes.get(message.get('dst'))
        if handle is not None:
            handle.channel.send(message)
            return
        if message.get('kind') == rpc.REQUEST:
            error = {'type': 'NodeError', 'origin': HARNESS,
                     'message': 'no node named %r' % message.get('dst')}
            self._route(rpc.reply(message, error=error))

    def _next(self, deadline, names=None):
        """Return the next ``(message, handle)`` from any (named) node."""
        handles = [self.nodes[name] for name in (names or self.nodes)]
        by_conn = dict((h.channel.connection, h) for h in handles)
        by_sentinel = dict((h.process.sentinel, h) for h in handles)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NodeError('no answer from the nodes within the time '
                                'limit (a node may be stuck on XAPI)')
            ready = mp_connection.wait(list(by_conn) + list(by_sentinel),
                                       timeout=remaining)
            for item in ready:
                if item in by_conn:
                    handle = by_conn[item]
                    try:
                        return handle.channel.recv(), handle
                    except EOFError:
                        pass
            for item in ready:
                if item in by_sentinel:
                    handle = by_sentinel[item]
                    handle.process.join(1)
                    raise NodeError('node %s died (exit code %s); its log '
                                    'ends with:\n%s' % (
                                        handle.name,
                                        handle.process.exitcode,
                                        handle.log_tail()))

    def close(self):
        """Stop every node (politely first) and reap the processes."""
        for handle in list(self.nodes.values()):
            if handle.process.is_alive():
                try:
                    handle.channel.send(rpc.request(HARNESS, handle.name,
                                                    'stop', {}))
                except (OSError, ValueError):
                    pass
        deadline = time.monotonic() + 5
        for handle in list(self.nodes.values()):
            handle.process.join(max(0.1, deadline - time.monotonic()))
            if handle.process.is_alive():
                handle.process.terminate()
                handle.process.join(2)
            if handle.process.is_alive():
                # Stuck where SIGTERM cannot end it (Process.kill is 3.7+).
                try:
                    os.kill(handle.process.pid, signal.SIGKILL)
                except OSError:
                    pass
                handle.process.join(2)
            handle.channel.close()
        self.nodes = {}
