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

Not a test: run it by hand (root: the mock XAPI binds port 80)::

    PYTHONPATH=. OS_NOVA_DISABLE_EVENTLET_PATCHING=1 \\
        python benchmarks/driver_overhead.py [--runs 15] [--volumes 4]

In one process, against a fresh two-pool mock XAPI per run, it live-migrates
a uuid5-only instance (what stock nova can migrate) with stock nova 21's
XenAPIDriver on both sides and with XenAPISRDriver on both sides,
alternating, in nova's manager order (novaenv.ManagerFlow). Reported: the
median wall time of the flow and the XAPI calls each pool served, for
both drivers, and extension/stock ratios. Call counts are deterministic;
times are not, so only the ratio of medians measured in the same run is
meaningful. Prints JSON on stdout.
"""

import argparse
import json
import statistics
import sys
import time

STOCK = 'nova.virt.xenapi.driver.XenAPIDriver'
EXTENSION = 'nova_xenapi_sr.virt.driver.XenAPISRDriver'


def one_migration(driver, volumes):
    from nova_xenapi_sr_tools.mockxapi import MockXapi
    from nova_xenapi_sr_tools.mockxapi import Scenario
    from nova_xenapi_sr_tools import novaenv

    sc = Scenario()
    sc.add_pool('pool-a', hosts=['host-a'])
    sc.add_pool('pool-b', hosts=['host-b'])
    infos = []
    for index in range(volumes):
        volume_id = 'vol-%d' % index
        infos.append((sc.add_volume(
            volume_id, '192.0.2.10:3260',
            'iqn.2010-10.org.openstack:%s' % volume_id, 1),
            '/dev/xvd%s' % chr(ord('b') + index)))
    uuid = '7d1c2a3e-0000-4000-8000-00000000000%d' % volumes
    sc.add_instance('pool-a', 1, nova_uuid=uuid, volumes=[
        ('vol-%d' % i, 'uuid5', dev) for i, (_, dev) in enumerate(infos)])
    with MockXapi(sc) as srv:
        src = novaenv.build_driver(driver, srv.urls['pool-a'])
        dst = novaenv.build_driver(driver, srv.urls['pool-b'])
        for pool in ('pool-a', 'pool-b'):
            srv.pool(pool).clear_calls()
        flow = novaenv.ManagerFlow(src, dst)
        instance = novaenv.make_instance(1, uuid, 'host-a')
        started = time.perf_counter()
        flow.run(novaenv.admin_context(), instance,
                 novaenv.block_device_info(infos),
                 novaenv.block_device_info(
                     [(sc.connection_info(v), d) for v, (_, d) in
                      zip(['vol-%d' % i for i in range(volumes)], infos)]),
                 'host-b')
        elapsed = time.perf_counter() - started
        if [p for p, _ in srv.find_vm('instance-00000001')] != ['pool-b']:
            raise RuntimeError('%s did not migrate the instance' % driver)
        calls = {pool: len(srv.pool(pool).calls())
                 for pool in ('pool-a', 'pool-b')}
    return elapsed, calls


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=15)
    parser.add_argument('--volumes', type=int, default=4)
    args = parser.parse_args(argv)

    from nova_xenapi_sr_tools import novaenv
    novaenv.prepare()
    import logging
    logging.disable(logging.WARNING)

    results = {STOCK: [], EXTENSION: []}
    calls = {}
    one_migration(STOCK, args.volumes)          # warm-up, not counted
    for run in range(args.runs):
        # alternate which goes first, so neither always runs warmer
        order = (STOCK, EXTENSION) if run % 2 == 0 else (EXTENSION, STOCK)
        for driver in order:
            elapsed, calls[driver] = one_migration(driver, args.volumes)
            results[driver].append(elapsed)
    median = {d: statistics.median(times) for d, times in results.items()}
    report = {
        'runs': args.runs, 'volumes': args.volumes,
        'median_seconds': {'stock': round(median[STOCK], 4),
                           'extension': round(median[EXTENSION], 4)},
        'time_ratio_extension_to_stock': round(
            median[EXTENSION] / median[STOCK], 3),
        'xapi_calls': {'stock': calls[STOCK],
                       'extension': calls[EXTENSION]},
        'call_ratio_extension_to_stock': {
            pool: round(calls[EXTENSION][pool] / float(calls[STOCK][pool]),
                        3) for pool in calls[STOCK]},
    }
    json.dump(report, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
