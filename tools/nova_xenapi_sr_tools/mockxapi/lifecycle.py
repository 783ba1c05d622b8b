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

"""Creating and destroying VBDs, VIFs and networks.

Records passed to ``*.create`` are checked for their references
(``HANDLE_INVALID``); unknown keys are ignored, as xapi ignores fields it
does not take from the record. ``VBD.create`` refuses a userdevice the VM
uses (``xapi_vbd.ml``), ``VBD.destroy`` an attached VBD
(``xapi_vbd_helpers.ml``), ``VIF.destroy`` an attached VIF of a running VM
(``xapi_vif_helpers.ml``) and ``network.destroy`` a network with attached
VIFs or PIFs (``xapi_network.ml``).
"""

import itertools

from nova_xenapi_sr_tools.mockxapi import api
from nova_xenapi_sr_tools.mockxapi import errors
from nova_xenapi_sr_tools.mockxapi import model

_BRIDGES = itertools.count(100)


def _record(cls, record, required):
    if not isinstance(record, dict):
        raise errors.XapiError(errors.FIELD_TYPE_ERROR, 'args')
    for key in required:
        if key not in record:
            raise errors.XapiError('FIELD_MISSING', key)
    fields = model.SCHEMA[cls]
    return {k: v for k, v in record.items() if k in fields and k != 'uuid'}


@api.message('VBD.create', 1)
def vbd_create(ctx, record):
    fields = _record('VBD', record, ('VM', 'VDI', 'userdevice'))
    ctx.db.get('VM', fields['VM'])
    if not fields.get('empty') and fields['VDI'] != model.NULL_REF:
        ctx.db.get('VDI', fields['VDI'])
    # xapi_vbd.ml create: a userdevice the VM already uses is
    # DEVICE_ALREADY_EXISTS [userdevice]
    userdevice = str(fields['userdevice'])
    for other in ctx.db.find('VBD', VM=fields['VM']):
        if ctx.db.get('VBD', other)['userdevice'] == userdevice:
            raise errors.XapiError('DEVICE_ALREADY_EXISTS', userdevice)
    fields.pop('currently_attached', None)
    return ctx.db.create('VBD', **fields)


@api.message('VBD.destroy', 1)
def vbd_destroy(ctx, ref):
    # xapi_vbd_helpers.ml destroy: "unplug first"
    rec = ctx.db.get('VBD', ref)
    if rec['currently_attached']:
        vm_uuid = (ctx.db.get('VM', rec['VM'])['uuid']
                   if ctx.db.has('VM', rec['VM']) else '')
        raise errors.XapiError(errors.OPERATION_NOT_ALLOWED,
                               "VBD '%s' still attached to '%s'"
                               % (rec['uuid'], vm_uuid))
    ctx.db.destroy('VBD', ref)
    return ''


@api.message('VBD.plug', 1)
def vbd_plug(ctx, ref):
    rec = ctx.db.get('VBD', ref)
    if rec['currently_attached']:
        raise errors.XapiError('DEVICE_ALREADY_ATTACHED', ref)
    rec['currently_attached'] = True
    return ''


@api.message('VBD.unplug', 1)
def vbd_unplug(ctx, ref):
    rec = ctx.db.get('VBD', ref)
    if not rec['currently_attached']:
        raise errors.XapiError('DEVICE_ALREADY_DETACHED', ref)
    rec['currently_attached'] = False
    return ''


@api.message('VIF.create', 1)
def vif_create(ctx, record):
    fields = _record('VIF', record, ('VM', 'network', 'device'))
    ctx.db.get('VM', fields['VM'])
    ctx.db.get('network', fields['network'])
    fields.pop('currently_attached', None)
    return ctx.db.create('VIF', **fields)


@api.message('VIF.destroy', 1)
def vif_destroy(ctx, ref):
    # xapi_vif_helpers.ml destroy
    rec = ctx.db.get('VIF', ref)
    running = ctx.db.has('VM', rec['VM']) and \
        ctx.db.get('VM', rec['VM'])['power_state'] == 'Running'
    if running and rec['currently_attached']:
        raise errors.XapiError(errors.OPERATION_NOT_ALLOWED,
                               'VIF currently attached to a running VM')
    ctx.db.destroy('VIF', ref)
    return ''


@api.message('VIF.plug', 1)
def vif_plug(ctx, ref):
    ctx.db.get('VIF', ref)['currently_attached'] = True
    return ''


@api.message('VIF.unplug', 1)
def vif_unplug(ctx, ref):
    ctx.db.get('VIF', ref)['currently_attached'] = False
    return ''


@api.message('network.create', 1)
def network_create(ctx, record):
    fields = _record('network', record, ())
    if not fields.get('bridge'):
        fields['bridge'] = 'xapi%d' % next(_BRIDGES)
    return ctx.db.create('network', **fields)


@api.message('network.destroy', 1)
def network_destroy(ctx, ref):
    # xapi_network.ml destroy: only attached VIFs block it (the others
    # are left pointing at nothing, for db_gc)
    ctx.db.get('network', ref)
    vifs = ctx.db.find('VIF', network=ref, currently_attached=True)
    if vifs:
        raise errors.XapiError('NETWORK_CONTAINS_VIF', *vifs)
    if ctx.db.find('PIF', network=ref):
        raise errors.XapiError('NETWORK_CONTAINS_PIF',
                               *ctx.db.find('PIF', network=ref))
    ctx.db.destroy('network', ref)
    return ''


@api.message('VM.get_allowed_VIF_devices', 1)
def allowed_vif_devices(ctx, vm):
    used = {ctx.db.get('VIF', v)['device']
            for v in ctx.db.find('VIF', VM=vm)}
    ctx.db.get('VM', vm)
    return [str(i) for i in range(7) if str(i) not in used]
