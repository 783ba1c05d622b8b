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

"""dom0 plugins (``host.call_plugin(host, plugin, fn, args)``).

Plugins speak what XenServer's dom0 plugins speak: ``args`` is a map of
strings; serialized calls (os-xenapi's ``call_plugin_serialized``) pass
``{"params": <protocol-0 pickle as a string>}`` and get a protocol-0
pickle string back; JSON plugins return JSON text. A non-string argument
(for example the base64 value os-xenapi 0.3.4 sends on Python 3 without
``nova_xenapi_sr.os_xenapi_compat``) fails where xapi's dispatcher
unmarshals the map, before the session check: ``INTERNAL_ERROR
['Failure("Expected string, got \'B64(...)\'")']`` (rpclib ``rpc.ml``
``string_of_rpc``, see :mod:`.unmarshal`). Pickles are read with an
unpickler that refuses every global, so only plain data (str, int, float,
bool, None, list, tuple, dict) passes.

Served: ``dom0_plugin_version.py get_version`` ("2.1"), ``config_file.py
get_val`` (``relax-xsm-sr-check`` from the pool's setting),
``xenstore.py read_record/write_record/delete_record`` (per-pool store),
``xenhost.py host_data`` (JSON), ``network_config`` (recorded in
``Pool.network_commands``; links and bridges it adds and deletes are
tracked per pool, so ``ip_link_get_dev`` fails for a missing device),
``get_pci_device_details`` ("") and ``get_pci_type``. An unknown
plugin is ``XENAPI_MISSING_PLUGIN [plugin]`` (``xapi_plugins.ml``
``find_plugin``); an unknown function ``UNKNOWN_XENAPI_PLUGIN_FUNCTION
[fn]`` and an exception in the plugin ``XENAPI_PLUGIN_FAILURE [fn,
exception class, message]`` (``XenAPIPlugin.py`` ``dispatch``, which
``xapi_plugins.ml`` ``call_plugin`` passes on as the API error).
"""

import io
import json
import pickle

from nova_xenapi_sr_tools.mockxapi import api
from nova_xenapi_sr_tools.mockxapi import errors

#: dom0 plugin API version the mock reports.
PLUGIN_VERSION = '2.1'


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError('global %s.%s refused' % (module, name))


def loads(text):
    """Read a protocol-0 pickle sent as a string."""
    return _DataUnpickler(io.BytesIO(text.encode('latin-1'))).load()


def dumps(value):
    """Write ``value`` as a protocol-0 pickle string (ASCII-safe)."""
    return pickle.dumps(value, 0).decode('latin-1')


_PLUGINS = {}


def plugin(name, fn):
    def decorate(func):
        _PLUGINS[(name, fn)] = func
        return func
    return decorate


class PluginException(Exception):
    """An exception raised in a dom0 plugin, of class ``kind``.

    ``XenAPIPlugin.py`` ``dispatch`` answers ``XENAPI_PLUGIN_FAILURE [fn,
    kind, str(exception)]`` for it.
    """

    def __init__(self, kind, message):
        super(PluginException, self).__init__(message)
        self.kind = kind


def serialized(func):
    """Unpickle ``params`` into ``*args, **kwargs``; pickle the result.

    As os-xenapi's dom0 ``utils.py`` ``_handle_serialization``: an
    argument it cannot unpickle is an exception in the plugin.
    """
    def wrapper(ctx, host, args):
        try:
            params = loads(args['params'])
            result = func(ctx, host, *params.get('args', ()),
                          **params.get('kwargs', {}))
        except (KeyError, pickle.UnpicklingError, ValueError, EOFError,
                AttributeError, TypeError) as exc:
            raise PluginException(type(exc).__name__, str(exc))
        return dumps(result)
    return wrapper


@api.message('host.call_plugin', 4,
             kinds=('string', 'string', 'string', 'smap'))
def call_plugin(ctx, host, plugin_name, fn, args):
    # message_forwarding.ml host.call_plugin -> do_op_on the host
    # (HANDLE_INVALID ["host", ref] for an unknown one); xapi_plugins.ml
    # find_plugin: XENAPI_MISSING_PLUGIN [plugin]; XenAPIPlugin.py
    # dispatch: UNKNOWN_XENAPI_PLUGIN_FUNCTION [fn], or
    # XENAPI_PLUGIN_FAILURE [fn, class, message] for the plugin's
    # exception
    ctx.db.get('host', host)
    if not any(name == plugin_name for name, _ in _PLUGINS):
        raise errors.XapiError(errors.XENAPI_MISSING_PLUGIN, plugin_name)
    func = _PLUGINS.get((plugin_name, fn))
    if func is None:
        raise errors.XapiError('UNKNOWN_XENAPI_PLUGIN_FUNCTION', fn)
    try:
        return func(ctx, host, dict(args))
    except PluginException as exc:
        raise errors.XapiError(errors.XENAPI_PLUGIN_FAILURE, fn, exc.kind,
                               str(exc))


@plugin('dom0_plugin_version.py', 'get_version')
@serialized
def _get_version(ctx, host):
    return PLUGIN_VERSION


@plugin('config_file.py', 'get_val')
def _get_val(ctx, host, args):
    if args.get('key') == 'relax-xsm-sr-check':
        return 'true' if ctx.pool.relax_xsm_sr_check else 'false'
    return ''


def _xs_key(args):
    return (args.get('dom_id', ''), args.get('path', ''))


def _plugin_error(message):
    # xenstore.py: XenstoreError (a dom0_pluginlib PluginError)
    return PluginException('XenstoreError', message)


@plugin('xenstore.py', 'read_record')
def _read_record(ctx, host, args):
    key = _xs_key(args)
    if key in ctx.pool.xenstore:
        return json.dumps(ctx.pool.xenstore[key])
    if args.get('ignore_missing_path', 'False') == 'True':
        return json.dumps('None')
    raise _plugin_error('path not found: %s' % key[1])


@plugin('xenstore.py', 'write_record')
def _write_record(ctx, host, args):
    ctx.pool.xenstore[_xs_key(args)] = args.get('value', '')
    return json.dumps(args.get('value', ''))


@plugin('xenstore.py', 'delete_record')
def _delete_record(ctx, host, args):
    ctx.pool.xenstore.pop(_xs_key(args), None)
    return json.dumps('')


@plugin('xenhost.py', 'host_data')
def _host_data(ctx, host, args):
    rec = ctx.db.get('host', host)
    total = 16 * 1024 ** 3
    data = {
        'enabled': rec['enabled'],
        'host_memory': {'total': total, 'overhead': 512 * 1024 ** 2,
                        'free': total // 2, 'free-computed': total // 2},
        'host_uuid': rec['uuid'],
        'host_name-label': rec['name_label'],
        'host_name-description': rec['name_description'],
        'host_hostname': rec['hostname'],
        'host_ip_address': rec['address'],
        'host_other-config': dict(rec['other_config']),
        'host_capabilities': list(rec['capabilities']),
        'host_cpu_info': {'cpu_count': 4, 'socket_count': '1',
                          'family': 6, 'model': 85,
                          'stepping': 4, 'vendor': 'GenuineIntel',
                          'speed': '2394.086', 'modelname': 'Mock CPU',
                          'flags': 'fpu de tsc msr pae vmx',
                          'features': '', 'physical_features': ''},
    }
    return json.dumps(data)


@plugin('xenhost.py', 'network_config')
@serialized
def _network_config(ctx, host, request):
    cmd = request.get('cmd')
    args = dict(request.get('args') or {})
    ctx.pool.network_commands.append((cmd, args))
    devices = ctx.pool.net_devices
    if cmd == 'ip_link_get_dev' and args.get('device_name') not in devices:
        # xenhost.py network_config: the command's failure is a
        # dom0_pluginlib PluginError
        raise PluginException('PluginError', 'Device "%s" does not exist.'
                              % args.get('device_name'))
    if cmd == 'ip_link_add_veth_pair':
        devices.update((args.get('dev1_name'), args.get('dev2_name')))
    elif cmd == 'brctl_add_br':
        devices.add(args.get('bridge_name'))
    elif cmd == 'ip_link_del_dev':
        devices.discard(args.get('device_name'))
    elif cmd == 'brctl_del_br':
        devices.discard(args.get('bridge_name'))
    return ''


@plugin('xenhost.py', 'get_pci_device_details')
@serialized
def _pci_details(ctx, host):
    return ''


@plugin('xenhost.py', 'get_pci_type')
@serialized
def _pci_type(ctx, host, pci_device=None):
    return 'type-PCI'


@plugin('xenhost.py', 'host_uptime')
def _uptime(ctx, host, args):
    return json.dumps({'uptime': ' 00:00:00 up 1 day,  load average: 0'})


@plugin('kernel.py', 'remove_kernel_ramdisk')
def _remove_kernel_ramdisk(ctx, host, args):
    return ''
