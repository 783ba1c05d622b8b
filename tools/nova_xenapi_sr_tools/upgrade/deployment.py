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


"""A nova 21.2.4 deployment of real service processes, one per node.

:class:`Deployment` owns everything a verification run starts, in one
:class:`~.services.Workspace`:

* a private RabbitMQ and MariaDB (:mod:`.services`, through pifpaf);
* the mock XAPI (the hypervisor; one pool per compute host) and the fake
  Cinder, Neutron and Glance (:mod:`.fakes`), in this process;
* nova's databases, set up as an operator does (``nova-manage api_db
  sync``, ``cell_v2 map_cell0``, ``cell_v2 create_cell``, ``db sync``,
  later ``cell_v2 discover_hosts``) and placement's (``placement-manage db
  sync``);
* the node processes, each with a configuration file of its own
  (``<workspace>/nodes/<node>/nova.conf``), each started through
  :mod:`.launch`: ``placement-api``, ``nova-api`` (``noauth2``),
  ``nova-scheduler``, the conductor (``nova-conductor`` on a stock node,
  ``nova-conductor-xenapi-sr`` on an upgraded one) and one
  ``nova-compute`` per XenAPI host, whose ``compute_driver`` is stock
  ``xenapi.XenAPIDriver`` or the extension's
  ``xenapi_sr.driver.XenAPISRDriver``.

:meth:`Deployment.set_flavour` moves one node between stock and upgraded
the way an operator does: stop the service, change its configuration
(and, for the conductor, the command), start it again, wait until nova
reports it up. :class:`ComputeAPI` is the client of nova's compute API.
"""

import os
import sys
import time

import requests

from nova_xenapi_sr_tools.upgrade import fakes
from nova_xenapi_sr_tools.upgrade import launch
from nova_xenapi_sr_tools.upgrade import services

STOCK = 'stock'
EXTENSION = 'extension'

DRIVERS = {STOCK: 'xenapi.XenAPIDriver',
           EXTENSION: 'xenapi_sr.driver.XenAPISRDriver'}
CONDUCTORS = {STOCK: 'nova-conductor',
              EXTENSION: 'nova-conductor-xenapi-sr'}

#: Seconds a stock conductor waits for an answer nobody can give (the
#: backport of XenapiLiveMigrateData 1.5) before MessagingTimeout. Real
#: deployments wait 60 s; the failure is the same.
RPC_RESPONSE_TIMEOUT = 10

#: Seconds any service gets to come up.
START_TIMEOUT = 240
#: The RPC topic of each service binary restarted during a run.
TOPICS = {'nova-conductor': 'conductor', 'nova-compute': 'compute',
          'nova-scheduler': 'scheduler'}

API_VERSION = '2.80'
FLAVOR = 'verify'

#: Migration statuses nova leaves once it is done with a migration.
MIGRATION_FINAL = ('completed', 'error', 'failed', 'cancelled', 'done')

#: The destination's rollback of a failed live migration, as nova records
#: it (``wrap_instance_event(prefix='compute')``).
ROLLBACK_EVENT = 'compute_rollback_live_migration_at_destination'
#: Seconds a settled failed migration may wait for that rollback to start.
ROLLBACK_GRACE = 20

#: Server states nova leaves a server in once an operation ended.
SETTLED = ('ACTIVE', 'ERROR', 'SHUTOFF')
TOKEN = 'admin:%s' % fakes.PROJECT


#: Environment variable every process of a run inherits (its workspace).
RUN_MARKER = 'NOVA_XENAPI_SR_VERIFY_RUN'


class DeploymentError(services.ServiceError):
    """The deployment could not be set up, or a service broke down."""


def _ini(sections):
    lines = []
    for section, options in sections:
        lines.append('[%s]' % section)
        for key, value in options:
            if value is None:
                continue
            if isinstance(value, bool):
                value = 'true' if value else 'false'
            lines.append('%s = %s' % (key, value))
        lines.append('')
    return '\n'.join(lines)


def _api_paste_ini():
    """nova's ``api-paste.ini``, where the nova wheel installs it."""
    candidates = [os.path.join(sys.prefix, 'etc', 'nova', 'api-paste.ini')]
    import nova
    candidates.append(os.path.join(os.path.dirname(nova.__file__), '..',
                                   'etc', 'nova', 'api-paste.ini'))
    for path in candidates:
        if os.path.exists(path):
            return os.path.abspath(path)
    raise DeploymentError('nova\'s api-paste.ini is not installed (looked '
                          'in %s)' % ', '.join(candidates))


def _package_version(name):
    """The installed version of a pbr-built package (nova, placement)."""
    import pbr.version
    try:
        return pbr.version.VersionInfo(name).release_string()
    except Exception:
        return None


def nova_driver_name(path):
    """``(compute_driver, module to alias or None)`` for a driver path.

    nova 21 loads ``compute_driver`` relative to ``nova.virt``
    (``xenapi.XenAPIDriver``); a driver elsewhere, given by its full
    dotted path, is loaded through :mod:`.launch`'s alias.
    """
    if path.split('.', 1)[0] in ('xenapi', 'xenapi_sr'):
        return path, None
    module, _, name = path.rpartition('.')
    return 'verify_driver.%s' % name, module


class Node(object):
    """One nova service of the deployment."""

    def __init__(self, name, command, host, flavour=None):
        self.name = name
        self.command = command
        self.host = host
        self.flavour = flavour

    @property
    def binary(self):
        """The service's binary name in nova's services table."""
        if self.command.startswith('nova-conductor'):
            return 'nova-conductor'
        return self.command


class Deployment(object):
    """Every service of a verification run (a context manager).

    :param scenario: the mock XAPI :class:`~..mockxapi.Scenario` (its
        pools and VMs; the compute hosts are the hosts of ``hosts``).
    :param computes: ``{host name: pool name}`` of the compute nodes.
    :param flavours: ``{node name: 'stock'|'extension'}`` to start with;
        node names are ``conductor`` and ``compute-<host>``.
    :param extension_driver: ``compute_driver`` of upgraded computes.
    :param say: called with a progress line.
    """

    def __init__(self, scenario, computes, flavours=None,
                 extension_driver=None, keep_logs=False, say=None,
                 extra_python_path=(), credentials=None):
        self.scenario = scenario
        self.computes = dict(computes)
        self.initial = dict(flavours or {})
        self.extension_driver = extension_driver or DRIVERS[EXTENSION]
        self.say = say or (lambda line: None)
        self.extra_python_path = list(extra_python_path)
        self.credentials = dict(credentials or {})
        self.workspace = services.Workspace(keep=keep_logs)
        self.log_dir = self.workspace.sub('logs')
        self.supervisor = services.Supervisor(self.log_dir)
        self.broker = services.Broker(self.workspace)
        self.database = services.Database(self.workspace)
        self.cinder = fakes.Cinder()
        self.neutron = fakes.Neutron()
        self.glance = fakes.Glance()
        self.xapi = None
        self.nodes = {}
        self.ports = {}
        self.api = None
        self.timings = {}
        self.installed = []

    # --- life cycle ---------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self.close()

    def start(self):
        # Every process of this run inherits it: how a test (or an
        # operator) finds what this run started.
        os.environ[RUN_MARKER] = self.workspace.path
        started = time.monotonic()
        self.installed = services.ensure_packages(say=self.say)
        self.timings['install'] = time.monotonic() - started
        started = time.monotonic()
        self.say('starting RabbitMQ and MariaDB (pifpaf)')
        self.broker.start()
        self.database.start()
        self.database.create('nova_api', 'nova_cell0', 'nova', 'placement')
        from nova_xenapi_sr_tools.mockxapi import MockXapi
        self.xapi = MockXapi(self.scenario)
        self.xapi.start()
        for fake in (self.cinder, self.neutron, self.glance):
            fake.start()
        for name in ('api', 'placement'):
            self.ports[name] = services.free_port()
        self._plan_nodes()
        for node in self.nodes.values():
            self._write_config(node)
        self.say('setting up the nova and placement databases')
        self._manage('placement-db-sync', 'placement-manage', 'db', 'sync')
        self._manage('nova-manage-api-db-sync', 'nova-manage', 'api_db',
                     'sync')
        self._manage('nova-manage-map-cell0', 'nova-manage', 'cell_v2',
                     'map_cell0', '--database_connection',
                     self.database.url('nova_cell0'))
        self._manage('nova-manage-create-cell', 'nova-manage', 'cell_v2',
                     'create_cell', '--name', 'cell1')
        self._manage('nova-manage-db-sync', 'nova-manage', 'db', 'sync')
        self.say('starting placement-api, nova-api, nova-scheduler and the '
                 'conductor')
        for name in ('placement', 'api', 'scheduler', 'conductor'):
            self._start_node(self.nodes[name])
        self.api = ComputeAPI('http://127.0.0.1:%d' % self.ports['api'])
        self._wait_api()
        for name in sorted(self.nodes):
            if name.startswith('compute-'):
                self.say('starting %s (%s)'
                         % (name, self.nodes[name].flavour))
                self._start_node(self.nodes[name])
        self.wait_up([n for n in self.nodes.values()
                      if n.binary.startswith('nova-') and
                      n.binary != 'nova-api'])
        self._manage('nova-manage-discover-hosts', 'nova-manage', 'cell_v2',
                     'discover_hosts', '--verbose')
        self.api.post('/flavors', {'flavor': {
            'name': FLAVOR, 'id': FLAVOR, 'ram': 256, 'vcpus': 1,
            'disk': 0}})
        self.timings['start'] = time.monotonic() - started
        return self

    def close(self):
        errors = []
        for step in (self.supervisor.close, self._stop_fakes,
                     self._stop_xapi, self.broker.stop, self.database.stop):
            try:
                step()
            except Exception as exc:  # keep stopping the rest
                errors.append('%s: %s' % (step.__name__, exc))
        self.workspace.remove()
        if errors:
            raise DeploymentError('stopping the deployment: %s'
                                  % '; '.join(errors))

    def _stop_fakes(self):
        for fake in (self.cinder, self.neutron, self.glance):
            fake.stop()

    def _stop_xapi(self):
        if self.xapi is not None:
            self.xapi.stop()
            self.xapi = None

    # --- nodes and configuration --------------------------------------------

    def _plan_nodes(self):
        self.nodes['placement'] = Node('placement', 'placement-api',
                                       'controller')
        self.nodes['api'] = Node('api', 'nova-api', 'controller')
        self.nodes['scheduler'] = Node('scheduler', 'nova-scheduler',
                                       'controller')
        flavour = self.initial.get('conductor', STOCK)
        self.nodes['conductor'] = Node('conductor', CONDUCTORS[flavour],
                                       'controller', flavour)
        for host in sorted(self.computes):
            name = 'compute-%s' % host
            self.nodes[name] = Node(name, 'nova-compute', host,
                                    self.initial.get(name, STOCK))

    def log_path(self, name):
        """The log file of node (or one-shot command) ``name``."""
        return os.path.join(self.log_dir, name + '.log')

    def node_dir(self, node):
        return self.workspace.sub('nodes', node.name)

    def config_path(self, node):
        return os.path.join(self.node_dir(node), 'nova.conf')

    def _auth(self, url):
        return [('auth_type', 'admin_token'), ('endpoint', url),
                ('token', TOKEN)]

    def _nova_config(self, node):
        state = self.workspace.sub('nodes', node.name, 'state')
        default = [
            ('transport_url', self.broker.url),
            ('host', node.host),
            ('my_ip', '127.0.0.1'),
            ('state_path', state),
            ('debug', True),
            ('rpc_response_timeout', RPC_RESPONSE_TIMEOUT),
            ('graceful_shutdown_timeout', 5),
            ('vif_plugging_timeout', 0),
            ('vif_plugging_is_fatal', False),
            ('running_deleted_instance_action', 'noop'),
            ('heal_instance_info_cache_interval', -1),
            ('instance_usage_audit', False),
            ('enabled_apis', 'osapi_compute'),
            ('osapi_compute_listen', '127.0.0.1'),
            ('osapi_compute_listen_port', self.ports['api']),
            ('osapi_compute_workers', 1),
        ]
        sections = [('DEFAULT', default)]
        if node.command == 'nova-compute':
            pool = self.computes[node.host]
            user, password = self.credentials.get(pool, ('root', 'mock'))
            default.append(('compute_driver', nova_driver_name(
                self.extension_driver)[0] if node.flavour == EXTENSION
                else DRIVERS[STOCK]))
            sections.append(('xenserver', [
                # A pool member's compute connects to that host's own
                # endpoint, which answers HOST_IS_SLAVE; os-xenapi then
                # logs in to the master, as with a real pool.
                ('connection_url', self.xapi.host_urls.get(
                    (pool, node.host), self.xapi.urls[pool])),
                ('connection_username', user),
                ('connection_password', password),
                ('ovs_integration_bridge', 'br-int'),
                # nova-compute runs outside the pool's hosts (there is no
                # /sys/hypervisor, no domU of its own to check).
                ('independent_compute', True),
                ('check_host', False),
                ('login_timeout', 30)]))
        sections += [
            ('api', [('auth_strategy', 'noauth2')]),
            ('wsgi', [('api_paste_config', _api_paste_ini())]),
            ('api_database', [('connection',
                               self.database.url('nova_api'))]),
            ('database', [('connection', self.database.url('nova'))]),
            ('conductor', [('workers', 1)]),
            ('scheduler', [('workers', 1)]),
            ('placement', [('endpoint_override', 'http://127.0.0.1:%d'
                            % self.ports['placement'])] +
             self._auth('http://127.0.0.1:%d' % self.ports['placement'])),
            ('cinder', [('endpoint_template', self.cinder.url +
                         '/v3/%(project_id)s')] +
             self._auth(self.cinder.url + '/v3/' + fakes.PROJECT)),
            ('neutron', [('endpoint_override', self.neutron.url)] +
             self._auth(self.neutron.url)),
            ('glance', [('endpoint_override', self.glance.url)]),
            # Every case boots a server; nova's default quota is 10.
            ('quota', [('driver', 'nova.quota.NoopQuotaDriver')]),
            ('oslo_concurrency', [('lock_path', os.path.join(state,
                                                             'lock'))]),
            ('oslo_messaging_notifications', [('driver', 'noop')]),
            ('oslo_policy', [('enforce_scope', False),
                             ('enforce_new_defaults', False)]),
        ]
        return _ini(sections)

    def _placement_config(self, node):
        return _ini([
            ('DEFAULT', [('debug', True)]),
            ('api', [('auth_strategy', 'noauth2')]),
            ('placement_database', [('connection',
                                     self.database.url('placement'))]),
            ('oslo_policy', [('enforce_scope', False),
                             ('enforce_new_defaults', False)]),
        ])

    def _write_config(self, node):
        if node.command.startswith('placement'):
            path = os.path.join(self.node_dir(node), 'placement.conf')
            text = self._placement_config(node)
        else:
            path = self.config_path(node)
            text = self._nova_config(node)
        with open(path, 'w') as handle:
            handle.write(text)
        return path

    def _env(self, node):
        env = dict(os.environ)
        env['OS_NOVA_DISABLE_EVENTLET_PATCHING'] = '1'
        paths = [p for p in self.extra_python_path if p]
        if env.get('PYTHONPATH'):
            paths.append(env['PYTHONPATH'])
        if paths:
            env['PYTHONPATH'] = os.pathsep.join(paths)
        if node.command.startswith('placement'):
            env['OS_PLACEMENT_CONFIG_DIR'] = self.node_dir(node)
        env.pop(launch.DRIVER_MODULE_ENV, None)
        if node.command == 'nova-compute' and node.flavour == EXTENSION:
            module = nova_driver_name(self.extension_driver)[1]
            if module:
                env[launch.DRIVER_MODULE_ENV] = module
        return env

    def _argv(self, node, command, *args):
        argv = services.python_argv(launch.__name__, command)
        if command == 'placement-api':
            return argv + ['--host', '127.0.0.1', '--port',
                           str(self.ports['placement'])]
        if command.startswith('placement'):
            return argv + ['--config-file', os.path.join(
                self.node_dir(node), 'placement.conf')] + list(args)
        return argv + ['--config-file', self.config_path(node)] + list(args)

    def _manage(self, name, command, *args):
        node = self.nodes['placement' if command.startswith('placement')
                          else 'conductor']
        self.supervisor.run(name, self._argv(node, command, *args),
                            env=self._env(node))

    def _start_node(self, node):
        self.supervisor.start(node.name, self._argv(node, node.command),
                              env=self._env(node))

    # --- waiting ----------------------------------------------------------

    def _wait_api(self):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            self.supervisor.check()
            try:
                self.api.get('/os-services')
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise DeploymentError('nova-api did not answer within '
                                          '%ds; see %s' % (
                                              START_TIMEOUT, self.log_dir))
                time.sleep(1)
        deadline = time.monotonic() + START_TIMEOUT
        url = 'http://127.0.0.1:%d/' % self.ports['placement']
        while True:
            try:
                requests.get(url, timeout=5)
                return
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise DeploymentError('placement did not answer')
                time.sleep(1)

    def wait_up(self, nodes):
        """Wait until nova reports every newly started node's service up."""
        deadline = time.monotonic() + START_TIMEOUT
        pending = dict((n.name, n) for n in nodes)
        while pending:
            self.supervisor.check()
            services_ = self.api.get('/os-services')['services']
            for name, node in list(pending.items()):
                for service in services_:
                    if service['binary'] == node.binary and \
                            service['host'] == node.host and \
                            service['state'] == 'up':
                        del pending[name]
                        self.say('%s is up' % name)
                        break
            if not pending:
                break
            if time.monotonic() > deadline:
                raise DeploymentError('%s did not come up within %ds; see '
                                      'their logs in %s' % (
                                          ', '.join(sorted(pending)),
                                          START_TIMEOUT, self.log_dir))
            time.sleep(1)

    def wait_serving(self, node):
        """Wait until restarted ``node`` takes RPC requests again.

        nova starts a service's RPC server once the manager is set up
        (``init_host``), so its queue (``<topic>.<host>``, e.g.
        ``compute.host-source``) has a consumer from then on; the stopped
        process's consumer went with its connection. Its service record
        stays up meanwhile (``service_down_time`` is 60 s), so the
        scheduler and the conductor go on choosing it.
        """
        queue = '%s.%s' % (TOPICS[node.binary], node.host)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.broker.consumers(queue):
            self.supervisor.check()
            if time.monotonic() > deadline:
                raise DeploymentError('%s did not take requests within %ds;'
                                      ' see %s' % (node.name, START_TIMEOUT,
                                                   self.log_path(node.name)))
            time.sleep(0.2)
        self.say('%s is up' % node.name)

    # --- operator moves -----------------------------------------------------

    def flavours(self):
        return dict((name, node.flavour) for name, node in self.nodes.items()
                    if node.flavour is not None)

    def revive(self):
        """Start again every node whose process stopped; wait until up.

        :returns: the names of the nodes restarted.
        """
        dead = [name for name, process in
                sorted(self.supervisor.processes.items())
                if process.poll() is not None]
        for name in dead:
            self.say('%s stopped; starting it again' % name)
            self.supervisor.processes.pop(name)
            self._start_node(self.nodes[name])
        for name in dead:
            if self.nodes[name].binary in TOPICS:
                self.wait_serving(self.nodes[name])
        return dead

    def set_extension_driver(self, driver):
        """Upgraded computes load ``driver`` from now on (restarted)."""
        driver = driver or DRIVERS[EXTENSION]
        if driver == self.extension_driver:
            return False
        self.extension_driver = driver
        for name in sorted(self.nodes):
            node = self.nodes[name]
            if node.command == 'nova-compute' and node.flavour == EXTENSION:
                self.set_flavour(name, EXTENSION, force=True)
        return True

    def set_flavour(self, name, flavour, force=False):
        """Restart node ``name`` stock or upgraded; wait until it is up."""
        node = self.nodes[name]
        if node.flavour == flavour and not force:
            return False
        self.say('restarting %s as %s' % (name, flavour))
        self.supervisor.stop(name)
        node.flavour = flavour
        if name == 'conductor':
            node.command = CONDUCTORS[flavour]
        self._write_config(node)
        self._start_node(node)
        self.wait_serving(node)
        return True

    def restart_conductor(self):
        """Stop the conductor, empty its queues, start it again.

        What an operator does with a stock conductor that loops on an
        object it cannot backport (see :mod:`.rolling`). The queues are
        emptied while no conductor consumes them, else the new process
        would take up the loop's next call.

        :returns: how many waiting messages were dropped.
        """
        node = self.nodes['conductor']
        self.say('restarting conductor (%s) and emptying its queues'
                 % node.flavour)
        # Killed: a graceful stop waits for the loop's requests.
        self.supervisor.stop(node.name, grace=0)
        dropped = self.broker.purge(['conductor',
                                     'conductor.%s' % node.host])
        self._start_node(node)
        self.wait_serving(node)
        return dropped

    # --- servers ----------------------------------------------------------

    def boot_adopting(self, name, vm_label, volumes, ports, host,
                      timeout=START_TIMEOUT):
        """Boot a volume-backed server on ``host`` that adopts a mock VM.

        :param volumes: ``[(volume_id, connection_info, device)]``, the
            first the root; each becomes a Cinder volume.
        :param ports: ``[(port_id, mac)]``, each a Neutron port.
        :returns: the server as nova's API shows it once ACTIVE.
        """
        bdms = []
        for index, (volume_id, info, device) in enumerate(volumes):
            self.cinder.add_volume(volume_id, info)
            bdms.append({'boot_index': 0 if index == 0 else -1,
                         'uuid': volume_id, 'source_type': 'volume',
                         'destination_type': 'volume',
                         'device_name': device,
                         'delete_on_termination': False})
        networks = []
        for index, (port_id, mac) in enumerate(ports):
            self.neutron.add_port(port_id, mac, len(self.neutron.ports))
            networks.append({'port': port_id})
        body = {'server': {
            'name': name, 'flavorRef': FLAVOR,
            'block_device_mapping_v2': bdms,
            'networks': networks or 'none',
            'availability_zone': 'nova:%s' % host,
            'metadata': {launch.ADOPT_KEY: vm_label}}}
        server = self.api.post('/servers', body).json()['server']
        found = self.wait_server(server['id'], timeout=timeout)
        if found['status'] != 'ACTIVE':
            raise DeploymentError('server %s did not become ACTIVE (%s): %s'
                                  % (name, found['status'],
                                     found.get('fault')))
        return found

    def wait_server(self, server_id, timeout=START_TIMEOUT):
        """The server once it is settled (no task running)."""
        deadline = time.monotonic() + timeout
        while True:
            self.supervisor.check()
            server = self.api.get('/servers/%s' % server_id)['server']
            if server['status'] in SETTLED and \
                    not server.get('OS-EXT-STS:task_state'):
                return server
            if time.monotonic() > deadline:
                raise DeploymentError('server %s still %s/%s after %ds' % (
                    server_id, server['status'],
                    server.get('OS-EXT-STS:task_state'), timeout))
            time.sleep(0.5)

    def live_migrate(self, server_id, host=None, block_migration='auto'):
        """``os-migrateLive``; returns the request id of the action."""
        response = self.api.post('/servers/%s/action' % server_id, {
            'os-migrateLive': {'host': host,
                               'block_migration': block_migration}})
        return response.headers.get('x-openstack-request-id') or \
            response.headers.get('x-compute-request-id')

    def wait_action(self, server_id, request_id, timeout=START_TIMEOUT,
                    block_migration=True):
        """The instance action once nova has finished with it.

        Every event of the action has finished, the server has no task,
        and the migration record has a final status: the destination's
        rollback is an RPC cast, and the source completes the migration
        record after the instance already looks settled. After a failed
        block migration that reached ``pre_live_migration``, nova's source
        casts the destination's rollback after it has set the migration's
        status (``ComputeManager._rollback_live_migration``, do_cleanup
        for XenAPI is block_migration): also wait, for at most
        :data:`ROLLBACK_GRACE` seconds, until that rollback's event has
        appeared and finished. A destination that never rolls back (it
        died) is judged as it is then.
        """
        deadline = time.monotonic() + timeout
        grace = None
        while True:
            self.supervisor.check()
            action = self.api.get('/servers/%s/os-instance-actions/%s' % (
                server_id, request_id))['instanceAction']
            events = action.get('events') or []
            server = self.api.get('/servers/%s' % server_id)['server']
            migrations = self.api.get(
                '/os-migrations?instance_uuid=%s' % server_id)['migrations']
            latest = max(migrations, key=lambda m: m['id']) \
                if migrations else {}
            if events and all(e.get('finish_time') for e in events) and \
                    server['status'] in SETTLED and \
                    not server.get('OS-EXT-STS:task_state') and \
                    latest.get('status') in MIGRATION_FINAL:
                names = set(e.get('event') for e in events)
                if not (block_migration and
                        latest.get('status') != 'completed' and
                        'compute_pre_live_migration' in names and
                        ROLLBACK_EVENT not in names):
                    return action
                grace = grace or time.monotonic() + ROLLBACK_GRACE
                if time.monotonic() > grace:
                    return action
            if time.monotonic() > deadline:
                raise DeploymentError(
                    'live migration of %s still running after %ds '
                    '(migration %s)' % (server_id, timeout,
                                        latest.get('status')))
            time.sleep(0.5)

    # --- reporting ----------------------------------------------------------

    def describe(self):
        """The services, their versions and their logs."""
        nova_version = _package_version('nova')
        rows = [
            {'service': 'rabbitmq', 'version': self.broker.version,
             'where': self.broker.url, 'log': self.broker.data_dir},
            {'service': 'mariadb', 'version': self.database.version,
             'where': self.database.socket, 'log': self.database.data_dir},
        ]
        for name in sorted(self.nodes):
            node = self.nodes[name]
            version = _package_version('openstack-placement') \
                if node.command.startswith('placement') else nova_version
            if node.flavour == EXTENSION:
                version = '%s + nova-xenapi-sr %s' % (
                    version, _package_version('nova-xenapi-sr'))
            rows.append({'service': '%s (%s)' % (node.command, name),
                         'version': version, 'where': node.host,
                         'log': os.path.join(self.log_dir,
                                             name + '.log')})
        for fake in (self.cinder, self.neutron, self.glance):
            rows.append({'service': '%s (fake)' % fake.name,
                         'version': 'nova-xenapi-sr-tools',
                         'where': fake.url, 'log': None})
        return rows


class APIError(Exception):
    def __init__(self, status, text):
        super(APIError, self).__init__('%s: %s' % (status, text))
        self.status = status
        self.text = text


class ComputeAPI(object):
    """nova's compute API, as an admin under ``noauth2``."""

    def __init__(self, url):
        self.url = url.rstrip('/') + '/v2.1'
        self.session = requests.Session()
        self.session.headers.update({
            'X-Auth-Token': TOKEN, 'X-Auth-User': 'admin',
            'X-Auth-Project-Id': fakes.PROJECT,
            'X-OpenStack-Nova-API-Version': API_VERSION,
            'Content-Type': 'application/json'})

    def _check(self, response):
        if response.status_code >= 400:
            raise APIError(response.status_code, response.text[:2000])
        return response

    def get(self, path):
        return self._check(self.session.get(self.url + path,
                                            timeout=60)).json()

    def post(self, path, body):
        response = self._check(self.session.post(self.url + path, json=body,
                                                 timeout=120))
        return response

    def delete(self, path):
        return self._check(self.session.delete(self.url + path, timeout=60))
