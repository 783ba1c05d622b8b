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

"""How nova's XenAPI driver names the SR of an iSCSI volume.

Two styles exist in the field (nova bug 1566622):

* ``legacy`` (before Mitaka): ``"FA15E-D15C-" + volume_id``, one SR per
  volume. Not an RFC 4122 uuid, but XAPI accepts it.
* ``uuid5`` (Mitaka and later): ``uuid5(SR_NAMESPACE, "target/port/IQN")``,
  one SR per iSCSI target, shared by every LUN behind it.

The uuid5 derivation here is deliberately bug-compatible with nova 21's
``nova.virt.xenapi.volume_utils.parse_sr_info``: the portal is split on
``':'`` with no IPv6 handling, a ``,tpgt`` suffix stays part of the port,
and a portal without a colon takes ``[xenserver] target_port`` (and an empty
host ``[xenserver] target_host``). SRs that exist today were named from
exactly those strings, so "fixing" the parsing here would name them wrong.
"""

import uuid

from nova_xenapi_sr import exception

#: Namespace nova uses for uuid5 SR names.
SR_NAMESPACE = uuid.UUID('3cca4135-a809-5bb3-af62-275fbfe87178')

#: Prefix of pre-Mitaka SR names.
LEGACY_PREFIX = 'FA15E-D15C-'

LEGACY = 'legacy'
UUID5 = 'uuid5'
UNKNOWN = 'unknown'

#: XAPI ``device_config`` keys of a raw ``iscsi`` SR, in nova's order.
DEVICE_CONFIG_KEYS = ('target', 'port', 'targetIQN', 'chapuser',
                      'chappassword')


def _nova_target_defaults():
    """Return nova's ``[xenserver] target_host`` and ``target_port``.

    Imported lazily so that the naming rules (and the mock XAPI, which uses
    them) load without nova's configuration machinery.
    """
    try:
        import nova.conf
    except ImportError:  # pragma: no cover - nova is always there on nodes
        return None, 3260
    conf = nova.conf.CONF
    return conf.xenserver.target_host, conf.xenserver.target_port


def _required(connection_data, key, volume_id):
    if not isinstance(connection_data, dict):
        raise exception.InvalidConnectionData(
            volume_id, 'connection_data',
            'is a %s, not a dict' % type(connection_data).__name__)
    if key not in connection_data:
        raise exception.InvalidConnectionData(volume_id, key, 'is missing')
    return connection_data[key]


def _volume_id(connection_data):
    volume_id = _required(connection_data, 'volume_id', None)
    if volume_id is None:
        raise exception.InvalidConnectionData(None, 'volume_id', 'is null')
    return str(volume_id)


def iscsi_target(connection_data):
    """Return ``(target, port, targetIQN)`` as nova 21 parses them.

    :raises InvalidConnectionData: a key nova needs is missing or empty.
    """
    volume_id = _volume_id(connection_data)
    portal = _required(connection_data, 'target_portal', volume_id)
    iqn = _required(connection_data, 'target_iqn', volume_id)
    if portal and not isinstance(portal, str):
        # nova tests the portal for truth first: a falsy value of any type
        # (None, 0, empty) takes the [xenserver] defaults.
        raise exception.InvalidConnectionData(
            volume_id, 'target_portal', 'is not a string: %r' % (portal,))
    default_host, default_port = _nova_target_defaults()
    host = portal.split(':')[0] if portal else ''
    if not host:
        host = default_host
    if portal and ':' in portal:
        port = portal.split(':')[1]
    else:
        port = default_port
    if host is None:
        raise exception.InvalidConnectionData(
            volume_id, 'target_portal',
            'names no target host and [xenserver] target_host is unset')
    if iqn is None:
        raise exception.InvalidConnectionData(volume_id, 'target_iqn',
                                              'is null')
    return host, port, iqn


def legacy_sr_uuid(volume_id):
    """Return the pre-Mitaka SR name of a volume."""
    return LEGACY_PREFIX + str(volume_id)


def uuid5_sr_uuid(connection_data):
    """Return the Mitaka-and-later SR name for iSCSI connection data.

    Equal to the uuid nova 21's ``parse_sr_info`` derives for the same dict
    (when it carries no ``sr_uuid``).

    :raises InvalidConnectionData: the data cannot name an iSCSI target.
    """
    return target_sr_uuid(*iscsi_target(connection_data))


def target_sr_uuid(host, port, iqn):
    """Return the uuid5 SR name of one iSCSI target.

    ``host``, ``port`` and ``iqn`` as nova parsed them, or as an SR's
    ``device_config`` holds them (``target``, ``port``, ``targetIQN``).
    """
    identity = '%s/%s/%s' % (host, port, iqn)
    return str(uuid.uuid5(SR_NAMESPACE, identity))


def sr_uuid_candidates(connection_data):
    """Return ``(uuid5, legacy)``: the names this volume's SR may have."""
    return (uuid5_sr_uuid(connection_data),
            legacy_sr_uuid(_volume_id(connection_data)))


def naming_style(sr_uuid):
    """Classify an SR uuid as ``'legacy'``, ``'uuid5'`` or ``'unknown'``."""
    if not isinstance(sr_uuid, str):
        return UNKNOWN
    if sr_uuid.startswith(LEGACY_PREFIX) and len(sr_uuid) > len(LEGACY_PREFIX):
        return LEGACY
    try:
        parsed = uuid.UUID(sr_uuid)
    except ValueError:
        return UNKNOWN
    if parsed.version == 5 and str(parsed) == sr_uuid.lower():
        return UUID5
    return UNKNOWN


def device_config(connection_data):
    """Return the XAPI ``device_config`` nova builds for an iSCSI volume.

    Keys are ``target``, ``port``, ``targetIQN`` and, for CHAP,
    ``chapuser`` and ``chappassword``. Values are strings, as XAPI's
    ``(string -> string) map`` requires. A new dict is returned; the
    argument is not modified.

    :raises InvalidConnectionData: the data cannot name an iSCSI target, or
        CHAP is requested without credentials.
    """
    host, port, iqn = iscsi_target(connection_data)
    config = {'target': host, 'port': str(port), 'targetIQN': iqn}
    if connection_data.get('auth_method') == 'CHAP':
        volume_id = _volume_id(connection_data)
        for src, dst in (('auth_username', 'chapuser'),
                         ('auth_password', 'chappassword')):
            value = _required(connection_data, src, volume_id)
            if value is None:
                raise exception.InvalidConnectionData(
                    volume_id, src, 'is empty while auth_method is CHAP')
            config[dst] = value
    return config
