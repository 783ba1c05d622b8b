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

"""Where is the VM? Asked of both pools' XAPI before any rollback.

nova rolls a live migration back whenever something on the source raises,
also after ``VM.migrate_send`` has moved the VM (a failing call in nova's
post-migration step, or a ``migrate_send`` whose reply was lost). Its
rollback then detaches the volumes of a VM that runs on the destination.
:func:`locate` establishes the facts first:

* the source pool: is a VM with the instance's name still there? While
  its ``current_operations`` show a migration, xapi is still working on
  it: poll until it ends (``[xenapi_sr] migration_locate_timeout``);
* the destination pool, reached with the session that the destination's
  ``host.migrate_receive`` handed out for this migration (the one xapi
  itself uses, in ``migrate_send_data``): does the VM run there?

xapi removes the VM from the source pool only once the migration has
succeeded, so a VM that has left the source has moved.
"""

import time

from oslo_log import log as logging

from nova_xenapi_sr.virt import where
from nova_xenapi_sr.virt import xapi_retry

LOG = logging.getLogger(__name__)

_MIGRATING = ('migrate_send', 'pool_migrate')
#: Seconds between two looks at a migration xapi still runs.
POLL_INTERVAL = 1.0


class Location(object):
    """What both pools said.

    Each of ``on_source`` / ``on_destination`` is True, False or None (that
    pool could not be asked: see ``errors``).
    """

    def __init__(self, on_source, on_destination, errors):
        self.on_source = on_source
        self.on_destination = on_destination
        self.errors = errors

    @property
    def moved(self):
        """The VM has left the source (and is not known to be lost)."""
        if self.on_source is False:
            return True
        return self.on_source is None and self.on_destination is True

    @property
    def safe_to_roll_back(self):
        """nova's rollback cannot strip a VM running on the destination."""
        if self.moved or self.on_destination is True:
            return False
        return self.on_source is True or self.on_destination is False

    def __str__(self):
        def say(value):
            return {True: 'yes', False: 'no', None: 'unknown'}[value]
        text = 'on the source pool: %s, running on the destination: %s' % (
            say(self.on_source), say(self.on_destination))
        if self.errors:
            text += ' (%s)' % '; '.join(self.errors)
        return text


def _vms(records):
    return {ref: rec for ref, rec in records.items()
            if not rec.get('is_a_template') and
            not rec.get('is_a_snapshot')}


def _query(instance_name):
    return where.field_in('name__label', [instance_name])


def vms_named(session, policy, instance_name):
    """``{ref: record}`` of the VMs (no templates, no snapshots) named so.

    One ``VM.get_all_records_where``, through ``policy``.
    """
    return _vms(xapi_retry.call(session, policy, 'VM.get_all_records_where',
                                _query(instance_name)))


def _on_source(session, policy, instance_name, timeout, sleep):
    deadline = time.time() + timeout
    while True:
        vms = vms_named(session, policy, instance_name)
        busy = [ref for ref, rec in vms.items()
                if set((rec.get('current_operations') or {}).values())
                & set(_MIGRATING)]
        if not busy or time.time() >= deadline:
            return bool(vms)
        LOG.info('xapi still migrates %s; waiting to see where it ends.',
                 instance_name)
        sleep(POLL_INTERVAL)


def _on_destination(migrate_send_data, policy, instance_name):
    from os_xenapi.client import XenAPI

    master = (migrate_send_data or {}).get('master')
    session_id = (migrate_send_data or {}).get('session_id')
    if not master or not session_id:
        raise ValueError('the migrate data names no destination session')
    dest = XenAPI.Session(master)
    dest._session = session_id
    try:
        vms = _vms(policy.run(
            lambda: dest.xenapi_request('VM.get_all_records_where',
                                        (_query(instance_name),)),
            'VM.get_all_records_where', master))
        return any(rec.get('power_state') == 'Running'
                   for rec in vms.values())
    finally:
        try:
            dest('close')()
        except Exception:  # nosec: closing a socket
            pass


def locate(session, policy, instance_name, migrate_send_data, timeout=60,
           sleep=None):
    """Ask both pools where the VM of ``instance_name`` is.

    Never raises: a pool that cannot be asked is reported as None.
    """
    sleep = sleep or time.sleep
    errors = []
    try:
        on_source = _on_source(session, policy, instance_name, timeout,
                               sleep)
    except Exception as exc:
        on_source = None
        errors.append('source: %s' % exc)
    try:
        on_destination = _on_destination(migrate_send_data, policy,
                                         instance_name)
    except Exception as exc:
        on_destination = None
        errors.append('destination: %s' % exc)
    return Location(on_source, on_destination, errors)
