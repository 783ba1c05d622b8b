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

"""The object database of one simulated pool.

Each pool has its own tables of records keyed by opaque ref. Refs are
``OpaqueRef:<uuid4>``, so they are unique across pools (and processes).
Records hold xapi's field names; int64 fields are kept as decimal strings,
exactly as they travel. One-to-many fields (``SR.PBDs``, ``VM.VBDs``, ...)
are computed from the "many" side on every read, so they cannot drift.

The database does no locking; the server holds the world lock around every
handler (see ``server``).
"""

import collections
import copy
import uuid

from nova_xenapi_sr_tools.mockxapi import errors

NULL_REF = 'OpaqueRef:NULL'

#: Default field values per class. Every record has every field.
SCHEMA = {
    'pool': {
        'uuid': '', 'name_label': '', 'name_description': '',
        'master': NULL_REF, 'default_SR': NULL_REF, 'suspend_image_SR':
        NULL_REF, 'crash_dump_SR': NULL_REF, 'other_config': {},
        'ha_enabled': False, 'restrictions': {}, 'tags': [],
    },
    'host': {
        'uuid': '', 'name_label': '', 'name_description': '',
        'hostname': '', 'address': '', 'enabled': True,
        'API_version_major': '2', 'API_version_minor': '16',
        'API_version_vendor': 'XenSource', 'software_version': {},
        'other_config': {}, 'capabilities': [], 'cpu_info': {},
        'memory_overhead': '0', 'metrics': NULL_REF, 'suspend_image_sr':
        NULL_REF, 'crash_dump_sr': NULL_REF, 'edition': 'xcp-ng',
        'license_params': {}, 'tags': [], 'logging': {},
    },
    'VM': {
        'uuid': '', 'name_label': '', 'name_description': '',
        'power_state': 'Halted', 'is_a_template': False,
        'is_a_snapshot': False, 'is_control_domain': False,
        'domid': '-1', 'resident_on': NULL_REF, 'affinity': NULL_REF,
        'other_config': {}, 'xenstore_data': {}, 'PV_kernel': '',
        'PV_ramdisk': '', 'PV_args': '', 'PV_bootloader': '',
        'HVM_boot_policy': '', 'VCPUs_max': '1', 'VCPUs_at_startup': '1',
        'memory_static_max': '1073741824', 'memory_dynamic_max':
        '1073741824', 'memory_dynamic_min': '1073741824',
        'memory_static_min': '1073741824', 'memory_overhead': '0',
        'platform': {}, 'blocked_operations': {}, 'metrics': NULL_REF,
        'guest_metrics': NULL_REF, 'tags': [], 'snapshot_of': NULL_REF,
        'parent': NULL_REF, 'user_version': '1',
    },
    'VBD': {
        'uuid': '', 'VM': NULL_REF, 'VDI': NULL_REF, 'userdevice': '0',
        'device': '', 'bootable': False, 'mode': 'RW', 'type': 'Disk',
        'empty': False, 'currently_attached': False, 'unpluggable': True,
        'other_config': {}, 'qos_algorithm_type': '',
        'qos_algorithm_params': {}, 'status_code': '0',
        'status_detail': '', 'storage_lock': False,
    },
    'VDI': {
        'uuid': '', 'name_label': '', 'name_description': '',
        'SR': NULL_REF, 'type': 'user', 'sharable': False,
        'read_only': False, 'managed': True, 'missing': False,
        'other_config': {}, 'xenstore_data': {}, 'sm_config': {},
        'location': '', 'virtual_size': '0', 'physical_utilisation': '0',
        'is_a_snapshot': False, 'snapshot_of': NULL_REF,
        'allowed_operations': [], 'current_operations': {}, 'tags': [],
        'storage_lock': False, 'parent': NULL_REF, 'on_boot': 'persist',
        'allow_caching': False, 'metadata_latest': False,
    },
    'SR': {
        'uuid': '', 'name_label': '', 'name_description': '',
        'type': '', 'content_type': '', 'shared': False,
        'other_config': {}, 'sm_config': {}, 'physical_size': '0',
        'physical_utilisation': '0', 'virtual_allocation': '0',
        'allowed_operations': [], 'current_operations': {}, 'tags': [],
        'is_tools_sr': False, 'clustered': False, 'local_cache_enabled':
        False,
    },
    'PBD': {
        'uuid': '', 'host': NULL_REF, 'SR': NULL_REF, 'device_config': {},
        'currently_attached': False, 'other_config': {},
    },
    'PIF': {
        'uuid': '', 'device': 'eth0', 'network': NULL_REF,
        'host': NULL_REF, 'MAC': '', 'MTU': '1500', 'VLAN': '-1',
        'IP': '', 'netmask': '', 'gateway': '', 'DNS': '', 'IPv6': [],
        'ipv6_configuration_mode': 'None', 'ip_configuration_mode':
        'Static', 'management': False, 'physical': True,
        'currently_attached': True, 'other_config': {},
    },
    'network': {
        'uuid': '', 'name_label': '', 'name_description': '',
        'bridge': '', 'MTU': '1500', 'other_config': {}, 'tags': [],
        'managed': True,
    },
    'VIF': {
        'uuid': '', 'device': '0', 'network': NULL_REF, 'VM': NULL_REF,
        'MAC': '', 'MTU': '1500', 'currently_attached': False,
        'other_config': {}, 'qos_algorithm_type': '',
        'qos_algorithm_params': {}, 'locking_mode': 'network_default',
    },
    'task': {
        'uuid': '', 'name_label': '', 'name_description': '',
        'status': 'pending', 'progress': '0', 'result': '',
        'error_info': [], 'type': '', 'created': '', 'finished': '',
        'resident_on': NULL_REF, 'other_config': {}, 'subtask_of':
        NULL_REF, 'allowed_operations': [], 'current_operations': {},
    },
    'secret': {'uuid': '', 'value': '', 'other_config': {}},
    'SM': {
        'uuid': '', 'name_label': '', 'name_description': '', 'type': '',
        'vendor': 'mock', 'copyright': '', 'version': '1.0',
        'required_api_version': '1.0', 'capabilities': [], 'features': {},
        'configuration': {}, 'other_config': {}, 'driver_filename': '',
    },
    'GPU_group': {'uuid': '', 'name_label': '', 'name_description': '',
                  'PGPUs': [], 'VGPUs': [], 'other_config': {}},
    'PGPU': {'uuid': '', 'GPU_group': NULL_REF, 'host': NULL_REF,
             'enabled_VGPU_types': [], 'supported_VGPU_max_capacities': {},
             'other_config': {}},
    'PCI': {'uuid': '', 'host': NULL_REF, 'pci_id': '', 'other_config': {}},
    'console': {'uuid': '', 'protocol': 'rfb', 'location': '',
                'VM': NULL_REF, 'other_config': {}},
    'session': {'uuid': '', 'this_host': NULL_REF, 'this_user': NULL_REF,
                'last_active': '', 'pool': False, 'other_config': {},
                'originator': '', 'auth_user_name': ''},
}

#: Computed one-to-many fields: (class, field) -> (child class, child
#: field that points back).
BACKREFS = {
    ('host', 'PBDs'): ('PBD', 'host'),
    ('host', 'PIFs'): ('PIF', 'host'),
    ('host', 'resident_VMs'): ('VM', 'resident_on'),
    ('SR', 'PBDs'): ('PBD', 'SR'),
    ('SR', 'VDIs'): ('VDI', 'SR'),
    ('VDI', 'VBDs'): ('VBD', 'VDI'),
    ('VM', 'VBDs'): ('VBD', 'VM'),
    ('VM', 'VIFs'): ('VIF', 'VM'),
    ('VM', 'consoles'): ('console', 'VM'),
    ('network', 'VIFs'): ('VIF', 'network'),
    ('network', 'PIFs'): ('PIF', 'network'),
}

#: Fields a client may set (``set_*``); map fields among them also get
#: ``add_to_*`` / ``remove_from_*``.
WRITABLE = {
    'name_label', 'name_description', 'other_config', 'xenstore_data',
    'sm_config', 'tags', 'default_SR', 'suspend_image_SR', 'crash_dump_SR',
    'blocked_operations', 'platform', 'PV_args', 'VCPUs_max',
    'VCPUs_at_startup', 'userdevice', 'bootable', 'mode', 'MTU',
    'read_only', 'sharable', 'value', 'status', 'progress', 'result',
    'error_info', 'device_config', 'enabled', 'affinity', 'logging',
}

#: int64 fields (kept as decimal strings; ``Int`` in ``datamodel.ml``)
#: and float fields, for the type check of their setters.
INT64_FIELDS = {
    'VCPUs_max', 'VCPUs_at_startup', 'MTU', 'memory_static_max',
    'memory_dynamic_max', 'memory_dynamic_min', 'memory_static_min',
    'memory_overhead', 'virtual_size', 'physical_utilisation',
    'physical_size', 'virtual_allocation', 'domid', 'user_version',
    'status_code', 'VLAN', 'API_version_major', 'API_version_minor',
}
FLOAT_FIELDS = {'progress'}

#: Classes whose records do not appear on the wire as normal classes.
HIDDEN = {'session'}


def copy_value(value):
    """A copy of a record or field value: new dicts and lists, shared rest.

    Records hold strings, numbers, booleans and the immutable values
    XML-RPC decodes, in dicts and lists; this copies them several times
    faster than ``copy.deepcopy`` (``get_all_records`` of a large pool
    copies every record).
    """
    kind = type(value)
    if kind is dict:
        return {k: copy_value(v) for k, v in value.items()}
    if kind is list:
        return [copy_value(v) for v in value]
    if kind in _SHARED:
        return value
    return copy.deepcopy(value)


#: Value types :func:`copy_value` shares rather than copies.
_SHARED = frozenset((str, bool, int, float, type(None)))


def _copy_record(rec):
    # one level of copy_value inlined: most fields are strings
    return {k: (v if type(v) in _SHARED else copy_value(v))
            for k, v in rec.items()}


def new_ref():
    return 'OpaqueRef:%s' % uuid.uuid4()


def new_uuid():
    return str(uuid.uuid4())


def xapi_order(refs):
    """``refs`` in the order xapi's class-wide reads return them.

    A table is a map keyed by ref string (``db_cache_types.ml``
    ``StringMap``, ``String.compare``); ``db_cache_impl.ml`` ``read_refs``
    and ``find_refs_with_filter_internal`` fold over it in ascending order
    and cons each ref onto a list, so the list is in *descending* ref
    order, unrelated to the order the records were created in (refs are
    random).
    """
    return sorted(refs, reverse=True)


def fields_of(cls):
    """All field names of ``cls`` (stored and computed)."""
    names = set(SCHEMA[cls])
    names.update(f for (c, f) in BACKREFS if c == cls)
    return names


def is_map(cls, field):
    return isinstance(SCHEMA.get(cls, {}).get(field), dict)


def kind_of(cls, field):
    """How xapi unmarshals a value of this field (see :mod:`.unmarshal`)."""
    default = SCHEMA[cls][field]
    if isinstance(default, dict):
        return 'smap'
    if isinstance(default, list):
        return 'set'
    if isinstance(default, bool):
        return 'bool'
    if field in INT64_FIELDS:
        return 'int'
    if field in FLOAT_FIELDS:
        return 'float'
    return 'string'


class Database(object):
    """The tables of one pool."""

    def __init__(self):
        self.tables = collections.OrderedDict(
            (cls, collections.OrderedDict()) for cls in SCHEMA)

    def create(self, cls, ref=None, **fields):
        unknown = set(fields) - set(SCHEMA[cls])
        if unknown:
            raise ValueError('%s has no fields %s' % (cls, sorted(unknown)))
        rec = copy.deepcopy(SCHEMA[cls])
        rec['uuid'] = new_uuid()
        rec.update(copy.deepcopy(fields))
        ref = ref or new_ref()
        self.tables[cls][ref] = rec
        return ref

    def has(self, cls, ref):
        return cls in self.tables and ref in self.tables[cls]

    def get(self, cls, ref):
        """The live record; ``HANDLE_INVALID [cls, ref]`` if unknown.

        ``db_cache_types.ml`` raises ``DBCache_NotFound ("missing row",
        table, ref)``, which ``exnHelper.ml`` ``error_of_exn`` answers as
        ``HANDLE_INVALID [table, ref]``.
        """
        try:
            return self.tables[cls][ref]
        except (KeyError, TypeError):
            raise errors.XapiError(errors.HANDLE_INVALID, cls, ref)

    def destroy(self, cls, ref):
        self.get(cls, ref)
        del self.tables[cls][ref]

    def refs(self, cls):
        return list(self.tables[cls])

    def find(self, cls, **match):
        items = list(match.items())
        if not items:
            return list(self.tables[cls])
        # One comprehension filters on the first field; the others are
        # checked only on its matches (the scenario builder calls this
        # once per volume on tables of 10,000 records).
        key, value = items[0]
        found = [ref for ref, rec in self.tables[cls].items()
                 if rec.get(key) == value]
        if len(items) > 1:
            table = self.tables[cls]
            found = [ref for ref in found
                     if all(table[ref].get(k) == v for k, v in items[1:])]
        return found

    def by_uuid(self, cls, value):
        """The ref of the record with this uuid.

        ``db_cache_impl.ml`` ``db_get_by_uuid``: no match raises
        ``Read_missing_uuid``, which ``exnHelper.ml`` answers as
        ``UUID_INVALID [table, uuid]``.
        """
        for ref, rec in self.tables[cls].items():
            if rec['uuid'] == value:
                return ref
        raise errors.XapiError(errors.UUID_INVALID, cls, value)

    def field(self, cls, ref, name):
        """One field, computed fields included, as a copy."""
        rec = self.get(cls, ref)
        if (cls, name) in BACKREFS:
            child, back = BACKREFS[(cls, name)]
            return self.find(child, **{back: ref})
        return copy_value(rec[name])

    def export(self, cls, ref):
        """The full record as the API returns it (a deep copy)."""
        rec = _copy_record(self.get(cls, ref))
        for (c, name), (child, back) in BACKREFS.items():
            if c == cls:
                rec[name] = self.find(child, **{back: ref})
        return rec

    def export_all(self, cls):
        """Every record of ``cls`` as the API returns it.

        The computed fields are grouped in one pass over each child table,
        so a pool with many records answers in linear time.
        """
        children = {}
        for (c, name), (child, back) in BACKREFS.items():
            if c == cls:
                groups = collections.defaultdict(list)
                for child_ref, rec in self.tables[child].items():
                    groups[rec.get(back)].append(child_ref)
                children[name] = groups
        result = collections.OrderedDict()
        for ref, rec in self.tables[cls].items():
            rec = _copy_record(rec)
            for name, groups in children.items():
                rec[name] = list(groups.get(ref, ()))
            result[ref] = rec
        return result
