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

"""The one retry policy for XAPI calls, and errors that say where.

:func:`instrument` wraps a driver's XenAPI session (os-xenapi's
``XenAPISession``: every XAPI call of nova's driver code and ours goes
through its ``call_xenapi`` and ``call_plugin``) so that:

* reads and idempotent calls (:func:`is_retryable`) are retried when they
  fail transiently (:func:`is_transient`): at most
  ``[xenapi_sr] xapi_retry_attempts`` attempts, waiting
  ``[xenapi_sr] xapi_retry_interval`` seconds, doubled after each attempt.
  Every retry is logged at WARNING with the call, the host and the error.
  A destroy of :data:`DESTROYS` (``network.destroy``) is retried too: a
  ``HANDLE_INVALID`` on a retry means it is gone. Other calls that change
  state and are not idempotent (``SR.introduce``,
  ``VDI.introduce``, ``PBD.create``, ``VM.migrate_send``, ...) are never
  retried here;
* a dropped connection, a timeout or a malformed reply that remains
  raises :class:`XapiConnectionError` (a :class:`XapiCallError` and still
  an ``OSError``) naming the call and the host, instead of a bare
  ``RemoteDisconnected`` or ``TimeoutError``;
* a dom0 plugin read that keeps failing raises :class:`XapiCallError`
  instead of a XenAPI ``Failure``: nova's ``host_management`` callers
  turn a ``Failure`` into its second detail string and then fail with a
  ``TypeError`` far from the cause.

XenAPI ``Failure`` replies are otherwise raised unchanged: nova's code
tells outcomes apart by their code (``UUID_INVALID`` means "no such SR").
"""

import functools
import http.client
import socket
import time
import xmlrpc.client

from oslo_log import log as logging

from nova_xenapi_sr import exception

LOG = logging.getLogger(__name__)

#: Idempotent calls that are not reads: a second call of an unplug or plug
#: that already happened succeeds (xapi's xapi_pbd.ml returns at once when
#: the PBD already is in the wanted state); a scan rereads the LUNs;
#: removing a map key that is gone is a no-op (xapi's db "remove_from").
IDEMPOTENT = frozenset(['SR.scan', 'PBD.plug', 'PBD.unplug'])

#: Destroys that are idempotent once a retry treats ``HANDLE_INVALID`` as
#: "already gone": xapi's xapi_network.ml ``destroy`` (v1.249.42) fails
#: only with NETWORK_CONTAINS_VIF, NETWORK_CONTAINS_PIF or
#: CANNOT_DESTROY_SYSTEM_NETWORK before it changes anything, and its first
#: read of a destroyed network (``Db.Network.get_VIFs``) answers
#: HANDLE_INVALID. So a retry of a destroy whose reply was lost, or that a
#: transient fault stopped, either destroys the network or finds it gone.
#: nova's rollback destroys its per-port interim networks with it
#: (``vif.XenAPIOpenVswitchDriver.delete_network_and_bridge``) and does
#: not try again.
DESTROYS = frozenset(['network.destroy'])

#: dom0 plugin functions that only read (``(plugin, function)``).
PLUGIN_READS = frozenset([
    ('xenhost.py', 'host_data'),
    ('xenhost.py', 'get_pci_device_details'),
    ('xenhost.py', 'get_pci_type'),
    ('dom0_plugin_version.py', 'get_version'),
])

#: XAPI error codes that are answers, not accidents: retrying cannot
#: change them (the object is gone, the call is wrong or not allowed, or
#: the object is in use).
DEFINITIVE_CODES = frozenset([
    'HANDLE_INVALID', 'UUID_INVALID', 'MESSAGE_METHOD_UNKNOWN',
    'MESSAGE_PARAMETER_COUNT_MISMATCH', 'MESSAGE_DEPRECATED',
    'PERMISSION_DENIED', 'RBAC_PERMISSION_DENIED',
    'SESSION_AUTHENTICATION_FAILED', 'VDI_IN_USE', 'SR_HAS_PBD',
    'SR_NO_PBDS', 'OPERATION_NOT_ALLOWED', 'XENAPI_MISSING_PLUGIN',
    'XENAPI_PLUGIN_FAILURE', 'INVALID_VALUE', 'VALUE_NOT_SUPPORTED',
    'MAP_DUPLICATE_KEY', 'FIELD_TYPE_ERROR', 'VM_BAD_POWER_STATE',
    'SR_UUID_EXISTS', 'PBD_EXISTS', 'LOCATION_NOT_UNIQUE',
    # xapi_network.ml destroy: the network is in use or is the host's own
    'NETWORK_CONTAINS_VIF', 'NETWORK_CONTAINS_PIF',
    'CANNOT_DESTROY_SYSTEM_NETWORK',
    # SM's configuration errors (sm: drivers/XE_SR_ERRORCODES.xml):
    # ISCSILogin (68: access settings or CHAP), ConfigTargetMissing (95),
    # ConfigTargetIQNMissing (96), ConfigSCSIid (107). Repeating them only
    # repeats a refused iSCSI login.
    'SR_BACKEND_FAILURE_68', 'SR_BACKEND_FAILURE_95',
    'SR_BACKEND_FAILURE_96', 'SR_BACKEND_FAILURE_107',
])

#: Exceptions of the transport: the call may or may not have been served.
CONNECTION_ERRORS = (OSError, http.client.HTTPException,
                     xmlrpc.client.ProtocolError, xmlrpc.client.Fault)

#: Marker on an instrumented session.
_MARKER = '_nova_xenapi_sr_retry'


class XapiCallError(exception.NovaXenapiSRException):
    """A XAPI call failed; the message names the call, the host, the error.

    ``method``, ``host``, ``code`` (the XAPI error code, or None for a
    transport error) and ``attempts`` are attributes too.
    """

    def __init__(self, method, host, error, attempts=1):
        self.method = method
        self.host = host
        self.code = xapi_code(error)
        self.attempts = attempts
        self.error = error
        super(XapiCallError, self).__init__(
            'XAPI call %s to %s failed%s: %s' % (
                method, host,
                ' after %d attempts' % attempts if attempts > 1 else '',
                describe(error)))


class XapiConnectionError(XapiCallError, ConnectionError):
    """A transport error of a XAPI call, named; still an ``OSError``.

    Callers that handle ``socket.error`` themselves (os-xenapi's
    ``call_plugin_serialized_with_retry`` retries on ``ECONNRESET``) keep
    working: ``errno`` is the original error's.
    """

    def __init__(self, method, host, error, attempts=1):
        super(XapiConnectionError, self).__init__(method, host, error,
                                                  attempts)
        self.errno = getattr(error, 'errno', None)


def xapi_code(error):
    """The XAPI error code of a ``Failure``, else None."""
    details = getattr(error, 'details', None)
    if isinstance(details, (list, tuple)) and details:
        return str(details[0])
    return None


def describe(error):
    """A short text for an error: the XAPI details, or type and message."""
    details = getattr(error, 'details', None)
    if isinstance(details, (list, tuple)) and details:
        return 'XAPI error %s' % ' '.join(str(d) for d in details)
    if isinstance(error, socket.timeout) or isinstance(error, TimeoutError):
        return 'timed out (%s)' % (error or type(error).__name__)
    if isinstance(error, http.client.RemoteDisconnected) or isinstance(
            error, ConnectionError):
        return 'connection dropped (%s: %s)' % (type(error).__name__, error)
    return '%s: %s' % (type(error).__name__, error)


def is_connection_error(error):
    """A transport error not yet named by :class:`XapiCallError`."""
    return (isinstance(error, CONNECTION_ERRORS) and
            not isinstance(error, XapiCallError) and
            xapi_code(error) is None)


def is_transient(error):
    """Whether retrying a read or idempotent call may help."""
    if isinstance(error, XapiCallError):
        return is_transient(error.error)
    if is_connection_error(error):
        return True
    code = xapi_code(error)
    return code is not None and code not in DEFINITIVE_CODES


def is_retryable(method):
    """Whether ``method`` is a read or an idempotent XAPI call."""
    cls, _, message = method.partition('.')
    if not cls or not message:
        return False
    return message.startswith('get_') or message.startswith(
        'remove_from_') or method in IDEMPOTENT or method in DESTROYS


class Policy(object):
    """How often and how patiently to retry.

    :param attempts: total attempts (at least 1).
    :param interval: seconds before the second attempt; doubled after
        each further one, at most ``max_interval``.
    """

    def __init__(self, attempts=4, interval=1.0, max_interval=10.0,
                 sleep=None):
        self.attempts = max(1, int(attempts))
        self.interval = max(0.0, float(interval))
        self.max_interval = max_interval
        self._sleep = sleep or time.sleep

    @classmethod
    def from_conf(cls, conf):
        return cls(attempts=conf.xenapi_sr.xapi_retry_attempts,
                   interval=conf.xenapi_sr.xapi_retry_interval)

    def run(self, func, what, host, retry=True, gone_ok=False):
        """Call ``func()``; retry it on transient errors when ``retry``.

        :param what: the call, for the log and the error (``SR.scan``).
        :param gone_ok: a destroy (:data:`DESTROYS`): ``HANDLE_INVALID``
            on a retry means an earlier attempt (or someone else) destroyed
            the object; logged, and ``''`` (XAPI's void) is returned.
        :raises XapiCallError: a transport error remains (always wrapped,
            retried or not).
        :raises: the last XenAPI ``Failure`` otherwise.
        """
        delay = self.interval
        attempt = 1
        while True:
            try:
                return func()
            except Exception as exc:
                if gone_ok and attempt > 1 and \
                        xapi_code(exc) == 'HANDLE_INVALID':
                    LOG.warning('XAPI call %(call)s to %(host)s: attempt '
                                '%(n)d answers %(error)s: '
                                'the object is gone (destroyed by an earlier '
                                'attempt whose reply was lost, or by someone '
                                'else).',
                                {'call': what, 'host': host,
                                 'error': describe(exc), 'n': attempt})
                    return ''
                if not (retry and is_transient(exc) and
                        attempt < self.attempts):
                    if is_connection_error(exc):
                        raise XapiConnectionError(what, host, exc, attempt)
                    raise
                LOG.warning('XAPI call %(call)s to %(host)s failed '
                            '(%(error)s), attempt %(n)d of %(max)d; '
                            'retrying in %(delay).1f s.',
                            {'call': what, 'host': host,
                             'error': describe(exc), 'n': attempt,
                             'max': self.attempts, 'delay': delay})
                self._sleep(delay)
                delay = min(delay * 2, self.max_interval)
                attempt += 1


def call(session, policy, method, *args):
    """One XAPI call through ``policy``, on any session (also uninstrumented).

    An instrumented session already applies its policy to every call.
    """
    if getattr(session, _MARKER, None) is not None:
        return session.call_xenapi(method, *args)
    return policy.run(lambda: session.call_xenapi(method, *args), method,
                      host_of(session), retry=is_retryable(method),
                      gone_ok=method in DESTROYS)


def host_of(session):
    """The address the session talks to, for messages."""
    return getattr(session, 'url', None) or '<unknown XAPI host>'


def instrument(session, policy):
    """Route a session's ``call_xenapi`` and ``call_plugin`` via ``policy``.

    Idempotent; returns the session. Set on the instance, so every holder
    of this session (nova's VMOps, VolumeOps, HostState, ...) is covered.
    """
    if getattr(session, _MARKER, None) is not None:
        setattr(session, _MARKER, policy)
        return session
    raw_call = session.call_xenapi
    raw_plugin = session.call_plugin
    host = host_of(session)

    @functools.wraps(raw_call)
    def call_xenapi(method, *args):
        current = getattr(session, _MARKER)
        return current.run(lambda: raw_call(method, *args), method, host,
                           retry=is_retryable(method),
                           gone_ok=method in DESTROYS)

    @functools.wraps(raw_plugin)
    def call_plugin(plugin, fn, args):
        current = getattr(session, _MARKER)
        name = plugin if plugin.endswith('.py') else '%s.py' % plugin
        read = (name, fn) in PLUGIN_READS
        what = 'host.call_plugin %s %s' % (name, fn)
        try:
            return current.run(lambda: raw_plugin(plugin, fn, dict(args)),
                               what, host, retry=read)
        except XapiCallError:
            raise
        except Exception as exc:
            if read and xapi_code(exc) is not None:
                raise XapiCallError(what, host, exc, current.attempts)
            raise

    session.call_xenapi = call_xenapi
    session.call_plugin = call_plugin
    setattr(session, _MARKER, policy)
    return session
