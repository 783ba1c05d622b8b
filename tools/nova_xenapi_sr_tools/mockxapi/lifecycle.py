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

"""Creating, plugging and destroying VBDs, VIFs and networks.

Records passed to ``*.create`` were unmarshalled by the dispatcher (a
missing field without a default or a value of the wrong type is
``INTERNAL_ERROR``, see :mod:`.unmarshal`); only the constructor's fields
are taken from them, as xapi takes them. Each rule below names its source
(``xen-api`` v1.249.42, ``ocaml/xapi``).
"""

import hashlib

from nova_xenapi_sr_tools.mockxapi import api
from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import model
from nova_xenapi_sr_tools.mockxapi import unmarshal

#: ``xapi_network.ml`` ``bridge_blacklist``: prefixes a client may not give
#: a bridge.
BRIDGE_BLACKLIST = ('xen', 'xapi', 'vif', 'tap', 'eth')

#: ``xapi_globs.ml``: the other_config key of the host-internal management
#: network, which ``network.destroy`` refuses.
INTERNAL_MANAGEMENT_KEY = 'is_host_internal_management_network'


def _ctor(cls, record):
    """The constructor's fields of an unmarshalled record (a copy).

    ``gen_server.ml`` reads only the class's constructor fields
    (``ctor_fields``); any other key of the record is ignored.
    """
    names = [name for name, _kind, _default in unmarshal.CTOR_FIELDS[cls]]
    return {k: v for k, v in record.items()
            if k in names and k in model.SCHEMA[cls]}


def _power_error(db, vm_ref, vm, plugged, op, device_ref):
    """The device's plug/unplug error as ``valid_operations`` sets it.

    ``xapi_vbd_helpers.ml`` / ``xapi_vif_helpers.ml`` ``valid_operations``:
    on a running VM an attached device is ``DEVICE_ALREADY_ATTACHED
    [ref]`` for ``plug`` and a detached one ``DEVICE_ALREADY_DETACHED
    [ref]`` for ``unplug``; otherwise ``VM_BAD_POWER_STATE [vm, "running",
    state]`` (``Record_util.power_to_string``: lower case).
    """
    if vm['power_state'] == 'Running':
        if plugged and op == 'plug':
            return errors.XapiError('DEVICE_ALREADY_ATTACHED', device_ref)
        if not plugged and op == 'unplug':
            return errors.XapiError('DEVICE_ALREADY_DETACHED', device_ref)
        return None
    return errors.XapiError(errors.VM_BAD_POWER_STATE, vm_ref, 'running',
                            vm['power_state'].lower())


# -- VBD ---------------------------------------------------------------------

@api.message('VBD.create', 1, kinds=(('record', 'VBD'),))
def vbd_create(ctx, record):
    db = ctx.db
    fields = _ctor('VBD', record)
    vm, vdi = fields['VM'], fields['VDI']
    cd, empty = fields['type'].lower() == 'cd', fields['empty']
    # xapi_vbd.ml create, in its order: a non-empty VBD's VDI is read
    # (HANDLE_INVALID ["VDI", ref]); a CD must be read-only
    # (VBD_CDS_MUST_BE_READONLY []); only a CD may be empty
    # (VBD_NOT_REMOVABLE_MEDIA ["in constructor"]); a RW VBD of a
    # read-only VDI is VDI_READONLY [vdi]; then the VM is read
    if not empty:
        db.get('VDI', vdi)
    if cd and fields['mode'].upper() != 'RO':
        raise errors.XapiError('VBD_CDS_MUST_BE_READONLY')
    if empty and not cd:
        raise errors.XapiError('VBD_NOT_REMOVABLE_MEDIA', 'in constructor')
    if fields['mode'].upper() == 'RW' and db.get('VDI', vdi)['read_only']:
        raise errors.XapiError('VDI_READONLY', vdi)
    db.get('VM', vm)
    # a userdevice the VM already uses is DEVICE_ALREADY_EXISTS
    # [userdevice] (xapi also matches other spellings of one device,
    # "1" and "xvdb"; the mock compares the strings)
    userdevice = fields['userdevice']
    for other in db.find('VBD', VM=vm):
        if db.get('VBD', other)['userdevice'] == userdevice:
            raise errors.XapiError('DEVICE_ALREADY_EXISTS', userdevice)
    return db.create('VBD', **fields)


@api.message('VBD.destroy', 1, kinds=('string',))
def vbd_destroy(ctx, ref):
    # xapi_vbd_helpers.ml destroy: "unplug first", naming the VM's uuid
    # (Db.VM.get_uuid: HANDLE_INVALID when that VM is gone)
    rec = ctx.db.get('VBD', ref)
    if rec['currently_attached']:
        vm_uuid = ctx.db.get('VM', rec['VM'])['uuid']
        raise errors.XapiError(errors.OPERATION_NOT_ALLOWED,
                               "VBD '%s' still attached to '%s'"
                               % (rec['uuid'], vm_uuid))
    ctx.db.destroy('VBD', ref)
    return ''


def _vbd_operation(ctx, ref, op):
    """``xapi_vbd_helpers.ml`` ``assert_operation_valid`` for plug/unplug.

    ``valid_operations`` reads the VM (HANDLE_INVALID) and, for a VBD that
    is not empty, the VDI (HANDLE_INVALID ["VDI", ref] when it is gone),
    then the first error it set wins: ``VBD_NOT_UNPLUGGABLE [vbd]``
    (unplug), the power state (:func:`_power_error`), ``VDI_NOT_MANAGED
    [vbd]``.
    """
    db = ctx.db
    rec = db.get('VBD', ref)
    vm = db.get('VM', rec['VM'])
    vdi = None if rec['empty'] else db.get('VDI', rec['VDI'])
    if op == 'unplug' and not rec['unpluggable']:
        raise errors.XapiError('VBD_NOT_UNPLUGGABLE', ref)
    error = _power_error(db, rec['VM'], vm, rec['currently_attached'], op,
                         ref)
    if error is not None:
        raise error
    if vdi is not None and not vdi['managed']:
        raise errors.XapiError('VDI_NOT_MANAGED', ref)
    return rec


@api.message('VBD.plug', 1, kinds=('string',))
def vbd_plug(ctx, ref):
    _vbd_operation(ctx, ref, 'plug')['currently_attached'] = True
    return ''


@api.message('VBD.unplug', 1, kinds=('string',))
def vbd_unplug(ctx, ref):
    _vbd_operation(ctx, ref, 'unplug')['currently_attached'] = False
    return ''


# -- VIF ---------------------------------------------------------------------

def generated_mac(device, seed):
    """``xapi_vif_helpers.ml`` ``gen_mac``: a MAC from the VM's mac_seed.

    ``2 * device + 1`` MD5 rounds of the seed give the first four bytes,
    one more round the last two; ``Record_util.mac_from_int_array`` sets
    the locally administered bit and clears the multicast bit.
    """
    data = seed.encode('utf-8')
    for _ in range(2 * int(device) + 1):
        data = hashlib.md5(data).digest()
    second = hashlib.md5(data).digest()
    octets = [data[0], data[1], data[2], data[3], second[1], second[2]]
    octets[0] = (octets[0] | 0x2) & ~0x1
    return ':'.join('%02x' % o for o in octets)


def _valid_mac(mac):
    # helpers.ml is_valid_MAC: six ':'-separated pairs of hex digits
    parts = mac.split(':')
    return len(parts) == 6 and all(
        len(p) == 2 and all(c in '0123456789abcdefABCDEF' for c in p)
        for p in parts)


def _int_of_string(text):
    # OCaml int_of_string, as valid_device uses it
    return unmarshal.INT64.match(text) is not None


@api.message('VIF.create', 1, kinds=(('record', 'VIF'),))
def vif_create(ctx, record):
    db = ctx.db
    fields = _ctor('VIF', record)
    device, vm = fields['device'], fields['VM']
    # xapi_vif_helpers.ml create, in its order: the network is read
    # (is_sriov_network: HANDLE_INVALID ["network", ref]); the VM's
    # mac_seed is looked up in a try (an unknown VM is no error yet); a
    # device that is not an integer is INVALID_DEVICE [device]; without a
    # mac_seed an invalid MAC is MAC_INVALID [mac], with one an empty MAC
    # is generated (gen_mac); the device must be new among the VM's VIFs
    # (Db.VM.get_VIFs: HANDLE_INVALID ["VM", ref]; DEVICE_ALREADY_EXISTS
    # [device]); the VIF starts detached
    db.get('network', fields['network'])
    seed = None
    if db.has('VM', vm):
        seed = db.get('VM', vm)['other_config'].get('mac_seed')
    if not _int_of_string(device):
        raise errors.XapiError('INVALID_DEVICE', device)
    if seed is not None and fields['MAC'] == '':
        fields['MAC'] = generated_mac(device, seed)
    if not _valid_mac(fields['MAC']):
        raise errors.XapiError('MAC_INVALID', fields['MAC'])
    db.get('VM', vm)
    for other in db.find('VIF', VM=vm):
        if db.get('VIF', other)['device'] == device:
            raise errors.XapiError('DEVICE_ALREADY_EXISTS', device)
    return db.create('VIF', **fields)


@api.message('VIF.destroy', 1, kinds=('string',))
def vif_destroy(ctx, ref):
    # xapi_vif_helpers.ml destroy: Helpers.is_running (the VM's domid is
    # not -1; HANDLE_INVALID ["VM", ref] when the VM is gone) and attached
    # is OPERATION_NOT_ALLOWED
    rec = ctx.db.get('VIF', ref)
    running = ctx.db.get('VM', rec['VM'])['domid'] != '-1'
    if running and rec['currently_attached']:
        raise errors.XapiError(errors.OPERATION_NOT_ALLOWED,
                               'VIF currently attached to a running VM')
    ctx.db.destroy('VIF', ref)
    return ''


def _is_domain_zero(db, vm_ref, vm):
    # helpers.ml is_domain_zero: a control domain resident on a host
    return vm['is_control_domain'] and db.has('host', vm['resident_on'])


def _vif_operation(ctx, ref, op):
    """``xapi_vif_helpers.ml`` ``valid_operations`` for plug/unplug.

    The first error set wins: no hotplug on dom0 (``OPERATION_NOT_ALLOWED
    ["Control domain does not support hotplug"]``, plug), then the power
    state (:func:`_power_error`).
    """
    db = ctx.db
    rec = db.get('VIF', ref)
    vm = db.get('VM', rec['VM'])
    if op == 'plug' and _is_domain_zero(db, rec['VM'], vm):
        raise errors.XapiError(errors.OPERATION_NOT_ALLOWED,
                               'Control domain does not support hotplug')
    error = _power_error(db, rec['VM'], vm, rec['currently_attached'], op,
                         ref)
    if error is not None:
        raise error
    return rec


@api.message('VIF.plug', 1, kinds=('string',))
def vif_plug(ctx, ref):
    _vif_operation(ctx, ref, 'plug')['currently_attached'] = True
    return ''


@api.message('VIF.unplug', 1, kinds=('string',))
def vif_unplug(ctx, ref):
    _vif_operation(ctx, ref, 'unplug')['currently_attached'] = False
    return ''


# -- network -----------------------------------------------------------------

def choose_bridge_name(pool, bridges):
    """``xapi_network.ml`` ``choose_bridge_name``: ``xapi<N>``, unused.

    ``N`` is a counter of the pool master's xapi, from 0, that moves on at
    every name it tries.
    """
    while True:
        name = 'xapi%d' % pool.bridge_counter
        pool.bridge_counter += 1
        if name not in bridges:
            return name


@api.message('network.create', 1, kinds=(('record', 'network'),))
def network_create(ctx, record):
    db = ctx.db
    fields = _ctor('network', record)
    # xapi_network.ml create: an MTU of 0 or less is 1500
    if unmarshal.ocaml_int(fields.get('MTU', '1500')) <= 0:
        fields['MTU'] = '1500'
    bridges = [db.get('network', r)['bridge'] for r in db.refs('network')]
    bridge = fields.get('bridge', '')
    if not bridge:
        fields['bridge'] = choose_bridge_name(ctx.pool, bridges)
    else:
        # a pool-internal session (Db.Session.get_pool; a session not in
        # the database counts as internal) may name any bridge; others get
        # INVALID_VALUE ["bridge", name] past 15 characters or with a
        # blacklisted prefix; a name in use is BRIDGE_NAME_EXISTS [name]
        internal = (not db.has('session', ctx.session) or
                    db.get('session', ctx.session)['pool'])
        if not internal and (len(bridge) > 15 or
                             bridge.startswith(BRIDGE_BLACKLIST)):
            raise errors.XapiError(errors.INVALID_VALUE, 'bridge', bridge)
        if bridge in bridges:
            raise errors.XapiError('BRIDGE_NAME_EXISTS', bridge)
    return db.create('network', **fields)


@api.message('network.destroy', 1, kinds=('string',))
def network_destroy(ctx, ref):
    # xapi_network.ml destroy: attached VIFs are NETWORK_CONTAINS_VIF
    # [vif, ...], PIFs NETWORK_CONTAINS_PIF [pif, ...], the host-internal
    # management network CANNOT_DESTROY_SYSTEM_NETWORK [network]; then
    # every VIF on it is destroyed "rather than wait for the GC thread",
    # and the network
    db = ctx.db
    net = db.get('network', ref)
    vifs = db.find('VIF', network=ref)
    attached = [v for v in vifs if db.get('VIF', v)['currently_attached']]
    if attached:
        raise errors.XapiError('NETWORK_CONTAINS_VIF', *attached)
    pifs = db.find('PIF', network=ref)
    if pifs:
        raise errors.XapiError('NETWORK_CONTAINS_PIF', *pifs)
    if net['other_config'].get(INTERNAL_MANAGEMENT_KEY, '').lower() == \
            'true':
        raise errors.XapiError('CANNOT_DESTROY_SYSTEM_NETWORK', ref)
    for vif in vifs:
        db.destroy('VIF', vif)
    db.destroy('network', ref)
    return ''


@api.message('VM.get_allowed_VIF_devices', 1, kinds=('string',))
def allowed_vif_devices(ctx, vm):
    # xapi_vm_helpers.ml allowed_VIF_devices: the VM is read (HANDLE_INVALID
    # ["VM", ref]); devices 0 to 6 (allowed_VIF_devices_PV and _HVM alike)
    # that no VIF of the VM uses
    ctx.db.get('VM', vm)
    used = {ctx.db.get('VIF', v)['device']
            for v in ctx.db.find('VIF', VM=vm)}
    return [str(i) for i in range(7) if str(i) not in used]
