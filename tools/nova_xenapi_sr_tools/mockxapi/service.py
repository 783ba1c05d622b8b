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

"""The mock XAPI service: a scenario served on one endpoint per host.

A pool's master serves the pool's API; every other host of a pool gets its
own endpoint that answers every call, login included, with
``HOST_IS_SLAVE [master address]``, as a pool member's xapi does
(``xapi_session.ml`` / ``server_helpers.ml``), so clients such as nova's
os-xenapi session switch to the master and find their own host by its
management PIF's IP. Each host's ``address`` and management PIF ``IP`` are
the address its endpoint listens on.
"""

import copy

from oslo_log import log as logging

from nova_xenapi_sr_tools.mockxapi import faults
from nova_xenapi_sr_tools.mockxapi import gc as gc_mod
from nova_xenapi_sr_tools.mockxapi import pool as pool_mod
from nova_xenapi_sr_tools.mockxapi import scenario as scenario_mod
from nova_xenapi_sr_tools.mockxapi import server

# Registering the message handlers:
from nova_xenapi_sr_tools.mockxapi import events  # noqa: F401
from nova_xenapi_sr_tools.mockxapi import lifecycle  # noqa: F401
from nova_xenapi_sr_tools.mockxapi import motion  # noqa: F401
from nova_xenapi_sr_tools.mockxapi import plugins  # noqa: F401
from nova_xenapi_sr_tools.mockxapi import storage  # noqa: F401

LOG = logging.getLogger(__name__)


class MockXapi(object):
    """Serve a :class:`~.scenario.Scenario`; a context manager.

    :param scenario: what to serve (default :meth:`Scenario.default`).
    :param listen: optional ``{pool name: (address, port)}``; pools not
        named get a random loopback address on port 80.
    :param gc_interval: seconds between database GC passes while serving
        (xapi's ``db_gc.ml``: 30); 0 runs the GC only through
        :meth:`run_gc`.
    """

    def __init__(self, scenario=None, listen=None,
                 gc_interval=pool_mod.GC_INTERVAL):
        self.scenario = scenario or scenario_mod.Scenario.default()
        self.world = pool_mod.World()
        scenario_mod.build(self.world, self.scenario)
        self._listen = dict(listen or {})
        unknown = set(self._listen) - set(self.world.pools)
        if unknown:
            raise ValueError('listen names unknown pools: %s' %
                             ', '.join(sorted(unknown)))
        self._servers = {}
        self.urls = {}
        #: ``{(pool name, host name): URL}`` of served pool members.
        self.member_urls = {}
        #: ``{(pool name, host name): url}`` of every host's endpoint
        self.host_urls = {}
        self._gc = gc_mod.Collector(self.world, gc_interval)

    # -- life cycle ------------------------------------------------------
    def start(self):
        try:
            for name, pool in self.world.pools.items():
                host, port = self._listen.get(name, (None, 80))
                srv, url = server.bind(pool, host, port)
                pool.url = url
                self._servers[name] = srv
                self.urls[name] = url
                self._set_address(pool, pool.master, srv.server_address[0])
                server.serve(srv)
                LOG.debug('mock XAPI pool %s at %s', name, url)
                with self.world.lock:
                    members = [(ref, pool.db.get('host', ref)['name_label'])
                               for ref in pool.db.refs('host')]
                self.host_urls[(name, members[0][1])] = url
                for ref, label in members:
                    if ref == pool.master:
                        continue
                    member = _PoolMember(pool, label, srv.server_address[0])
                    msrv, murl = server.bind(member, None, 80)
                    self._servers[(name, label)] = msrv
                    self.host_urls[(name, label)] = murl
                    self._set_address(pool, ref, msrv.server_address[0])
                    server.serve(msrv)
            self._gc.start()
        except Exception:
            self.stop()
            raise
        return self

    def member_url(self, pool, host):
        """Serve pool member ``host`` of ``pool``; return its URL.

        The endpoint answers as xapi on a pool member does (see
        ``pool.Member``): a login fails with ``HOST_IS_SLAVE`` naming the
        master's address. It stops with the service.
        """
        key = (pool, host)
        if key in self.member_urls:
            return self.member_urls[key]
        the_pool = self.pool(pool)
        with self.world.lock:
            found = the_pool.db.find('host', name_label=host)
        if not found or found[0] == the_pool.master:
            raise ValueError('%s is not a member host of pool %s'
                             % (host, pool))
        srv, url = server.bind(pool_mod.Member(the_pool, found[0]))
        self._servers[key] = srv
        self.member_urls[key] = url
        server.serve(srv)
        return url

    def _set_address(self, pool, host, address):
        with self.world.lock:
            pool.db.get('host', host)['address'] = address
            for pif in pool.db.find('PIF', host=host, management=True):
                pool.db.get('PIF', pif)['IP'] = address

    def stop(self):
        self.member_urls.clear()
        self._gc.stop()
        for srv in self._servers.values():
            srv.close_all()
        self._servers.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def reset(self, scenario):
        """Serve ``scenario`` from now on, on the same endpoints (test API).

        For a long-lived client such as a running nova-compute: the new
        world is built from ``scenario`` (same pool names, same host names
        per pool), then each host keeps the ref and uuid it had, and every
        logged-in session stays valid, so a client that cached its host ref
        and sessions carries on as if nothing happened. Everything else
        (SRs, PBDs, VDIs, VMs, the array, faults, latency, the call logs)
        is new. Call it only while no call is in flight.
        """
        world = pool_mod.World()
        scenario_mod.build(world, scenario)
        with self.world.lock:
            old_pools = self.world.pools
            if list(world.pools) != list(old_pools):
                raise ValueError(
                    'reset needs the same pools, got %s instead of %s' % (
                        ', '.join(world.pools), ', '.join(old_pools)))
            for name, new in world.pools.items():
                _keep_identity(old_pools[name], new)
                new.url = old_pools[name].url
                srv = self._servers.get(name)
                if srv is not None:
                    srv.pool = new
            self.world = world
            self.scenario = scenario
        return self

    # -- test API --------------------------------------------------------
    def pool(self, name):
        """The :class:`~.pool.Pool` called ``name``.

        Test API: ``calls()``, ``clear_calls()``, ``inspect()``, ``db``.
        """
        return self.world.pools[name]

    @property
    def array(self):
        """The shared :class:`~.array.IscsiArray`."""
        return self.world.array

    @property
    def copies(self):
        """Every VDI copy (mirror) a migration made, oldest first."""
        with self.world.lock:
            return copy.deepcopy(self.world.copies)

    def run_gc(self, pool=None):
        """Run xapi's database GC pass now, on one pool or all.

        For verdicts: the state a real pool reaches within 30 seconds
        (leftover VBDs, the source's VIFs after ``migrate_send``).
        Returns ``{pool name: {class: [removed refs]}}``.
        """
        names = [pool] if pool else list(self.world.pools)
        return {name: self.pool(name).run_gc() for name in names}

    def inject_fault(self, pool, method, kind='failure', error=None,
                     match=None, times=1, after=0):
        """Make calls of ``method`` on ``pool`` fail; see ``faults``."""
        return self.pool(pool).injector.add_fault(faults.FaultRule(
            method, kind, error, match, times, after))

    def clear_faults(self, pool=None):
        """Drop every fault and latency rule (of one pool or all)."""
        names = [pool] if pool else list(self.world.pools)
        for name in names:
            self.pool(name).injector.clear()

    def set_latency(self, pool, method, seconds):
        """Delay calls of ``method`` (exact or fnmatch pattern)."""
        self.pool(pool).injector.set_latency(method, seconds)

    def find_vm(self, name_label):
        """``(pool name, vm ref)`` of every VM with this name."""
        with self.world.lock:
            return [(name, ref) for name, p in self.world.pools.items()
                    for ref in p.db.find('VM', name_label=name_label)]


def _keep_identity(old, new):
    """Give ``new``'s hosts the refs/uuids of ``old``'s; keep its sessions.

    Each host also keeps its ``address`` and management PIF ``IP``: the
    address its endpoint still listens on (a pool member's compute finds
    its host by it, os-xenapi's ``_get_host_ref``).
    """
    old_hosts = {rec['name_label']: (ref, rec['uuid'])
                 for ref, rec in old.db.tables['host'].items()}
    addresses = {ref: rec['address']
                 for ref, rec in old.db.tables['host'].items()}
    new_hosts = {rec['name_label']: ref
                 for ref, rec in new.db.tables['host'].items()}
    if sorted(old_hosts) != sorted(new_hosts):
        raise ValueError('reset needs the same hosts in pool %s, got %s '
                         'instead of %s' % (new.name, sorted(new_hosts),
                                            sorted(old_hosts)))
    renames = {}
    for name, new_ref in new_hosts.items():
        old_ref, old_uuid = old_hosts[name]
        new.db.tables['host'][new_ref]['uuid'] = old_uuid
        renames[new_ref] = old_ref

    def rename(value):
        if isinstance(value, str):
            return renames.get(value, value)
        if isinstance(value, list):
            return [rename(v) for v in value]
        if isinstance(value, dict):
            return {rename(k): rename(v) for k, v in value.items()}
        return value

    for cls, table in new.db.tables.items():
        for ref in list(table):
            rec = table.pop(ref)
            table[renames.get(ref, ref)] = {k: rename(v)
                                            for k, v in rec.items()}
    new.master = renames.get(new.master, new.master)
    for ref, address in addresses.items():
        new.db.tables['host'][ref]['address'] = address
        for pif in new.db.tables['PIF'].values():
            if pif['host'] == ref and pif['management']:
                pif['IP'] = address
    new.db.tables['session'].update(copy.deepcopy(old.db.tables['session']))
    new.local_sessions.update(old.local_sessions)
    new.users = dict(old.users)


class _PoolMember(object):
    """The endpoint of a pool member: ``HOST_IS_SLAVE [master]`` always."""

    def __init__(self, pool, host_name, master_address):
        self.pool = pool
        self.name = '%s/%s' % (pool.name, host_name)
        self.master_address = master_address

    def handle(self, method, params):
        self.pool._log('(%s) %s' % (self.name, method), ())
        return pool_mod.Outcome('failure', ['HOST_IS_SLAVE',
                                            self.master_address])
