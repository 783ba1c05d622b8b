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

"""XML-RPC responses written in one pass, in xapi's own form.

:func:`response` writes what ``xmlrpc.client.dumps((pool.wire(value),),
methodresponse=True)`` writes, to the value: ``xmlrpc.client.loads`` reads
the same data from both. It applies :func:`~.pool.wire` (no None, int64s
as strings, ``Int32`` as ``<i4>``) as it goes, with no copy of the value,
and writes what xapi's marshaller (ocaml-rpc ``xmlrpc.ml`` ``add_value``,
``add_response``) writes: strings as a bare ``<value>text</value>``,
``<i4>``, ``<boolean>``, no white space between elements, ``"`` escaped
too, and the control characters XML cannot carry dropped (``encode``).
Member names are escaped as values are (xapi writes them as they are;
its names need no escaping).
Floats keep Python's ``repr`` (xapi's ``%.16g`` can round); dateTime and
base64 values are written as the standard marshaller writes them. A large
reply (``event.from`` or ``get_all_records`` of a pool with 10,000 VMs) is
so written several times faster than by the standard marshaller, and
:func:`stream` hands it over in pieces as it is written.

A value of a type the standard marshaller refuses too (a subclass of a
basic type, an arbitrary object) raises :class:`Unsupported`.
"""

import base64
import datetime

import xmlrpc.client

from nova_xenapi_sr_tools.mockxapi import pool as pool_mod

HEAD = '<?xml version="1.0"?><methodResponse><params><param>'
TAIL = '</param></params></methodResponse>'

#: :func:`stream` hands over a piece when this many strings are written
#: (some 100 to 300 KiB).
PIECE_WRITES = 2048

#: XML-RPC's int range (``<i4>``).
_MAXINT = 2 ** 31 - 1
_MININT = -2 ** 31

#: ocaml-rpc's ``encode`` drops the characters XML 1.0 cannot carry; in
#: UTF-8 they are single bytes that no other character's bytes contain.
_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 13))


class Unsupported(TypeError):
    """A value neither this writer nor the standard marshaller writes."""


def _escape(text):
    if '&' in text:
        text = text.replace('&', '&amp;')
    if '<' in text:
        text = text.replace('<', '&lt;')
    if '>' in text:
        text = text.replace('>', '&gt;')
    if '"' in text:
        text = text.replace('"', '&quot;')
    return text


def _other(v, write):
    """The rarer types, as the standard marshaller writes them."""
    kind = type(v)
    if kind is xmlrpc.client.DateTime or kind is datetime.datetime:
        if kind is datetime.datetime:
            v = xmlrpc.client.DateTime(v)
        write('<value><dateTime.iso8601>%s</dateTime.iso8601></value>'
              % v.value)
    elif kind is xmlrpc.client.Binary or kind is bytes or \
            kind is bytearray:
        data = v.data if kind is xmlrpc.client.Binary else v
        write('<value><base64>\n%s</base64></value>'
              % base64.encodebytes(data).decode('ascii'))
    else:
        raise Unsupported('cannot marshal %s objects' % kind)


def stream(payload, send, piece_writes=None):
    """Write the methodResponse of ``payload`` (before ``wire``).

    Calls ``send(data, last)`` with UTF-8 pieces in order, ``last`` True
    for the final one: a piece when ``piece_writes`` strings (default
    :data:`PIECE_WRITES`) are written, so a small reply is one piece.

    :raises Unsupported: ``payload`` holds a type the standard
        marshaller refuses too; pieces may have been sent before.
    """
    if piece_writes is None:
        piece_writes = PIECE_WRITES
    out = [HEAD]
    write = out.append
    escape = _escape
    int32 = pool_mod.Int32

    def flush(last):
        data = ''.join(out).encode('utf-8')
        del out[:]
        cleaned = data.translate(None, _CONTROL)
        send(cleaned, last)

    def value(v):
        kind = type(v)
        if kind is str:
            write('<value>%s</value>' % escape(v))
        elif kind is dict:
            write('<value><struct>')
            for key, item in v.items():
                if type(key) is not str:
                    key = str(key)          # wire: str(key)
                if type(item) is str:
                    write('<member><name>%s</name><value>%s</value>'
                          '</member>' % (escape(key), escape(item)))
                else:
                    write('<member><name>%s</name>' % escape(key))
                    value(item)
                    write('</member>')
                    if len(out) >= piece_writes:
                        flush(False)
            write('</struct></value>')
        elif kind is list or kind is tuple:
            write('<value><array><data>')
            for item in v:
                value(item)
                if len(out) >= piece_writes:
                    flush(False)
            write('</data></array></value>')
        elif kind is bool:
            write('<value><boolean>1</boolean></value>' if v else
                  '<value><boolean>0</boolean></value>')
        elif kind is int:
            write('<value>%d</value>' % v)  # wire: int64s are strings
        elif v is None:
            write('<value></value>')        # wire: None is ''
        elif kind is int32:
            if v > _MAXINT or v < _MININT:
                raise OverflowError('int exceeds XML-RPC limits')
            write('<value><i4>%d</i4></value>' % v)
        elif kind is float:
            write('<value><double>%r</double></value>' % v)
        else:
            _other(v, write)

    value(payload)
    write(TAIL)
    flush(True)


def response(value):
    """The methodResponse of ``value`` (before ``wire``), as bytes."""
    pieces = []
    stream(value, lambda data, last: pieces.append(data))
    return b''.join(pieces)
