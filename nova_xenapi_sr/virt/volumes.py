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

"""The iSCSI volumes of an instance, as the SR naming rules see them."""

import collections

from nova_xenapi_sr import exception
from nova_xenapi_sr import naming
from nova_xenapi_sr.virt import where

#: One iSCSI volume of an instance, with the two names its SR may have.
Volume = collections.namedtuple(
    'Volume', ['volume_id', 'connection_data', 'uuid5', 'legacy'])


def _check(volume_id, data):
    """Refuse values nova would pass on to XAPI and fail on far later."""
    iqn = data.get('target_iqn')
    if iqn is not None and not isinstance(iqn, str):
        raise exception.InvalidConnectionData(
            volume_id, 'target_iqn', 'is not a string: %r' % (iqn,))
    if iqn == '':
        raise exception.InvalidConnectionData(volume_id, 'target_iqn',
                                              'is empty')
    portal = data.get('target_portal')
    if isinstance(portal, str) and ':' in portal:
        port = portal.split(':')[1]
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise exception.InvalidConnectionData(
                volume_id, 'target_portal',
                'has no valid TCP port after ":": %r' % (portal,))
    if 'target_lun' in data:
        lun = data['target_lun']
        if isinstance(lun, bool) or not (
                isinstance(lun, int) or
                (isinstance(lun, str) and lun.isdigit())):
            raise exception.InvalidConnectionData(
                volume_id, 'target_lun', 'is not a LUN number: %r' % (lun,))
    if not where.is_safe(volume_id):
        raise exception.InvalidConnectionData(
            volume_id, 'volume_id', 'holds characters no Cinder volume id '
            'has (letters, digits, "-", "_", ".", ":" only)')


def iscsi_volumes(block_device_info):
    """Return a :class:`Volume` for every iSCSI volume in the mapping.

    Volumes whose connection data already names an SR (``sr_uuid``, which
    nova honours on both sides) and non-iSCSI volumes are skipped: their SR
    name does not depend on the naming style. Nothing is modified.

    :raises InvalidConnectionData: connection data is malformed; the message
        names the volume (its id, else the attachment's ``serial``, which
        nova sets to the volume id) and the key.
    """
    result = []
    mappings = (block_device_info or {}).get('block_device_mapping') or []
    for bdm in mappings:
        connection_info = bdm.get('connection_info') or {}
        if not isinstance(connection_info, dict):
            raise exception.InvalidConnectionData(
                None, 'connection_info', 'is a %s, not a dict'
                % type(connection_info).__name__)
        if connection_info.get('driver_volume_type') != 'iscsi':
            continue
        serial = connection_info.get('serial')
        data = connection_info.get('data')
        if not isinstance(data, dict):
            raise exception.InvalidConnectionData(
                serial, 'connection_info["data"]', 'is not a dict')
        if 'sr_uuid' in data:
            continue
        try:
            uuid5, legacy = naming.sr_uuid_candidates(data)
        except exception.InvalidConnectionData as exc:
            if exc.volume_id is None and serial is not None:
                raise exception.InvalidConnectionData(serial, exc.key,
                                                      exc.problem)
            raise
        volume_id = str(data['volume_id'])
        _check(volume_id, data)
        result.append(Volume(volume_id, data, uuid5, legacy))
    return result
