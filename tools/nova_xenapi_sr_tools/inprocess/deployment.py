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

"""The in-process deployment: see the package docstring."""

import collections
import contextlib
import os
import sys
import threading
import time
import urllib.parse

import fixtures

from nova_xenapi_sr_tools.inprocess import eventlet_setup
from nova_xenapi_sr_tools.inprocess import fakes

STOCK = 'xenapi.XenAPIDriver'
EXTENSION = 'xenapi_sr.driver.XenAPISRDriver'
#: ``(pool, host)`` of each compute, in order: source first.
DEFAULT_NODES = (('pool-a', 'host-a'), ('pool-b', 'host-b'))
#: Migration statuses after which nova does nothing more.
FINAL_MIGRATION_STATUSES = ('completed', 'error', 'failed', 'cancelled',
                            'done')
#: Seconds between two looks at nova's state while waiting (each look
#: costs an API or database request in this very process).
POLL = 0.1
#: An image of nova's fake image service (nova.tests.unit.image.fake).
FAKE_IMAGE = '155d900f-4e14-4e4c-a73d-069cbf4541e6'
#: Forcing a live-migration host exists up to this microversion.
FORCE_MICROVERSION = '2.67'


class DeploymentError(RuntimeError):
    """The deployment cannot start or a helper gave up waiting."""


class Compute(object):
    """One nova-compute service of the deployment."""

    def __init__(self, host, pool, driver_name, url, service):
        self.host = host
        self.pool = pool
        self.driver_name = driver_name
        self.url = url
        self.service = service

    @property
    def manager(self):
        return self.service.manager

    @property
    def driver(self):
        return self.service.manager.driver

    def __repr__(self):
        return '<Compute %s on %s (%s)>' % (self.host, self.pool,
                                            self.driver_name)


class _InFlight(object):
    """Counts, per instance, the flow steps nova has not finished yet.

    A step is counted when its RPC is sent and discounted when its handler
    returns (or raises): the conductor's live migration task, the source's
    live migration (``_do_live_migration``, run by the compute manager's
    executor after the ``live_migration`` cast) and the destination's
    ``rollback_live_migration_at_destination`` (a cast). An instance is
    settled when nothing is counted for it.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._count = collections.Counter()

    def add(self, uuid):
        with self._lock:
            self._count[uuid] += 1

    def done(self, uuid):
        with self._lock:
            self._count[uuid] -= 1
            if self._count[uuid] <= 0:
                del self._count[uuid]

    def busy(self, uuid=None):
        with self._lock:
            if uuid is None:
                return bool(self._count)
            return self._count.get(uuid, 0) > 0

    def clear(self):
        with self._lock:
            self._count.clear()


def _instance_uuid(args, kwargs):
    from nova import objects
    for value in list(args) + list(kwargs.values()):
        if isinstance(value, objects.Instance):
            return value.uuid
    return None


def preload():
    """Import nova's functional-test framework now.

    ``nova.test`` registers oslo.log's command-line options on nova's
    configuration, which fails once something parsed it (for example
    ``novaenv.prepare``); a process that does both imports this first.
    The test suite does it when it loads the test modules.
    """
    from oslo_config import cfg
    try:
        from nova.tests.functional import integrated_helpers
    except cfg.ArgsAlreadyParsedError:
        raise DeploymentError(
            "nova's configuration was parsed before nova's functional-test "
            "framework was imported; call nova_xenapi_sr_tools.inprocess."
            "preload() before anything parses it (novaenv.prepare does)")
    return integrated_helpers


def _services_case_class():
    """nova's ``ProviderUsageBaseTestCase``, as one hidden test case.

    Its ``setUp`` is nova's own functional-test set-up (configuration,
    fake transport, sqlite API/cell0/cell1 databases, placement, the API
    with noauth, Neutron, Glance, conductor, scheduler); the deployment
    runs it once per test class and then starts the computes.
    """
    integrated_helpers = preload()

    class NovaServices(integrated_helpers.ProviderUsageBaseTestCase):
        compute_driver = STOCK
        microversion = 'latest'
        # nova-compute takes external locks (lock_path)
        REQUIRES_LOCKING = True

        def setUp(self):
            # OSAPIFixture looks for api-paste.ini under site-packages;
            # the wheel installs it under the environment's etc/nova.
            paste = os.path.join(sys.prefix, 'etc', 'nova', 'api-paste.ini')
            if os.path.exists(paste):
                self.flags(api_paste_config=paste, group='wsgi')
            # oslo.policy 4.4 flipped enforce_new_defaults to True: nova
            # 21's new-default rules then deny its own test clients (no
            # roles); nova 21 ran with the deprecated rules OR'd in.
            from nova import conf as nova_conf
            from oslo_policy import opts as policy_opts
            policy_opts.set_defaults(nova_conf.CONF)
            self.flags(enforce_new_defaults=False, group='oslo_policy')
            super(NovaServices, self).setUp()

        def runTest(self):
            """Never run: the deployment only uses set-up and clean-up."""

    return NovaServices


class Deployment(fixtures.Fixture):
    """nova 21.2.4's services in this process over two mock XAPI pools.

    :param drivers: the ``compute_driver`` of each compute, in the order of
        ``nodes`` (``STOCK``, ``EXTENSION`` or any driver path nova's
        ``load_compute_driver`` takes).
    :param nodes: ``(pool, host)`` per compute. Computes naming the same
        pool share it: the pool's hosts are its computes' hosts, in order,
        the first the master. A master's compute reaches the pool's own
        endpoint; a member's reaches its host's endpoint, which answers
        ``HOST_IS_SLAVE`` (os-xenapi's session then logs in to the master
        and finds its own host by the member's address).
    :param stock_registry: start from nova's own object registry, without
        the extension's ``XenapiLiveMigrateData`` 1.5, even if it was
        imported earlier (for a deployment where every node is stock).
    :param max_concurrent_live_migrations: nova's option of that name for
        every compute (nova's default 1 runs a compute's migrations one at
        a time; 0 is unlimited).
    """

    def __init__(self, drivers=(EXTENSION, EXTENSION), nodes=DEFAULT_NODES,
                 stock_registry=False, max_concurrent_live_migrations=1):
        super(Deployment, self).__init__()
        if len(drivers) != len(nodes):
            raise ValueError('one driver per node: %d drivers, %d nodes'
                             % (len(drivers), len(nodes)))
        self.drivers = tuple(drivers)
        self.nodes = tuple(nodes)
        hosts = [host for _, host in self.nodes]
        if len(set(hosts)) != len(hosts):
            raise ValueError('one compute per host: %s' % ', '.join(hosts))
        #: ``{pool: [host, ...]}``, in the order of ``nodes``.
        self.pools = collections.OrderedDict()
        for pool, host in self.nodes:
            self.pools.setdefault(pool, []).append(host)
        self.stock_registry = stock_registry
        self.max_concurrent_live_migrations = max_concurrent_live_migrations
        self.computes = collections.OrderedDict()
        self.inflight = _InFlight()
        self._adoptions = {}
        self._adoptions_lock = threading.Lock()
        self._driver_pools = {}

    # -- set-up ---------------------------------------------------------
    def _setUp(self):
        if not eventlet_setup.is_patched():
            raise DeploymentError(
                'eventlet is not monkey-patched: call nova_xenapi_sr_tools.'
                'inprocess.monkey_patch() before anything imports nova '
                '(the test suite does it in tests/__init__.py)')
        from nova_xenapi_sr_tools.mockxapi import service
        self._compat()
        self._keep_rpc_globals()
        # os-xenapi 0.3 fails on Python 3 (see nova_xenapi_sr.
        # os_xenapi_compat); the extension's driver applies the fix itself,
        # stock nova needs it too to run here at all.
        from nova_xenapi_sr import os_xenapi_compat
        os_xenapi_compat.apply()
        self.xapi = service.MockXapi(self.new_scenario())
        self.xapi.start()
        self.addCleanup(self.xapi.stop)
        self._fresh_config()
        if self.stock_registry:
            from nova_xenapi_sr_tools import fixture as xs_fixture
            self.useFixture(xs_fixture.ObjectRegistryFixture(stock=True))
        self._start_nova()

    def _compat(self):
        """Get nova 21 past this environment's newer libraries."""
        from oslo_config import cfg
        from oslo_db.sqlalchemy import utils as db_utils
        import placement.conf
        import sqlalchemy

        def get_table(engine, name):
            # oslo.db 15 returns a Table of an unbound MetaData; nova's
            # sqlalchemy-migrate script 230 needs it bound to the engine.
            metadata = sqlalchemy.MetaData(bind=engine)
            return sqlalchemy.Table(name, metadata, autoload=True)
        self.useFixture(fixtures.MonkeyPatch(
            'oslo_db.sqlalchemy.utils.get_table', get_table))
        assert db_utils  # patched in place above

        register_opts = placement.conf.register_opts

        def placement_register_opts(conf):
            # oslo.policy 6 dropped [oslo_policy] enforce_scope, which
            # placement 3.0.1's deploy still reads.
            register_opts(conf)
            try:
                conf.register_opt(cfg.BoolOpt('enforce_scope', default=False),
                                  group='oslo_policy')
            except cfg.DuplicateOptError:
                pass
        self.useFixture(fixtures.MonkeyPatch(
            'placement.conf.register_opts', placement_register_opts))

        # oslo.policy 6 always enforces a rule's scope_types (there is no
        # enforce_scope any more); nova 21's and placement 3.0.1's rules
        # predate that and their noauth contexts are project-scoped, so
        # system-scoped rules (placement's admin API, os-migrateLive)
        # would refuse nova itself. Their rules are registered without
        # scope_types, as enforce_scope=False did in their days.
        for module in ('placement.policies', 'nova.policies'):
            self.useFixture(fixtures.MonkeyPatch(
                module + '.list_rules', _unscoped(module)))

    def _fresh_config(self):
        """Let nova's ConfFixture parse nova's configuration again.

        ``novaenv.prepare()`` (run by other tests in this process) parsed
        it, and nova's ``config.parse_args`` then fails registering
        oslo.log's options. At clean-up nova's fixture resets the
        configuration; ``novaenv`` then sets the process up again on its
        next ``prepare()``.
        """
        import nova.conf
        from nova_xenapi_sr_tools import novaenv
        nova.conf.CONF.clear()
        self.addCleanup(novaenv.forget)

    def _keep_rpc_globals(self):
        """Give the rest of the process its RPC set-up back at clean-up."""
        from nova import rpc
        saved = {name: getattr(rpc, name) for name in (
            'TRANSPORT', 'NOTIFICATION_TRANSPORT', 'LEGACY_NOTIFIER',
            'NOTIFIER')}

        def restore():
            for name, value in saved.items():
                setattr(rpc, name, value)
        self.addCleanup(restore)

    def _start_nova(self):
        case = _services_case_class()('runTest')
        with fixtures.EnvironmentVariable('OS_TEST_TIMEOUT', '0'), \
                fixtures.EnvironmentVariable('OS_STDOUT_CAPTURE', '0'), \
                fixtures.EnvironmentVariable('OS_STDERR_CAPTURE', '0'), \
                fixtures.EnvironmentVariable('OS_LOG_CAPTURE', '0'):
            self.addCleanup(self._run_cleanups, case)
            case.setUp()
        self.case = case
        self.api = case.admin_api
        self.neutron = case.neutron
        self.cinder = case.useFixture(fakes.cinder_fixture_class()(
            case, self._connection_info_for))
        self.connection_overrides = {}
        case.stub_out('nova.virt.xenapi.driver.XenAPIDriver.spawn',
                      fakes.adopt_spawn(self))
        self._track_flow(case)
        case.flags(ovs_integration_bridge='br-int',
                   connection_username='root', connection_password='mock',
                   independent_compute=True, check_host=False,
                   group='xenserver')
        case.flags(max_concurrent_live_migrations=(
            self.max_concurrent_live_migrations))
        for driver, (pool, host) in zip(self.drivers, self.nodes):
            url = self.xapi.host_urls[(pool, host)]
            case.flags(compute_driver=driver)
            case.flags(connection_url=url, group='xenserver')
            service = case.start_service('compute', host=host)
            compute = Compute(host, pool, driver, url, service)
            self._pin_url(compute)
            self.computes[host] = compute
            self._driver_pools[id(compute.driver)] = pool
        self.hosts = list(self.computes)

    @staticmethod
    def _run_cleanups(case):
        errors = []
        while case._cleanups:
            func, args, kwargs = case._cleanups.pop()
            try:
                func(*args, **kwargs)
            except Exception as exc:  # keep cleaning up
                errors.append(exc)
        if errors:
            raise errors[0]

    @staticmethod
    def _pin_url(compute):
        # XenAPIDriver reads CONF.xenserver.connection_url again in
        # get_host_ip_addr (the volume connector's "ip"); with two drivers
        # in one process, each keeps its own.
        netloc = urllib.parse.urlparse(compute.url).netloc
        compute.driver.get_host_ip_addr = lambda: netloc

    def _track_flow(self, case):
        from nova.compute import manager as compute_manager
        from nova.compute import rpcapi as compute_rpcapi
        from nova.conductor import api as conductor_api
        from nova.conductor import manager as conductor_manager
        inflight = self.inflight

        def sender(func):
            def send(*args, **kwargs):
                uuid = _instance_uuid(args, kwargs)
                inflight.add(uuid)
                try:
                    return func(*args, **kwargs)
                except Exception:
                    inflight.done(uuid)
                    raise
            return send

        def handler(func, on_error_only=False):
            def handle(*args, **kwargs):
                uuid = _instance_uuid(args, kwargs)
                try:
                    result = func(*args, **kwargs)
                except BaseException:
                    inflight.done(uuid)
                    raise
                if not on_error_only:
                    inflight.done(uuid)
                return result
            return handle

        for cls, name, wrap in (
                (conductor_api.ComputeTaskAPI, 'live_migrate_instance',
                 sender),
                (conductor_manager.ComputeTaskManager, '_live_migrate',
                 handler),
                (compute_rpcapi.ComputeAPI, 'live_migration', sender),
                (compute_manager.ComputeManager, 'live_migration',
                 lambda f: handler(f, on_error_only=True)),
                (compute_manager.ComputeManager, '_do_live_migration',
                 handler),
                (compute_rpcapi.ComputeAPI,
                 'rollback_live_migration_at_destination', sender),
                (compute_manager.ComputeManager,
                 'rollback_live_migration_at_destination', handler)):
            original = getattr(cls, name)
            wrapped = wrap(original)
            wrapped.__wrapped__ = original
            case.useFixture(fixtures.MonkeyPatch(
                '%s.%s.%s' % (cls.__module__, cls.__name__, name), wrapped))

    # -- scenarios --------------------------------------------------------
    def new_scenario(self):
        """A :class:`~.mockxapi.Scenario` with this deployment's pools."""
        from nova_xenapi_sr_tools.mockxapi import Scenario
        sc = Scenario()
        for pool, hosts in self.pools.items():
            sc.add_pool(pool, hosts=list(hosts))
        return sc

    def reset(self, scenario=None):
        """Start a new case without restarting nova.

        Deletes every server nova has (against an empty scenario, so
        nova's destroy touches no VM of the next one), forgets the Cinder
        fake's attachments and events, then serves ``scenario`` (default:
        empty pools) with no faults or latency and empty call logs.
        """
        self.wait_settled()
        self.xapi.reset(self.new_scenario())
        self.delete_all_servers()
        self.cinder.reset()
        self.connection_overrides.clear()
        with self._adoptions_lock:
            self._adoptions.clear()
        self.xapi.reset(scenario or self.new_scenario())
        self._rename_scenario_vms()
        self.clear_calls()

    #: Scenario VMs are renamed with this prefix until adopted, so that
    #: they never clash with nova's instance names (``instance-%08x`` of
    #: nova's database ids).
    SCENARIO_PREFIX = 'scenario-'

    def scenario_vm_name(self, instance_id):
        """The name label of a scenario VM nova has not adopted."""
        return self.SCENARIO_PREFIX + self.xapi.scenario.instance_name(
            instance_id)

    def _rename_scenario_vms(self):
        for pool in self.pools:
            p = self.xapi.pool(pool)
            with p.world.lock:
                for ref in p.db.refs('VM'):
                    rec = p.db.get('VM', ref)
                    if not rec['is_control_domain']:
                        rec['name_label'] = (self.SCENARIO_PREFIX +
                                             rec['name_label'])

    def clear_calls(self):
        for pool in self.pools:
            self.xapi.pool(pool).clear_calls()

    @property
    def scenario(self):
        return self.xapi.scenario

    def _connection_info_for(self, volume_id, connector):
        host = (connector or {}).get('host')
        override = self.connection_overrides.get((volume_id, host))
        if override is not None:
            return override(volume_id, connector) if callable(override) \
                else dict(override, data=dict(override['data']))
        return self.xapi.scenario.connection_info(volume_id)

    def set_connection_info(self, volume_id, host, info):
        """What Cinder hands out for ``volume_id`` to ``host``'s connector.

        ``info`` is a ``connection_info`` dict (copied per attachment) or
        ``f(volume_id, connector) -> dict``. Default: the scenario's.
        """
        self.connection_overrides[(volume_id, host)] = info

    # -- the adopt-spawn's side ------------------------------------------
    def pool_of_driver(self, driver):
        return self._driver_pools[id(driver)]

    def take_adoption(self, display_name):
        with self._adoptions_lock:
            try:
                return self._adoptions.pop(display_name)
            except KeyError:
                raise DeploymentError(
                    'no scenario VM waits for server %r: boot it with '
                    'Deployment.boot' % display_name)

    # -- pools ------------------------------------------------------------
    def add_pool_aggregate(self, pool):
        """nova's host aggregate of a XenServer pool shared by computes.

        Made through the API and left as nova 21's ``xenapi.pool.
        ResourcePool.add_to_aggregate`` leaves the aggregate of a pool it
        joined: the computes as hosts, metadata ``hypervisor_pool``,
        ``operational_state`` ``active``, ``master_compute`` (the master
        host's compute) and each compute's XAPI host uuid. The hosts are
        added before the metadata is set: nova's driver refuses to join a
        hypervisor pool with ``independent_compute`` (the mock's pool is
        already formed). Returns the aggregate as the API shows it.
        """
        hosts = self.pools[pool]
        aggregate = self.api.post_aggregate({'aggregate': {'name': pool}})
        for host in hosts:
            self.api.add_host_to_aggregate(aggregate['id'], host)
        the_pool = self.xapi.pool(pool)
        with the_pool.world.lock:
            uuids = {rec['name_label']: rec['uuid'] for rec in
                     the_pool.db.tables['host'].values()}
        metadata = {'hypervisor_pool': 'true',
                    'operational_state': 'active',
                    'master_compute': hosts[0]}
        metadata.update((host, uuids[host]) for host in hosts)
        return self.api.post_aggregate_action(aggregate['id'], {
            'set_metadata': {'metadata': metadata}})

    # -- servers ----------------------------------------------------------
    def boot(self, instance_id, volumes, host=None, name=None,
             networks=None, wait=True):
        """Boot a volume-backed server adopting a scenario VM.

        :param instance_id: the scenario instance (``Scenario.add_instance``)
            whose VM, already running, the server becomes.
        :param volumes: ``[(volume id, device)]``; the first is the boot
            volume. None: the server boots from a fake Glance image.
        :param host: the compute to boot on (default: the first node's).
        :param networks: the API's ``networks`` (default: one port on
            NeutronFixture's network, so the server has a VIF).
        :returns: the server as the API shows it (ACTIVE) if ``wait``.
        """
        host = host or self.nodes[0][1]
        name = name or 'server-%s' % instance_id
        with self._adoptions_lock:
            self._adoptions[name] = self.scenario_vm_name(instance_id)
        bdms = []
        for index, (volume_id, device) in enumerate(volumes):
            bdms.append({'uuid': volume_id, 'source_type': 'volume',
                         'destination_type': 'volume',
                         'boot_index': 0 if index == 0 else -1,
                         'device_name': device,
                         'delete_on_termination': False})
        body = {'name': name, 'flavorRef': '1', 'host': host,
                # no volume: boot from one of nova's fake Glance images
                'imageRef': '' if bdms else FAKE_IMAGE,
                'networks': networks if networks is not None else [
                    {'uuid': self.neutron.network_1['id']}]}
        if bdms:
            body['block_device_mapping_v2'] = bdms
        server = self.api.post_server({'server': body})
        if wait:
            server = self.wait_for_server(server, 'ACTIVE')
        return server

    def boot_many(self, specs, wait=True):
        """Boot several servers; ``specs``: ``[(instance_id, volumes)]``.

        Returns the servers in order (all ACTIVE if ``wait``).
        """
        servers = [self.boot(iid, vols, wait=False) for iid, vols in specs]
        if wait:
            servers = [self.wait_for_server(s, 'ACTIVE') for s in servers]
        return servers

    def get_server(self, server):
        return self.api.get_server(_id(server))

    def wait_for_server(self, server, status, timeout=60):
        deadline = time.time() + timeout
        while True:
            found = self.get_server(server)
            if found['status'] == status:
                return found
            if found['status'] == 'ERROR' and status != 'ERROR':
                raise DeploymentError('server %s went to ERROR: %s' % (
                    found['id'], found.get('fault')))
            if time.time() > deadline:
                raise DeploymentError('server %s is %s, not %s, after %ss'
                                      % (found['id'], found['status'],
                                         status, timeout))
            time.sleep(POLL)

    def delete_all_servers(self, timeout=60):
        from nova.tests.functional.api import client
        servers = self.api.get_servers(detail=False)
        for server in servers:
            self.api.delete_server(server['id'])
        deadline = time.time() + timeout
        for server in servers:
            while True:
                try:
                    self.api.get_server(server['id'])
                except client.OpenStackApiNotFoundException:
                    break
                if time.time() > deadline:
                    raise DeploymentError('server %s not deleted after %ss'
                                          % (server['id'], timeout))
                time.sleep(POLL)

    def vm_name(self, server):
        """The name label of the server's VM (nova's instance name)."""
        return self.instance(server).name

    # -- live migration ---------------------------------------------------
    def live_migrate(self, server, host=None, force=False,
                     block_migration='auto', wait=True):
        """``os-migrateLive`` through the compute API.

        ``host=None`` lets the scheduler choose; with ``force`` the host
        is forced (microversion 2.67, the last that has ``force``). With
        ``wait``, returns once nova has settled (:meth:`wait_settled`).
        """
        body = {'host': host, 'block_migration': block_migration}
        microversion = self.api.microversion
        if force:
            body['force'] = True
            microversion = FORCE_MICROVERSION
        with _microversion(self.api, microversion):
            self.api.post_server_action(_id(server),
                                        {'os-migrateLive': body})
        if wait:
            self.wait_settled(server)
        return self.migration(server)

    def live_migrate_many(self, servers, host=None, force=False):
        """Start one live migration per server, then wait for them all."""
        for server in servers:
            self.live_migrate(server, host=host, force=force, wait=False)
        self.wait_settled()
        return [self.migration(server) for server in servers]

    def wait_settled(self, server=None, timeout=90):
        """Wait until nova has finished with ``server`` (or with all).

        Settled: no live migration step is in flight for it (the
        conductor's task, the source's migration and the destination's
        rollback, a cast) and its task_state is None.
        """
        uuid = _id(server) if server is not None else None
        deadline = time.time() + timeout
        while True:
            # the in-flight count is cheap; the database only when idle
            if not self.inflight.busy(uuid):
                if uuid is None or self.instance(uuid).task_state is None:
                    return
            if time.time() > deadline:
                raise DeploymentError(
                    'nova did not settle%s within %ss' % (
                        ' for %s' % uuid if uuid else '', timeout))
            time.sleep(POLL)

    # -- nova's records ---------------------------------------------------
    @contextlib.contextmanager
    def cell_context(self):
        from nova import context
        ctxt = context.get_admin_context()
        with context.target_cell(
                ctxt, self.case.cell_mappings['cell1']) as cctxt:
            yield cctxt

    def instance(self, server):
        """nova's ``Instance`` record (host, vm_state, task_state, ...)."""
        from nova import objects
        with self.cell_context() as ctxt:
            return objects.Instance.get_by_uuid(ctxt, _id(server))

    def bdms(self, server):
        """``{volume id: BlockDeviceMapping}`` of the server."""
        from nova import objects
        with self.cell_context() as ctxt:
            return {bdm.volume_id: bdm for bdm in
                    objects.BlockDeviceMappingList.get_by_instance_uuid(
                        ctxt, _id(server)) if bdm.is_volume}

    def migrations(self, server):
        from nova import objects
        with self.cell_context() as ctxt:
            return sorted(objects.MigrationList.get_by_filters(
                ctxt, {'instance_uuid': _id(server)}), key=lambda m: m.id)

    def migration(self, server):
        """The server's newest migration record, or None."""
        found = self.migrations(server)
        return found[-1] if found else None

    def actions(self, server):
        """``[(action, [(event, result, details, traceback)])]``.

        Oldest first; ``details`` is the failure's message (nova's
        ``exception_to_dict``), ``traceback`` where it was raised.
        """
        from nova import objects
        result = []
        with self.cell_context() as ctxt:
            actions = objects.InstanceActionList.get_by_instance_uuid(
                ctxt, _id(server))
            for action in sorted(actions, key=lambda a: a.id):
                events = objects.InstanceActionEventList.get_by_action(
                    ctxt, action.id)
                result.append((action.action, [
                    (e.event, e.result, e.details, e.traceback)
                    for e in sorted(events, key=lambda e: e.id)]))
        return result

    def faults(self, server):
        """``[(message, details)]`` of the server's instance faults.

        Oldest first. nova keeps 255 characters of the message; for an
        unexpected error (code 500) ``details`` is the traceback, whose
        last line holds the whole message.
        """
        from nova import objects
        with self.cell_context() as ctxt:
            faults = objects.InstanceFaultList.get_by_instance_uuids(
                ctxt, [_id(server)])
        return [(f.message, f.details)
                for f in sorted(faults, key=lambda f: f.id)]

    def events(self, server, action='live-migration'):
        """``[(event, result)]`` of the server's last ``action``."""
        found = [events for name, events in self.actions(server)
                 if name == action]
        return [(e, r) for e, r, _, _ in found[-1]] if found else []

    def event_errors(self, server, action='live-migration'):
        """``details`` and traceback of each failed event of ``action``.

        One string per failed event of the server's last ``action``.
        """
        found = [events for name, events in self.actions(server)
                 if name == action]
        return ['%s: %s\n%s' % (event, details, tb)
                for event, r, details, tb in (found[-1] if found else [])
                if r == 'Error']


def _unscoped(module_name):
    import copy
    import importlib
    list_rules = importlib.import_module(module_name).list_rules

    def unscoped_rules():
        rules = []
        for rule in list_rules():
            rule = copy.copy(rule)
            rule.scope_types = None
            rules.append(rule)
        return rules
    return unscoped_rules


def _id(server):
    return server if isinstance(server, str) else server['id']


@contextlib.contextmanager
def _microversion(api, microversion):
    saved = api.microversion
    api.microversion = microversion
    try:
        yield
    finally:
        api.microversion = saved
