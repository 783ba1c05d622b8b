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

"""nova 21's live-migration flow, played by the node processes.

What nova's managers do around the driver calls, in nova's order (see
``nova/conductor/tasks/live_migrate.py`` and ``nova/compute/manager.py``
of nova 21.2.4), without a database, Cinder, Neutron or placement:

1. conductor -> destination ``check_can_live_migrate_destination``: the
   destination driver builds ``XenapiLiveMigrateData``, then the
   destination calls the source (``check_can_live_migrate_source``, with
   ``is_volume_backed`` set and ``block_device_info`` built from the
   source's block device mappings); the reply goes back through the
   destination to the conductor.
2. conductor -> source ``live_migration``; the source calls the
   destination's ``pre_live_migration`` (``block_device_info`` with the
   destination's connection_info), then its driver's ``live_migration``
   with nova's post and recover methods.
3. success: ``post_live_migration`` and ``post_live_migration_at_source``
   on the source, ``post_live_migration_at_destination`` on the
   destination. Failure: ``rollback_live_migration_at_source``, then on the
   destination ``remove_volume_connection`` per volume (its
   ``detach_volume`` finds no VM there), ``get_volume_connector``, and
   ``rollback_live_migration_at_destination(..., destroy_disks=True,
   migrate_data=<object>)``.

Block device mappings live in nova's database, which every node shares;
here each compute gets the case's volumes and uses the connection_info that
database would hold at that step: the source's attachment until the
destination's ``pre_live_migration`` refreshes it, the source's again after
``_rollback_live_migration`` reset it (before the destination's rollback).

Every hop is a call through :mod:`node`, objects travel as primitives
(:mod:`rpc`). This module is imported by stock nodes: besides this
harness package it imports nothing of nova_xenapi_sr but ``novaenv`` (the
process set-up shared with the mock XAPI, which applies
``os_xenapi_compat``) and, in extension nodes only,
``nova_xenapi_sr.objects`` (the conductor) or the extension driver (the
computes, which must register the 1.5 object themselves).
"""

import contextlib
import copy
import functools
import importlib.util
import os
import sys

#: Driver names as nova's ``[DEFAULT] compute_driver`` spells them.
STOCK_DRIVER = 'xenapi.XenAPIDriver'
EXTENSION_DRIVER = 'xenapi_sr.driver.XenAPISRDriver'
#: Full path used when the shim ``nova.virt.xenapi_sr`` is not installed.
EXTENSION_DRIVER_PATH = 'nova_xenapi_sr.virt.driver.XenAPISRDriver'

STOCK = 'stock'
EXTENSION = 'extension'


def build_node(spec):
    """Prepare this process as a nova node and return its handler."""
    _prepare_process(spec)
    if spec['role'] == 'conductor':
        return ConductorNode(spec)
    return ComputeNode(spec)


def _prepare_process(spec):
    from nova_xenapi_sr_tools import novaenv
    novaenv.prepare()
    if spec['flavour'] != EXTENSION:
        check_stock_registry()
    elif spec['role'] == 'conductor':
        # What nova-conductor-xenapi-sr does: make XenapiLiveMigrateData
        # 1.5 nova's class. An extension compute relies on its driver
        # (it registers the class on import and in its constructor):
        # registering here would hide a driver that does not.
        from nova_xenapi_sr import objects as ext_objects
        ext_objects.register_all()


def check_extension_registry(driver_name):
    """Fail unless the extension driver made 1.5 nova's class."""
    import nova.objects
    version = nova.objects.XenapiLiveMigrateData.VERSION
    if version != '1.5':
        raise RuntimeError(
            'compute_driver %s did not register XenapiLiveMigrateData 1.5 '
            '(nova.objects has %s): this compute would send and read the '
            'stock object without the SR map. Check that compute_driver '
            'names nova-xenapi-sr\'s driver and that the extension is '
            'installed' % (driver_name, version))


def check_stock_registry():
    """Fail unless this process is a pristine stock nova node."""
    import nova.objects
    leaked = [name for name in ('nova_xenapi_sr.objects',
                                'nova_xenapi_sr.virt')
              if name in sys.modules]
    version = nova.objects.XenapiLiveMigrateData.VERSION
    if leaked or version != '1.4':
        raise RuntimeError(
            'stock node is not stock nova: extension modules %s loaded, '
            'XenapiLiveMigrateData is %s (expected 1.4)' % (leaked, version))


def extension_driver_default():
    """Return the extension's ``compute_driver`` as nova would load it.

    ``xenapi_sr.driver.XenAPISRDriver`` when the shim package
    ``nova.virt.xenapi_sr`` is importable (the installed layout), else the
    full path of the class (a development tree).
    """
    try:
        spec = importlib.util.find_spec('nova.virt.xenapi_sr')
    except ImportError:
        spec = None
    return EXTENSION_DRIVER if spec is not None else EXTENSION_DRIVER_PATH


class _Node(object):
    """What conductor and compute nodes share."""

    def __init__(self, spec):
        self.spec = spec
        self.name = spec['name']
        self.flavour = spec['flavour']
        self.endpoint = None
        self.trace = []

    def attach(self, endpoint):
        from nova_xenapi_sr_tools.upgrade import rpc
        endpoint.serializer = rpc.make_serializer(self._serializer_conductor())
        self.endpoint = endpoint

    def _serializer_conductor(self):
        raise NotImplementedError()

    def info(self):
        import nova.objects
        return {
            'name': self.name, 'role': self.spec['role'],
            'flavour': self.flavour, 'pid': os.getpid(),
            'XenapiLiveMigrateData':
                nova.objects.XenapiLiveMigrateData.VERSION,
            'extension_modules': sorted(
                name for name in sys.modules
                if name.startswith('nova_xenapi_sr')),
        }

    def note(self, step, **details):
        """Record a step of the flow (returned with the case's trace)."""
        entry = {'node': self.name, 'step': step}
        entry.update(details)
        self.trace.append(entry)

    def rpc_node_info(self, context):
        return self.info()

    # --- probes: the transport checked on its own (harness self-tests) ----

    def rpc_build_migrate_data(self, context, fields):
        """Return ``XenapiLiveMigrateData(**fields)`` as this node builds it.

        The object is serialized at this node's class version.
        """
        import nova.objects
        return nova.objects.XenapiLiveMigrateData(**fields)

    def rpc_probe_object(self, context, obj):
        """Describe the object this node read from the wire."""
        return {'name': obj.obj_name(), 'version': _version(obj),
                'fields': sorted(name for name in obj.obj_fields
                                 if obj.obj_attr_is_set(name))}

    def rpc_forward(self, context, target, target_method, args):
        """Call ``target_method`` on ``target``; return what this node read.

        The result is deserialized with this node's registry and sent back
        serialized again, as a node that passes an object on does.
        """
        return self.endpoint.call(target, target_method, context, **args)

    def rpc_send_built(self, context, target, fields, then=None):
        """Build ``XenapiLiveMigrateData(**fields)`` here, send it on.

        ``target`` probes it, or (with ``then``) reads it and sends it on
        to ``then``, which probes it.
        """
        import nova.objects
        obj = nova.objects.XenapiLiveMigrateData(**fields)
        if then:
            return self.endpoint.call(target, 'pass_on', context, obj=obj,
                                      target=then)
        return self.endpoint.call(target, 'probe_object', context, obj=obj)

    def rpc_pass_on(self, context, obj, target):
        """Send the object this node read on to ``target``'s probe."""
        return self.endpoint.call(target, 'probe_object', context, obj=obj)

    def rpc_take_trace(self, context):
        trace, self.trace = self.trace, []
        return trace


def _version(obj):
    return getattr(obj, 'VERSION', None)


class ConductorNode(_Node):
    """nova-conductor (stock) or nova-conductor-xenapi-sr (extension)."""

    def _serializer_conductor(self):
        from nova_xenapi_sr_tools.upgrade import rpc
        return rpc.NoConductor()

    def rpc_object_backport_versions(self, context, objinst,
                                     object_versions):
        """``ConductorManager.object_backport_versions``.

        ``objinst`` was hydrated with this conductor's registry by the
        dispatcher (a version it cannot read failed there already).
        """
        target = object_versions[objinst.obj_name()]
        self.note('object_backport_versions', object=objinst.obj_name(),
                  received=_version(objinst), target=target)
        return objinst.obj_to_primitive(target_version=target,
                                        version_manifest=object_versions)

    def rpc_live_migrate(self, context, case):
        """``LiveMigrationTask._execute`` with a forced destination.

        :param case: ``{"instance": {...}, "source": node, "destination":
            node, "destination_host": name}``.
        :returns: ``{"phase": "precheck"|"migration"|"done", "error"}``.
        """
        from nova import context as nova_context

        from nova_xenapi_sr_tools.upgrade import rpc
        ctxt = nova_context.get_admin_context()
        instance = make_instance(case['instance'])
        phase = 'precheck'
        try:
            # _call_livem_checks_on_host
            migrate_data = self.endpoint.call(
                case['destination'], 'check_can_live_migrate_destination',
                ctxt, instance=instance, block_migration=None,
                disk_over_commit=None)
            self.note('check_can_live_migrate_destination returned',
                      version=_version(migrate_data))
            phase = 'migration'
            # compute_rpcapi.live_migration (a cast in nova; the harness
            # waits for the source to finish).
            outcome = self.endpoint.call(
                case['source'], 'live_migration', ctxt,
                dest=case['destination_host'], instance=instance,
                block_migration=None, migrate_data=migrate_data)
        except Exception as exc:
            self.note('failed', phase=phase, error=repr(exc))
            return {'phase': phase, 'error': rpc.error_to_dict(exc,
                                                               self.name)}
        # The source finished; a failure nova only logs there (the
        # destination's post_live_migration_at_destination, after which
        # nova sets the instance to ERROR) still reaches the verdict.
        return {'phase': 'done', 'error': None,
                'post_error': (outcome or {}).get('post_error')}


def make_instance(data):
    """Return the ``Instance`` of a case (novaenv's, root device set)."""
    from nova_xenapi_sr_tools import novaenv
    instance = novaenv.make_instance(instance_id=data['id'],
                                     uuid=data['uuid'], host=data['host'])
    if not instance.obj_attr_is_set('root_device_name'):
        instance.root_device_name = data.get('root_device_name')
    for field, value in (('image_ref', ''), ('kernel_id', ''),
                         ('ramdisk_id', ''), ('node', data['host'])):
        if not instance.obj_attr_is_set(field):
            setattr(instance, field, value)
    return instance


class _NoEventsVirtAPI(object):
    """A ``VirtAPI`` for a compute without a manager: no external events."""

    @contextlib.contextmanager
    def wait_for_instance_event(self, instance, event_names, deadline=300,
                                error_callback=None):
        yield

    def exit_wait_early(self, events):
        pass

    def update_compute_provider_status(self, context, rp_uuid, enabled):
        pass


class ComputeNode(_Node):
    """A nova-compute with the stock or the extension driver."""

    def __init__(self, spec):
        super(ComputeNode, self).__init__(spec)
        if self.flavour == EXTENSION:
            # nova-compute imports its driver at start-up.
            self._driver_class()
        self.case = None
        self.driver = None
        self.driver_path = None
        #: The destination's post_live_migration_at_destination failure
        #: of the migration in progress (per case).
        self._post_error = None
        #: The conductor this compute asks for backports (per case).
        self.conductor = spec.get('conductor')

    def _serializer_conductor(self):
        from nova_xenapi_sr_tools.upgrade import rpc
        return rpc.ConductorProxy(self._call_conductor)

    def _call_conductor(self, method, context=None, **kwargs):
        if not self.conductor:
            raise RuntimeError('compute %s has no conductor' % self.name)
        return self.endpoint.call(self.conductor, method, context, raw=True,
                                  **kwargs)

    def rpc_use_conductor(self, context, name):
        self.conductor = name

    def info(self):
        info = super(ComputeNode, self).info()
        info['compute_driver'] = self._driver_name()
        return info

    # --- set-up -----------------------------------------------------------

    def _driver_name(self):
        if self.flavour == STOCK:
            return STOCK_DRIVER
        return self.spec.get('extension_driver') or extension_driver_default()

    def _driver_class(self):
        """Import the driver class: ``(class, in_nova_virt)``."""
        from oslo_utils import importutils
        name = self._driver_name()
        try:
            return importutils.import_class('nova.virt.' + name), True
        except ImportError:
            return importutils.import_class(name), False

    def _load_driver(self):
        """Load the driver as nova-compute does (``load_compute_driver``).

        nova 21 loads ``'nova.virt.' + CONF.compute_driver``. A full dotted
        path outside ``nova.virt`` (a development tree, a test's broken
        extension) cannot be loaded that way, so it is imported directly
        and must still be a ``ComputeDriver``.
        """
        import nova.conf
        from nova.virt import driver as virt_driver
        from oslo_utils import importutils

        name = self._driver_name()
        nova.conf.CONF.set_override('compute_driver', name)
        virtapi = _NoEventsVirtAPI()
        in_nova_virt = self._driver_class()[1]
        if in_nova_virt:
            try:
                driver = virt_driver.load_compute_driver(virtapi)
            except SystemExit:
                raise RuntimeError('nova could not load compute_driver %s '
                                   '(see the node log)' % name)
            self.driver_path = 'nova.virt.' + name
        else:
            driver = importutils.import_object(name, virtapi)
            if not isinstance(driver, virt_driver.ComputeDriver):
                raise RuntimeError('%s is not a nova ComputeDriver' % name)
            self.driver_path = name
        return driver

    def rpc_setup_case(self, context, case):
        """Build this node's driver against the case's pool.

        :param case: ``{"role", "host", "pool_url", "username",
            "password", "volumes": [{"volume_id", "device",
            "source_connection_info", "destination_connection_info"}],
            "network_info", "peers": {host: node}, "conductor": node}``.
        """
        import nova.conf
        conf = nova.conf.CONF
        self.case = case
        self.trace = []
        self.conductor = case['conductor']
        conf.set_override('host', case['host'])
        conf.set_override('connection_url', case['pool_url'], 'xenserver')
        conf.set_override('connection_username', case.get('username', 'root'),
                          'xenserver')
        conf.set_override('connection_password',
                          case.get('password', 'mock'), 'xenserver')
        # This compute is not a VM on the XAPI host it manages: nova's
        # "independent compute" mode (no xenstore access through sudo).
        conf.set_override('independent_compute', True, 'xenserver')
        conf.set_override('check_host', False, 'xenserver')
        # nova sleeps this long before rescanning an SR that does not show
        # a LUN yet (an SR that already existed, such as one shared with
        # another instance). The mock XAPI needs no settling time; the
        # rescan still happens.
        conf.set_override('introduce_vdi_retry_wait', 0, 'xenserver')
        self.driver = self._load_driver()
        if self.flavour == EXTENSION:
            check_extension_registry(self._driver_name())
        self.driver.init_host(case['host'])
        return {'compute_driver': self._driver_name(),
                'driver_path': self.driver_path,
                'driver_class': '%s.%s' % (type(self.driver).__module__,
                                           type(self.driver).__name__)}

    def rpc_teardown_case(self, context):
        import nova.objects
        self.driver = None
        self.case = None
        # Evidence that a stock node stayed stock through the case.
        self.note('teardown', registry=nova.objects.XenapiLiveMigrateData
                  .VERSION, extension_objects_loaded=(
                      'nova_xenapi_sr.objects' in sys.modules))
        trace, self.trace = self.trace, []
        return trace

    # --- helpers: what the manager reads from nova's database -------------

    def _peer(self, host):
        return self.case['peers'][host]

    def _network_info(self):
        from nova.network import model as network_model
        return network_model.NetworkInfo.hydrate(
            self.case.get('network_info') or [])

    def _bdms(self, context, instance, connection):
        """Block device mappings with the given side's connection_info."""
        from nova import objects
        from oslo_serialization import jsonutils
        bdms = []
        for index, volume in enumerate(self.case['volumes']):
            bdms.append(objects.BlockDeviceMapping(
                context=context, instance_uuid=instance.uuid,
                source_type='volume', destination_type='volume',
                volume_id=volume['volume_id'],
                device_name=volume['device'],
                boot_index=0 if index == 0 else None,
                connection_info=jsonutils.dumps(
                    volume[connection + '_connection_info']),
                attachment_id=None, delete_on_termination=False,
                guest_format=None, device_type='disk', disk_bus=None,
                volume_size=1, no_device=False))
        return objects.BlockDeviceMappingList(objects=bdms)

    def _block_device_info(self, instance, bdms, refreshed=False):
        """``ComputeManager._get_instance_block_device_info``."""
        from nova.virt import block_device as driver_block_device
        from nova.virt import driver as virt_driver
        info = virt_driver.get_block_device_info(instance, bdms)
        if not refreshed:
            info['block_device_mapping'] = [
                bdm for bdm in virt_driver.block_device_info_get_mapping(
                    info) if bdm.get('connection_info')]
        if self.driver.need_legacy_block_device_info:
            info.update({
                'ephemerals': driver_block_device.legacy_block_devices(
                    virt_driver.block_device_info_get_ephemerals(info)),
                'swap': info['swap'].legacy() if info['swap'] else None,
                'block_device_mapping':
                    driver_block_device.legacy_block_devices(
                        virt_driver.block_device_info_get_mapping(info)),
            })
        return info

    def _driver_call(self, step, method, *args, **kwargs):
        """Call the driver, noting whether it changed its arguments."""
        before = copy.deepcopy([a for a in args if isinstance(a, dict)])
        try:
            return getattr(self.driver, method)(*args, **kwargs)
        finally:
            after = [a for a in args if isinstance(a, dict)]
            mutated = before != after
            self.note(step, mutated_arguments=mutated)

    # --- compute manager RPC methods --------------------------------------

    def rpc_check_can_live_migrate_destination(self, context, instance,
                                               block_migration,
                                               disk_over_commit):
        dest_check_data = self.driver.check_can_live_migrate_destination(
            context, instance, {}, {}, block_migration, disk_over_commit)
        self.note('check_can_live_migrate_destination',
                  version=_version(dest_check_data))
        try:
            migrate_data = self.endpoint.call(
                self._peer(instance.host), 'check_can_live_migrate_source',
                context, instance=instance, dest_check_data=dest_check_data)
            self.note('check_can_live_migrate_source returned',
                      version=_version(migrate_data))
        finally:
            self.driver.cleanup_live_migration_destination_check(
                context, dest_check_data)
        return migrate_data

    def rpc_check_can_live_migrate_source(self, context, instance,
                                          dest_check_data):
        from nova.compute import utils as compute_utils
        self.note('received dest_check_data',
                  version=_version(dest_check_data))
        bdms = self._bdms(context, instance, 'source')
        dest_check_data.is_volume_backed = (
            compute_utils.is_volume_backed_instance(context, instance, bdms))
        block_device_info = self._block_device_info(instance, bdms)
        return self._driver_call(
            'check_can_live_migrate_source',
            'check_can_live_migrate_source', context, instance,
            dest_check_data, block_device_info)

    def rpc_live_migration(self, context, dest, instance, block_migration,
                           migrate_data):
        """``_do_live_migration`` (the manager's executor job)."""
        self.note('live_migration received', version=_version(migrate_data))
        source_bdms = self._bdms(context, instance, 'source')
        migrate_data = self._do_pre_live_migration_from_source(
            context, dest, instance, block_migration, migrate_data,
            source_bdms)
        post = functools.partial(self._post_live_migration,
                                 source_bdms=source_bdms)
        recover = functools.partial(self._rollback_live_migration,
                                    source_bdms=source_bdms)
        self.note('driver.live_migration', version=_version(migrate_data))
        self._post_error = None
        self.driver.live_migration(context, instance, dest, post, recover,
                                   block_migration, migrate_data)
        return {'migrated': True, 'post_error': self._post_error}

    def _do_pre_live_migration_from_source(self, context, dest, instance,
                                           block_migration, migrate_data,
                                           source_bdms):
        from oslo_utils import excutils
        try:
            disk = None
            if ('block_migration' in migrate_data and
                    migrate_data.block_migration):
                disk = self.driver.get_instance_disk_info(
                    instance, block_device_info=self._block_device_info(
                        instance, source_bdms))
            return self.endpoint.call(
                self._peer(dest), 'pre_live_migration', context,
                instance=instance, block_migration=block_migration,
                disk=disk, migrate_data=migrate_data)
        except Exception:
            with excutils.save_and_reraise_exception():
                self.note('pre_live_migration failed')
                self._rollback_live_migration(context, instance, dest,
                                              migrate_data=migrate_data,
                                              source_bdms=source_bdms)

    def rpc_pre_live_migration(self, context, instance, block_migration,
                               disk, migrate_data):
        import nova.conf
        self.note('pre_live_migration received',
                  version=_version(migrate_data))
        migrate_data.old_vol_attachment_ids = {}
        self.driver.get_volume_connector(instance)
        # refresh_conn_info=True: the destination's fresh attachments.
        bdms = self._bdms(context, instance, 'destination')
        block_device_info = self._block_device_info(instance, bdms,
                                                    refreshed=True)
        migrate_data = self._driver_call(
            'pre_live_migration', 'pre_live_migration', context, instance,
            block_device_info, self._network_info(), disk, migrate_data)
        using_port_bindings = 'vifs' in migrate_data and migrate_data.vifs
        migrate_data.wait_for_vif_plugged = bool(
            nova.conf.CONF.compute.live_migration_wait_for_vif_plug and
            using_port_bindings)
        return migrate_data

    def _post_live_migration(self, context, instance, dest,
                             block_migration=False, migrate_data=None,
                             source_bdms=None):
        self.note('post_live_migration')
        self.driver.post_live_migration(
            context, instance,
            self._block_device_info(instance, source_bdms), migrate_data)
        # _post_live_migration_remove_source_vol_connections
        self.driver.get_volume_connector(instance)
        network_info = self._network_info()
        destroy_vifs = False
        try:
            self.driver.post_live_migration_at_source(context, instance,
                                                      network_info)
        except NotImplementedError:
            destroy_vifs = True
        do_cleanup, destroy_disks = _cleanup_flags(migrate_data)
        if do_cleanup:
            self.driver.cleanup(context, instance, network_info,
                                destroy_disks=destroy_disks,
                                migrate_data=migrate_data,
                                destroy_vifs=destroy_vifs)
        try:
            self.endpoint.call(self._peer(dest),
                               'post_live_migration_at_destination', context,
                               instance=instance,
                               block_migration=block_migration)
        except Exception as exc:
            # nova logs this and carries on with the source's clean-up;
            # the destination's manager has set the instance to ERROR.
            from nova_xenapi_sr_tools.upgrade import rpc
            self.note('post_live_migration_at_destination failed',
                      error=repr(exc))
            self._post_error = rpc.error_to_dict(exc, self.name)

    def _rollback_live_migration(self, context, instance, dest,
                                 migrate_data=None, migration_status='error',
                                 source_bdms=None):
        self.note('rollback_live_migration')
        self.driver.rollback_live_migration_at_source(context, instance,
                                                      migrate_data)
        peer = self._peer(dest)
        for volume in self.case['volumes']:
            try:
                self.endpoint.call(peer, 'remove_volume_connection', context,
                                   volume_id=volume['volume_id'],
                                   instance=instance)
            except Exception as exc:
                # _remove_remote_volume_connections ignores failures.
                self.note('remove_volume_connection failed', error=repr(exc))
        # _rollback_volume_bdms: the mappings get the source's
        # connection_info back before the destination is told to roll back.
        do_cleanup, destroy_disks = _cleanup_flags(migrate_data)
        if do_cleanup:
            try:
                # A cast in nova: the source never sees its outcome.
                self.endpoint.call(peer,
                                   'rollback_live_migration_at_destination',
                                   context, instance=instance,
                                   destroy_disks=destroy_disks,
                                   migrate_data=migrate_data)
            except Exception as exc:
                self.note('rollback_live_migration_at_destination failed',
                          error=repr(exc))

    def rpc_remove_volume_connection(self, context, volume_id, instance):
        from nova import exception as nova_exception
        volume = self._volume(volume_id)
        connection_info = copy.deepcopy(
            volume['destination_connection_info'])
        try:
            self.driver.detach_volume(context, connection_info, instance,
                                      volume['device'])
        except nova_exception.NotFound:
            self.note('remove_volume_connection', volume_id=volume_id,
                      detached=False)
        else:
            self.note('remove_volume_connection', volume_id=volume_id,
                      detached=True)
        # The cinder v2 path of _remove_volume_connection asks the driver
        # for its connector to terminate the connection.
        self.driver.get_volume_connector(instance)

    def rpc_rollback_live_migration_at_destination(self, context, instance,
                                                   destroy_disks,
                                                   migrate_data):
        self.note('rollback_live_migration_at_destination received',
                  version=_version(migrate_data))
        bdms = self._bdms(context, instance, 'source')
        self._driver_call(
            'rollback_live_migration_at_destination',
            'rollback_live_migration_at_destination', context, instance,
            self._network_info(), self._block_device_info(instance, bdms),
            destroy_disks=destroy_disks, migrate_data=migrate_data)

    def rpc_post_live_migration_at_destination(self, context, instance,
                                               block_migration):
        bdms = self._bdms(context, instance, 'destination')
        try:
            self._driver_call(
                'post_live_migration_at_destination',
                'post_live_migration_at_destination', context, instance,
                self._network_info(), block_migration,
                self._block_device_info(instance, bdms))
        finally:
            # The manager reads the power state whatever happened.
            try:
                self.driver.get_info(instance)
            except Exception as exc:
                self.note('get_info failed', error=repr(exc))

    def _volume(self, volume_id):
        for volume in self.case['volumes']:
            if volume['volume_id'] == volume_id:
                return volume
        raise KeyError('no volume %s in this case' % volume_id)


def _cleanup_flags(migrate_data):
    """``ComputeManager._live_migration_cleanup_flags`` for XenAPI."""
    from nova.objects import migrate_data as migrate_data_obj
    if isinstance(migrate_data, migrate_data_obj.XenapiLiveMigrateData):
        flag = bool(migrate_data.obj_attr_is_set('block_migration') and
                    migrate_data.block_migration)
        return flag, flag
    return False, False
