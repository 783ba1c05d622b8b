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

"""Wall time of ``verify-upgrade``'s whole matrix (24 cases).

Not a test: run it by hand, as root (the mock XAPI binds port 80; the
broker and database packages are installed when missing)::

    OS_NOVA_DISABLE_EVENTLET_PATCHING=1 \\
        python benchmarks/verify_upgrade_walltime.py [--runs N]

Each run does what the command does: installs RabbitMQ and MariaDB if
they are missing, starts every service (the broker, the database, nova's
databases set up with nova-manage, placement, nova-api, the scheduler, the
conductor, two nova-computes), runs the 24 cases as a rolling upgrade and
stops everything. Reported per run: installing, starting services, cases
(and per-case min/median/max), stopping, total; then the median total
over the runs. Prints JSON on stdout.
"""

import argparse
import json
import os
import statistics
import sys
import time


def one_run(extension_driver=None):
    # Imported here so that nothing but the runner loads in this script.
    from nova_xenapi_sr_tools.upgrade import report
    from nova_xenapi_sr_tools.upgrade import rolling

    started = time.monotonic()
    runner = rolling.RollingRunner(extension_driver=extension_driver)
    with runner:
        ready = time.monotonic()
        results = runner.run()
        finished = time.monotonic()
    stopped = time.monotonic()
    timings = runner.deployment.timings
    per_case = sorted(result['wall_time'] for result in results)
    summary = report.summarize(results, stopped - started)
    return {
        'installing_s': round(timings.get('install', 0.0), 2),
        'starting_services_s': round(timings.get('start', 0.0), 2),
        'cases_s': round(finished - ready, 2),
        'stopping_s': round(stopped - finished, 2),
        'total_s': round(stopped - started, 2),
        'cases': len(results),
        'case_min_s': per_case[0],
        'case_median_s': round(statistics.median(per_case), 3),
        'case_max_s': per_case[-1],
        'outcomes': dict((outcome, summary[outcome]) for outcome in
                         ('migrated', 'refused', 'failed_clean', 'UNSAFE')),
        'all_extension_migrated': summary['all_extension_migrated'],
        'exit_status': summary['exit_status'],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=1,
                        help='how many times to run the matrix (default 1)')
    parser.add_argument('--extension-driver', default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault('OS_NOVA_DISABLE_EVENTLET_PATCHING', '1')
    runs = []
    for index in range(args.runs):
        runs.append(one_run(args.extension_driver))
        sys.stderr.write('run %d: %.1f s\n'
                         % (index + 1, runs[-1]['total_s']))
    out = {
        'benchmark': 'verify-upgrade full matrix wall time',
        'cpus': os.cpu_count(),
        'python': sys.version.split()[0],
        'load_average_before': os.getloadavg(),
        'runs': runs,
        'median_total_s': statistics.median(r['total_s'] for r in runs),
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
