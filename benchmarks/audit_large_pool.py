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

"""Time ``nova-xenapi-sr audit`` on a generated pool of 10,000 VMs.

Not a test: run it by hand, as root (the mock XAPI listens on port 80)::

    PYTHONPATH=. OS_NOVA_DISABLE_EVENTLET_PATCHING=1 \\
        python benchmarks/audit_large_pool.py [--vms 10000] [--json]

The generated pool ``big`` has one host per 500 VMs and one volume per VM:
nine in ten on uuid5 SRs of 100 shared iSCSI targets, one in ten on its own
legacy SR. A second, small pool ``small`` reaches some of the same targets
through legacy SRs, so the cross-pool rule has work to do. The benchmark
runs the audit command (the cliff ``Lister``, JSON output) against both
pools and reports its wall and CPU time (the CPU time includes the mock
serving it, in the same process), the XAPI calls it made per pool (read
from the mock's call log) and, for scale, the time of the bare
``VM.get_all_records`` call of the big pool through the XenAPI SDK.
"""

import argparse
import io
import json
import os
import sys
import time

import XenAPI

from nova_xenapi_sr import audit
from nova_xenapi_sr_tools import cli
from nova_xenapi_sr_tools.mockxapi import MockXapi
from nova_xenapi_sr_tools.mockxapi import Scenario

TARGETS = 100


def build(vms):
    sc = Scenario()
    hosts = ['big-%d' % i for i in range(max(1, vms // 500))]
    sc.add_pool('big', hosts=hosts)
    sc.add_pool('small', hosts=['small-0'])
    for index in range(vms):
        volume = 'vol-%05d' % index
        if index % 10 == 0:
            sc.add_volume(volume, '192.0.2.1:3260',
                          'iqn.2010-10.org.openstack:%s' % volume, 1)
            style = 'legacy'
        else:
            target = index % TARGETS
            sc.add_volume(volume, '192.0.2.%d:3260' % (10 + target),
                          'iqn.2010-10.org.openstack:target-%d' % target,
                          index // TARGETS + 1)
            style = 'uuid5'
        sc.add_instance('big', index + 1, host=hosts[index % len(hosts)],
                        volumes=[(volume, style, '/dev/xvdb')])
    # The small pool reaches five of the shared targets through legacy SRs.
    for target in range(1, 6):
        volume = 'small-%d' % target
        sc.add_volume(volume, '192.0.2.%d:3260' % (10 + target),
                      'iqn.2010-10.org.openstack:target-%d' % target, 999)
        sc.add_instance('small', 100000 + target,
                        volumes=[(volume, 'legacy', '/dev/xvdb')])
    return sc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--vms', type=int, default=10000)
    parser.add_argument('--json', action='store_true',
                        help='print the figures as JSON')
    args = parser.parse_args(argv)

    started = time.monotonic()
    sc = build(args.vms)
    with MockXapi(sc) as srv:
        built = time.monotonic() - started
        os.environ[audit.PASSWORD_ENV] = 'mock'

        session = XenAPI.Session(srv.urls['big'])
        session.login_with_password('root', 'mock', '2.1', 'bench')
        t0 = time.monotonic()
        session.xenapi.VM.get_all_records()
        bare = time.monotonic() - t0
        session.xenapi.session.logout()
        for name in srv.world.pools:
            srv.pool(name).clear_calls()

        out = io.StringIO()
        app = cli.NovaXenapiSRApp(stdout=out, stderr=io.StringIO())
        t0, c0 = time.monotonic(), time.process_time()
        rc = app.run(['audit', '--no-progress', '-f', 'json',
                      '--url', srv.urls['big'], '--url', srv.urls['small']])
        wall = time.monotonic() - t0
        cpu = time.process_time() - c0
        rows = json.loads(out.getvalue()) if rc == 0 else []
        calls = {name: [m for m, _ in srv.pool(name).calls()]
                 for name in srv.world.pools}
    figures = {
        'vms': args.vms,
        'rows': len(rows),
        'blocked_rows': sum(1 for row in rows if row['Blocked to']),
        'exit_code': rc,
        'audit_seconds': round(wall, 3),
        # CPU of this process (the audit and the mock serving it): less
        # sensitive than wall time to other load on the machine.
        'audit_cpu_seconds': round(cpu, 3),
        'bare_vm_get_all_records_seconds': round(bare, 3),
        'audit_over_bare_vm_read': round(wall / bare, 2) if bare else None,
        'xapi_calls': {name: len(c) for name, c in calls.items()},
        'xapi_reads': {name: len([m for m in c if not
                                  m.startswith('session.')])
                       for name, c in calls.items()},
        'scenario_build_seconds': round(built, 1),
    }
    if args.json:
        print(json.dumps(figures, indent=2, sort_keys=True))
    else:
        for key, value in sorted(figures.items()):
            print('%-34s %s' % (key, value))
    return 0 if rc == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
