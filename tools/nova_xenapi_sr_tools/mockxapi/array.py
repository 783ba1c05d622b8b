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

"""The simulated iSCSI array every pool reaches.

The array exports targets, each at a portal (address and port) with an
IQN, optional CHAP credentials, and LUNs. Every LUN has a serial; the VDI
that a raw ``iscsi`` SR shows for a LUN takes its uuid and ``SCSIid`` from
that serial, so the same LUN has the same VDI uuid in every pool, as on a
real array.
"""

import hashlib
import threading
import uuid

#: Namespace for VDI uuids derived from LUN serials.
LUN_NAMESPACE = uuid.UUID('5c5e6d0a-2f0b-4b55-9a3e-6f1d5e0b1a27')


def scsi_id(serial):
    """The SCSI id (``SCSIid`` in ``sm_config``) of a LUN serial."""
    return '36' + hashlib.sha1(serial.encode('utf-8')).hexdigest()[:31]


def vdi_uuid(serial):
    """The VDI uuid a raw iSCSI SR reports for a LUN serial."""
    return str(uuid.uuid5(LUN_NAMESPACE, scsi_id(serial)))


class Lun(object):
    def __init__(self, lun_id, serial, size, volume_id=None):
        self.lun_id = int(lun_id)
        self.serial = serial
        self.size = int(size)
        self.volume_id = volume_id
        #: logical volumes when the LUN carries an ``lvmoiscsi`` SR:
        #: ``{vdi_uuid: size}``, shared by every pool that reaches it.
        self.lvs = {}

    @property
    def scsi_id(self):
        return scsi_id(self.serial)

    @property
    def vdi_uuid(self):
        return vdi_uuid(self.serial)

    def to_dict(self):
        return {'lun': self.lun_id, 'serial': self.serial,
                'size': self.size, 'volume_id': self.volume_id,
                'lvs': dict(self.lvs)}


class Target(object):
    def __init__(self, address, port, iqn, chap=None):
        self.address = address
        self.port = int(port)
        self.iqn = iqn
        #: ``(user, password)`` or None
        self.chap = tuple(chap) if chap else None
        self.luns = {}

    def to_dict(self):
        return {'address': self.address, 'port': self.port,
                'iqn': self.iqn,
                'chap': list(self.chap) if self.chap else None,
                'luns': [lun.to_dict() for _, lun in
                         sorted(self.luns.items())]}


class IscsiArray(object):
    """Targets keyed by ``(address, port, iqn)``; thread-safe.

    Targets and their LUN tables change only under the array lock; read a
    target's LUNs through :meth:`luns`.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.targets = {}

    def add_target(self, address, port, iqn, chap=None):
        key = (address, int(port), iqn)
        with self._lock:
            target = self.targets.get(key)
            if target is None:
                target = self.targets[key] = Target(address, port, iqn, chap)
            elif chap and tuple(chap) != target.chap:
                raise ValueError('target %s:%s %s already has other CHAP '
                                 'credentials' % key)
            return target

    def add_lun(self, address, port, iqn, lun_id, serial=None, size=None,
                volume_id=None, chap=None):
        target = self.add_target(address, port, iqn, chap)
        with self._lock:
            if int(lun_id) in target.luns:
                raise ValueError('LUN %s already exists on %s' %
                                 (lun_id, iqn))
            lun = Lun(lun_id, serial or str(uuid.uuid4()),
                      size or 1024 ** 3, volume_id)
            target.luns[lun.lun_id] = lun
            return lun

    def remove_lun(self, address, port, iqn, lun_id):
        with self._lock:
            del self.targets[(address, int(port), iqn)].luns[int(lun_id)]

    def luns(self, target):
        """A snapshot list of ``target``'s LUNs.

        Readers (``SR.scan``, ``PBD.plug``) iterate this copy, taken under
        the array lock, never ``target.luns`` itself, which
        :meth:`add_lun` and :meth:`remove_lun` change from other threads.
        """
        with self._lock:
            return list(target.luns.values())

    def portal_exists(self, address, port):
        with self._lock:
            return any(a == address and p == int(port)
                       for (a, p, _) in self.targets)

    def target(self, address, port, iqn):
        with self._lock:
            return self.targets.get((address, int(port), iqn))

    def to_list(self):
        with self._lock:
            return [t.to_dict() for _, t in sorted(self.targets.items())]
