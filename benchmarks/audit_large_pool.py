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
        .tox/py3/bin/python benchmarks/audit_large_pool.py \\
        [--vms 10000] [--repeat N] [--profile FILE] [--json]

The generated pool ``big`` has one host per 500 VMs and one volume per VM:
nine in ten on uuid5 SRs of 100 shared iSCSI targets, one in ten on its own
legacy SR. A second, small pool ``small`` reaches some of the same targets
through legacy SRs, so the cross-pool rule has work to do.

The mock XAPI serves both pools from a child process (this script with
``--serve``), as a real pool master is another machine: the audit's client
and the mock's XML-RPC encoding do not share one interpreter lock, and the
audit decodes the start of the reply while the mock writes the rest. The
benchmark runs the audit command (the cliff ``Lister``, JSON output)
against both pools ``--repeat`` times and reports, per run and for the
fastest, its wall time and the CPU time of the audit's process and of the
mock's, the XAPI calls it made per pool (read from the mock's call log:
login, one ``event.from`` and logout, so ``xapi_calls`` is 3 and
``xapi_reads`` 1 per pool) and, for scale, the time of the bare
``VM.get_all_records`` call of the big pool through the XenAPI SDK.
``--profile FILE`` writes cProfile statistics of the audit's process for
the last run.
"""

import argparse
import cProfile
import io
import json
import os
import statistics
import subprocess
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


def serve(vms):
    """The child: serve the generated pools; answer commands on stdin.

    Prints one JSON line with the URLs, then answers each line of stdin
    (``calls``: the call log of every pool, then cleared, and this
    process's CPU time) with one JSON line, until stdin closes.
    """
    started = time.monotonic()
    sc = build(vms)
    with MockXapi(sc) as srv:
        print(json.dumps({'urls': srv.urls,
                          'build_seconds': time.monotonic() - started}),
              flush=True)
        for line in sys.stdin:
            if line.strip() != 'calls':
                continue
            calls = {}
            for name in srv.world.pools:
                calls[name] = [m for m, _ in srv.pool(name).calls()]
                srv.pool(name).clear_calls()
            print(json.dumps({'calls': calls, 'cpu': time.process_time()}),
                  flush=True)
    return 0


class Server(object):
    """The child process serving the pools, seen from the benchmark."""

    def __init__(self, vms):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), '--serve',
             '--vms', str(vms)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            universal_newlines=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError('the mock XAPI did not start (exit status '
                               '%s)' % self.proc.returncode)
        hello = json.loads(line)
        self.urls = hello['urls']
        self.build_seconds = hello['build_seconds']

    def calls(self):
        """``({pool: [method]}, server CPU seconds)``; clears the log."""
        self.proc.stdin.write('calls\n')
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        return answer['calls'], answer['cpu']

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def run_audit(srv, profile=None):
    """Run the audit command once; its figures and its rows."""
    out = io.StringIO()
    app = cli.NovaXenapiSRApp(stdout=out, stderr=io.StringIO())
    _, server_c0 = srv.calls()
    t0, c0 = time.monotonic(), time.process_time()
    if profile is not None:
        profile.enable()
    rc = app.run(['audit', '--no-progress', '-f', 'json',
                  '--url', srv.urls['big'], '--url', srv.urls['small']])
    if profile is not None:
        profile.disable()
    wall = time.monotonic() - t0
    cpu = time.process_time() - c0
    calls, server_c1 = srv.calls()
    rows = json.loads(out.getvalue()) if rc == 0 else []
    return {
        'exit_code': rc,
        'rows': len(rows),
        'blocked_rows': sum(1 for row in rows if row['Blocked to']),
        'wall_seconds': round(wall, 3),
        'audit_cpu_seconds': round(cpu, 3),
        'mock_cpu_seconds': round(server_c1 - server_c0, 3),
        'xapi_calls': {name: len(c) for name, c in calls.items()},
        'xapi_reads': {name: len([m for m in c if not
                                  m.startswith('session.')])
                       for name, c in calls.items()},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--vms', type=int, default=10000)
    parser.add_argument('--repeat', type=int, default=1,
                        help='run the audit this many times (default 1)')
    parser.add_argument('--profile', metavar='FILE',
                        help='write cProfile statistics of the audit\'s '
                             'process (last run) to FILE')
    parser.add_argument('--json', action='store_true',
                        help='print the figures as JSON')
    parser.add_argument('--serve', action='store_true',
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.vms)

    srv = Server(args.vms)
    try:
        os.environ[audit.PASSWORD_ENV] = 'mock'
        session = XenAPI.Session(srv.urls['big'])
        session.login_with_password('root', 'mock', '2.1', 'bench')
        t0 = time.monotonic()
        session.xenapi.VM.get_all_records()
        bare = time.monotonic() - t0
        session.xenapi.session.logout()
        runs = []
        for index in range(max(1, args.repeat)):
            profile = None
            if args.profile and index == args.repeat - 1:
                profile = cProfile.Profile()
            runs.append(run_audit(srv, profile))
        if profile is not None:
            profile.dump_stats(args.profile)
    finally:
        srv.close()
    best = min(runs, key=lambda run: run['wall_seconds'])
    figures = dict(best)
    figures.update({
        'vms': args.vms,
        'runs_wall_seconds': [run['wall_seconds'] for run in runs],
        'median_wall_seconds': round(statistics.median(
            run['wall_seconds'] for run in runs), 3),
        'bare_vm_get_all_records_seconds': round(bare, 3),
        'audit_over_bare_vm_read': (round(best['wall_seconds'] / bare, 2)
                                    if bare else None),
        'scenario_build_seconds': round(srv.build_seconds, 1),
    })
    if args.json:
        print(json.dumps(figures, indent=2, sort_keys=True))
    else:
        for key, value in sorted(figures.items()):
            print('%-34s %s' % (key, value))
    return 0 if all(run['exit_code'] == 0 for run in runs) else 1


if __name__ == '__main__':
    sys.exit(main())
