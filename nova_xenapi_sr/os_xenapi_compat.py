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

"""Make os-xenapi 0.3.4's plugin calls work on Python 3.

nova 21's XenAPI driver talks to dom0 plugins through os-xenapi's
``XenAPISession.call_plugin_serialized``, which on Python 3:

* pickles its arguments with the default protocol, giving ``bytes`` that
  XML-RPC sends as base64, while XAPI's ``host.call_plugin`` takes a map of
  *strings* and dom0's plugins expect a protocol-0 pickle in that string;
* passes the plugin's reply, an XML-RPC *string* holding a protocol-0
  pickle, straight to ``pickle.loads``, which rejects ``str``.

The session's constructor calls ``dom0_plugin_version.py get_version`` this
way, so without a fix the driver cannot even start. :func:`apply` replaces
that one method with :func:`call_plugin_serialized`, which sends a
protocol-0 pickle as a string and unpickles the string reply, exactly what
XenServer's dom0 plugins exchange. Nothing else in os-xenapi changes.

:func:`apply` is idempotent and imports nothing of this project's objects,
so both the extension's driver and processes that run stock nova nodes
(the upgrade verification) can call it.
"""

import pickle

#: Marker set on the replacement so :func:`apply` can tell it is in place.
_MARKER = '_nova_xenapi_sr_compat'

#: Pickle protocol dom0 plugins read and write (Python 2's text protocol).
PROTOCOL = 0

#: os-xenapi's own methods, kept by :func:`apply` for :func:`revert`.
_originals = {}


def dumps(value):
    """Pickle ``value`` for a dom0 plugin: protocol 0, as a ``str``.

    Protocol 0 is ASCII except for raw latin-1 bytes of characters
    U+0080-U+00FF, so decoding as latin-1 is lossless.
    """
    return pickle.dumps(value, PROTOCOL).decode('latin-1')


def loads(reply):
    """Unpickle a dom0 plugin's reply.

    The reply is normally a ``str`` (an XML-RPC string); ``bytes`` and
    ``xmlrpc.client.Binary`` are accepted too. Python 2 ``str`` objects in
    the pickle are decoded as UTF-8 (what dom0 stores).
    """
    if hasattr(reply, 'data'):  # xmlrpc.client.Binary
        reply = reply.data
    if isinstance(reply, str):
        try:
            reply = reply.encode('latin-1')
        except UnicodeEncodeError:
            reply = reply.encode('utf-8')
    return pickle.loads(reply, encoding='utf-8')


def call_plugin_serialized(self, plugin, fn, *args, **kwargs):
    """``XenAPISession.call_plugin_serialized`` that works on Python 3."""
    params = {'params': dumps(dict(args=args, kwargs=kwargs))}
    return loads(self.call_plugin(plugin, fn, params))


setattr(call_plugin_serialized, _MARKER, True)


def is_applied():
    """True when os-xenapi's session already uses the fixed method."""
    from os_xenapi.client import session
    method = session.XenAPISession.__dict__.get('call_plugin_serialized')
    return bool(getattr(method, _MARKER, False))


def apply():
    """Install the fix on ``os_xenapi.client.session.XenAPISession``.

    Safe to call any number of times, from any importer.

    :returns: True if this call installed it, False if it was in place.
    """
    from os_xenapi.client import session
    if is_applied():
        return False
    cls = session.XenAPISession
    _originals.setdefault(cls, cls.__dict__.get('call_plugin_serialized'))
    cls.call_plugin_serialized = call_plugin_serialized
    return True


def revert():
    """Put os-xenapi's own method back (for tests of the unfixed client).

    :returns: True if the fix was in place and has been removed.
    """
    from os_xenapi.client import session
    cls = session.XenAPISession
    if not is_applied():
        return False
    cls.call_plugin_serialized = _originals[cls]
    return True


def original():
    """os-xenapi's own ``call_plugin_serialized`` (fixed or not)."""
    from os_xenapi.client import session
    cls = session.XenAPISession
    return _originals.get(cls, cls.__dict__.get('call_plugin_serialized'))
