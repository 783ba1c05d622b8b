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

"""Concurrent live migrations through nova's real compute services.

16 servers, 8 on each pool, migrate at once in both directions
(``max_concurrent_live_migrations=0``: each nova-compute runs them all on
its eventlet green threads over its one XenAPI session pool). Their uuid5
volumes sit behind 4 shared iSCSI targets, so each pool holds 4 shared
SRs that migrations in both directions introduce, use and forget; every
third server also has a legacy volume. With a fixed seed, some
migrations get a fault at their ``VM.migrate_send`` (a XenAPI Failure or
a dropped connection), so rollbacks run while other migrations use the
same SRs. Three runs, seeds 0, 1 and 2.

Also: a nova-compute restart (nova's own ``restart_compute_service``: a
new manager and a new driver, so the SR claims are lost) between the
destination's ``pre_live_migration`` and the rollback must not make the
rollback forget an SR the neighbour uses.
"""

import random

import fixtures

from nova_xenapi_sr import naming
from nova_xenapi_sr_tools.faultsweep import judge
from nova_xenapi_sr_tools.faultsweep import layout
from nova_xenapi_sr_tools import inprocess
from tests.functional.sweep import base

POOLS = {'host-a': 'pool-a', 'host-b': 'pool-b'}
OTHER = {'host-a': 'host-b', 'host-b': 'host-a'}
TARGETS = [('192.0.2.%d:3260' % (40 + t),
            'iqn.2010-10.org.openstack:concurrent-%d' % t) for t in range(4)]
LEGACY_PORTAL = '192.0.2.60:3260'
SERVERS = 16
FAULTS = {'failure': ('failure', ['SR_BACKEND_FAILURE_47', '',
                                  'injected by the concurrency test']),
          'drop': ('drop', None)}
FORBIDDEN = ('SR_UUID_EXISTS', 'PBD_EXISTS')


def _vm_srs(pool, vm_ref):
    srs = set()
    for vbd in pool.db.find('VBD', VM=vm_ref):
        vdi = pool.db.get('VBD', vbd)['VDI']
        if pool.db.has('VDI', vdi):
            srs.add(pool.db.get('VDI', vdi)['SR'])
    return srs


class ForgetWatch(object):
    """A fault rule that never fires: it checks every ``SR.forget``.

    At the moment a pool serves ``SR.forget``, no VBD of any VM may point
    at a VDI of that SR (the SR would be forgotten under it).
    """

    def __init__(self, dep):
        self.dep = dep
        self.violations = []

    def install(self):
        for pool_name in POOLS.values():
            self.dep.xapi.inject_fault(
                pool_name, 'SR.forget', match=self._checker(pool_name),
                error=['NEVER_SENT'], times=None)

    def _checker(self, pool_name):
        def check(args):
            pool = self.dep.xapi.pool(pool_name)
            sr = args[0] if args else None
            with pool.world.lock:
                if not pool.db.has('SR', sr):
                    return False
                for vm in pool.db.refs('VM'):
                    if sr in _vm_srs(pool, vm):
                        self.violations.append('%s: SR.forget of %s while '
                                               'VM %s uses it' % (
                                                   pool_name,
                                                   pool.db.get('SR', sr)[
                                                       'uuid'],
                                                   pool.db.get('VM', vm)[
                                                       'name_label']))
            return False
        return check


class ConcurrencyTestCase(base.SweepTestCase):

    max_concurrent_live_migrations = 0

    def setUp(self):
        super(ConcurrencyTestCase, self).setUp()
        self.useFixture(fixtures.Timeout(600, gentle=True))
        # nova's default quota is 10 instances
        self.dep.case.flags(instances=SERVERS * 2, cores=SERVERS * 2,
                            group='quota')

    # -- the layout ------------------------------------------------------
    def build(self):
        sc = self.dep.new_scenario()
        self.specs = []
        for i in range(1, SERVERS + 1):
            host = 'host-a' if i % 2 else 'host-b'
            portal, iqn = TARGETS[i % 4]
            vols = []
            uuid5 = layout.volume_id('concurrent-uuid5-%d' % i)
            sc.add_volume(uuid5, portal, iqn, i)
            vols.append((uuid5, naming.UUID5, '/dev/xvdb'))
            if i % 3 == 0:
                legacy = layout.volume_id('concurrent-legacy-%d' % i)
                sc.add_volume(legacy, LEGACY_PORTAL,
                              'iqn.2010-10.org.openstack:legacy-%d' % i, 1)
                vols.append((legacy, naming.LEGACY, '/dev/xvdc'))
            sc.add_instance(POOLS[host], i, volumes=vols)
            self.specs.append((i, host, vols))
        self.dep.reset(sc)
        servers = [self.dep.boot(i, [(v, d) for v, _, d in vols],
                                 host=host, wait=False)
                   for i, host, vols in self.specs]
        self.servers = [self.dep.wait_for_server(s, 'ACTIVE')
                        for s in servers]
        self.expected_srs = {}
        for server, (i, host, vols) in zip(self.servers, self.specs):
            expected = set()
            for vol, style, _ in vols:
                info = sc.connection_info(vol)['data']
                expected.add(naming.legacy_sr_uuid(vol)
                             if style == naming.LEGACY
                             else naming.uuid5_sr_uuid(info))
            self.expected_srs[server['id']] = expected

    def watch_maps(self):
        """Record the ``sr_uuid_map`` each source's migration is given."""
        self.maps = {}
        for host, compute in self.dep.computes.items():
            drv = compute.driver
            original = drv.live_migration

            def live_migration(context, instance, dest, post_method,
                               recover_method, block_migration=False,
                               migrate_data=None, _original=original):
                self.maps[instance.uuid] = dict(
                    getattr(migrate_data, 'sr_uuid_map', None) or {})
                return _original(context, instance, dest, post_method,
                                 recover_method, block_migration,
                                 migrate_data)
            drv.live_migration = live_migration
            self.addCleanup(delattr, drv, 'live_migration')

    def inject(self, rng):
        """Faults at ``VM.migrate_send`` of a seeded choice of servers."""
        chosen = rng.sample(range(SERVERS), 5)
        faulted = {}
        for index in chosen:
            server = self.servers[index]
            host = self.specs[index][1]
            name = self.dep.vm_name(server)
            pool = self.dep.xapi.pool(POOLS[host])
            vm_ref = pool.db.find('VM', name_label=name)[0]
            kind = rng.choice(sorted(FAULTS))
            fault_kind, error = FAULTS[kind]
            self.dep.xapi.inject_fault(POOLS[host], 'VM.migrate_send',
                                       kind=fault_kind, error=error,
                                       match=[vm_ref], times=None)
            faulted[server['id']] = kind
        return faulted

    # -- the checks ------------------------------------------------------
    def check(self, faulted, watch):
        problems = list(watch.violations)
        for server, (i, host, vols) in zip(self.servers, self.specs):
            uuid = server['id']
            name = self.dep.vm_name(server)
            found = self.dep.xapi.find_vm(name)
            instance = self.dep.instance(server)
            migration = self.dep.migration(server)
            if len(found) != 1:
                problems.append('%s: %d VMs in XAPI' % (name, len(found)))
                continue
            pool_name = found[0][0]
            xapi_host = [h for h, p in POOLS.items() if p == pool_name][0]
            if instance.host != xapi_host:
                problems.append('%s: nova says %s, XAPI runs it on %s' % (
                    name, instance.host, xapi_host))
            if instance.task_state is not None:
                problems.append('%s: task_state %s' % (
                    name, instance.task_state))
            expect_moved = uuid not in faulted
            moved = xapi_host != host
            if moved != expect_moved:
                problems.append('%s: moved=%s, fault %s, migration %s' % (
                    name, moved, faulted.get(uuid),
                    migration.status if migration else None))
            if migration is not None and migration.status not in (
                    'completed', 'error', 'failed'):
                problems.append('%s: migration %s' % (
                    name, migration.status))
            # the map the source was given names this server's SRs only
            seen = set(self.maps.get(uuid, {}))
            if seen and seen != self.expected_srs[uuid]:
                problems.append('%s: sr_uuid_map %s, its own SRs %s' % (
                    name, sorted(seen), sorted(self.expected_srs[uuid])))
            for text in self.dep.event_errors(server):
                for code in FORBIDDEN:
                    if code in (text or ''):
                        problems.append('%s: %s reached nova: %s' % (
                            name, code, text.splitlines()[0]))
            # the VM's disks all point at existing VDIs and SRs
            pool = self.dep.xapi.pool(pool_name)
            with pool.world.lock:
                for vbd in pool.db.find('VBD', VM=found[0][1]):
                    vdi = pool.db.get('VBD', vbd)['VDI']
                    if not pool.db.has('VDI', vdi) or not pool.db.has(
                            'SR', pool.db.get('VDI', vdi)['SR']):
                        problems.append('%s: VBD %s lost its disk' % (
                            name, vbd))
        for pool_name in POOLS.values():
            view = self.dep.xapi.pool(pool_name).inspect()
            if view['dangling_VBDs']:
                problems.append('%s: dangling VBDs %s' % (
                    pool_name, view['dangling_VBDs']))
        self.assertEqual([], self.dep.xapi.copies)
        for host, compute in self.dep.computes.items():
            claims = compute.driver._sr_claims
            if claims._holders or claims._srs:
                problems.append('%s: claims left: %s' % (
                    host, sorted(claims._holders)))
        self.assertEqual([], problems)
        self.assertEqual(len(faulted), sum(
            1 for s in self.servers
            if self.dep.migration(s).status in ('error', 'failed')))

    def _run(self, seed):
        rng = random.Random(seed)
        self.build()
        self.watch_maps()
        faulted = self.inject(rng)
        watch = ForgetWatch(self.dep)
        watch.install()
        targets = [OTHER[host] for _, host, _ in self.specs]
        for server, dest in zip(self.servers, targets):
            self.dep.live_migrate(server, host=dest, wait=False)
        self.dep.wait_settled(timeout=300)
        self.check(faulted, watch)

    def test_seed_0(self):
        self._run(0)

    def test_seed_1(self):
        self._run(1)

    def test_seed_2(self):
        self._run(2)


def restart_compute(dep, host):
    """Restart ``host``'s nova-compute: a new manager and a new driver.

    nova's ``restart_compute_service`` with ``keep_hypervisor_state=False``
    loads the driver again (the claims of the old one are lost); the
    deployment's per-compute set-up (its XAPI URL, the driver's pool) is
    redone for the new driver.
    """
    old = dep.computes[host]
    dep.case.flags(compute_driver=old.driver_name)
    dep.case.flags(connection_url=old.url, group='xenserver')
    service = dep.case.restart_compute_service(old.service,
                                               keep_hypervisor_state=False)
    new = inprocess.Compute(host, old.pool, old.driver_name, old.url,
                            service)
    dep._pin_url(new)
    dep._driver_pools[id(new.driver)] = old.pool
    dep.computes[host] = new
    return new


class RestartTestCase(base.SweepTestCase):
    """A claim lost on restart must not make the rollback forget an SR."""

    def setUp(self):
        super(RestartTestCase, self).setUp()
        self.useFixture(fixtures.Timeout(300, gentle=True))

    def _restart_before_rollback(self, neighbour_state):
        dep = self.dep
        server = layout.start_case(dep, neighbour_state, legacy=True)
        baseline = judge.snapshot(dep)
        restarted = []
        source = dep.computes[layout.SOURCE_HOST].driver
        original = source.live_migration

        def live_migration(*args, **kwargs):
            # pre_live_migration has run on the destination and claimed
            # the neighbour's SR; restart it, then fail migrate_send
            restarted.append(restart_compute(dep, layout.DEST_HOST))
            return original(*args, **kwargs)
        source.live_migration = live_migration
        self.addCleanup(delattr, source, 'live_migration')
        dep.xapi.inject_fault(layout.SOURCE_POOL, 'VM.migrate_send',
                              error=['SR_BACKEND_FAILURE_47', '',
                                     'injected after the restart'],
                              times=None)
        dep.live_migrate(server, host=layout.DEST_HOST)
        self.assertEqual(1, len(restarted))
        new_driver = restarted[0].driver
        self.assertFalse(new_driver._sr_claims.knows(server['id']))
        outcome, detail = judge.judge(
            dep, server, baseline,
            bystanders=[layout.neighbour_name(dep)])
        self.assertEqual(judge.FAILED_CLEAN, outcome, detail)
        self.assertEqual({}, new_driver._sr_claims._holders)

    def test_restart_running_neighbour(self):
        self._restart_before_rollback(layout.RUNNING)

    def test_restart_halted_neighbour(self):
        self._restart_before_rollback(layout.HALTED)
