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

"""Forgetting an SR and knowing why it did or did not go.

nova's ``volume_utils.forget_sr`` ignores every failure of ``SR.get_PBDs``
and ``PBD.unplug`` and then calls ``SR.forget``, which answers
``SR_HAS_PBD`` both when another VM uses the SR (the unplug met
``VDI_IN_USE``) and when the unplug merely failed: the caller cannot tell
"kept, in use" from "left behind by a fault". :func:`forget_sr` makes the
same calls (``SR.get_PBDs``, ``PBD.unplug`` per PBD, ``SR.forget``) and
returns an :class:`Outcome` that says which it was.

Reads and unplugs are retried by the session's policy
(:mod:`nova_xenapi_sr.virt.xapi_retry`); ``SR.forget`` is retried here on a
transient fault: if the first attempt was served after all, the next one
answers ``HANDLE_INVALID``, which means the SR is gone.
"""

from nova_xenapi_sr.virt import xapi_retry

#: The SR is no longer there (forgotten now, or already gone).
GONE = 'gone'
#: A VM still uses one of its VDIs on this host (``VDI_IN_USE``): kept.
IN_USE = 'in_use'
#: Kept on purpose (not this volume's SR, or a VBD still uses it);
#: ``Outcome.reason`` says why.
KEPT = 'kept'
#: A fault left it behind; ``Outcome.reason`` says what failed.
LEFT = 'left'


class Outcome(object):
    """What :func:`forget_sr` achieved: ``state`` and, if LEFT, ``reason``."""

    def __init__(self, state, reason=None):
        self.state = state
        self.reason = reason

    @property
    def gone(self):
        return self.state == GONE

    def __repr__(self):
        return 'Outcome(%r, %r)' % (self.state, self.reason)


def forget_sr(session, policy, sr_ref, pbds=None):
    """Unplug the SR's PBDs and forget it; never raises for XAPI faults.

    :param pbds: the SR's PBDs, read by the caller (a bulk SR query), in
        place of ``SR.get_PBDs``. Should the SR have gained a PBD since,
        ``SR.forget`` answers ``SR_HAS_PBD``: then they are read again, and
        everything is tried once more.
    """
    host = xapi_retry.host_of(session)
    known = pbds is not None
    if not known:
        try:
            pbds = xapi_retry.call(session, policy, 'SR.get_PBDs', sr_ref)
        except Exception as exc:
            if xapi_retry.xapi_code(exc) == 'HANDLE_INVALID':
                return Outcome(GONE)
            return Outcome(LEFT, 'SR.get_PBDs failed: %s' % _text(exc))
    for pbd_ref in pbds:
        try:
            xapi_retry.call(session, policy, 'PBD.unplug', pbd_ref)
        except Exception as exc:
            code = xapi_retry.xapi_code(exc)
            if code == 'VDI_IN_USE':
                return Outcome(IN_USE)
            if code == 'HANDLE_INVALID':
                continue
            return Outcome(LEFT, 'PBD.unplug of %s failed: %s'
                           % (pbd_ref, _text(exc)))
    try:
        # Not idempotent, but a repeat after a served forget only answers
        # HANDLE_INVALID, which is the wanted outcome.
        policy.run(lambda: session.call_xenapi('SR.forget', sr_ref),
                   'SR.forget', host)
    except Exception as exc:
        code = xapi_retry.xapi_code(exc)
        if code == 'HANDLE_INVALID':
            return Outcome(GONE)
        if known and code == 'SR_HAS_PBD':
            return forget_sr(session, policy, sr_ref)
        return Outcome(LEFT, 'SR.forget failed: %s' % _text(exc))
    return Outcome(GONE)


def _text(exc):
    if isinstance(exc, xapi_retry.XapiCallError):
        return str(exc)
    return xapi_retry.describe(exc)
