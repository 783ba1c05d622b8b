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

"""XAPI calls and wall time of one live migration, extension against stock.

Not a test. Run it with ``tox -e bench`` (root: the mock XAPI binds port 80
on 127.x.y.z), or by hand::

    PYTHONPATH=. OS_NOVA_DISABLE_EVENTLET_PATCHING=1 \\
        python benchmarks/migration_calls.py [--volumes 1 4 16 64]
        [--latency-ms 0 20] [--runs 3] [--runs-64 1] [--json FILE]
        [--breakdown [--drivers extension stock]]

For every volume count V, two layouts:

``own``
    each volume behind its own target, so on its own uuid5 SR (as legacy
    SRs always are): S = V SRs;
``shared``
    all volumes behind one target, LUNs 1..V, on one uuid5 SR: S = 1.

and every injected latency (seconds added by the mock to each XAPI call),
it live-migrates one server through nova 21.2.4's real services in this
process (``nova_xenapi_sr_tools.inprocess``: api, conductor, scheduler,
placement, four nova-computes over the mock XAPI): host-a -> host-b run
``XenAPISRDriver``, host-c -> host-d stock nova 21's ``XenAPIDriver``,
alternating which goes first, each run on a fresh scenario whose server
is booted through nova's API and migrated with ``os-migrateLive``. Stock
nova cannot finish the shared layout with two or more volumes (its source
forgets the shared SR twice and rolls back a moved VM); those cells say
so, and a driver that failed a cell at one latency is not run at the
next. Calls are counted from the migration request until nova settles.

Reported per cell: the XAPI calls nova made on each side (exact, the
same in every run; ``CallTracer`` tells them from the calls the source's
xapi itself makes into the destination during ``VM.migrate_send``, shown
as ``dst xapi``, the same for both drivers), the lower bound of the issue
(source 2S + 4: the VM, its VBDs and its SRs in one query each,
``migrate_send``, unplug and forget per SR; destination 3S + 4: network,
default SR, ``migrate_receive``, one existence check, introduce, create
and plug per SR; a scan per SR on real XAPI), nova's calls/bound, and the
median wall time with the ratio extension/stock. The injected latency
applies to every call a pool serves, xapi's own included.

``--breakdown`` prints, for one migration per volume count, layout and
driver (no latency), each side's calls by method and by the nova-compute
step and the nova or extension function that issued them.

The migration itself is :func:`run_one_migration`, the only part that
knows how nova is driven.
"""

import argparse
import collections
import json
import os
import statistics
import sys
import threading
import time

from nova_xenapi_sr_tools.inprocess import eventlet_setup

eventlet_setup.monkey_patch()

STOCK = 'nova.virt.xenapi.driver.XenAPIDriver'
EXTENSION = 'nova_xenapi_sr.virt.driver.XenAPISRDriver'
DRIVERS = (('extension', EXTENSION), ('stock', STOCK))
PORTAL = '192.0.2.10:3260'
#: seconds a migration may take until nova has settled
SETTLE_TIMEOUT = 1800
POOLS = ('pool-a', 'pool-b')


class CallTracer(object):
    """Which code issued each XAPI call, per pool (``--breakdown``).

    Wraps os-xenapi's ``XenAPI.Session.xenapi_request``, the one method
    every call of nova's session passes (``call_xenapi`` and the plugin
    calls alike), and records for each call its method (a plugin call as
    ``host.call_plugin <plugin>/<fn>``), the innermost function of nova or
    of the extension that issued it (os-xenapi, the retry wrapper and
    nova's session client are skipped), and the nova-compute manager step
    it ran in. The pool is the endpoint the session talks to.
    """

    SKIP = ('os_xenapi', 'xmlrpc', 'nova_xenapi_sr/virt/xapi_retry',
            'nova/virt/xenapi/client', 'eventlet', 'threading',
            'benchmarks/migration_calls')

    def __init__(self, urls):
        #: ``{'127.0.0.2:80': 'pool-a'}``
        self.pools = {url.split('//', 1)[-1].rstrip('/'): pool
                      for pool, url in urls.items()}
        self.lock = threading.Lock()
        self.records = collections.defaultdict(list)
        self._original = None

    def install(self):
        from os_xenapi.client import XenAPI
        original = self._original = XenAPI.Session.xenapi_request
        tracer = self

        def xenapi_request(session, methodname, params):
            tracer.note(session, methodname, params)
            return original(session, methodname, params)
        XenAPI.Session.xenapi_request = xenapi_request

    def uninstall(self):
        from os_xenapi.client import XenAPI
        XenAPI.Session.xenapi_request = self._original

    def clear(self):
        with self.lock:
            self.records.clear()

    #: nova-compute's decorators around its manager steps
    WRAPPERS = ('decorated_function', 'wrapped', 'inner', 'wrapper',
                '_locked_do_build_and_run_instance', 'outer')

    @classmethod
    def _callers(cls):
        caller = step = None
        frame = sys._getframe(3)
        while frame is not None:
            path = frame.f_code.co_filename.replace(os.sep, '/')
            if caller is None and ('/nova/' in path or
                                   '/nova_xenapi_sr/' in path) and \
                    not any(s in path for s in cls.SKIP):
                module = path.rsplit('/site-packages/', 1)[-1]
                caller = '%s:%s' % (module[:-3].replace('/', '.'),
                                    frame.f_code.co_name)
            if step is None and frame.f_code.co_name not in cls.WRAPPERS \
                    and (path.endswith('nova/compute/manager.py') or
                         path.endswith('nova/conductor/manager.py')):
                step = frame.f_code.co_name
            frame = frame.f_back
        return caller or '?', step or '?'

    def note(self, session, methodname, params):
        pool = self.pools.get(getattr(session, '_ServerProxy__host', None),
                              '?')
        method = methodname
        if methodname == 'host.call_plugin' and len(params) >= 3:
            method = 'host.call_plugin %s/%s' % (params[1], params[2])
        caller, step = self._callers()
        with self.lock:
            self.records[pool].append((method, caller, step))

    def breakdown(self, pool):
        """``(by method, by (step, caller, method))``, Counters."""
        with self.lock:
            records = list(self.records.get(pool, ()))
        return (collections.Counter(m for m, _, _ in records),
                collections.Counter((s, c, m) for m, c, s in records))


def logged_methods(calls):
    """The mock's call log by method, a plugin call by plugin and fn."""
    return collections.Counter(
        'host.call_plugin %s/%s' % (args[1], args[2])
        if method == 'host.call_plugin' and len(args) >= 3 else method
        for method, args in calls)


def print_breakdown(out, title, logged, tracer, pool):
    by_method, by_caller = tracer.breakdown(pool)
    out.write('%s: %d calls (mock log), %d traced\n' % (
        title, sum(logged.values()), sum(by_method.values())))
    for method, count in sorted(logged.items(),
                                key=lambda item: (-item[1], item[0])):
        out.write('  %4d  %s%s\n' % (
            count, method, '' if by_method[method] == count else
            '  (traced: %d)' % by_method[method]))
    out.write('  by manager step / issuing function / method:\n')
    for (step, caller, method), count in sorted(by_caller.items()):
        out.write('  %4d  %-32s %-56s %s\n'
                  % (count, step, caller, method))


def lower_bound(srs):
    """The issue's lower bound: ``{'pool-a': 2S + 4, 'pool-b': 3S + 4}``."""
    return {'pool-a': 2 * srs + 4, 'pool-b': 3 * srs + 4}


#: driver name -> (source host, source pool, destination host, pool)
PAIRS = {'extension': ('host-a', 'pool-a', 'host-b', 'pool-b'),
         'stock': ('host-c', 'pool-c', 'host-d', 'pool-d')}


def device_name(index):
    """xvdb ... xvdp, then numeric user devices (nova accepts both)."""
    if index < 15:
        return '/dev/xvd%s' % chr(ord('b') + index)
    return '/dev/%d' % (index + 1)


def run_one_migration(dep, name, volumes, layout, latency, on_cleared=None,
                      tracer=None):
    """Live-migrate one server with driver ``name`` on both sides.

    The one place that drives nova: nova's real services in this process
    (``nova_xenapi_sr_tools.inprocess.Deployment``); the server is booted
    through nova's API on a fresh scenario, then ``os-migrateLive`` to the
    pair's destination, waiting until nova has settled. Returns
    ``(seconds, {'pool-a': source calls, 'pool-b': destination calls},
    migrated)``; ``migrated``: nova's migration completed and the
    instance is recorded on the destination. With a :class:`CallTracer`,
    the calls are split: ``{'pool-a': ..., 'pool-b': ..., 'nova':
    {'pool-a': ..., 'pool-b': ...}}``, ``nova`` counting only the calls
    nova's sessions made (not the source xapi's own calls into the
    destination during ``VM.migrate_send``).
    """
    source, src_pool, dest, dst_pool = PAIRS[name]
    sc = dep.new_scenario()
    vols = []
    for index in range(volumes):
        volume_id = '7d1c2a3e-0000-4000-8000-%012d' % index
        if layout == 'shared':
            iqn, lun = 'iqn.2010-10.org.openstack:shared', index + 1
        else:
            iqn, lun = 'iqn.2010-10.org.openstack:vol-%d' % index, 1
        sc.add_volume(volume_id, PORTAL, iqn, lun)
        vols.append((volume_id, device_name(index)))
    sc.add_instance(src_pool, 1, volumes=[(v, 'uuid5', d) for v, d in vols])
    dep.reset(sc)
    server = dep.boot(1, vols, host=source)
    dep.clear_calls()
    if tracer is not None:
        tracer.clear()
    if on_cleared is not None:
        on_cleared()
    for pool in (src_pool, dst_pool):
        dep.xapi.set_latency(pool, '*', latency)
    started = time.perf_counter()
    dep.live_migrate(server, host=dest, wait=False)
    # stock nova needs minutes for 64 volumes at 20 ms per call
    dep.wait_settled(server, timeout=SETTLE_TIMEOUT)
    migration = dep.migration(server)
    elapsed = time.perf_counter() - started
    for pool in (src_pool, dst_pool):
        dep.xapi.set_latency(pool, '*', 0)
    migrated = (migration.status == 'completed' and
                dep.instance(server).host == dest)
    calls = {side: len(dep.xapi.pool(pool).calls())
             for side, pool in (('pool-a', src_pool), ('pool-b', dst_pool))}
    if tracer is not None:
        calls['nova'] = {
            side: sum(tracer.breakdown(pool)[0].values())
            for side, pool in (('pool-a', src_pool), ('pool-b', dst_pool))}
    return elapsed, calls, migrated


def measure(dep, volumes, layout, latency, runs, known_failures=(),
            tracer=None):
    """One cell: both drivers, ``runs`` times each, alternating.

    A driver named in ``known_failures`` (it failed this volume count and
    layout at another latency) is not run again.
    """
    times = {name: [] for name, _ in DRIVERS}
    calls, migrated = {}, {}
    for name in known_failures:
        calls[name], migrated[name], times[name] = None, False, [0.0]
    for run in range(runs):
        order = DRIVERS if run % 2 == 0 else DRIVERS[::-1]
        for name, driver in order:
            if migrated.get(name) is False:
                continue  # it cannot migrate this cell; once is enough
            elapsed, counted, ok = run_one_migration(
                dep, name, volumes, layout, latency, tracer=tracer)
            if name in calls and calls[name] != counted:
                raise RuntimeError('%s: call counts differ between runs: '
                                   '%s, %s' % (name, calls[name], counted))
            calls[name], migrated[name] = counted, ok
            times[name].append(elapsed)
    srs = volumes if layout == 'own' else 1
    bound = lower_bound(srs)
    cell = {'volumes': volumes, 'layout': layout, 'srs': srs,
            'latency_ms': int(round(latency * 1000)), 'runs': runs,
            'lower_bound': bound}
    for name, _ in DRIVERS:
        counted = calls[name]
        nova = (counted or {}).get('nova', counted)
        cell[name] = {
            'migrated': migrated[name], 'calls': counted,
            'calls_to_bound': {p: round(nova[p] / float(bound[p]), 2)
                               for p in POOLS} if counted else None,
            'median_seconds': round(statistics.median(times[name]), 4)}
    if migrated['stock'] and migrated['extension']:
        cell['time_ratio'] = round(cell['extension']['median_seconds'] /
                                   cell['stock']['median_seconds'], 3)
    return cell


def table(cells):
    """The cells as text; ``dst xapi``: the source xapi's own calls."""
    header = ('V', 'layout', 'ms', 'src ext', 'src stock', 'src bound',
              'ext/bound', 'dst ext', 'dst stock', 'dst bound', 'ext/bound',
              'dst xapi', 's ext', 's stock', 'time ext/stock')
    rows = [header]

    def nova(result, pool):
        counted = result['calls']
        return counted.get('nova', counted)[pool]
    for c in cells:
        ext, stock = c['extension'], c['stock']

        def stock_calls(pool):
            return str(nova(stock, pool)) if stock['migrated'] else 'fails'
        xapi = ext['calls']['pool-b'] - nova(ext, 'pool-b')
        rows.append((
            str(c['volumes']), c['layout'], str(c['latency_ms']),
            str(nova(ext, 'pool-a')), stock_calls('pool-a'),
            str(c['lower_bound']['pool-a']),
            '%.2f' % ext['calls_to_bound']['pool-a'],
            str(nova(ext, 'pool-b')), stock_calls('pool-b'),
            str(c['lower_bound']['pool-b']),
            '%.2f' % ext['calls_to_bound']['pool-b'], str(xapi),
            '%.3f' % ext['median_seconds'],
            '%.3f' % stock['median_seconds'] if stock['migrated'] else '-',
            '%.3f' % c['time_ratio'] if 'time_ratio' in c else '-'))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return '\n'.join('  '.join(v.rjust(w) for v, w in zip(r, widths))
                     for r in rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--volumes', type=int, nargs='+',
                        default=[1, 4, 16, 64])
    parser.add_argument('--layouts', nargs='+', default=['own', 'shared'],
                        choices=['own', 'shared'])
    parser.add_argument('--latency-ms', type=float, nargs='+',
                        default=[0, 20])
    parser.add_argument('--runs', type=int, default=3,
                        help='runs per driver and cell (default 3)')
    parser.add_argument('--runs-64', type=int, default=1,
                        help='runs per driver for 64 or more volumes with '
                        'latency (default 1: stock nova needs minutes)')
    parser.add_argument('--json', help='also write the cells to this file')
    parser.add_argument('--breakdown', action='store_true',
                        help='instead of the table: one migration per '
                        'volume count, layout and driver (no latency), '
                        'its calls per side by method and by the nova '
                        'step and function that issued them')
    parser.add_argument('--drivers', nargs='+', default=['extension'],
                        choices=[name for name, _ in DRIVERS],
                        help='drivers for --breakdown (default extension)')
    args = parser.parse_args(argv)

    import logging
    logging.disable(logging.WARNING)
    from nova_xenapi_sr_tools import inprocess

    started = time.perf_counter()
    dep = inprocess.Deployment(
        drivers=(inprocess.EXTENSION, inprocess.EXTENSION,
                 inprocess.STOCK, inprocess.STOCK),
        nodes=(('pool-a', 'host-a'), ('pool-b', 'host-b'),
               ('pool-c', 'host-c'), ('pool-d', 'host-d')))
    dep.setUp()
    try:
        if args.breakdown:
            return run_breakdown(dep, args, sys.stdout)
        cells = run_cells(dep, args)
    finally:
        dep.cleanUp()
    if not all(c['extension']['migrated'] for c in cells):
        raise SystemExit('the extension failed a migration: %s' % [
            (c['volumes'], c['layout']) for c in cells
            if not c['extension']['migrated']])
    print(table(cells))
    print('total %.0f s' % (time.perf_counter() - started))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(cells, f, indent=2, sort_keys=True)
    return 0


def run_breakdown(dep, args, out):
    tracer = CallTracer({pool: dep.xapi.pool(pool).url
                         for pool in ('pool-a', 'pool-b', 'pool-c',
                                      'pool-d')})
    tracer.install()
    try:
        for name in args.drivers:
            run_one_migration(dep, name, 1, 'own', 0)  # warm up
        for volumes in args.volumes:
            for layout in args.layouts:
                if layout == 'shared' and volumes == 1:
                    continue
                for name in args.drivers:
                    tracer.clear()
                    _, calls, ok = run_one_migration(
                        dep, name, volumes, layout, 0,
                        on_cleared=tracer.clear)
                    source, src_pool, dest, dst_pool = PAIRS[name]
                    out.write('=== %s, %d volumes, %s SRs%s\n' % (
                        name, volumes, layout,
                        '' if ok else ' (the migration FAILED)'))
                    for side, pool in (('source', src_pool),
                                       ('destination', dst_pool)):
                        print_breakdown(
                            out, '%s %s' % (side, pool),
                            logged_methods(dep.xapi.pool(pool).calls()),
                            tracer, pool)
    finally:
        tracer.uninstall()
    return 0


def run_cells(dep, args):
    tracer = CallTracer({pool: dep.xapi.pool(pool).url
                         for pool in ('pool-a', 'pool-b', 'pool-c',
                                      'pool-d')})
    tracer.install()
    try:
        return _run_cells(dep, args, tracer)
    finally:
        tracer.uninstall()


def _run_cells(dep, args, tracer):
    # The first migration of each pair also fills nova's caches (the
    # computes' volume connectors); counted runs start warm.
    for name, _ in DRIVERS:
        run_one_migration(dep, name, 1, 'own', 0)
    cells = []
    failed = {}  # (volumes, layout) -> drivers that could not migrate it
    for latency_ms in args.latency_ms:
        for volumes in args.volumes:
            for layout in args.layouts:
                if layout == 'shared' and volumes == 1:
                    continue  # the same as 'own'
                runs = args.runs
                if volumes >= 64 and latency_ms:
                    runs = args.runs_64
                cell = measure(dep, volumes, layout, latency_ms / 1000.0,
                               runs, failed.get((volumes, layout), ()),
                               tracer=tracer)
                failed[(volumes, layout)] = [
                    name for name, _ in DRIVERS if not cell[name]['migrated']]
                cells.append(cell)
                if args.json:  # what is measured survives a later failure
                    with open(args.json, 'w') as f:
                        json.dump(cells, f, indent=2, sort_keys=True)
                sys.stderr.write('done: %d volumes, %s, %g ms\n'
                                 % (volumes, layout, latency_ms))
    return cells


if __name__ == '__main__':
    sys.exit(main())
