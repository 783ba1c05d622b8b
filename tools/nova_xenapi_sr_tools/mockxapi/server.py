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

"""The HTTP side: one threaded XML-RPC endpoint per pool.

Each pool listens on its own address. By default that is a random loopback
address ``127.a.b.c`` (``a`` >= 100, so never ``127.0.0.1`` or the
``127.0.1.1`` of /etc/hosts) on port 80, because nova's os-xenapi session
resolves the URL's whole netloc with ``socket.gethostbyname`` and so cannot
take a port. Binding is the arbiter between parallel test workers and
processes: an address in use is skipped and another drawn. Port 80 needs
root (or CAP_NET_BIND_SERVICE); ``listen`` may give other addresses and
ports for clients that accept a port, such as the PyPI ``XenAPI`` SDK.

Requests are accepted at any path (``/`` and ``/RPC2`` included), keep-alive
(HTTP/1.1), one thread per connection. Replies are always XML-RPC responses
carrying ``{"Status": ...}`` structs, except for injected transport faults,
written by :mod:`.reply` in xapi's form; one larger than a few hundred KiB
goes out chunked as it is written.
"""

import errno
from http import server as http_server
import random
import socket
import socketserver
import threading
import xmlrpc.client

from oslo_log import log as logging

from nova_xenapi_sr_tools.mockxapi import reply

LOG = logging.getLogger(__name__)

#: Attempts at finding a free loopback address before giving up.
BIND_ATTEMPTS = 64


class _Handler(http_server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    #: Idle keep-alive connections are closed after this many seconds.
    timeout = 300
    server_version = 'mock-xapi'

    def setup(self):
        http_server.BaseHTTPRequestHandler.setup(self)
        # Replies go out in one write; no Nagle/delayed-ACK stalls.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self):
        try:
            http_server.BaseHTTPRequestHandler.finish(self)
        finally:
            self.server.track(self.connection, False)

    def log_message(self, fmt, *args):
        LOG.debug('%s: ' + fmt, self.server.pool.name, *args)

    def _send(self, status, body=b'', content_type='text/xml'):
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        # end_headers() without its flush, so headers and body leave in a
        # single write.
        self._headers_buffer.append(b'\r\n')
        self._headers_buffer.append(body)
        self.flush_headers()

    def do_GET(self):
        self._send(200, b'mock-xapi: POST XML-RPC requests here\n',
                   'text/plain')

    def do_POST(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length)
        try:
            params, method = xmlrpc.client.loads(body)
        except Exception:
            self._send(400, b'not an XML-RPC request', 'text/plain')
            return
        if not method:
            self._send(400, b'no method name', 'text/plain')
            return
        outcome = self.server.pool.handle(method, params)
        if outcome.kind == 'drop':
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if outcome.kind == 'http500':
            self._send(500, b'Internal Server Error', 'text/plain')
            return
        body = _Body(self)
        try:
            reply.stream(outcome.payload(), body)
        except reply.Unsupported:
            if body.chunked:
                LOG.exception('%s: cannot write the reply of %s',
                              self.server.pool.name, method)
                self.close_connection = True
                return
            # what the standard marshaller makes of it (it refuses it too)
            data = xmlrpc.client.dumps((outcome.envelope(),),
                                       methodresponse=True,
                                       allow_none=False)
            self._send(200, data.encode('utf-8'))


class _Body(object):
    """``send(data, last)`` for :func:`reply.stream`.

    A reply of one piece goes out with its length in one write; a longer
    one goes out chunked as it is written (to an HTTP/1.1 request), so the
    client reads the start of a large reply while the rest is written.
    """

    def __init__(self, handler):
        self.handler = handler
        self.chunked = False
        self._held = []

    def __call__(self, data, last):
        handler = self.handler
        if not self.chunked:
            if last or handler.request_version != 'HTTP/1.1':
                self._held.append(data)
                if last:
                    handler._send(200, b''.join(self._held))
                return
            self.chunked = True
            handler.send_response(200)
            handler.send_header('Content-Type', 'text/xml')
            handler.send_header('Transfer-Encoding', 'chunked')
            handler.end_headers()
        if data:
            handler.wfile.write(b'%x\r\n%s\r\n' % (len(data), data))
        if last:
            handler.wfile.write(b'0\r\n\r\n')


class PoolServer(socketserver.ThreadingMixIn, http_server.HTTPServer):
    """The endpoint of one pool."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, pool):
        self.pool = pool
        self._connections = set()
        self._connections_lock = threading.Lock()
        http_server.HTTPServer.__init__(self, address, _Handler)

    def track(self, connection, alive):
        with self._connections_lock:
            if alive:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_all(self):
        """Stop serving and cut every open (keep-alive) connection."""
        self.shutdown()
        self.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def random_loopback():
    """A random loopback address well away from 127.0.0.x/127.0.1.x."""
    return '127.%d.%d.%d' % (random.randint(100, 254),
                             random.randint(0, 255),
                             random.randint(1, 254))


def bind(pool, host=None, port=80):
    """Bind a :class:`PoolServer` for ``pool``; draw addresses as needed.

    :returns: ``(server, url)``; the URL has no port when it is 80.
    """
    attempts = 1 if host else BIND_ATTEMPTS
    last = None
    for _ in range(attempts):
        address = host or random_loopback()
        try:
            srv = PoolServer((address, port), pool)
        except OSError as exc:
            last = exc
            if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL) and \
                    not host:
                continue
            raise
        bound_host, bound_port = srv.server_address[:2]
        if bound_port == 80:
            url = 'http://%s' % bound_host
        else:
            url = 'http://%s:%d' % (bound_host, bound_port)
        return srv, url
    raise last


def serve(srv):
    thread = threading.Thread(target=srv.serve_forever,
                              kwargs={'poll_interval': 0.2},
                              name='mock-xapi-%s' % srv.pool.name)
    thread.daemon = True
    thread.start()
    return thread
