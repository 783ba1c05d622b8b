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

"""nova 21.2.4's real services in one process, over the mock XAPI.

Test tooling: it runs nova's own functional-test framework, shipped in the
nova wheel (``nova/tests``), and needs the test requirements
(``openstack-placement==3.0.1``, ``wsgi-intercept``, ``mock``,
``monotonic``; see ``test-requirements.txt``). Nothing of it goes onto a
node.

What runs for real, in this process
    nova-api (``OSAPIFixture``, noauth, admin client), the conductor, the
    scheduler, placement (Ussuri's ``openstack-placement`` 3.0.1,
    in-process WSGI through ``wsgi-intercept``), and one nova-compute per
    node, whose ``compute_driver`` is ``xenapi.XenAPIDriver`` (stock) or
    ``xenapi_sr.driver.XenAPISRDriver`` (ours), loaded by nova's own
    ``load_compute_driver`` (ours through the ``nova/virt/xenapi_sr``
    shim); each compute has its own ``[xenserver] connection_url``: its
    host's endpoint of the mock XAPI (``nova_xenapi_sr_tools.mockxapi``),
    reached over XML-RPC by os-xenapi. Computes are the hosts of the pools
    ``nodes`` names (default: one pool per compute); the second compute
    of a pool talks to a pool member, which answers ``HOST_IS_SLAVE``, and
    os-xenapi's session follows to the master, as on a real member
    (``Deployment.add_pool_aggregate(pool)`` then gives nova the
    hypervisor-pool aggregate its pool join would have left). RPC is
    oslo.messaging's fake transport (casts stay asynchronous: no
    ``CastAsCall``); the API, cell0 and cell1 databases are sqlite.
    eventlet is monkey-patched as in nova-compute (:func:`monkey_patch`).

What is faked
    * Cinder: :class:`~.fakes.cinder_fixture_class` (nova's
      ``CinderFixture``), whose attachments hand out the mock array's
      iSCSI ``connection_info`` (per volume and connector host; override
      with :meth:`Deployment.set_connection_info`) and record every
      create/update/complete/delete (``deployment.cinder.events``,
      ``.attachments()``).
    * Neutron: nova's ``NeutronFixture`` (one port per server on its
      network, with the port-binding extension, so nova's VIF and
      interim-network paths run; it sets ``vif_plugging_timeout=0`` as it
      never sends network-vif-plugged).
    * Glance: nova's fake image service. Keystone: noauth.
    * spawn: :func:`~.fakes.adopt_spawn` adopts a VM the mock scenario
      already runs (renames it to nova's instance name, sets its
      ``other_config`` nova uuid) and plugs the VIFs with nova's own
      VMOps code; disks are not created.
    * The hypervisor: the mock XAPI. nova-compute runs with
      ``independent_compute=True`` and ``check_host=False`` (it is not in
      a dom0).

Limit: one process has one object registry. Once the extension's driver
is imported, ``XenapiLiveMigrateData`` 1.5 is every node's version;
mixed stock/extension deployments need one process per node (the
upgrade verification). A stock-only deployment passes
``stock_registry=True``.

Use (services start once per test class; reset per test)::

    from nova_xenapi_sr_tools import inprocess
    inprocess.monkey_patch()          # first thing in the process
    inprocess.preload()               # before anything parses nova's CONF

    dep = inprocess.Deployment(drivers=(inprocess.EXTENSION,) * 2)
    # or two computes in one pool (host-a the master):
    # Deployment(drivers=..., nodes=(('pool-a', 'host-a'),
    #                                ('pool-a', 'host-a2')))
    dep.setUp()                       # or useFixture / setUpClass
    sc = dep.new_scenario()           # pool-a/host-a, pool-b/host-b
    sc.add_volume(VOL, '192.0.2.10:3260', IQN, 1)   # VOL: a uuid
    sc.add_instance('pool-a', 1, volumes=[(VOL, 'legacy', '/dev/xvdb')])
    dep.reset(sc)                     # new case, nova keeps running
    server = dep.boot(1, [(VOL, '/dev/xvdb')])  # adopts instance 1
    dep.clear_calls()
    migration = dep.live_migrate(server)          # scheduler picks
    dep.live_migrate(server, host='host-a', force=True)
    dep.instance(server).host, .vm_state, .task_state
    dep.bdms(server)[VOL].attachment_id
    dep.migration(server).status      # nova's migration record
    dep.events(server)                # [(event, result)] of the action
    dep.event_errors(server)          # failed events: details, traceback
    dep.faults(server)                # [(message, details)] instance faults
    dep.cinder.attachments(VOL); dep.cinder.ops()
    dep.xapi.pool('pool-a').calls(); dep.xapi.inject_fault(...)
    dep.cleanUp()

Volume ids must be UUIDs (nova's notifications require it, as real
Cinder's are). Until nova adopts it, a scenario VM is named
``dep.scenario_vm_name(instance_id)`` (nova names its instances after its
own database ids). ``dep.set_connection_info(volume, host, info)`` makes
Cinder hand another ``connection_info`` to one host's connector (a
destination that reaches the LUN through another target).
``dep.computes[host].driver`` / ``.manager`` are nova's live objects, for
hooks (wrap a driver method for one test and put it back).

For a fault sweep: ``dep.reset(sc)`` rebuilds the mock world between
cases (same endpoints, host refs and sessions kept, so the running
computes carry on), deletes nova's servers and clears the Cinder fake;
``dep.xapi.inject_fault``/``set_latency`` then apply to the next case.
For concurrency: ``dep.boot_many([(instance_id, volumes), ...])`` and
``dep.live_migrate_many(servers)`` (all started, then waited for; pass
``Deployment(max_concurrent_live_migrations=0)``, as nova's default of 1
runs one migration per source compute at a time);
:meth:`Deployment.wait_settled` waits until no conductor task, source
migration or destination rollback (a cast) is in flight.
"""

from nova_xenapi_sr_tools.inprocess.deployment import Compute  # noqa: F401
from nova_xenapi_sr_tools.inprocess.deployment import Deployment  # noqa
from nova_xenapi_sr_tools.inprocess.deployment import DeploymentError  # noqa
from nova_xenapi_sr_tools.inprocess.deployment import EXTENSION  # noqa
from nova_xenapi_sr_tools.inprocess.deployment import preload  # noqa
from nova_xenapi_sr_tools.inprocess.deployment import STOCK  # noqa
from nova_xenapi_sr_tools.inprocess.eventlet_setup import is_patched  # noqa
from nova_xenapi_sr_tools.inprocess.eventlet_setup import monkey_patch  # noqa
