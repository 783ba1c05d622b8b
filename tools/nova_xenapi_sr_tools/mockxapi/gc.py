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

"""xapi's database garbage collection (``db_gc.ml``, ``db_gc_util.ml``).

xapi removes records that point at nothing every 30 seconds
(``db_GC_TIMER``). The mock runs the same pass periodically
(:class:`Collector`, started by :class:`~.service.MockXapi`) and on demand
(``Pool.run_gc``), so a verdict can look at the state after xapi's next
pass. One pass, in ``gc_subtask_list`` order:

* ``gc_VDIs``: a VDI whose SR is gone;
* ``gc_VBDs``: a VBD whose VM is gone, or whose VDI is gone and that is
  not empty; a CD VBD of a live VM is emptied instead;
* ``gc_VIFs``: a VIF whose VM or network is gone (the source's VIFs after
  a cross-pool ``migrate_send``);
* ``gc_PBDs``: a PBD whose host or SR is gone;
* ``timeout_tasks``: finished tasks that ``task.destroy`` marked while
  they were pending, finished tasks older than 65 minutes
  (``completed_task_timeout``), pending ones older than 24 hours;
* ``timeout_sessions``: sessions idle longer than 24 hours
  (``inactive_session_timeout``), and beyond 500 per originator (or user)
  the least recently active ones (``max_sessions_per_originator``). The
  sessions ``host.migrate_receive`` opens are never logged out by
  ``migrate_send``; this is what bounds them.
"""

import calendar
import time

from nova_xenapi_sr_tools.mockxapi import model

COMPLETED_TASK_TIMEOUT = 65 * 60.0
PENDING_TASK_TIMEOUT = 24 * 3600.0
INACTIVE_SESSION_TIMEOUT = 24 * 3600.0
MAX_SESSIONS_PER_GROUP = 500


def _valid(db, cls, ref):
    return ref != model.NULL_REF and db.has(cls, ref)


def _stamp(text):
    try:
        return calendar.timegm(time.strptime(text, '%Y%m%dT%H:%M:%SZ'))
    except (TypeError, ValueError):
        return None


def single_pass(db, now):
    """Run one GC pass over ``db``; return ``{class: [removed refs]}``."""
    removed = {'VDI': [], 'VBD': [], 'VIF': [], 'PBD': [], 'task': [],
               'session': []}
    for ref in db.refs('VDI'):
        if not _valid(db, 'SR', db.get('VDI', ref)['SR']):
            db.destroy('VDI', ref)
            removed['VDI'].append(ref)
    for ref in db.refs('VBD'):
        rec = db.get('VBD', ref)
        vm_ok = _valid(db, 'VM', rec['VM'])
        vdi_ok = _valid(db, 'VDI', rec['VDI']) or rec['empty']
        if vm_ok and vdi_ok:
            continue
        if vm_ok and rec['type'] == 'CD':
            rec.update(VDI=model.NULL_REF, empty=True)
            continue
        db.destroy('VBD', ref)
        removed['VBD'].append(ref)
    for ref in db.refs('VIF'):
        rec = db.get('VIF', ref)
        if not (_valid(db, 'VM', rec['VM']) and
                _valid(db, 'network', rec['network'])):
            db.destroy('VIF', ref)
            removed['VIF'].append(ref)
    for ref in db.refs('PBD'):
        rec = db.get('PBD', ref)
        if not (_valid(db, 'host', rec['host']) and
                _valid(db, 'SR', rec['SR'])):
            db.destroy('PBD', ref)
            removed['PBD'].append(ref)
    for ref in db.refs('task'):
        rec = db.get('task', ref)
        if rec['status'] != 'pending' and \
                'destroy' in rec['current_operations'].values():
            # timeout_tasks: a task.destroy came while it was pending
            db.destroy('task', ref)
            removed['task'].append(ref)
            continue
        if rec['status'] == 'pending':
            started, limit = _stamp(rec['created']), PENDING_TASK_TIMEOUT
        else:
            started = _stamp(rec['finished']) or _stamp(rec['created'])
            limit = COMPLETED_TASK_TIMEOUT
        if started is not None and now - started > limit:
            db.destroy('task', ref)
            removed['task'].append(ref)
    groups = {}
    for ref in db.refs('session'):
        rec = db.get('session', ref)
        active = _stamp(rec['last_active'])
        if active is not None and now - active > INACTIVE_SESSION_TIMEOUT:
            db.destroy('session', ref)
            removed['session'].append(ref)
            continue
        key = rec['originator'] or rec['auth_user_name']
        groups.setdefault(key, []).append((rec['last_active'], ref))
    for members in groups.values():
        members.sort()
        for _, ref in members[:max(len(members) - MAX_SESSIONS_PER_GROUP,
                                   0)]:
            db.destroy('session', ref)
            removed['session'].append(ref)
    return removed


class Collector(object):
    """Run :func:`single_pass` on every pool every ``interval`` seconds."""

    def __init__(self, world, interval):
        import threading
        self.world = world
        self.interval = float(interval)
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        import threading
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name='mock-xapi-gc')
        self._thread.daemon = True
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self.interval):
            for pool in list(self.world.pools.values()):
                pool.run_gc()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
