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


"""Start one of nova 21.2.4's own service commands on this machine.

``python -m nova_xenapi_sr_tools.upgrade.launch COMMAND [ARGS...]`` runs
the installed console script ``COMMAND`` (``nova-api``, ``nova-conductor``,
``nova-conductor-xenapi-sr``, ``nova-scheduler``, ``nova-compute``,
``nova-manage``, ``placement-api``, ``placement-manage``) exactly as a node
runs it, with its own arguments and configuration files, after a few
run-time fixes that nova 21.2.4 and placement 3.0.1 need on the current
Python 3.11 libraries (``/work/shared/docs/REAL-NOVA.md``). They are all
this module changes, and each is here because the service cannot start
without it:

1. **eventlet**: nova's ``nova/monkey_patch.py`` ends with
   ``eventlet.hubs.use_hub("oslo_service:service_hub")``, which current
   oslo.service no longer has. For the nova commands this module does
   nova's patching itself (``EVENTLET_NO_GREENDNS=yes``,
   ``eventlet.monkey_patch()`` and nova's ``current_thread`` ``_active``
   fix), skipping only ``use_hub``, and sets
   ``OS_NOVA_DISABLE_EVENTLET_PATCHING=1`` so nova does not try again.
   placement is not patched (it does not patch itself either).
2. **oslo.db 15** ``utils.get_table`` returns a ``Table`` not bound to an
   engine; nova's sqlalchemy-migrate script 230 then fails on
   ``'NoneType' object has no attribute 'dialect'``. It is replaced by one
   that reflects the table into a ``MetaData`` bound to the engine.
3. **oslo.policy 6** dropped ``[oslo_policy] enforce_scope``, which
   placement 3.0.1's ``deploy`` reads: the option is registered again
   (default ``False``, what Ussuri's oslo.policy defaulted to), on nova's
   global configuration and on the one placement builds; and, as oslo.policy
   6 also always enforces a rule's ``scope_types``, its
   ``Enforcer._enforce_scope`` honours the option again: with ``False``
   (Ussuri's default) a token of another scope passes the scope check,
   the rule's own check still decides. Without this no project-scoped
   token (all ``noauth2`` gives) may list nova's services.
4. **monotonic**: nova's ``service.assert_eventlet_uses_monotonic_clock``
   imports the ``monotonic`` backport; a module of that name whose
   ``monotonic`` is ``time.monotonic`` is put into ``sys.modules`` (it is
   the clock eventlet's hub uses).
5. **os-xenapi on Python 3**: :func:`nova_xenapi_sr.os_xenapi_compat.apply`
   (which stock nodes need as much as upgraded ones; it imports none of
   the extension's objects).
6. **nova-compute only, the hypervisor fake**: ``XenAPIDriver.spawn`` is
   replaced by an *adopting* spawn (:func:`adopt_spawn`). Building a VM
   from an image is not what the verification is about: the server's
   metadata key ``verify_adopt_vm`` names a VM that the mock XAPI already
   runs, with the server's volumes attached; the spawn renames it to the
   instance's name and sets its ``other_config`` ``nova_uuid``. A server
   without that key fails to spawn. Every other method of the driver
   (stock ``xenapi.XenAPIDriver`` or ``xenapi_sr.driver.XenAPISRDriver``)
   is unchanged.

7. **nova-compute only, a driver outside nova.virt**: nova 21 loads
   ``compute_driver`` only as ``nova.virt.<name>``. To run a driver given
   by a full dotted path (the verification's tests run deliberately broken
   extension drivers), :data:`DRIVER_MODULE_ENV` names its module, which
   is made importable as ``nova.virt.verify_driver``
   (``compute_driver = verify_driver.<class>``). Without the variable
   nothing changes.

Then it runs the console script's own ``main`` (or, for placement's WSGI
script, the script itself) with ``sys.argv`` set to ``COMMAND ARGS...``.
"""

import os
import runpy
import shutil
import sys
import time
import types

#: Server metadata key naming the mock VM a new server takes over.
ADOPT_KEY = 'verify_adopt_vm'

#: Environment variable: module of a compute driver outside nova.virt.
DRIVER_MODULE_ENV = 'NOVA_XENAPI_SR_VERIFY_DRIVER_MODULE'
ALIAS_MODULE = 'nova.virt.verify_driver'

NOVA_COMMANDS = ('nova-api', 'nova-conductor', 'nova-conductor-xenapi-sr',
                 'nova-scheduler', 'nova-compute', 'nova-manage')
PLACEMENT_COMMANDS = ('placement-api', 'placement-manage')


def patch_eventlet():
    """nova's eventlet patching, without ``use_hub`` (fix 1)."""
    os.environ['EVENTLET_NO_GREENDNS'] = 'yes'
    os.environ['OS_NOVA_DISABLE_EVENTLET_PATCHING'] = '1'
    import eventlet
    eventlet.monkey_patch()
    import __original_module_threading as orig_threading
    import threading
    orig_threading.current_thread.__globals__['_active'] = threading._active


def fix_get_table():
    """A ``get_table`` whose table is bound to the engine (fix 2)."""
    from oslo_db.sqlalchemy import utils
    import sqlalchemy

    def get_table(engine, name):
        metadata = sqlalchemy.MetaData(bind=engine)
        return sqlalchemy.Table(name, metadata, autoload_with=engine)

    utils.get_table = get_table


def _add_enforce_scope(conf):
    from oslo_config import cfg
    try:
        conf.register_opt(cfg.BoolOpt('enforce_scope', default=False),
                          group='oslo_policy')
    except cfg.DuplicateOptError:
        pass


def register_enforce_scope(command):
    """``[oslo_policy] enforce_scope`` again (fix 3).

    nova's services use the global ``cfg.CONF``; placement builds its own
    ``ConfigOpts`` and fills it with ``placement.conf.register_opts``,
    which gains the option too.
    """
    from oslo_config import cfg
    _add_enforce_scope(cfg.CONF)
    if command in PLACEMENT_COMMANDS:
        import placement.conf
        original = placement.conf.register_opts

        def register_opts(conf):
            original(conf)
            _add_enforce_scope(conf)

        placement.conf.register_opts = register_opts

    from oslo_policy import policy
    original_scope = policy.Enforcer._enforce_scope

    def _enforce_scope(self, creds, rule, *args, **kwargs):
        try:
            enforce = self.conf.oslo_policy.enforce_scope
        except cfg.NoSuchOptError:
            enforce = False
        if not enforce:
            return True
        return original_scope(self, creds, rule, *args, **kwargs)

    policy.Enforcer._enforce_scope = _enforce_scope


def provide_monotonic():
    """A ``monotonic`` module that is ``time.monotonic`` (fix 4)."""
    if 'monotonic' not in sys.modules:
        module = types.ModuleType('monotonic')
        module.monotonic = time.monotonic
        sys.modules['monotonic'] = module


def adopt_spawn(self, context, instance, image_meta, injected_files,
                admin_password, allocations, network_info=None,
                block_device_info=None, power_on=True, accel_info=None):
    """Take over the running mock VM the server's metadata names (fix 6)."""
    label = (instance.metadata or {}).get(ADOPT_KEY)
    if not label:
        raise RuntimeError('the verification boots only servers that adopt '
                           'a VM of the mock XAPI (metadata %s)' % ADOPT_KEY)
    session = self._session
    refs = session.VM.get_by_name_label(label)
    if len(refs) != 1:
        raise RuntimeError('the mock XAPI runs %d VMs named %s, not one'
                           % (len(refs), label))
    vm_ref = refs[0]
    session.VM.set_name_label(vm_ref, instance.name)
    session.VM.remove_from_other_config(vm_ref, 'nova_uuid')
    session.VM.add_to_other_config(vm_ref, 'nova_uuid', instance.uuid)


def patch_compute():
    from nova.virt.xenapi import driver
    driver.XenAPIDriver.spawn = adopt_spawn
    module = os.environ.get(DRIVER_MODULE_ENV)
    if module:
        import importlib
        import nova.virt
        sys.modules[ALIAS_MODULE] = importlib.import_module(module)
        nova.virt.verify_driver = sys.modules[ALIAS_MODULE]


def prepare(command):
    """Apply the fixes ``command`` needs (see the module docstring)."""
    if command in NOVA_COMMANDS:
        patch_eventlet()
    provide_monotonic()
    fix_get_table()
    register_enforce_scope(command)
    from nova_xenapi_sr import os_xenapi_compat
    os_xenapi_compat.apply()
    if command == 'nova-compute':
        patch_compute()


def script_path(command):
    """The installed console script ``command``, next to this Python."""
    here = os.path.join(os.path.dirname(sys.executable), command)
    if os.path.exists(here):
        return here
    found = shutil.which(command)
    if not found:
        raise SystemExit('launch: no command %s is installed' % command)
    return found


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in NOVA_COMMANDS + PLACEMENT_COMMANDS:
        raise SystemExit('usage: python -m %s {%s} [ARGS...]' % (
            __spec__.name if __spec__ else 'launch',
            ','.join(NOVA_COMMANDS + PLACEMENT_COMMANDS)))
    command = argv[0]
    path = script_path(command)
    prepare(command)
    sys.argv = [path] + argv[1:]
    runpy.run_path(path, run_name='__main__')


if __name__ == '__main__':
    main()
