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

"""How nodes talk: JSON text carrying objects as nova RPC carries them.

Between two node processes only JSON text travels
(``oslo_serialization.jsonutils``). Objects inside a message are
``oslo.versionedobjects`` primitives, produced and consumed exactly the way
nova's RPC layer does it:

* the sender runs ``NovaObjectSerializer().serialize_entity``, which
  serializes every object at its own ``VERSION`` (an object hydrated from an
  older primitive keeps that older version);
* the receiver runs ``NovaObjectSerializer().deserialize_entity``; when its
  registry cannot read a version it calls
  ``serializer.conductor.object_backport_versions(context, objprim,
  manifest)``. On a compute that is a :class:`ConductorProxy`, which sends
  the request to the conductor process; in the conductor process it is
  :class:`NoConductor`, which fails, because a conductor has nobody to ask;
* the conductor answers a backport request the way
  ``nova.conductor.manager.ConductorManager.object_backport_versions`` does:
  hydrate with its own registry, then ``obj_to_primitive(target_version=...,
  version_manifest=...)``
  (``flow.ConductorNode.rpc_object_backport_versions``).

This module imports nova lazily: it is loaded by stock nodes and must not
pull in any other part of nova_xenapi_sr.
"""

import itertools
import traceback

from oslo_serialization import jsonutils

#: Message kinds on the wire.
REQUEST = 'request'
REPLY = 'reply'


class RemoteError(Exception):
    """An exception raised in another node, as the caller sees it.

    Like oslo.messaging's deserialized remote exceptions it keeps the
    original class name and message. It also keeps the node it was raised
    in (``origin``) and the chain of exceptions that led to it
    (``chain``: ``[{'type', 'message'}, ...]``, outermost first), so that a
    verdict can recognise, for example, the XAPI error behind nova's
    ``MigrationError('Migrate Send failed')``.
    """

    def __init__(self, exc_type, message, origin, chain=None,
                 remote_traceback=''):
        self.exc_type = exc_type
        self.message = message
        self.origin = origin
        self.chain = list(chain or [{'type': exc_type, 'message': message}])
        self.remote_traceback = remote_traceback
        super(RemoteError, self).__init__(
            '%s (on %s): %s' % (exc_type, origin, message))

    def to_dict(self):
        return {'type': self.exc_type, 'message': self.message,
                'origin': self.origin, 'chain': self.chain,
                'traceback': self.remote_traceback}

    @classmethod
    def from_dict(cls, data):
        return cls(data['type'], data['message'], data['origin'],
                   data.get('chain'), data.get('traceback', ''))


def exception_chain(exc):
    """Return ``[{'type', 'message'}, ...]`` for ``exc`` and its causes.

    Follows ``__cause__`` and ``__context__`` (what ``raise ... from`` and
    ``excutils.save_and_reraise_exception`` leave behind), outermost first.
    A :class:`RemoteError` contributes its own remote chain.
    """
    chain = []
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, RemoteError):
            chain.extend(exc.chain)
        else:
            chain.append({'type': type(exc).__name__,
                          'message': _message(exc)})
        exc = exc.__cause__ or exc.__context__
    return chain


def _message(exc):
    try:
        text = str(exc)
    except Exception:  # pragma: no cover - a broken __str__
        text = repr(exc)
    if not text and getattr(exc, 'details', None):
        text = repr(exc.details)
    return text


def error_to_dict(exc, origin):
    """Describe ``exc`` (raised in node ``origin``) for the wire."""
    if isinstance(exc, RemoteError):
        # Passing a remote failure on: it keeps the node it came from.
        data = exc.to_dict()
        data['chain'] = exception_chain(exc)
        return data
    return {'type': type(exc).__name__, 'message': _message(exc),
            'origin': origin, 'chain': exception_chain(exc),
            'traceback': ''.join(traceback.format_exception(
                type(exc), exc, exc.__traceback__))}


def encode(message):
    """Return the JSON text of a message (a dict of primitives)."""
    return jsonutils.dumps(message)


def decode(text):
    """Return the message encoded in ``text``."""
    return jsonutils.loads(text)


class Channel(object):
    """One end of a pipe between processes that carries only JSON text."""

    def __init__(self, connection):
        self.connection = connection

    def send(self, message):
        self.connection.send_bytes(encode(message).encode('utf-8'))

    def recv(self):
        return decode(self.connection.recv_bytes().decode('utf-8'))

    def poll(self, timeout=0):
        return self.connection.poll(timeout)

    def fileno(self):
        return self.connection.fileno()

    def close(self):
        self.connection.close()


_ids = itertools.count(1)


def request(src, dst, method, args, context=None):
    """Build a request message."""
    return {'kind': REQUEST, 'id': '%s:%d' % (src, next(_ids)), 'src': src,
            'dst': dst, 'method': method, 'context': context,
            'args': args}


def reply(req, result=None, error=None):
    """Build the reply to ``req`` (a result or an error dict)."""
    message = {'kind': REPLY, 'id': req['id'], 'src': req['dst'],
               'dst': req['src']}
    if error is not None:
        message['error'] = error
    else:
        message['result'] = result
    return message


# --- nova's object serializer semantics -----------------------------------

class NoConductor(object):
    """The conductor of the conductor process: there is nobody to ask.

    nova's serializer in a conductor that cannot read an object version
    has no newer service to backport it; the operation fails with the
    version error, as it does in a real deployment whose conductors are
    older than its computes.
    """

    def object_backport_versions(self, context, objinst, object_versions):
        from oslo_versionedobjects import exception as ovo_exc
        name = objinst.get('nova_object.name')
        supported = object_versions.get(name, '?')
        raise ovo_exc.IncompatibleObjectVersion(
            objname=name, objver=objinst.get('nova_object.version'),
            supported=supported)


class ConductorProxy(object):
    """``serializer.conductor`` of a compute: asks the conductor process.

    :param call: ``call(method, **kwargs)`` that sends a request to the
        conductor node and returns its (JSON-decoded) result.
    """

    def __init__(self, call):
        self._call = call

    def object_backport_versions(self, context, objinst, object_versions):
        primitive = self._call('object_backport_versions', context=context,
                               objinst=objinst,
                               object_versions=object_versions)
        # nova's RPC client deserializes the reply with its own serializer;
        # the conductor answered at a version this node listed as readable.
        return make_serializer(NoConductor()).deserialize_entity(
            context, primitive)


def make_serializer(conductor):
    """Return a ``NovaObjectSerializer`` whose conductor is ``conductor``."""
    from nova.objects import base as nova_base
    serializer = nova_base.NovaObjectSerializer()
    serializer._conductor = conductor
    return serializer


def serialize(context, entity):
    """Turn ``entity`` into primitives, as nova's RPC sender does."""
    from nova.objects import base as nova_base
    return nova_base.NovaObjectSerializer().serialize_entity(context, entity)


def context_to_primitive(context):
    """Return a nova ``RequestContext`` as a dict (as nova's RPC does)."""
    return context.to_dict() if context is not None else None


def context_from_primitive(data):
    """Return the ``RequestContext`` of ``data`` (None for None)."""
    if data is None:
        return None
    from nova import context as nova_context
    return nova_context.RequestContext.from_dict(data)
