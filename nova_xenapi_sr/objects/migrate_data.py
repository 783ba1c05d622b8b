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

"""``XenapiLiveMigrateData`` 1.5: the source's SR uuids travel with it.

A standard oslo.versionedobjects bump of nova 21's class (1.4): the object
serializes at its class version, ``obj_make_compatible`` drops the new
field for older receivers, and an object hydrated from a 1.4 primitive
keeps version 1.4 when it is sent on (oslo.versionedobjects sets the
instance's ``VERSION`` from the primitive), so data from a stock node stays
readable by stock nodes.

Importing this module registers the class (see
``nova_xenapi_sr.objects``).
"""

from nova.objects import base
from nova.objects import fields
from nova.objects import migrate_data as nova_migrate_data
from oslo_utils import versionutils


@base.NovaObjectRegistry.register
class XenapiLiveMigrateData(nova_migrate_data.XenapiLiveMigrateData):
    # Version 1.0: Initial version
    # Version 1.1: Added vif_uuid_map
    # Version 1.2: Added old_vol_attachment_ids
    # Version 1.3: Added wait_for_vif_plugged
    # Version 1.4: Inherited vifs from LiveMigrateData
    # Version 1.5: Added volume_sr_uuid_map (nova-xenapi-sr)
    VERSION = '1.5'

    fields = {
        #: Set by the source in ``check_can_live_migrate_source``: for every
        #: attached volume, ``{volume_id: sr_uuid}`` of the SR the source
        #: really uses (legacy ``FA15E-D15C-<volume_id>`` or uuid5). The
        #: destination introduces the SR under that uuid. Not to be
        #: confused with nova's ``sr_uuid_map`` ({sr_uuid: destination
        #: SR ref}, filled in by the destination).
        'volume_sr_uuid_map': fields.DictOfStringsField(),
    }

    @classmethod
    def _obj_from_primitive(cls, context, objver, primitive):
        # oslo's Dict field fails on a non-dict with an AttributeError
        # ("'list' object has no attribute 'items'"), naming neither the
        # object nor the field: refuse what a broken or hostile peer sends
        # with a ValueError that says what is wrong.
        data = cls._obj_primitive_field(primitive, 'data')
        if isinstance(data, dict) and 'volume_sr_uuid_map' in data:
            value = data['volume_sr_uuid_map']
            if not isinstance(value, dict):
                raise ValueError(
                    'XenapiLiveMigrateData %s: volume_sr_uuid_map must be a '
                    'dict of volume id -> SR uuid strings, not a %s'
                    % (objver, type(value).__name__))
        return super(XenapiLiveMigrateData, cls)._obj_from_primitive(
            context, objver, primitive)

    def obj_make_compatible(self, primitive, target_version):
        super(XenapiLiveMigrateData, self).obj_make_compatible(
            primitive, target_version)
        target_version = versionutils.convert_version_to_tuple(target_version)
        if target_version < (1, 5):
            primitive.pop('volume_sr_uuid_map', None)


#: Classes that ``nova_xenapi_sr.objects.register_all()`` registers.
REGISTERED_CLASSES = (XenapiLiveMigrateData,)
