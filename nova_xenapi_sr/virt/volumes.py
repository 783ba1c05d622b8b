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

#: One iSCSI volume of an instance, with the two names its SR may have.
Volume = collections.namedtuple(
    'Volume', ['volume_id', 'connection_data', 'uuid5', 'legacy'])


def iscsi_volumes(block_device_info):
    """Return a :class:`Volume` for every iSCSI volume in the mapping.

    Volumes whose connection data already names an SR (``sr_uuid``, which
    nova honours on both sides) and non-iSCSI volumes are skipped: their SR
    name does not depend on the naming style. Nothing is modified.

    :raises InvalidConnectionData: connection data is malformed; the message
        names the volume and the key.
    """
    result = []
    mappings = (block_device_info or {}).get('block_device_mapping') or []
    for bdm in mappings:
        connection_info = bdm.get('connection_info') or {}
        if connection_info.get('driver_volume_type') != 'iscsi':
            continue
        data = connection_info.get('data')
        if not isinstance(data, dict):
            raise exception.InvalidConnectionData(
                None, 'connection_info["data"]', 'is not a dict')
        if 'sr_uuid' in data:
            continue
        uuid5, legacy = naming.sr_uuid_candidates(data)
        result.append(Volume(str(data['volume_id']), data, uuid5, legacy))
    return result
