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

"""Cost of the extension on a live migration, as a ratio to stock nova.

Not a test: run it by hand (root: the mock XAPI binds port 80), from the
tox environment (it needs the test requirements)::

    PYTHONPATH=. .tox/py3/bin/python benchmarks/driver_overhead.py \\
        [--runs 15] [--volumes 4] [--latency-ms 0]

In one process, nova 21.2.4's real services (``nova_xenapi_sr_tools.
inprocess``: api, conductor, scheduler, placement, four computes) run
over the mock XAPI: host-a -> host-b with XenAPISRDriver, host-c ->
host-d with stock nova's XenAPIDriver. Each run serves a fresh scenario
(a uuid5-only instance with ``--volumes`` volumes: what stock nova can
migrate), boots it through nova's API, then live-migrates it with
``os-migrateLive`` (the scheduler checks the requested host) and waits
until nova has settled; stock and extension alternate. ``--latency-ms``
delays every XAPI call of both pools. Reported: the median wall time of
the migration and the XAPI calls each pool served, for both drivers, and
extension/stock ratios. Call counts are deterministic; times are not, so
only the ratio of medians measured in the same run is meaningful. Prints
JSON on stdout.
"""

import argparse
import json
import statistics
import sys
import time

from nova_xenapi_sr_tools.inprocess import eventlet_setup

eventlet_setup.monkey_patch()

STOCK = 'stock'
EXTENSION = 'extension'
#: driver -> (source host, source pool, destination host, pool)
PAIRS = {EXTENSION: ('host-a', 'pool-a', 'host-b', 'pool-b'),
         STOCK: ('host-c', 'pool-c', 'host-d', 'pool-d')}


def one_migration(dep, driver, volumes, latency):
    from nova_xenapi_sr_tools.inprocess import deployment
    source, src_pool, dest, dst_pool = PAIRS[driver]
    sc = dep.new_scenario()
    vols = []
    for index in range(volumes):
        volume_id = '7d1c2a3e-0000-4000-8000-%012d' % index
        sc.add_volume(volume_id, '192.0.2.10:3260',
                      'iqn.2010-10.org.openstack:vol-%d' % index, 1)
        vols.append((volume_id, '/dev/xvd%s' % chr(ord('b') + index)))
    sc.add_instance(src_pool, 1, volumes=[(v, 'uuid5', d) for v, d in vols])
    dep.reset(sc)
    server = dep.boot(1, vols, host=source)
    dep.clear_calls()
    if latency:
        for pool in (src_pool, dst_pool):
            dep.xapi.set_latency(pool, '*', latency)
    started = time.perf_counter()
    migration = dep.live_migrate(server, host=dest)
    elapsed = time.perf_counter() - started
    if migration.status != 'completed' or \
            dep.instance(server).host != dest:
        raise deployment.DeploymentError(
            '%s did not migrate the instance: migration %s' % (
                driver, migration.status))
    calls = {side: len(dep.xapi.pool(pool).calls())
             for side, pool in (('source', src_pool),
                                ('destination', dst_pool))}
    return elapsed, calls


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=15)
    parser.add_argument('--volumes', type=int, default=4)
    parser.add_argument('--latency-ms', type=float, default=0.0)
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
    setup = time.perf_counter() - started
    latency = args.latency_ms / 1000.0
    try:
        results = {STOCK: [], EXTENSION: []}
        calls = {}
        one_migration(dep, STOCK, args.volumes, latency)  # warm-up
        for run in range(args.runs):
            # alternate which goes first, so neither always runs warmer
            order = (STOCK, EXTENSION) if run % 2 == 0 else (EXTENSION,
                                                             STOCK)
            for driver in order:
                elapsed, calls[driver] = one_migration(
                    dep, driver, args.volumes, latency)
                results[driver].append(elapsed)
    finally:
        dep.cleanUp()
    median = {d: statistics.median(times) for d, times in results.items()}
    report = {
        'runs': args.runs, 'volumes': args.volumes,
        'latency_ms': args.latency_ms,
        'nova_setup_seconds': round(setup, 2),
        'median_seconds': {'stock': round(median[STOCK], 4),
                           'extension': round(median[EXTENSION], 4)},
        'time_ratio_extension_to_stock': round(
            median[EXTENSION] / median[STOCK], 3),
        'xapi_calls': {'stock': calls[STOCK],
                       'extension': calls[EXTENSION]},
        'call_ratio_extension_to_stock': {
            side: round(calls[EXTENSION][side] / float(calls[STOCK][side]),
                        3) for side in calls[STOCK]},
    }
    json.dump(report, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
