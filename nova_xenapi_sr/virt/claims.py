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

"""Which in-flight live migrations on this compute use which SR.

uuid5 SRs are shared by every volume behind one iSCSI target, so two
migrations to the same destination can use one SR. Between
``pre_live_migration`` and ``VM.migrate_send`` the second migration has
introduced its VDIs but has no VBD yet, so "no VBD uses it" does not mean
"unused": one migration's rollback would forget the SR the other is about to
use. Each migration therefore claims the SRs it connects, and an SR is
forgotten only while nobody else holds it.

The claims are this compute's state (one nova-compute process per host), one
per driver instance, guarded by one lock: claiming and the check-and-forget
of a rollback are each atomic with respect to the other.

Each claim also records which of its SRs already existed on this host
before the migration connected them (a neighbour's, or another
migration's): the migration's own cleanup never forgets those.

The claims live in process memory: a nova-compute restart loses them. A
rollback then finds no record of its migration (:meth:`SRClaims.knows` is
False) and the driver falls back to what XAPI shows: it keeps any SR that
holds a VDI without VBD that is not one of its own volumes (another
migration may be about to use it), see
:func:`nova_xenapi_sr.virt.destination.forget_unused_sr`.
"""

import threading


class SRClaims(object):
    """SR uuid -> the instance uuids whose migrations hold it.

    Each claim also keeps what the SR must point at (its ``device_config``
    on this host), so a rollback can find the SRs its migration connected
    from this host's own connection data, whatever nova hands it later.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._holders = {}
        self._srs = {}
        self._existing = {}
        self._connect_locks = {}
        self._introduced = {}

    def claim(self, instance_uuid, srs):
        """Record that this instance's migration uses ``srs``.

        :param srs: ``[(sr_uuid, device_config)]``.
        """
        with self._lock:
            mine = self._srs.setdefault(instance_uuid, [])
            for sr_uuid, device_config in srs:
                self._holders.setdefault(sr_uuid, set()).add(instance_uuid)
                if sr_uuid not in [name for name, _ in mine]:
                    mine.append((sr_uuid, dict(device_config)))

    def connecting(self, sr_uuid):
        """A lock held while one migration looks up and introduces an SR.

        Without it, two migrations to this host that both find no SR of a
        shared iSCSI target both introduce it, and the second gets
        ``SR_UUID_EXISTS`` (or ``PBD_EXISTS``) from XAPI. Locks are made
        on first use and kept (one per SR name ever connected).
        """
        with self._lock:
            return self._connect_locks.setdefault(sr_uuid, threading.Lock())

    def note_introduced(self, instance_uuid, sr_uuid):
        """Record that this migration introduced ``sr_uuid`` here."""
        with self._lock:
            self._introduced.setdefault(sr_uuid, set()).add(instance_uuid)

    def introduced_in_flight(self, sr_uuid):
        """Whether a migration in flight introduced ``sr_uuid``.

        Such an SR is not "there before" for a second migration that finds
        it: its cleanup may forget it once nobody holds or uses it.
        """
        with self._lock:
            return bool(self._introduced.get(sr_uuid))

    def note_existing(self, instance_uuid, srs):
        """Record SRs that existed here before this migration used them.

        :param srs: ``{sr_uuid: [vdi_ref]}``, the VDIs this migration
            connected in each.
        """
        with self._lock:
            mine = self._existing.setdefault(instance_uuid, {})
            for sr_uuid, vdi_refs in srs.items():
                mine.setdefault(sr_uuid, []).extend(vdi_refs)

    def existing(self, instance_uuid):
        """``{sr_uuid: [vdi_ref]}`` this migration found there (a copy)."""
        with self._lock:
            return {sr_uuid: list(refs) for sr_uuid, refs in
                    self._existing.get(instance_uuid, {}).items()}

    def knows(self, instance_uuid):
        """Whether this process holds a claim record of this migration."""
        with self._lock:
            return instance_uuid in self._srs

    def srs_of(self, instance_uuid):
        """Return this instance's claimed ``[(sr_uuid, device_config)]``."""
        with self._lock:
            return [(name, dict(config))
                    for name, config in self._srs.get(instance_uuid, ())]

    def release(self, instance_uuid):
        """Drop every claim of this instance's migration."""
        with self._lock:
            self._srs.pop(instance_uuid, None)
            self._existing.pop(instance_uuid, None)
            for sr_uuid in list(self._introduced):
                self._introduced[sr_uuid].discard(instance_uuid)
                if not self._introduced[sr_uuid]:
                    del self._introduced[sr_uuid]
            for sr_uuid in list(self._holders):
                holders = self._holders[sr_uuid]
                holders.discard(instance_uuid)
                if not holders:
                    del self._holders[sr_uuid]

    def holders(self, sr_uuid):
        """Return the instance uuids that hold ``sr_uuid`` (a new set)."""
        with self._lock:
            return set(self._holders.get(sr_uuid, ()))

    def forget_unless_held(self, instance_uuid, sr_uuid, forget):
        """Call ``forget()`` unless another migration holds ``sr_uuid``.

        Runs under the lock, so no migration can claim the SR between the
        check and the forget. Returns ``forget()``'s result, or False when
        the SR was kept.
        """
        with self._lock:
            others = self._holders.get(sr_uuid, set()) - {instance_uuid}
            if others:
                return False
            return forget()
