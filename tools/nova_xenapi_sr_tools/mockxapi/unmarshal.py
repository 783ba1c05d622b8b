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

"""How xapi's dispatcher unmarshals a call's arguments, and how that fails.

xapi's generated server (``gen_server.ml``) converts every argument with
its ``*_of_rpc`` function, and reads a constructor's record field by field,
*before* it checks the session. rpclib's converters (``rpc.ml``,
``ppx_deriving_rpc``) fail with ``Failure "Expected string, got '...'"``
and the like; a constructor field that is missing and has no default is
``Server_helpers.Dispatcher_FieldNotFound`` (``server_helpers.ml``
``my_assoc``); a record that is not a struct is ``failwith "bad
__structure"``. None of these is an API error, so ``exnHelper.ml``
``error_of_exn`` answers ``INTERNAL_ERROR [Printexc.to_string exn]``.

A kind is one of ``string`` (refs too: ``Ref.t_of_rpc`` reads a string),
``bool``, ``int`` (int64), ``float``, ``smap`` (string to string map),
``set`` (string set), ``('enum', values)``, ``('record', cls)``, or None
(not checked).
"""

import re
import xmlrpc.client

from nova_xenapi_sr_tools.mockxapi import errors

#: Constructor fields (``gen_client.ml`` ``ctor_fields``: the StaticRO and
#: RW fields, in ``datamodel.ml`` order) of the classes the mock creates
#: from a record: ``(wire name, kind, has a default)``.
_VBD_MODE = ('enum', ('RO', 'RW'))
_VBD_TYPE = ('enum', ('CD', 'Disk', 'Floppy'))
_LOCKING_MODE = ('enum', ('network_default', 'locked', 'unlocked',
                          'disabled'))
CTOR_FIELDS = {
    # datamodel.ml PBD: host, SR, device_config; other_config defaults
    'PBD': [('host', 'string', False), ('SR', 'string', False),
            ('device_config', 'smap', False),
            ('other_config', 'smap', True)],
    # datamodel.ml VBD: only unpluggable has a default
    'VBD': [('VM', 'string', False), ('VDI', 'string', False),
            ('userdevice', 'string', False), ('bootable', 'bool', False),
            ('mode', _VBD_MODE, False), ('type', _VBD_TYPE, False),
            ('unpluggable', 'bool', True), ('empty', 'bool', False),
            ('other_config', 'smap', False),
            ('qos_algorithm_type', 'string', False),
            ('qos_algorithm_params', 'smap', False)],
    # datamodel.ml VIF: locking_mode and the allowed addresses default
    'VIF': [('device', 'string', False), ('network', 'string', False),
            ('VM', 'string', False), ('MAC', 'string', False),
            ('MTU', 'int', False), ('other_config', 'smap', False),
            ('qos_algorithm_type', 'string', False),
            ('qos_algorithm_params', 'smap', False),
            ('locking_mode', _LOCKING_MODE, True),
            ('ipv4_allowed', 'set', True), ('ipv6_allowed', 'set', True)],
    # datamodel.ml network: everything but other_config defaults
    'network': [('name_label', 'string', True),
                ('name_description', 'string', True),
                ('MTU', 'int', True), ('other_config', 'smap', False),
                ('bridge', 'string', True), ('managed', 'bool', True),
                ('tags', 'set', True)],
    # datamodel.ml secret: value; other_config defaults
    'secret': [('value', 'string', False), ('other_config', 'smap', True)],
}

#: OCaml's ``Int64.of_string``: decimal, or 0x/0o/0b, a sign, underscores.
INT64 = re.compile(r'^[-+]?(?:0[xX][0-9a-fA-F][0-9a-fA-F_]*|'
                   r'0[oO][0-7][0-7_]*|0[bB][01][01_]*|[0-9][0-9_]*)$')


def ocaml_int(text):
    """OCaml's ``Int64.of_string`` of ``text`` (matched by :data:`INT64`)."""
    text = text.replace('_', '')
    sign = -1 if text.startswith('-') else 1
    digits = text.lstrip('+-')
    base = {'x': 16, 'o': 8, 'b': 2}.get(digits[1:2].lower(), 10) \
        if digits.startswith('0') and len(digits) > 1 else 10
    return sign * int(digits[2:] if base != 10 else digits, base)


def _escaped(data):
    """OCaml's ``String.escaped`` of ``data`` (bytes), as text."""
    out = []
    for byte in data:
        char = chr(byte)
        if char in '"\\':
            out.append('\\' + char)
        elif char == '\n':
            out.append('\\n')
        elif char == '\t':
            out.append('\\t')
        elif char == '\r':
            out.append('\\r')
        elif char == '\b':
            out.append('\\b')
        elif 32 <= byte <= 126:
            out.append(char)
        else:
            out.append('\\%03d' % byte)
    return ''.join(out)


def _text(value):
    if isinstance(value, bytes):
        return value
    return str(value).encode('utf-8')


def rpc_to_string(value):
    """rpclib's ``Rpc.to_string`` of a decoded XML-RPC value (bytes)."""
    if isinstance(value, bool):
        return b'B(true)' if value else b'B(false)'
    if isinstance(value, int):
        return b'I(%d)' % value
    if isinstance(value, float):
        return b'F(' + ('%g' % value).encode('ascii') + b')'
    if isinstance(value, str):
        return b'S(' + _text(value) + b')'
    if isinstance(value, xmlrpc.client.Binary):
        return b'B64(' + value.data + b')'
    if isinstance(value, (bytes, bytearray)):
        return b'B64(' + bytes(value) + b')'
    if isinstance(value, xmlrpc.client.DateTime):
        return b'D(' + _text(value.value) + b')'
    if isinstance(value, dict):
        return b'{' + b';'.join(_text(k) + b':' + rpc_to_string(v)
                                for k, v in value.items()) + b'}'
    if isinstance(value, (list, tuple)):
        return b'[' + b';'.join(rpc_to_string(v) for v in value) + b']'
    if value is None:
        return b'N'
    return _text(value)


def failure(message):
    """``INTERNAL_ERROR`` for OCaml's ``Failure message`` (bytes or text).

    ``Printexc.to_string (Failure s)`` is ``Failure("<s escaped>")``.
    """
    return errors.XapiError(errors.INTERNAL_ERROR,
                            'Failure("%s")' % _escaped(_text(message)))


def field_not_found(name):
    """``server_helpers.ml`` ``my_assoc``: a constructor field is missing."""
    return errors.XapiError(
        errors.INTERNAL_ERROR,
        'Server_helpers.Dispatcher_FieldNotFound("%s")' % _escaped(
            _text(name)))


def _expected(what, value):
    # rpc.ml: failwith (sprintf "Expected <what>, got '%s'" (to_string x))
    return failure(b'Expected ' + what + b", got '" + rpc_to_string(value) +
                   b"'")


def _expecting(what, value):
    # ppx_deriving_rpc: "Expecting Rpc.<what>, but found '%s'"
    return failure(b'Expecting Rpc.' + what + b", but found '" +
                   rpc_to_string(value) + b"'")


def check(kind, value):
    """Unmarshal ``value`` as ``kind``; raise xapi's failure if it cannot.

    Returns the value the handler sees (an int64 given as an XML-RPC int
    becomes the decimal string the mock stores).
    """
    if kind is None:
        return value
    if kind == 'string':
        if not isinstance(value, str):
            raise _expected(b'string', value)
        return value
    if kind == 'bool':
        if not isinstance(value, bool):
            raise _expected(b'bool', value)
        return value
    if kind == 'int':
        # rpc.ml int64_of_rpc: Int, or String through Int64.of_string
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise _expected(b'int64', value)
        if isinstance(value, str):
            if not INT64.match(value):
                raise failure('Int64.of_string')
            return value
        return str(value)
    if kind == 'float':
        # rpc.ml float_of_rpc: Float, Int, or String through float_of_string
        if isinstance(value, bool) or not isinstance(value,
                                                     (int, float, str)):
            raise _expected(b'float', value)
        if isinstance(value, str):
            try:
                float(value.replace('_', ''))
            except ValueError:
                raise failure('float_of_string')
        return value
    if kind == 'smap':
        if not isinstance(value, dict):
            raise _expecting(b'Dict', value)
        for item in value.values():
            check('string', item)
        return value
    if kind == 'set':
        if not isinstance(value, list):
            raise _expecting(b'Enum', value)
        for item in value:
            check('string', item)
        return value
    if kind[0] == 'enum':
        # ppx_deriving_rpc variants: the tag, lower-cased, must be known
        if not isinstance(value, str) or value.lower() not in [
                v.lower() for v in kind[1]]:
            raise failure('Unknown tag/contents')
        return value
    if kind[0] == 'record':
        return record(kind[1], value)
    raise ValueError('unknown kind %r' % (kind,))


def record(cls, value):
    """A constructor's record, read as ``gen_server.ml`` reads it.

    Field by field in datamodel order: a missing field without a default
    is ``Dispatcher_FieldNotFound``, a field of the wrong type fails its
    converter. Returns the record with those fields converted (other keys
    are left for the handler, which ignores them as xapi does).
    """
    if not isinstance(value, dict):
        raise failure('bad __structure')
    value = dict(value)
    for name, kind, has_default in CTOR_FIELDS[cls]:
        if name not in value:
            if not has_default:
                raise field_not_found(name)
            continue
        value[name] = check(kind, value[name])
    return value


def args(kinds, values):
    """Unmarshal positional ``values`` by ``kinds``; return them converted.

    Values beyond ``kinds`` are returned unchecked.
    """
    values = list(values)
    for index, kind in enumerate(kinds[:len(values)]):
        values[index] = check(kind, values[index])
    return values
