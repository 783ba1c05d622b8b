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

"""Set a process up to run nova 21's XenAPI driver code, without services.

What the upgrade verification's node processes, and tests that call one
driver or nova function directly (no migration flow), need before they
build nova objects and drivers. A live migration is driven through nova's
real services only (:mod:`nova_xenapi_sr_tools.inprocess`).

* :func:`prepare` once per process: checks eventlet is left unpatched
  (``OS_NOVA_DISABLE_EVENTLET_PATCHING=1``), registers nova's objects,
  parses an empty nova configuration, runs ``nova.rpc.init`` (nova's
  ``VMOps`` builds an RPC client at construction; no broker is contacted),
  applies :mod:`nova_xenapi_sr.os_xenapi_compat` and sets a default socket
  timeout (unpatched, os-xenapi's eventlet login timeout never fires). It
  does not import the extension's objects or driver.
* :func:`build_driver` sets ``[xenserver] connection_url`` / username /
  password and constructs the driver class named by its dotted path.
  nova reads ``connection_url`` again later (``get_host_ip_addr``, used in
  ``get_volume_connector``), so with several drivers in one process that
  value follows the last driver built.
* :func:`make_instance` builds an ``Instance`` with what the driver reads
  (``kernel_id``/``ramdisk_id`` set to '' so nothing lazy-loads from a
  database); :func:`block_device_info` the dict nova's manager passes.
* :func:`roundtrip` sends an object across a process boundary the way
  nova's RPC does (``NovaObjectSerializer`` to a primitive and back).
"""

import copy
import importlib
import os
import socket
import threading

#: Seconds any client socket may wait (no eventlet timeouts here).
SOCKET_TIMEOUT = 120

_prepared = threading.Event()
_prepare_lock = threading.Lock()


class NovaEnvError(RuntimeError):
    """The process cannot run nova's driver as set up."""


def prepare(socket_timeout=SOCKET_TIMEOUT):
    """Set this process up to run nova's XenAPI driver (idempotent)."""
    with _prepare_lock:
        if _prepared.is_set():
            return
        if os.environ.get('OS_NOVA_DISABLE_EVENTLET_PATCHING', '').lower() \
                not in ('1', 'true', 'yes'):
            raise NovaEnvError(
                'Set OS_NOVA_DISABLE_EVENTLET_PATCHING=1 before importing '
                'nova: nova 21 monkey-patching needs '
                'oslo_service.service_hub, which current oslo.service lacks')
        import nova.conf
        import nova.objects
        from nova import rpc

        from nova_xenapi_sr import os_xenapi_compat

        nova.objects.register_all()
        conf = nova.conf.CONF
        conf([], project='nova', default_config_files=[],
             default_config_dirs=[])
        conf.set_override('ovs_integration_bridge', 'br-int',
                          group='xenserver')
        if rpc.TRANSPORT is None:
            rpc.init(conf)
        os_xenapi_compat.apply()
        if socket.getdefaulttimeout() is None:
            socket.setdefaulttimeout(socket_timeout)
        _prepared.set()


def forget():
    """Make the next :func:`prepare` set this process up again.

    For a test framework that reset nova's configuration (the in-process
    deployment's clean-up does).
    """
    with _prepare_lock:
        _prepared.clear()


def _import_class(path):
    module, _, name = path.rpartition('.')
    return getattr(importlib.import_module(module), name)


def build_driver(driver_class, url, username='root', password='mock',
                 virtapi=None):
    """Construct ``driver_class`` (dotted path or class) against ``url``.

    :param url: a XAPI URL without a port (os-xenapi resolves the netloc).
    """
    prepare()
    import nova.conf
    from nova.virt import virtapi as virtapi_mod

    from nova_xenapi_sr import os_xenapi_compat
    os_xenapi_compat.apply()  # idempotent; a test may have reverted it
    conf = nova.conf.CONF
    conf.set_override('connection_url', url, group='xenserver')
    conf.set_override('connection_username', username, group='xenserver')
    conf.set_override('connection_password', password, group='xenserver')
    if not conf.xenserver.ovs_integration_bridge:
        # a test's config fixture may have reset prepare()'s override
        conf.set_override('ovs_integration_bridge', 'br-int',
                          group='xenserver')
    cls = _import_class(driver_class) if isinstance(driver_class, str) \
        else driver_class
    return cls(virtapi or virtapi_mod.VirtAPI())


def admin_context():
    prepare()
    from nova import context
    return context.get_admin_context()


def make_instance(instance_id, uuid, host, **fields):
    """An ``objects.Instance`` the XenAPI driver can work with."""
    prepare()
    from nova import objects
    values = dict(id=int(instance_id), uuid=uuid, host=host, node=host,
                  kernel_id='', ramdisk_id='', vm_state='active',
                  task_state=None, power_state=1, flavor=None,
                  system_metadata={}, metadata={})
    values.update(fields)
    if values.get('flavor') is None:
        values['flavor'] = objects.Flavor(
            flavorid='1', name='m1.small', memory_mb=1024, vcpus=1,
            root_gb=0, ephemeral_gb=0, swap=0, extra_specs={})
    return objects.Instance(**values)


def block_device_info(volumes, root_device_name=None):
    """nova's ``block_device_info`` for ``[(connection_info, mountpoint)]``.

    Connection infos are deep-copied, so the driver can never change the
    caller's dicts.
    """
    mapping = []
    for index, (connection_info, mount_device) in enumerate(volumes):
        mapping.append({'connection_info': copy.deepcopy(connection_info),
                        'mount_device': mount_device,
                        'delete_on_termination': False,
                        'boot_index': None, 'disk_bus': None,
                        'device_type': None, 'guest_format': None,
                        'attachment_id': None})
    return {'root_device_name': root_device_name, 'ephemerals': [],
            'swap': None, 'block_device_mapping': mapping}


def to_primitive(obj):
    """Serialize ``obj`` as nova's RPC layer does."""
    prepare()
    from nova.objects import base
    return base.NovaObjectSerializer().serialize_entity(None, obj)


def from_primitive(primitive, context=None):
    """Deserialize what :func:`to_primitive` made, in this process."""
    prepare()
    from nova.objects import base
    return base.NovaObjectSerializer().deserialize_entity(
        context or admin_context(), primitive)


def roundtrip(obj):
    """``from_primitive(to_primitive(obj))``: one RPC hop."""
    return from_primitive(to_primitive(obj))
